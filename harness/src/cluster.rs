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

impl Cluster {
    pub fn has_controller(&self) -> bool {
        self.controller.unwrap_or(self.brokers > 1)
    }
}
