//! The cluster a scenario describes and the platform its nodes run on: what the platforms need
//! to lay nodes out, apart from the rest of the scenario (so that `platform` does not depend on
//! `scenario`, which asks the platforms what they can do).

use serde::{Deserialize, Serialize};

/// The platform a scenario's nodes run on (`kaos run --platform` overrides the file's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PlatformKind {
    /// Each node a child process on this machine, on 127.0.0.1.
    #[default]
    Local,
    /// Each node in its own container on a private network (needs a Docker engine).
    Docker,
    /// A running cluster that kaos neither starts nor controls, at the scenario's `bootstrap`.
    External,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    pub brokers: u32,
    /// Run a controller process (named `controller`) that the brokers register with. Default:
    /// only when there is more than one broker.
    #[serde(default)]
    pub controller: Option<bool>,
    /// Broker settings for every node, written into each node's config file.
    #[serde(default)]
    pub settings: toml::Table,
    /// Per-node overrides on top of `settings`, e.g. `[cluster.node_settings.n2]`.
    #[serde(default)]
    pub node_settings: std::collections::BTreeMap<String, toml::Table>,
    /// Settings for the controller's config file.
    #[serde(default)]
    pub controller_settings: toml::Table,
    /// After the run, write every replica of every broker with `kaos-broker dump` so that the
    /// checker can compare replicas. Turn off for a broker binary that is not kaos-broker.
    #[serde(default = "yes")]
    pub replica_dumps: bool,
}

fn yes() -> bool {
    true
}

/// Kafka's internal topics whose replication factor defaults to 3.
const INTERNAL_TOPIC_RF_KEYS: [&str; 2] = [
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
];

impl Cluster {
    pub fn has_controller(&self) -> bool {
        self.controller.unwrap_or(self.brokers > 1)
    }

    /// Node `name`'s broker settings: the cluster's, then the replication factors of the
    /// internal topics (`__consumer_offsets`, `__transaction_state`) capped at the cluster's size
    /// unless the scenario sets them (Kafka's default of 3 cannot be met by a smaller cluster: the
    /// topic would never be created, and group commits or `init_transactions` would wait
    /// forever), then the node's own overrides.
    pub fn broker_settings(&self, name: &str) -> toml::Table {
        let mut config = self.settings.clone();
        for key in INTERNAL_TOPIC_RF_KEYS {
            config
                .entry(key)
                .or_insert(toml::Value::Integer(i64::from(self.brokers.min(3))));
        }
        if let Some(overrides) = self.node_settings.get(name) {
            config.extend(overrides.clone());
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_topics_fit_the_cluster_unless_the_scenario_says() {
        let mut cluster: Cluster = toml::from_str("brokers = 2").expect("cluster");
        let n1 = cluster.broker_settings("n1");
        for key in INTERNAL_TOPIC_RF_KEYS {
            assert_eq!(n1.get(key), Some(&toml::Value::Integer(2)), "{key}");
        }
        cluster.brokers = 5;
        cluster.settings.insert(
            "transaction.state.log.replication.factor".into(),
            toml::Value::Integer(1),
        );
        let n2 = cluster.broker_settings("n2");
        assert_eq!(
            n2.get("offsets.topic.replication.factor"),
            Some(&toml::Value::Integer(3))
        );
        assert_eq!(
            n2.get("transaction.state.log.replication.factor"),
            Some(&toml::Value::Integer(1))
        );
    }
}
