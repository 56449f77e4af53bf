//! The external platform: a cluster that kaos did not start and does not control (a compose
//! cluster, a staging cluster, any Kafka-compatible brokers), reached at the scenario's
//! `bootstrap` addresses. kaos runs the clients, the final read and the checks against it and
//! starts, stops, kills and pauses no node: a scenario whose faults need that is refused at load
//! (its own client processes can still be killed and paused). Broker settings of the scenario are
//! not applied (the cluster has its own), nodes leave no logs or replica dumps in the run
//! directory, and each run writes a topic of its own (`<topic>-<run start time>`) so that an
//! earlier run's messages, whose ids a new run would reuse, are never read as this run's.

use super::local::Node;
use anyhow::{bail, Result};

pub struct ExternalPlatform {
    bootstrap: String,
    /// Always empty: the cluster's nodes are not this run's to manage.
    pub nodes: Vec<Node>,
}

impl ExternalPlatform {
    pub fn new(bootstrap: &str) -> Self {
        ExternalPlatform {
            bootstrap: bootstrap.to_string(),
            nodes: Vec::new(),
        }
    }
    pub fn brokers(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter()
    }
    pub fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }
    /// None: a broker of an external cluster is never a fault target.
    pub fn broker_index(&self, _node_id: i32) -> Option<usize> {
        None
    }
    pub async fn start(&mut self, i: usize) -> Result<u32> {
        self.launch(i, true).await
    }
    pub async fn launch(&mut self, i: usize, _wait: bool) -> Result<u32> {
        bail!("the external platform does not start nodes (node index {i})")
    }
    pub async fn kill(&mut self, i: usize) -> Result<Option<u32>> {
        bail!("the external platform does not kill nodes (node index {i})")
    }
    pub async fn pause(&mut self, i: usize, _pause: bool) -> Result<Option<u32>> {
        bail!("the external platform does not pause nodes (node index {i})")
    }
    pub async fn stop_all(&mut self) {}
}

/// kaos does not control an external cluster's nodes: it can only signal the scenario's own
/// client processes.
pub fn can(capability: super::capability::Capability) -> bool {
    use super::capability::Capability as C;
    match capability {
        C::SignalProcesses => true,
        C::ControlNodes | C::PowerLoss | C::DropCaches => false,
        C::Partitions | C::LinkFaults | C::IsolateSteps => false,
    }
}
