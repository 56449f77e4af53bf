//! Scenario files (TOML): the cluster, the topic, the client processes, the nemesis schedule, the
//! duration and seed, and the expected outcome. A broken file is refused at load with the key and
//! line at fault, never mid-run.

pub use crate::cluster::{Cluster, PlatformKind};
use crate::limits::{
    BROKERS_MAX, CLIENTS_MAX, DURATION_S_MAX, SEQUENCE_STEPS_MAX, SEQUENCE_WAIT_MS_MAX,
};
use crate::platform::{self, Capability};
use crate::proxy::Links;
use checkers::Expectations;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use workloads::{OnFull, Processing, ProducerMode};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Length of the timed phase (clients and faults), before heal and the final read.
    pub duration_s: u64,
    #[serde(default)]
    pub seed: u64,
    /// Where the nodes run: `local` (child processes), `docker` (one container per node) or
    /// `external` (a cluster kaos does not start, at `bootstrap`).
    #[serde(default)]
    pub platform: PlatformKind,
    /// With `platform = "external"`: the cluster's bootstrap addresses, `host:port[,host:port…]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<String>,
    pub cluster: Cluster,
    pub topic: Topic,
    #[serde(default)]
    pub clients: Vec<Client>,
    #[serde(default)]
    pub nemesis: Nemesis,
    #[serde(default)]
    pub expect: Expectations,
}

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
    /// A current follower (a replica that is not the leader) of a partition.
    Follower(i32),
    /// A client process of the scenario: `producer-1`, `consumer-2`, … (numbered per kind).
    Client(String),
    /// The group coordinator of the scenario's consumer group: the leader of the
    /// `__consumer_offsets` partition the group hashes to (Kafka's `abs(hashCode) % partitions`).
    Coordinator,
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
            ("leader", p) => Ok(Target::Leader(p.unwrap_or(0))),
            ("follower", p) => Ok(Target::Follower(p.unwrap_or(0))),
            (name, None) if name == "controller" || name.starts_with('n') => Ok(Target::Node(name.to_string())),
            _ => Err(format!("{text:?} is not a target (random, leader[:P], follower[:P], controller, coordinator, a node n1..nN, or a client producer-N / consumer-N)")),
        }
    }

    /// `target` of the nemesis: one target, or several separated by commas, taken in turn.
    pub fn parse_list(text: &str) -> Result<Vec<Target>, String> {
        text.split(',').map(|t| Target::parse(t.trim())).collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    pub name: String,
    pub partitions: i32,
    #[serde(default = "one")]
    pub replication_factor: i32,
}

fn one() -> i32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Client {
    Producer {
        #[serde(default)]
        mode: ProducerMode,
        /// Messages per second the application produces; 0 = as fast as it can.
        #[serde(default)]
        rate_per_s: u64,
        #[serde(default = "default_message_size")]
        message_size_bytes: usize,
        /// Asynchronous mode: `block` (wait for room) or `drop` when librdkafka's buffer is full.
        #[serde(default)]
        on_full: OnFull,
        /// librdkafka properties (acks, linger.ms, retries, enable.idempotence, …).
        #[serde(default)]
        config: BTreeMap<String, String>,
    },
    Consumer {
        /// Join the group (`config."group.id"`, default `kaos-<scenario name>`) with subscribe()
        /// instead of assigning every partition.
        #[serde(default)]
        subscribe: bool,
        /// Process every message into a durable sink and commit as `processing.commit` says;
        /// without it the consumer only reads.
        #[serde(default)]
        processing: Option<Processing>,
        #[serde(default)]
        config: BTreeMap<String, String>,
    },
}

fn default_message_size() -> usize {
    100
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// SIGKILL the target, restart it after `down_s`.
    #[default]
    Kill,
    /// SIGSTOP the target, SIGCONT it after `down_s`: it keeps its sockets and state but answers
    /// nothing, then wakes up believing no time passed (a GC pause, a stalled VM).
    Pause,
    /// Power loss: SIGKILL the broker and drop every write it had not fsynced (its data directory
    /// is served by `kaos lazyfs`), restart it after `down_s`. Needs root and /dev/fuse.
    PowerLoss,
    /// Write 3 to /proc/sys/vm/drop_caches: clean page-cache pages are dropped (dirty ones are
    /// not: this loses nothing, it makes the next reads come from disk). Needs root.
    DropCaches,
    /// Cut the target node off from every other node and from the clients (nftables drops its
    /// packets both ways in its network namespace) for `down_s`, then heal.
    PartitionNode,
    /// Split the nodes (the controller included) in two for `down_s`: the target on the minority
    /// side with others drawn from the seed up to (nodes - 1) / 2 in all (alone with 3 or 4
    /// nodes), the rest on the other; the clients reach both sides.
    PartitionHalves,
    /// Cut the clients off from the target broker (the other nodes still reach it) for `down_s`.
    PartitionClients,
    /// Hold every chunk through the target broker's proxy for `delay_ms` plus up to `jitter_ms`
    /// (in order) on the `links` chosen, for `down_s`.
    Delay,
    /// Reset (RST both ways, buffered bytes lost) every connection through the target broker's
    /// proxy on the `links` chosen, at the start and every `reset_interval_ms` for `down_s`.
    Reset,
    /// The target broker's proxy forwards nothing on the `links` chosen for `down_s`
    /// (connections stay open, bytes vanish).
    Blackhole,
    /// Limit each direction of each connection through the target broker's proxy to
    /// `bandwidth_bytes_per_s` for `down_s`.
    Bandwidth,
    /// The steps of `nemesis.sequence`, one after the other, as one scheduled event: a double
    /// fault whose order matters (kill a follower, pause the leader, restart the follower, kill
    /// the leader). Each step's target is resolved when that step starts.
    Sequence,
}

