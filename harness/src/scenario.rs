//! Scenario files (TOML): the cluster, the topic, the client processes, the nemesis schedule, the
//! duration and seed, and the expected outcome. A broken file is refused at load with the key and
//! line at fault, never mid-run.

pub use crate::cluster::{Cluster, PlatformKind};
use crate::fault;
pub use crate::fault::{Fault, Nemesis, PlannedStep, Step, StepKind, StepTarget, Target};
use crate::limits::{BROKERS_MAX, CLIENTS_MAX, DURATION_S_MAX};
use checkers::Expectations;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use workloads::{OnFull, Processing, ProducerMode, TxnSettings};

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
    /// The broker profile the nodes run (a built-in name: `kaos-broker`, the default, `tansu`, …;
    /// `kaos run --broker` overrides it). See [`crate::profile`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<String>,
    /// A profile file of the user's own, relative to the scenario file (instead of `broker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_profile: Option<String>,
    pub cluster: Cluster,
    pub topic: Topic,
    #[serde(default)]
    pub clients: Vec<Client>,
    #[serde(default)]
    pub nemesis: Nemesis,
    #[serde(default)]
    pub expect: Expectations,
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
        /// `mode = "transactional"`: sends per transaction, the fraction aborted, polls.
        #[serde(default)]
        transaction: Option<TxnSettings>,
        /// A key space for a compacted topic (modes sync and async): message `id` gets the
        /// record key `k<id % keys>`; 0 (the default) writes keyless records.
        #[serde(default)]
        keys: u64,
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
        /// A consume-transform-produce application: what it reads from the topic it writes to
        /// the output topic (`<topic>-output`, created with the topic's partitions and
        /// replication factor), exactly once with transactions or at least once without.
        #[serde(default)]
        pipeline: Option<Pipeline>,
    },
}

/// A consume-transform-produce client (`crate::scenario::Client::Consumer`'s `pipeline`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// `true`: outputs and input offsets in one transaction (KIP-98, `send_offsets_to_transaction`);
    /// `false`: produce, wait for the deliveries, then commit the input offsets.
    pub transactional: bool,
    /// The producer's librdkafka properties (the consumer's are the client's `config`); a
    /// transactional pipeline gets `transactional.id = kaos-<scenario>-consumer-N` unless set.
    #[serde(default)]
    pub producer: BTreeMap<String, String>,
    #[serde(default = "default_message_size")]
    pub message_size_bytes: usize,
    /// Transactional: the fraction of transactions aborted by choice (after the outputs and the
    /// offsets were sent), the batch then read again.
    #[serde(default)]
    pub abort_fraction: f64,
    /// Transactional: the timeout given to `send_offsets_to_transaction` in ms (0, the default:
    /// 10 s); a call not returned after twice this is left behind, the transaction failed
    /// (`SendOffsetsHung`), and a new producer fences the old one.
    #[serde(default)]
    pub send_offsets_timeout_ms: u64,
}

impl Pipeline {
    /// The client's spec, writing to `output_topic`.
    pub fn spec(&self, output_topic: String) -> workloads::PipelineSpec {
        workloads::PipelineSpec {
            output_topic,
            transactional: self.transactional,
            producer_config: self.producer.clone(),
            message_size_bytes: self.message_size_bytes,
            abort_fraction: self.abort_fraction,
            send_offsets_timeout_ms: self.send_offsets_timeout_ms,
        }
    }
}

