//! Whom a fault hits: written in `nemesis.target` and in sequence steps, resolved when the fault
//! starts (leader, follower and coordinator from live metadata, by `nemesis::Resolver`).

use serde::Serialize;

/// Whom a fault hits, resolved when the fault starts (leader and follower from live metadata).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A node drawn from the seed for each fault.
    Random,
    /// A node by name: `n1`, `n2`, … or `controller`.
    Node(String),
    /// The current leader of a partition of the scenario's topic (`leader` = partition 0).
    Leader(i32),
    /// The current leader of a partition of the pipelines' output topic (`output_leader` =
    /// partition 0).
    OutputLeader(i32),
    /// A current follower (a replica that is not the leader) of a partition.
    Follower(i32),
    /// A client process of the scenario: `producer-1`, `consumer-2`, … (numbered per kind).
    Client(String),
    /// The group coordinator of the scenario's consumer group: the leader of the
    /// `__consumer_offsets` partition the group hashes to (Kafka's `abs(hashCode) % partitions`).
    Coordinator,
    /// The transaction coordinator of the scenario's first transactional client (a
    /// transactional pipeline's, else a transactional producer's `transactional.id`): the leader
    /// of the `__transaction_state` partition the id hashes to.
    TxnCoordinator,
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, String> {
        let (word, partition) =
            match text.split_once(':') {
                Some((w, p)) => (
                    w,
                    Some(p.parse::<i32>().map_err(|_| {
                        format!("{text:?}: the partition after ':' must be a number")
                    })?),
                ),
                None => (text, None),
            };
        match (word, partition) {
            ("random", None) => Ok(Target::Random),
            (name, None) if name.starts_with("producer-") || name.starts_with("consumer-") => Ok(Target::Client(name.to_string())),
            ("coordinator", None) => Ok(Target::Coordinator),
            ("txn_coordinator", None) => Ok(Target::TxnCoordinator),
            ("leader", p) => Ok(Target::Leader(p.unwrap_or(0))),
            ("follower", p) => Ok(Target::Follower(p.unwrap_or(0))),
            ("output_leader", p) => Ok(Target::OutputLeader(p.unwrap_or(0))),
            (name, None) if name == "controller" || name.starts_with('n') => Ok(Target::Node(name.to_string())),
            _ => Err(format!("{text:?} is not a target (random, leader[:P], follower[:P], output_leader[:P], controller, coordinator, txn_coordinator, a node n1..nN, or a client producer-N / consumer-N)")),
        }
    }

    /// `target` of the nemesis: one target, or several separated by commas, taken in turn.
    pub fn parse_list(text: &str) -> Result<Vec<Target>, String> {
        text.split(',').map(|t| Target::parse(t.trim())).collect()
    }
}