impl Fault {
    /// What a platform must be able to do to carry this fault out.
    pub fn needs(&self) -> Capability {
        match self {
            Fault::Kill | Fault::Pause => Capability::SignalProcesses,
            Fault::Sequence => Capability::ControlNodes,
            Fault::PowerLoss => Capability::PowerLoss,
            Fault::DropCaches => Capability::DropCaches,
            Fault::PartitionNode | Fault::PartitionHalves | Fault::PartitionClients => {
                Capability::Partitions
            }
            Fault::Delay | Fault::Reset | Fault::Blackhole | Fault::Bandwidth => {
                Capability::LinkFaults
            }
        }
    }
    /// Partitions: namespaces and nftables rules.
    pub fn is_partition(&self) -> bool {
        matches!(
            self,
            Fault::PartitionNode | Fault::PartitionHalves | Fault::PartitionClients
        )
    }
    /// Link faults: the proxy in front of each broker.
    pub fn is_link_fault(&self) -> bool {
        matches!(
            self,
            Fault::Delay | Fault::Reset | Fault::Blackhole | Fault::Bandwidth
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nemesis {
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Mean seconds between the end of one fault and the start of the next (each gap is drawn
    /// uniformly from half to one and a half times this, from the seed).
    #[serde(default = "default_interval")]
    pub interval_s: f64,
    /// How long a fault lasts.
    #[serde(default = "default_down")]
    pub down_s: f64,
    /// `random` (a broker drawn from the seed each time), `leader` / `leader:P` (the current leader of
    /// partition P, 0 by default), `follower` / `follower:P`, `controller`, or a node name (`n1`).
    #[serde(default = "default_target")]
    pub target: String,
    /// Link faults: which connections through the target's proxy they hit — `all`, `clients`
    /// (client processes → the broker) or `brokers` (the other brokers → the broker).
    #[serde(default)]
    pub links: Links,
    /// `delay`: milliseconds each chunk is held, plus a uniform draw of up to `jitter_ms`.
    #[serde(default = "default_delay_ms")]
    pub delay_ms: u64,
    #[serde(default)]
    pub jitter_ms: u64,
    /// `bandwidth`: bytes per second per direction of each connection.
    #[serde(default = "default_bandwidth")]
    pub bandwidth_bytes_per_s: u64,
    /// `reset`: milliseconds between two resets while the fault lasts.
    #[serde(default = "default_reset_interval_ms")]
    pub reset_interval_ms: u64,
    /// The steps of the `sequence` fault (`[[nemesis.sequence]]`), in order.
    #[serde(default)]
    pub sequence: Vec<Step>,
}

/// One step of a `sequence` fault: `{ step = "kill", target = "follower" }`,
/// `{ step = "restart", target = "step:1" }` (the node step 1 hit), `{ step = "wait_ms", ms = 1500 }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub step: StepKind,
    /// Whom it hits (any node target of the nemesis, or `step:K` for the node of step K); not for
    /// `wait_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `wait_ms`: how long to wait before the next step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// SIGKILL; the node stays down until a `restart` step or the end of the run.
    Kill,
    /// SIGSTOP; the node stays paused until a `resume` step or the end of the run.
    Pause,
    /// SIGCONT a node paused by an earlier step.
    Resume,
    /// Start a node that is down and wait until it answers.
    Restart,
    /// SIGKILL and drop every write not fsynced (lazyfs); down until `restart`.
    PowerLoss,
    /// Wait `ms` milliseconds.
    WaitMs,
    /// Cut the node off from every other node and from the clients (as `partition_node`) until
    /// a `heal` step or the end of the run. Local platform only.
    Isolate,
    /// Lift every partition (no target). Local platform only.
    Heal,
}

impl StepKind {
    /// What a platform must be able to do to run this step.
    pub fn needs(self) -> Capability {
        match self {
            StepKind::Kill
            | StepKind::Pause
            | StepKind::Resume
            | StepKind::Restart
            | StepKind::WaitMs => Capability::ControlNodes,
            StepKind::PowerLoss => Capability::PowerLoss,
            StepKind::Isolate | StepKind::Heal => Capability::IsolateSteps,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            StepKind::Kill => "kill",
            StepKind::Pause => "pause",
            StepKind::Resume => "resume",
            StepKind::Restart => "restart",
            StepKind::PowerLoss => "power_loss",
            StepKind::WaitMs => "wait_ms",
            StepKind::Isolate => "isolate",
            StepKind::Heal => "heal",
        }
    }
}

/// Whom a step hits: a target resolved when the step starts, or the node an earlier step hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepTarget {
    Target(Target),
    /// The node of step K (1-based, an earlier step).
    SameAs(usize),
}

/// A validated step: what it does, whom, or how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedStep {
    Fault {
        kind: StepKind,
        target: StepTarget,
    },
    Wait {
        ms: u64,
    },
    /// Lift every partition.
    Heal,
}

impl Nemesis {
    /// The sequence's steps checked: known targets, references to earlier steps that hit a
    /// node, `ms` only (and always) on `wait_ms`. Errors name the step (1-based).
    pub fn planned_sequence(&self) -> Result<Vec<PlannedStep>, String> {
        let mut planned = Vec::with_capacity(self.sequence.len());
        for (i, step) in self.sequence.iter().enumerate() {
            let k = i + 1;
            let at = |m: String| format!("nemesis.sequence step {k} ({}): {m}", step.step.name());
            if step.step == StepKind::WaitMs {
                if step.target.is_some() {
                    return Err(at("wait_ms takes `ms`, not a target".into()));
                }
                let ms = step.ms.ok_or_else(|| at("needs `ms`".into()))?;
                if ms > SEQUENCE_WAIT_MS_MAX {
                    return Err(at(format!("ms {ms} is more than {SEQUENCE_WAIT_MS_MAX}")));
                }
                planned.push(PlannedStep::Wait { ms });
                continue;
            }
            if step.step == StepKind::Heal {
                if step.target.is_some() || step.ms.is_some() {
                    return Err(at(
                        "heal lifts every partition: it takes no target and no `ms`".into(),
                    ));
                }
                planned.push(PlannedStep::Heal);
                continue;
            }
            if step.ms.is_some() {
                return Err(at(
                    "`ms` belongs to wait_ms steps (add a { step = \"wait_ms\", ms = … } step)"
                        .into(),
                ));
            }
            let text = step
                .target
                .as_deref()
                .ok_or_else(|| at("needs a target".into()))?;
            let target = match text.strip_prefix("step:") {
                Some(j) => {
                    let j: usize = j.parse().map_err(|_| {
                        at(format!(
                            "{text:?}: the step number after 'step:' must be a number"
                        ))
                    })?;
                    if j == 0 || j >= k {
                        return Err(at(format!(
                            "{text:?} must name an earlier step (1..{})",
                            k - 1
                        )));
                    }
                    if !matches!(planned[j - 1], PlannedStep::Fault { .. }) {
                        return Err(at(format!(
                            "{text:?} names a {} step, which hits no node",
                            self.sequence[j - 1].step.name()
                        )));
                    }
                    StepTarget::SameAs(j)
                }
                None => match Target::parse(text).map_err(at)? {
                    Target::Client(name) => {
                        return Err(at(format!(
                            "{name:?}: sequence steps act on nodes, not client processes"
                        )))
                    }
                    t => StepTarget::Target(t),
                },
            };
            planned.push(PlannedStep::Fault {
                kind: step.step,
                target,
            });
        }
        Ok(planned)
    }

