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

    /// The cleanup policy the brokers apply to the scenario's topic: `log.cleanup.policy`, from
    /// `settings` or a node's `node_settings` (a scenario gives its topic no configs of its own,
    /// so the brokers' default is the topic's policy), normalised (`compact,delete`). `None` when
    /// no broker sets it (the broker's own default). An error naming the nodes when brokers
    /// disagree: replicas would clean differently, and the checker reads one policy per topic.
    pub fn cleanup_policy(&self) -> Result<Option<String>, String> {
        const KEY: &str = "log.cleanup.policy";
        let mut per_node: Vec<(String, Option<String>)> = Vec::new();
        for k in 1..=self.brokers {
            let name = format!("n{k}");
            let policy = match self.broker_settings(&name).get(KEY) {
                None => None,
                Some(v) => Some(policy_text(v).ok_or_else(|| {
                    format!("{name}'s \"{KEY}\" is {v}: a string such as \"compact\" or \"compact,delete\"")
                })?),
            };
            per_node.push((name, policy));
        }
        let first = per_node.first().map(|(_, p)| p.clone()).unwrap_or_default();
        if per_node.iter().all(|(_, p)| *p == first) {
            return Ok(first);
        }
        let each: Vec<String> = per_node
            .iter()
            .map(|(name, p)| format!("{name} {}", p.as_deref().unwrap_or("the broker's default")))
            .collect();
        Err(format!(
            "cluster.node_settings: the brokers' \"{KEY}\" differ ({}): the topic's replicas would be cleaned differently, and the checker reads one policy per topic",
            each.join(", ")
        ))
    }
}

/// A `cleanup.policy` value (a comma-separated string or an array of strings) as its sorted,
/// comma-joined parts; `None` for any other value.
fn policy_text(v: &toml::Value) -> Option<String> {
    let mut parts: Vec<String> = match v {
        toml::Value::String(s) => s.split(',').map(|p| p.trim().to_owned()).collect(),
        toml::Value::Array(a) => a
            .iter()
            .map(|p| p.as_str().map(|p| p.trim().to_owned()))
            .collect::<Option<_>>()?,
        _ => return None,
    };
    parts.retain(|p| !p.is_empty());
    parts.sort();
    parts.dedup();
    Some(parts.join(","))
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

    #[test]
    fn the_topics_cleanup_policy_is_the_brokers_whichever_table_sets_it() {
        let policy = |text: &str| {
            toml::from_str::<Cluster>(text)
                .expect(text)
                .cleanup_policy()
        };
        assert_eq!(policy("brokers = 3"), Ok(None));
        // The cluster's setting, normalised.
        let both = "brokers = 2\nsettings = { \"log.cleanup.policy\" = \"delete, compact\" }";
        assert_eq!(policy(both), Ok(Some("compact,delete".into())));
        // Every node's own setting: the same policy.
        let nodes = "brokers = 2\n[node_settings.n1]\n\"log.cleanup.policy\" = \"compact\"\n[node_settings.n2]\n\"log.cleanup.policy\" = [\"compact\"]";
        assert_eq!(policy(nodes), Ok(Some("compact".into())));
        // A node overriding the cluster's setting for all (one broker).
        let one = "brokers = 1\nsettings = { \"log.cleanup.policy\" = \"delete\" }\n[node_settings.n1]\n\"log.cleanup.policy\" = \"compact\"";
        assert_eq!(policy(one), Ok(Some("compact".into())));
        // One node of three compacting: refused, naming each node's policy.
        let mixed = "brokers = 3\n[node_settings.n2]\n\"log.cleanup.policy\" = \"compact\"";
        let err = policy(mixed).expect_err("brokers disagree");
        assert!(
            err.contains("n1 the broker's default, n2 compact, n3 the broker's default"),
            "{err}"
        );
        let number = "brokers = 1\nsettings = { \"log.cleanup.policy\" = 1 }";
        assert!(policy(number).expect_err("a number").contains("n1's"));
    }
}