fn default_message_size() -> usize {
    100
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

    /// The scenario checked in named steps, each error saying what to change.
    fn validate(&self) -> Result<(), String> {
        self.check_basics()?;
        self.check_clients()?;
        let steps = self.nemesis.planned_sequence()?;
        let context = fault::check::Context {
            platform: self.platform,
            nodes: self.cluster.brokers as usize + usize::from(self.cluster.has_controller()),
        };
        fault::check::nemesis(&self.nemesis, &steps, &context)?;
        self.check_external()?;
        self.check_targets(&steps)?;
        self.check_cluster()
    }

    /// The name, the duration, the cluster's and the topic's sizes.
    fn check_basics(&self) -> Result<(), String> {
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
        if self.broker.is_some() && self.broker_profile.is_some() {
            return Err("broker and broker_profile both name a profile: keep one".into());
        }
        if self.topic.replication_factor < 1
            || self.topic.replication_factor as u32 > self.cluster.brokers
        {
            return Err(format!(
                "topic.replication_factor {} must be between 1 and cluster.brokers ({})",
                self.topic.replication_factor, self.cluster.brokers
            ));
        }
        Ok(())
    }

    /// How many clients, a producer among them, and each client's settings.
    fn check_clients(&self) -> Result<(), String> {
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
        let key_spaces: std::collections::BTreeSet<u64> = self
            .clients
            .iter()
            .filter_map(|c| match c {
                Client::Producer { keys, .. } => Some(*keys),
                Client::Consumer { .. } => None,
            })
            .collect();
        if key_spaces.len() > 1 {
            return Err(format!(
                "the producers' keys differ ({key_spaces:?}): the checker reads one key space for a compacted topic"
            ));
        }
        for client in &self.clients {
            if let Client::Producer {
                message_size_bytes,
                mode,
                transaction,
                keys,
                ..
            } = client
            {
                if *keys > 0 && !matches!(mode, ProducerMode::Sync | ProducerMode::Async) {
                    return Err(format!(
                        "producer keys = {keys} needs mode \"sync\" or \"async\" (mode {mode:?} writes keyless records)"
                    ));
                }
                match (mode, transaction) {
                    (ProducerMode::Transactional, Some(t)) => t
                        .validate()
                        .map_err(|e| format!("producer transaction: {e}"))?,
                    (ProducerMode::Transactional, None) => {}
                    (_, Some(_)) => {
                        return Err(
                            "a producer's transaction table needs mode = \"transactional\"".into(),
                        )
                    }
                    (_, None) => {}
                }
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
            if let Client::Consumer {
                pipeline: Some(p),
                processing,
                subscribe,
                ..
            } = client
            {
                if processing.is_some() || *subscribe {
                    return Err("a consumer with a pipeline has neither processing nor subscribe (it assigns every partition and writes to the output topic)".into());
                }
                let range = workloads::limits::MESSAGE_SIZE_MIN_BYTES
                    ..=workloads::limits::MESSAGE_SIZE_MAX_BYTES;
                if !range.contains(&p.message_size_bytes) {
                    return Err(format!(
                        "consumer pipeline message_size_bytes {} is outside {range:?}",
                        p.message_size_bytes
                    ));
                }
                p.spec(String::new()).validate()?;
                workloads::check_client_config(&p.producer, false).map_err(|e| {
                    format!("consumer pipeline producer: librdkafka refuses its config: {e}")
                })?;
            }
        }
        Ok(())
    }

    /// Every topic the run creates and the final read reads: the topic, then the output topic.
    pub fn topics(&self) -> Vec<String> {
        std::iter::once(self.topic.name.clone())
            .chain(self.output_topic())
            .collect()
    }

    /// The topic pipelines write to, when the scenario has one: `<topic>-output`.
    pub fn output_topic(&self) -> Option<String> {
        self.clients
            .iter()
            .any(|c| {
                matches!(
                    c,
                    Client::Consumer {
                        pipeline: Some(_),
                        ..
                    }
                )
            })
            .then(|| format!("{}-output", self.topic.name))
    }

    /// `bootstrap` with the external platform only, as host:port addresses, and faults there
    /// only on the scenario's own clients.
    fn check_external(&self) -> Result<(), String> {
        let n = &self.nemesis;
        match (&self.platform, &self.bootstrap) {
            (PlatformKind::External, None) => return Err("platform = \"external\" needs bootstrap = \"host:port[,host:port…]\" (or kaos run --bootstrap)".into()),
            (PlatformKind::External, Some(b)) => {
                for addr in b.split(',') {
                    let (host, port) = addr.trim().rsplit_once(':').unwrap_or_default();
                    if host.is_empty() || port.parse::<u16>().is_err() {
                        return Err(format!("bootstrap {addr:?} is not host:port"));
                    }
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
        Ok(())
    }

    /// Whom the faults hit: clients that exist (and only by kill or pause), nodes and partitions
    /// that exist, a coordinator only with a group.
    fn check_targets(&self, steps: &[PlannedStep]) -> Result<(), String> {
        let n = &self.nemesis;
        if n.trigger_follower_lag_min.is_some() && self.topic.replication_factor < 2 {
            return Err(format!("nemesis.trigger_follower_lag_min waits for a follower to lag: it needs topic.replication_factor of at least 2 (it is {})", self.topic.replication_factor));
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
                    if let Some(f) = n.faults.iter().find(|f| !f.hits_clients()) {
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
        Ok(())
    }

    /// Per-node settings name brokers, which agree on the topic's cleanup policy. (Whether several brokers may run without a controller
    /// process is the broker profile's to say: `Profile::admits`.)
    fn check_cluster(&self) -> Result<(), String> {
        for name in self.cluster.node_settings.keys() {
            if !name.starts_with('n') || self.node_index(name).is_none() {
                return Err(format!(
                    "cluster.node_settings.{name}: no such broker (n1..n{})",
                    self.cluster.brokers
                ));
            }
        }
        self.cluster.cleanup_policy().map(|_| ())
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
            Target::OutputLeader(_) if self.output_topic().is_none() => Err(format!(
                "{what}: output_leader needs a pipeline (a consumer with pipeline = {{…}}), whose output topic it names"
            )),
            Target::Leader(p) | Target::Follower(p) | Target::OutputLeader(p)
                if *p < 0 || *p >= self.topic.partitions =>
            {
                Err(format!("{what}: partition {p} is not in the topic, which has partitions 0..{}", self.topic.partitions - 1))
            }
            Target::Follower(_) if self.topic.replication_factor < 2 => Err(format!("{what}: follower needs topic.replication_factor of at least 2")),
            Target::TxnCoordinator if self.transactional_id().is_none() => {
                Err(format!("{what}: txn_coordinator needs a transactional client (a transactional pipeline or producer)"))
            }
            Target::Coordinator if self.consumer_group().is_none() => {
                Err(format!("{what}: coordinator needs a consumer group (a consumer with subscribe or processing)"))
            }
            _ => Ok(()),
        }
    }

    /// The `transactional.id` of the scenario's first transactional pipeline, else of its first
    /// transactional producer (as the run gives them: `kaos-<scenario>-<client>` unless set).
    pub fn transactional_id(&self) -> Option<String> {
        let (mut np, mut nc) = (0, 0);
        let mut producer = None;
        for client in &self.clients {
            match client {
                Client::Producer { mode, config, .. } => {
                    np += 1;
                    if *mode == ProducerMode::Transactional && producer.is_none() {
                        producer = Some(
                            config
                                .get("transactional.id")
                                .cloned()
                                .unwrap_or_else(|| format!("kaos-{}-producer-{np}", self.name)),
                        );
                    }
                }
                Client::Consumer { pipeline, .. } => {
                    nc += 1;
                    if let Some(p) = pipeline.as_ref().filter(|p| p.transactional) {
                        return Some(
                            p.producer
                                .get("transactional.id")
                                .cloned()
                                .unwrap_or_else(|| format!("kaos-{}-consumer-{nc}", self.name)),
                        );
                    }
                }
            }
        }
        producer
    }

    /// The consumer group of the scenario's consumers (the first one that joins a group): its
    /// `group.id`, else `kaos-<name>`.
    pub fn consumer_group(&self) -> Option<String> {
        self.clients.iter().find_map(|c| match c {
            Client::Consumer {
                subscribe,
                processing,
                config,
                pipeline,
            } if *subscribe || processing.is_some() || pipeline.is_some() => Some(
                config
                    .get("group.id")
                    .cloned()
                    .unwrap_or_else(|| format!("kaos-{}", self.name)),
            ),
            _ => None,
        })
    }

    /// What the scenario needs of its broker profile (checked by [`crate::profile::Profile::admits`]).
    pub fn needs(&self) -> crate::profile::Needs {
        let configs = || {
            self.clients.iter().map(|c| match c {
                Client::Producer { config, .. } | Client::Consumer { config, .. } => config,
            })
        };
        let set = |key: &str, value: Option<&str>| {
            configs().any(|c| {
                c.get(key)
                    .is_some_and(|v| value.is_none_or(|want| v == want))
            })
        };
        let c = &self.cluster;
        let node_keys = c.node_settings.values().flat_map(|t| t.keys());
        crate::profile::Needs {
            brokers: c.brokers,
            controller: c.has_controller(),
            replication_factor: self.topic.replication_factor,
            groups: self.consumer_group().is_some(),
            idempotence: set("enable.idempotence", Some("true")),
            transactions: set("transactional.id", None)
                || self.clients.iter().any(
                    |c| matches!(c, Client::Consumer { pipeline: Some(p), .. } if p.transactional),
                ),
            docker: self.platform == PlatformKind::Docker,
            replica_offsets: self.nemesis.trigger_follower_lag_min.is_some(),
            settings: c.settings.keys().chain(node_keys).cloned().collect(),
        }
    }

    /// Whether the brokers' data directories are served by lazyfs (any power_loss fault), on
    /// either platform.
    pub fn uses_lazyfs(&self) -> bool {
        self.nemesis.setup().lazyfs
    }

    /// Whether the nodes run in network namespaces (any partition or link fault).
    pub fn uses_network(&self) -> bool {
        self.nemesis.setup().network
    }

    /// Whether each broker gets a proxy in front of it (any link fault).
    pub fn uses_proxies(&self) -> bool {
        self.nemesis.setup().proxies
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
    use crate::limits::SEQUENCE_STEPS_MAX;

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
    fn a_pipeline_consumer_gets_an_output_topic_a_group_and_a_transactional_id() {
        let text = GOOD.replace(
            "[[clients]]\nkind = \"consumer\"\n",
            "[[clients]]\nkind = \"consumer\"\npipeline = { transactional = true, abort_fraction = 0.1 }\n",
        );
        let s = Scenario::parse(&text, "pipeline").expect("valid");
        assert_eq!(s.output_topic().as_deref(), Some("kaos-output"));
        assert_eq!(
            s.topics(),
            vec!["kaos".to_string(), "kaos-output".to_string()]
        );
        assert_eq!(s.consumer_group().as_deref(), Some("kaos-t"));
        assert_eq!(s.transactional_id().as_deref(), Some("kaos-t-consumer-1"));
        assert!(s.needs().transactions);
        assert_eq!(
            Scenario::parse(GOOD, "good").expect("valid").topics(),
            vec!["kaos".to_string()]
        );
        for target in ["txn_coordinator", "output_leader:1"] {
            let aimed = text.replace(
                "faults = [\"kill\"]",
                &format!("faults = [\"kill\"]\ntarget = \"{target}\""),
            );
            Scenario::parse(&aimed, "aimed").expect(target);
        }
        let cases = [
            (
                text.replace("abort_fraction = 0.1", "abort_fraction = 1.0"),
                "abort_fraction 1 must be at least 0 and below 1",
            ),
            (
                text.replace("transactional = true", "transactional = false"),
                "abort_fraction needs transactional = true",
            ),
            (
                text.replace("abort_fraction = 0.1", "send_offsets_timeout_ms = 600001"),
                "send_offsets_timeout_ms 600001 is above 600000",
            ),
            (
                text.replace(
                    "transactional = true, abort_fraction = 0.1",
                    "transactional = false, send_offsets_timeout_ms = 2000",
                ),
                "send_offsets_timeout_ms needs transactional = true",
            ),
            (
                text.replace("pipeline = {", "subscribe = true\npipeline = {"),
                "a consumer with a pipeline has neither processing nor subscribe",
            ),
            (
                GOOD.replace(
                    "faults = [\"kill\"]",
                    "faults = [\"kill\"]\ntarget = \"output_leader\"",
                ),
                "output_leader needs a pipeline",
            ),
            (
                GOOD.replace(
                    "faults = [\"kill\"]",
                    "faults = [\"kill\"]\ntarget = \"txn_coordinator\"",
                ),
                "txn_coordinator needs a transactional client",
            ),
        ];
        for (bad, why) in cases {
            let err = Scenario::parse(&bad, "bad").expect_err(why).to_string();
            assert!(err.contains(why), "{err}");
        }
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

    /// `trigger_follower_lag_min`: loaded with a leader or follower target or a sequence, with
    /// followers; refused with `trigger`, a zero lag, a target without a partition, or no
    /// follower, each error naming the key.
    #[test]
    fn the_follower_lag_trigger_is_checked_at_load() {
        let replicated = GOOD
            .replace("brokers = 1", "brokers = 2")
            .replace("partitions = 2", "partitions = 2\nreplication_factor = 2");
        let aimed = |extra: &str| {
            replicated.replace(
                "faults = [\"kill\"]",
                &format!("faults = [\"kill\"]\n{extra}"),
            )
        };
        let ok = aimed("target = \"leader:1\"\ntrigger_follower_lag_min = 100");
        let s = Scenario::parse(&ok, "t").expect("a leader target");
        assert_eq!(s.nemesis.trigger_follower_lag_min, Some(100));
        assert!(s.needs().replica_offsets);
        Scenario::parse(
            &aimed("target = \"follower\"\ntrigger_follower_lag_min = 1"),
            "t",
        )
        .expect("a follower target");
        let sequence = replicated.replace(
            "faults = [\"kill\"]",
            "faults = [\"sequence\"]\ntrigger_follower_lag_min = 50\n[[nemesis.sequence]]\nstep = \"kill\"\ntarget = \"leader\"",
        );
        Scenario::parse(&sequence, "t")
            .expect("a sequence starts when partition 0's follower lags");
        let cases = [
            (
                aimed("target = \"leader\"\ntrigger_follower_lag_min = 100\ntrigger = \"send\""),
                "nemesis.trigger_follower_lag_min and nemesis.trigger",
            ),
            (
                aimed("target = \"leader\"\ntrigger_follower_lag_min = 0"),
                "nemesis.trigger_follower_lag_min 0 must be from 1",
            ),
            (
                aimed("target = \"n1\"\ntrigger_follower_lag_min = 10"),
                "nemesis.trigger_follower_lag_min watches the followers of the partition a fault targets: nemesis.target names Node(\"n1\")",
            ),
            (
                aimed("target = \"leader\"\ntrigger_follower_lag_min = 10")
                    .replace("replication_factor = 2", "replication_factor = 1"),
                "nemesis.trigger_follower_lag_min waits for a follower to lag: it needs topic.replication_factor of at least 2 (it is 1)",
            ),
        ];
        for (text, needle) in cases {
            let err = Scenario::parse(&text, "t").expect_err(needle).to_string();
            assert!(err.contains(needle), "{needle:?} not in: {err}");
        }
        assert!(
            !Scenario::parse(GOOD, "t")
                .expect("good")
                .needs()
                .replica_offsets
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
                GOOD.replace("brokers = 1", "brokers = 2").replace(
                    "settings = {",
                    "node_settings = { n2 = { \"log.cleanup.policy\" = \"compact\" } }\nsettings = {",
                ),
                "n1 the broker's default, n2 compact",
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
                GOOD.replace(
                    "faults = [\"kill\"]",
                    "faults = [\"kill\"]\nreset_cuts_request = true",
                ),
                "reset_cuts_request aims the resets of a \"reset\" fault",
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
        // `start`: a restart that does not wait for the node to answer.
        let started = with_steps(&KIP101.replace("step = \"restart\"", "step = \"start\""));
        let steps = Scenario::parse(&started, "start")
            .expect("valid")
            .nemesis
            .planned_sequence()
            .expect("steps");
        assert_eq!(
            steps[2],
            PlannedStep::Fault {
                kind: StepKind::Start,
                target: StepTarget::SameAs(1)
            }
        );
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