    /// How long the schedule reserves for one sequence: its waits (the steps themselves take
    /// what they take; a late sequence delays the next fault).
    pub fn sequence_length_s(&self) -> f64 {
        self.sequence
            .iter()
            .filter_map(|s| (s.step == StepKind::WaitMs).then_some(s.ms.unwrap_or(0)))
            .sum::<u64>() as f64
            / 1000.0
    }
}

impl Default for Nemesis {
    fn default() -> Self {
        Nemesis {
            faults: Vec::new(),
            interval_s: default_interval(),
            down_s: default_down(),
            target: default_target(),
            links: Links::All,
            delay_ms: default_delay_ms(),
            jitter_ms: 0,
            bandwidth_bytes_per_s: default_bandwidth(),
            reset_interval_ms: default_reset_interval_ms(),
            sequence: Vec::new(),
        }
    }
}

fn default_delay_ms() -> u64 {
    200
}
fn default_bandwidth() -> u64 {
    64 * 1024
}
fn default_reset_interval_ms() -> u64 {
    500
}

fn default_interval() -> f64 {
    5.0
}
fn default_down() -> f64 {
    1.0
}
fn default_target() -> String {
    "random".into()
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("scenario {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("scenario {path}: {message}")]
    Invalid { path: String, message: String },
}

impl Scenario {
    pub fn load(path: &Path) -> Result<(Scenario, String), ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let scenario = Scenario::parse(&text, &path.display().to_string())?;
        Ok((scenario, text))
    }

    pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        scenario
            .validate()
            .map_err(|message| ScenarioError::Invalid {
                path: origin.to_string(),
                message,
            })?;
        Ok(scenario)
    }

    fn validate(&self) -> Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!("name {:?} must be non-empty letters, digits, '-' or '_' (it names the store directory)", self.name));
        }
        if self.duration_s == 0 || self.duration_s > DURATION_S_MAX {
            return Err(format!("duration_s must be between 1 and {DURATION_S_MAX}"));
        }
        if self.cluster.brokers == 0 || self.cluster.brokers > BROKERS_MAX {
            return Err(format!(
                "cluster.brokers must be between 1 and {BROKERS_MAX}"
            ));
        }
        if self.topic.partitions < 1 {
            return Err("topic.partitions must be at least 1".into());
        }
        if self.topic.replication_factor < 1
            || self.topic.replication_factor as u32 > self.cluster.brokers
        {
            return Err(format!(
                "topic.replication_factor {} must be between 1 and cluster.brokers ({})",
                self.topic.replication_factor, self.cluster.brokers
            ));
        }
        if self.clients.len() > CLIENTS_MAX {
            return Err(format!("at most {CLIENTS_MAX} clients"));
        }
        if !self
            .clients
            .iter()
            .any(|c| matches!(c, Client::Producer { .. }))
        {
            return Err("the scenario has no producer ([[clients]] kind = \"producer\"): a run without one writes nothing, so it verifies nothing".into());
        }
        self.check_client_configs()?;
        for client in &self.clients {
            if let Client::Producer {
                message_size_bytes, ..
            } = client
            {
                let range = workloads::limits::MESSAGE_SIZE_MIN_BYTES
                    ..=workloads::limits::MESSAGE_SIZE_MAX_BYTES;
                if !range.contains(message_size_bytes) {
                    return Err(format!(
                        "producer message_size_bytes {message_size_bytes} is outside {range:?}"
                    ));
                }
            }
            if let Client::Consumer {
                processing: Some(p),
                ..
            } = client
            {
                p.validate()
                    .map_err(|e| format!("consumer processing: {e}"))?;
            }
        }
        let n = &self.nemesis;
        let steps = n.planned_sequence()?;
        if n.faults.contains(&Fault::Sequence) && steps.is_empty() {
            return Err("the sequence fault needs steps: [[nemesis.sequence]] tables such as { step = \"kill\", target = \"leader\" }".into());
        }
        if !steps.is_empty() && !n.faults.contains(&Fault::Sequence) {
            return Err(
                "nemesis.sequence has steps but nemesis.faults has no \"sequence\" to run them"
                    .into(),
            );
        }
        if steps.len() > SEQUENCE_STEPS_MAX {
            return Err(format!(
                "nemesis.sequence has {} steps; at most {SEQUENCE_STEPS_MAX}",
                steps.len()
            ));
        }
        if self.platform == PlatformKind::Docker {
            if let Some(f) = n
                .faults
                .iter()
                .find(|f| !platform::can(PlatformKind::Docker, f.needs()))
            {
                let name = serde_json::to_value(f)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default();
                return Err(format!("the {name} fault is not available on the docker platform; run this scenario with platform = \"local\""));
            }
            if let Some((k, kind)) = n
                .sequence
                .iter()
                .enumerate()
                .find(|(_, s)| !platform::can(PlatformKind::Docker, s.step.needs()))
                .map(|(k, s)| (k + 1, s.step))
            {
                return Err(format!("nemesis.sequence step {k}: the {} step is not available on the docker platform; run this scenario with platform = \"local\"", kind.name()));
            }
        }
        match (&self.platform, &self.bootstrap) {
            (PlatformKind::External, None) => return Err("platform = \"external\" needs bootstrap = \"host:port[,host:port…]\" (or kaos run --bootstrap)".into()),
            (PlatformKind::External, Some(b)) => {
                for addr in b.split(',') {
                    let (host, port) = addr.trim().rsplit_once(':').unwrap_or_default();
                    if host.is_empty() || port.parse::<u16>().is_err() {
                        return Err(format!("bootstrap {addr:?} is not host:port"));
                    }
                }
                if let Some(f) = n.faults.iter().find(|f| !platform::can(PlatformKind::External, f.needs())) {
                    let name = serde_json::to_value(f).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
                    return Err(format!("the {name} fault is not available on the external platform: kaos does not control an external cluster's nodes (it can kill and pause the scenario's own client processes, target = \"producer-N\" or \"consumer-N\"); run this scenario on platform local or docker"));
                }
                if let Some(t) = Target::parse_list(&n.target).unwrap_or_default().into_iter().find(|t| !matches!(t, Target::Client(_))) {
                    if !n.faults.is_empty() {
                        return Err(format!("nemesis.target {t:?}: on the external platform faults can only target the scenario's own client processes (producer-N, consumer-N): kaos does not control the cluster's nodes"));
                    }
                }
            }
            (_, Some(_)) => return Err("bootstrap is only for platform = \"external\" (the other platforms start their own nodes)".into()),
            (_, None) => {}
        }
        if n.faults.contains(&Fault::DropCaches) {
            crate::faults::drop_caches_available()?;
        }
        if self.uses_lazyfs() {
            crate::lazyfs::check_available()
                .map_err(|e| format!("the power_loss fault needs the lazyfs file system: {e}"))?;
            if n.faults.contains(&Fault::PowerLoss)
                && Target::parse_list(&n.target)
                    .is_ok_and(|t| t.contains(&Target::Node("controller".into())))
            {
                return Err(
                    "power_loss targets brokers; the controller's data directory is not on lazyfs"
                        .into(),
                );
            }
            for (k, step) in steps.iter().enumerate() {
                if let PlannedStep::Fault {
                    kind: StepKind::PowerLoss,
                    target,
                } = step
                {
                    if base_target(&steps, target) == Some(&Target::Node("controller".into())) {
                        return Err(format!("nemesis.sequence step {}: power_loss targets brokers; the controller's data directory is not on lazyfs", k + 1));
                    }
                }
            }
        }
        if self.uses_network() {
            match self.platform {
                PlatformKind::Local => crate::netns::check_available()
                    .map_err(|e| format!("the partition and link faults: {e}"))?,
                PlatformKind::Docker if n.faults.iter().any(Fault::is_partition) => {
                    crate::platform::docker::partitions_available()?
                }
                PlatformKind::Docker | PlatformKind::External => {}
            }
            let top_level = n
                .faults
                .iter()
                .any(|f| f.is_partition() || f.is_link_fault());
            for target in Target::parse_list(&n.target)
                .unwrap_or_default()
                .into_iter()
                .filter(|_| top_level)
            {
                if matches!(target, Target::Client(_)) {
                    return Err("nemesis.target: partitions and link faults target nodes, not client processes".into());
                }
                if self.uses_proxies()
                    && matches!(target, Target::Node(ref name) if name == "controller")
                {
                    return Err("nemesis.target: link faults act on a broker's proxy; the controller has none".into());
                }
            }
            let nodes = self.cluster.brokers as usize + usize::from(self.cluster.has_controller());
            if n.faults
                .iter()
                .any(|f| matches!(f, Fault::PartitionNode | Fault::PartitionHalves))
                && nodes < 2
            {
                return Err("partition_node and partition_halves need at least two nodes".into());
            }
            if n.sequence.iter().any(|s| s.step == StepKind::Isolate) && nodes < 2 {
                return Err("an isolate step needs at least two nodes".into());
            }
            if n.faults.contains(&Fault::Bandwidth) && n.bandwidth_bytes_per_s == 0 {
                return Err("nemesis.bandwidth_bytes_per_s must be positive".into());
            }
            if n.faults.contains(&Fault::Reset) && n.reset_interval_ms == 0 {
                return Err("nemesis.reset_interval_ms must be positive".into());
            }
        }
        if !n.faults.is_empty() {
            if !(n.interval_s > 0.0 && n.interval_s.is_finite())
                || !(n.down_s > 0.0 && n.down_s.is_finite())
            {
                return Err(
                    "nemesis.interval_s and nemesis.down_s must be positive numbers".into(),
                );
            }
        }
        if n.faults.iter().any(|f| *f != Fault::Sequence) {
            for target in
                Target::parse_list(&n.target).map_err(|e| format!("nemesis.target {e}"))?
            {
                if let Target::Client(name) = &target {
                    let (kind, k) = name.split_once('-').unwrap_or_default();
                    let count = self
                        .clients
                        .iter()
                        .filter(|c| {
                            matches!(
                                (c, kind),
                                (Client::Producer { .. }, "producer")
                                    | (Client::Consumer { .. }, "consumer")
                            )
                        })
                        .count();
                    if !k.parse::<usize>().is_ok_and(|k| (1..=count).contains(&k)) {
                        return Err(format!(
                            "nemesis.target {name:?}: the scenario has {count} {kind}(s)"
                        ));
                    }
                    if let Some(f) = n
                        .faults
                        .iter()
                        .find(|f| !matches!(f, Fault::Kill | Fault::Pause))
                    {
                        return Err(format!(
                            "nemesis.target {name:?}: a client can be killed or paused, not {f:?}"
                        ));
                    }
                    continue;
                }
                self.check_node_target(&target, "nemesis.target")?;
            }
        }
        for (k, step) in steps.iter().enumerate() {
            if let PlannedStep::Fault {
                target: StepTarget::Target(target),
                ..
            } = step
            {
                self.check_node_target(target, &format!("nemesis.sequence step {}", k + 1))?;
            }
        }
        for name in self.cluster.node_settings.keys() {
            if !name.starts_with('n') || self.node_index(name).is_none() {
                return Err(format!(
                    "cluster.node_settings.{name}: no such broker (n1..n{})",
                    self.cluster.brokers
                ));
            }
        }
        if self.cluster.controller == Some(false) && self.cluster.brokers > 1 {
            return Err("cluster.controller = false needs brokers = 1 (a cluster of several brokers needs a controller)".into());
        }
        Ok(())
    }

    /// Every client's librdkafka properties, as librdkafka itself judges them (it builds each
    /// client without connecting): a refused property names the client and librdkafka's reason.
    fn check_client_configs(&self) -> Result<(), String> {
        let (mut np, mut nc) = (0, 0);
        for client in &self.clients {
            let (name, config, consumer) = match client {
                Client::Producer { config, .. } => {
                    np += 1;
                    (format!("producer-{np}"), config, false)
                }
                Client::Consumer { config, .. } => {
                    nc += 1;
                    (format!("consumer-{nc}"), config, true)
                }
            };
            workloads::check_client_config(config, consumer)
                .map_err(|e| format!("client {name}: librdkafka refuses its config: {e}"))?;
        }
        Ok(())
    }

    /// Whether a node target names something this scenario has; `what` says where it was written.
    fn check_node_target(&self, target: &Target, what: &str) -> Result<(), String> {
        match target {
            Target::Node(name) if self.node_index(name).is_none() => Err(format!(
                "{what} {name:?} is not a node of this cluster (n1..n{}{})",
                self.cluster.brokers,
                if self.cluster.has_controller() { ", controller" } else { "" }
            )),
            Target::Leader(p) | Target::Follower(p) if *p < 0 || *p >= self.topic.partitions => {
                Err(format!("{what}: partition {p} is not in the topic, which has partitions 0..{}", self.topic.partitions - 1))
            }
            Target::Follower(_) if self.topic.replication_factor < 2 => Err(format!("{what}: follower needs topic.replication_factor of at least 2")),
            Target::Coordinator if self.consumer_group().is_none() => {
                Err(format!("{what}: coordinator needs a consumer group (a consumer with subscribe or processing)"))
            }
            _ => Ok(()),
        }
    }

    /// The consumer group of the scenario's consumers (the first one that joins a group): its
    /// `group.id`, else `kaos-<name>`.
    pub fn consumer_group(&self) -> Option<String> {
        self.clients.iter().find_map(|c| match c {
            Client::Consumer {
                subscribe,
                processing,
                config,
            } if *subscribe || processing.is_some() => Some(
                config
                    .get("group.id")
                    .cloned()
                    .unwrap_or_else(|| format!("kaos-{}", self.name)),
            ),
            _ => None,
        })
    }

    /// Whether the brokers' data directories are served by lazyfs (any power_loss fault), on
    /// either platform.
    pub fn uses_lazyfs(&self) -> bool {
        let n = &self.nemesis;
        n.faults.contains(&Fault::PowerLoss)
            || (n.faults.contains(&Fault::Sequence)
                && n.sequence.iter().any(|s| s.step == StepKind::PowerLoss))
    }

    /// Whether the nodes run in network namespaces (any partition or link fault).
    pub fn uses_network(&self) -> bool {
        let n = &self.nemesis;
        n.faults
            .iter()
            .any(|f| f.is_partition() || f.is_link_fault())
            || (n.faults.contains(&Fault::Sequence)
                && n.sequence
                    .iter()
                    .any(|s| matches!(s.step, StepKind::Isolate | StepKind::Heal)))
    }

    /// Whether each broker gets a proxy in front of it (any link fault).
    pub fn uses_proxies(&self) -> bool {
        self.nemesis.faults.iter().any(Fault::is_link_fault)
    }

    /// The index of node `name` in the platform: `n1` is 0, …, the controller comes last.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        if name == "controller" {
            return self
                .cluster
                .has_controller()
                .then_some(self.cluster.brokers as usize);
        }
        let k: u32 = name.strip_prefix('n')?.parse().ok()?;
        (1..=self.cluster.brokers)
            .contains(&k)
            .then(|| (k - 1) as usize)
    }

    /// The scenario as readable rows (dotted keys) for the report.
    pub fn settings_rows(&self) -> Vec<(String, String)> {
        let mut rows = Vec::new();
        if let Ok(value) = toml::Value::try_from(self) {
            flatten("", &value, &mut rows);
        }
        rows
    }
}

/// The target a step finally names, following `step:K` references back (None for a wait).
fn base_target<'a>(steps: &'a [PlannedStep], target: &'a StepTarget) -> Option<&'a Target> {
    let mut target = target;
    for _ in 0..=steps.len() {
        match target {
            StepTarget::Target(t) => return Some(t),
            StepTarget::SameAs(j) => match steps.get(j - 1)? {
                PlannedStep::Fault { target: t, .. } => target = t,
                PlannedStep::Wait { .. } | PlannedStep::Heal => return None,
            },
        }
    }
    None
}

fn flatten(prefix: &str, value: &toml::Value, rows: &mut Vec<(String, String)>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if k.contains('.') {
                    format!("\"{k}\"")
                } else {
                    k.clone()
                };
                flatten(&join(&key), v, rows);
            }
        }
        toml::Value::Array(items) if items.iter().any(|v| v.is_table()) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, rows);
            }
        }
        toml::Value::String(s) => rows.push((prefix.to_string(), s.clone())),
        other => rows.push((prefix.to_string(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
duration_s = 5
seed = 3
[cluster]
brokers = 1
settings = { "flush.messages" = 1 }
[topic]
name = "kaos"
partitions = 2
[[clients]]
kind = "producer"
rate_per_s = 100
config = { acks = "all" }
[[clients]]
kind = "consumer"
[nemesis]
faults = ["kill"]
[expect]
lost = "forbidden"
"#;

    #[test]
    fn parses_a_scenario() {
        let s = Scenario::parse(GOOD, "good").expect("valid");
        assert_eq!(s.clients.len(), 2);
        assert_eq!(s.topic.replication_factor, 1);
        let rows = s.settings_rows();
        assert!(
            rows.iter()
                .any(|(k, v)| k == "clients[0].config.acks" && v == "all"),
            "{rows:?}"
        );
        assert!(
            rows.iter()
                .any(|(k, v)| k == "cluster.settings.\"flush.messages\"" && v == "1"),
            "{rows:?}"
        );
    }

    #[test]
    fn an_external_cluster_takes_client_faults_only() {
        let text = GOOD
            .replace(
                "seed = 3",
                "seed = 3\nplatform = \"external\"\nbootstrap = \"10.0.0.1:9092, kafka:9093\"",
            )
            .replace(
                "faults = [\"kill\"]",
                "faults = [\"kill\", \"pause\"]\ntarget = \"producer-1,consumer-1\"",
            );
        let s = Scenario::parse(&text, "external")
            .expect("client faults on an external cluster are valid");
        assert_eq!(s.platform, PlatformKind::External);
        assert_eq!(s.bootstrap.as_deref(), Some("10.0.0.1:9092, kafka:9093"));
        let node = text.replace(
            "target = \"producer-1,consumer-1\"",
            "target = \"producer-1,n1\"",
        );
        let err = Scenario::parse(&node, "external")
            .expect_err("a node target")
            .to_string();
        assert!(
            err.contains("does not control the cluster's nodes"),
            "{err}"
        );
    }

    #[test]
    fn refuses_broken_scenarios_with_the_reason() {
        let cases = [
            (
                GOOD.replace("duration_s = 5", "duration_s = 0"),
                "duration_s",
            ),
            (
                GOOD.replace("brokers = 1", "brokers = 0"),
                "cluster.brokers",
            ),
            (
                GOOD.replace("partitions = 2", "partitions = 2\nreplication_factor = 3"),
                "replication_factor",
            ),
            (
                GOOD.replace(
                    "faults = [\"kill\"]",
                    "faults = [\"kill\"]\ntarget = \"n7\"",
                ),
                "nemesis.target",
            ),
            (
                GOOD.replace(
                    "faults = [\"kill\"]",
                    "faults = [\"kill\"]\ntarget = \"controller\"",
                ),
                "not a node",
            ),
            (
                GOOD.replace(
                    "faults = [\"kill\"]",
                    "faults = [\"kill\"]\ntarget = \"leader:9\"",
                ),
                "partitions 0..1",
            ),
            (
                GOOD.replace(
                    "faults = [\"kill\"]",
                    "faults = [\"kill\"]\ntarget = \"follower\"",
                ),
                "replication_factor",
            ),
            (
                GOOD.replace(
                    "faults = [\"kill\"]",
                    "faults = [\"kill\"]\ntarget = \"boss\"",
                ),
                "not a target",
            ),
            (
                GOOD.replace("settings = {", "node_settings = { n4 = {} }\nsettings = {"),
                "node_settings.n4",
            ),
            (
                GOOD.replace("kind = \"consumer\"", "kind = \"consumer\"\ncolour = 1"),
                "colour",
            ),
            (
                GOOD.replace("faults = [\"kill\"]", "faults = [\"explode\"]"),
                "explode",
            ),
            (
                GOOD.replace("faults = [\"kill\"]", "faults = [\"partition_node\"]"),
                "at least two nodes",
            ),
            (
                GOOD.replace("brokers = 1", "brokers = 2").replace(
                    "faults = [\"kill\"]",
                    "faults = [\"delay\"]\ntarget = \"controller\"",
                ),
                "the controller has none",
            ),
            (
                GOOD.replace(
                    "faults = [\"kill\"]",
                    "faults = [\"reset\"]\ntarget = \"producer-1\"",
                ),
                "not client processes",
            ),
            (
                GOOD.replace(
                    "faults = [\"kill\"]",
                    "faults = [\"bandwidth\"]\nbandwidth_bytes_per_s = 0",
                ),
                "bandwidth_bytes_per_s",
            ),
            (
                GOOD.replace(
                    "faults = [\"kill\"]",
                    "faults = [\"delay\"]\nlinks = \"sideways\"",
                ),
                "sideways",
            ),
            (
                GOOD.replace("lost = \"forbidden\"", "lost = \"maybe\""),
                "maybe",
            ),
            (
                GOOD.replace("seed = 3", "seed = 3\nplatform = \"vm\""),
                "vm",
            ),
            (
                GOOD.replace("seed = 3", "seed = 3\nplatform = \"external\""),
                "needs bootstrap",
            ),
            (
                GOOD.replace(
                    "seed = 3",
                    "seed = 3\nplatform = \"external\"\nbootstrap = \"h:1\"",
                ),
                "nemesis.target Random",
            ),
            (
                GOOD.replace(
                    "seed = 3",
                    "seed = 3\nplatform = \"external\"\nbootstrap = \"h:1\"",
                )
                .replace("[\"kill\"]", "[\"power_loss\"]"),
                "power_loss fault is not available on the external platform",
            ),
            (
                GOOD.replace(
                    "seed = 3",
                    "seed = 3\nplatform = \"external\"\nbootstrap = \"h\"",
                ),
                "not host:port",
            ),
            (
                GOOD.replace("seed = 3", "seed = 3\nbootstrap = \"h:1\""),
                "only for platform = \"external\"",
            ),
            ("name = ".to_string(), "not valid"),
            (
                GOOD.replace("faults = [\"kill\"]", "faults = [\"sequence\"]"),
                "the sequence fault needs steps",
            ),
            (
                GOOD.replace(
                    "[expect]",
                    "[[nemesis.sequence]]\nstep = \"kill\"\ntarget = \"n1\"\n[expect]",
                ),
                "faults has no \"sequence\"",
            ),
        ];
        for (text, needle) in cases {
            let err = Scenario::parse(&text, "case")
                .expect_err(needle)
                .to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    /// GOOD with two brokers, RF 2, the sequence fault and these `[[nemesis.sequence]]` tables.
    fn with_steps(steps: &str) -> String {
        GOOD.replace("brokers = 1", "brokers = 2")
            .replace("partitions = 2", "partitions = 2\nreplication_factor = 2")
            .replace("faults = [\"kill\"]", "faults = [\"sequence\"]")
            .replace("[expect]", &format!("{steps}\n[expect]"))
    }

    const KIP101: &str = r#"
[[nemesis.sequence]]
step = "kill"
target = "follower"
[[nemesis.sequence]]
step = "pause"
target = "leader"
[[nemesis.sequence]]
step = "restart"
target = "step:1"
[[nemesis.sequence]]
step = "wait_ms"
ms = 1500
[[nemesis.sequence]]
step = "kill"
target = "step:2"
[[nemesis.sequence]]
step = "resume"
target = "n2"
"#;

    #[test]
    fn a_sequence_parses_into_its_steps() {
        let s = Scenario::parse(&with_steps(KIP101), "kip101").expect("valid");
        let planned = s.nemesis.planned_sequence().expect("steps");
        assert_eq!(
            planned,
            vec![
                PlannedStep::Fault {
                    kind: StepKind::Kill,
                    target: StepTarget::Target(Target::Follower(0))
                },
                PlannedStep::Fault {
                    kind: StepKind::Pause,
                    target: StepTarget::Target(Target::Leader(0))
                },
                PlannedStep::Fault {
                    kind: StepKind::Restart,
                    target: StepTarget::SameAs(1)
                },
                PlannedStep::Wait { ms: 1500 },
                PlannedStep::Fault {
                    kind: StepKind::Kill,
                    target: StepTarget::SameAs(2)
                },
                PlannedStep::Fault {
                    kind: StepKind::Resume,
                    target: StepTarget::Target(Target::Node("n2".into()))
                },
            ]
        );
        assert!((s.nemesis.sequence_length_s() - 1.5).abs() < 1e-9);
        assert!(!s.uses_lazyfs(), "no power_loss step");
        let rows = s.settings_rows();
        assert!(
            rows.iter()
                .any(|(k, v)| k == "nemesis.sequence[2].target" && v == "step:1"),
            "{rows:?}"
        );
        // On docker too: every step kind is one the platform can do.
        let docker = with_steps(KIP101).replace("seed = 3", "seed = 3\nplatform = \"docker\"");
        Scenario::parse(&docker, "docker").expect("docker runs kill, pause, restart, resume");
        assert!(!s.uses_network());
        let split = with_steps("[[nemesis.sequence]]\nstep = \"isolate\"\ntarget = \"leader\"\n[[nemesis.sequence]]\nstep = \"kill\"\ntarget = \"step:1\"\n[[nemesis.sequence]]\nstep = \"heal\"");
        // (Network steps need root, ip and nft, as the partition faults.)
        let s = Scenario::parse(&split, "split").expect("valid");
        assert!(
            s.uses_network(),
            "an isolate step puts the nodes in namespaces"
        );
        assert_eq!(
            s.nemesis.planned_sequence().expect("steps").last(),
            Some(&PlannedStep::Heal)
        );
    }

    #[test]
    fn broken_sequences_are_refused_with_the_step_at_fault() {
        let step = |body: &str| {
            with_steps(&format!("[[nemesis.sequence]]\nstep = \"kill\"\ntarget = \"n1\"\n[[nemesis.sequence]]\n{body}"))
        };
        let cases = [
            (step("step = \"explode\"\ntarget = \"n1\""), "explode"),
            (step("step = \"restart\"\ntarget = \"step:2\""), "step 2 (restart): \"step:2\" must name an earlier step (1..1)"),
            (step("step = \"restart\"\ntarget = \"step:0\""), "must name an earlier step"),
            (step("step = \"restart\"\ntarget = \"step:x\""), "the step number after 'step:' must be a number"),
            (step("step = \"restart\""), "step 2 (restart): needs a target"),
            (step("step = \"wait_ms\""), "step 2 (wait_ms): needs `ms`"),
            (step("step = \"wait_ms\"\nms = 5\ntarget = \"n1\""), "wait_ms takes `ms`, not a target"),
            (step("step = \"pause\"\ntarget = \"n1\"\nms = 5"), "`ms` belongs to wait_ms steps"),
            (step("step = \"wait_ms\"\nms = 5\n[[nemesis.sequence]]\nstep = \"restart\"\ntarget = \"step:2\""), "names a wait_ms step"),
            (step("step = \"pause\"\ntarget = \"n3\""), "nemesis.sequence step 2 \"n3\" is not a node"),
            (step("step = \"pause\"\ntarget = \"leader:5\""), "nemesis.sequence step 2: partition 5 is not in the topic"),
            (step("step = \"pause\"\ntarget = \"producer-1\""), "act on nodes, not client processes"),
            (step("step = \"pause\"\ntarget = \"boss\""), "not a target"),
            (step("step = \"pause\"\ntarget = \"coordinator\""), "coordinator needs a consumer group"),
            (step("step = \"pause\"\ntarget = \"n1\"\ncolour = 1"), "colour"),
            (step("step = \"heal\"\ntarget = \"n1\""), "step 2 (heal): heal lifts every partition: it takes no target"),
            (step("step = \"heal\"\n[[nemesis.sequence]]\nstep = \"restart\"\ntarget = \"step:2\""), "names a heal step, which hits no node"),
            (step("step = \"isolate\"\ntarget = \"n1\"").replace("seed = 3", "seed = 3\nplatform = \"docker\""), "nemesis.sequence step 2: the isolate step is not available on the docker platform"),
            (with_steps("[[nemesis.sequence]]\nstep = \"kill\"\ntarget = \"follower\"").replace("replication_factor = 2", "replication_factor = 1"), "follower needs topic.replication_factor"),
        ];
        for (text, needle) in cases {
            let err = Scenario::parse(&text, "case")
                .expect_err(needle)
                .to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
        let many =
            "[[nemesis.sequence]]\nstep = \"wait_ms\"\nms = 1\n".repeat(SEQUENCE_STEPS_MAX + 1);
        let err = Scenario::parse(&with_steps(&many), "many")
            .expect_err("too many")
            .to_string();
        assert!(
            err.contains(&format!("at most {SEQUENCE_STEPS_MAX}")),
            "{err}"
        );
    }
}
