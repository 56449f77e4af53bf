//! The controller: broker registrations and liveness, topics and their replica assignments, and
//! per partition the leader, leader epoch and ISR. It elects leaders when brokers die, restart or
//! return, and accepts ISR changes from leaders (AlterPartition). Its state is durable: one file
//! rewritten atomically (tmp + fsync + rename) on every change ([`store`]).
//!
//! Brokers learn the state by asking for Metadata (KRaft-style pull); the Kafka APIs the
//! controller answers are in [`crate::api::controller`]. No sockets here (`server::controller`
//! holds them).

pub mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{ConfigError, FileConfig};
use crate::invariant;
use crate::limits;
use crate::state::validate_topic_name;

/// The controller's settings (from the same TOML keys as the broker's).
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    pub listen: std::net::SocketAddr,
    pub data_dir: PathBuf,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub unclean_leader_election_enable: bool,
    pub broker_session_timeout_ms: u64,
    pub connections: crate::config::ConnectionConfig,
}

impl ControllerConfig {
    pub fn resolve(
        file: FileConfig,
        listen: String,
        data_dir: PathBuf,
    ) -> Result<ControllerConfig, ConfigError> {
        let replication = crate::config::ReplicationConfig::resolve(&file)?;
        let listen = listen.parse().map_err(|e| ConfigError::Invalid {
            key: "listeners",
            message: format!("{listen:?} is not an ip:port address ({e})"),
        })?;
        crate::config::in_range(
            "num.partitions",
            file.num_partitions,
            1..=limits::PARTITIONS_PER_TOPIC_MAX,
        )?;
        Ok(ControllerConfig {
            listen,
            data_dir,
            num_partitions: file.num_partitions,
            default_replication_factor: replication.default_replication_factor,
            unclean_leader_election_enable: replication.unclean_leader_election_enable,
            broker_session_timeout_ms: replication.broker_session_timeout_ms,
            connections: crate::config::ConnectionConfig::resolve(&file)?,
        })
    }
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub epoch: i64,
    pub incarnation_id: Uuid,
    pub host: String,
    pub port: i32,
}

/// One partition's replication state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub replicas: Vec<i32>,
    /// -1: offline (no eligible leader).
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    pub partition_epoch: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicState {
    pub id: Uuid,
    pub partitions: Vec<PartitionState>,
    /// The topic's own configs (CreateTopics, AlterConfigs), which every replica applies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: crate::topic_config::TopicConfigs,
}

/// Everything durable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurableState {
    pub cluster_id: String,
    pub next_broker_epoch: i64,
    pub brokers: BTreeMap<i32, Registration>,
    pub topics: BTreeMap<String, TopicState>,
    /// ACL bindings (CreateAcls, DeleteAcls; KRaft keeps them in the metadata log).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub acls: BTreeSet<crate::acl::AclBinding>,
    /// Dynamic broker configs by level (`""`: the cluster-wide default, or a broker id).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub broker_configs: crate::broker_config::AllBrokerConfigs,
    /// SCRAM credentials (AlterUserScramCredentials; KRaft keeps them in the metadata log).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scram: crate::scram::Credentials,
}

/// Errors of the controller.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// A refused request: a Kafka error code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: i16,
    pub message: String,
}

fn refuse(error: ResponseError, message: impl Into<String>) -> Refusal {
    Refusal {
        code: error.code(),
        message: message.into(),
    }
}

/// The state a change replaces, put back when the change cannot be written.
struct Before {
    durable: DurableState,
    live: BTreeMap<i32, Instant>,
}

#[derive(Debug)]
struct Inner {
    durable: DurableState,
    /// Live brokers and when their session expires (not durable: a restarted controller gives
    /// every registered broker a fresh session).
    live: BTreeMap<i32, Instant>,
    /// The previous liveness check: a long gap means the controller itself was paused.
    last_tick: Instant,
}

impl Inner {
    fn before(&self) -> Before {
        Before {
            durable: self.durable.clone(),
            live: self.live.clone(),
        }
    }
}

/// The controller.
#[derive(Debug)]
pub struct Controller {
    pub config: ControllerConfig,
    inner: Mutex<Inner>,
    /// The metadata version: bumped on every change of the state brokers act on (elections,
    /// ISR, registrations, liveness, topics). Not durable: brokers watch it for a difference,
    /// not for growth, so a restarted controller starting again at 0 still tells them.
    version: tokio::sync::watch::Sender<i64>,
}

impl Controller {
    /// Loads the durable state from the data dir (or starts empty).
    pub fn open(config: ControllerConfig) -> Result<Controller, ControllerError> {
        // Durably (its parent fsynced), so that a power loss cannot take the new dir away.
        crate::log::create_dir_durably(&config.data_dir).map_err(|e| store::StoreError::Io {
            path: config.data_dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let mut durable = store::read(&config.data_dir)?.unwrap_or_default();
        check_state(&durable).map_err(|violation| store::StoreError::Invalid {
            path: config.data_dir.join(store::STATE_FILE_NAME),
            message: violation.to_string(),
        })?;
        if durable.cluster_id.is_empty() {
            durable.cluster_id = "kaos-cluster".to_string();
            durable.next_broker_epoch = 1;
            store::write(&config.data_dir, &durable)?;
        }
        let deadline = Instant::now() + Duration::from_millis(config.broker_session_timeout_ms);
        let live = durable.brokers.keys().map(|&id| (id, deadline)).collect();
        Ok(Controller {
            config,
            inner: Mutex::new(Inner {
                durable,
                live,
                last_tick: Instant::now(),
            }),
            version: tokio::sync::watch::Sender::new(0),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn session(&self) -> Duration {
        Duration::from_millis(self.config.broker_session_timeout_ms)
    }

    /// Makes a change durable, then tells the brokers watching the metadata version. When the
    /// state cannot be written the change is undone (`before` put back, the version unchanged)
    /// and refused with UNKNOWN_SERVER_ERROR, as a KRaft controller that cannot append to its
    /// metadata log answers: no broker acts on, and no client is told of, a change a restarted
    /// controller would not have.
    fn persist(&self, inner: &mut Inner, before: Before) -> Result<(), Refusal> {
        if let Err(e) = store::write(&self.config.data_dir, &inner.durable) {
            inner.durable = before.durable;
            inner.live = before.live;
            tracing::error!(error = %e, "cannot write the controller state: the change is undone");
            return Err(refuse(
                ResponseError::UnknownServerError,
                format!("the controller cannot write its state: {e}"),
            ));
        }
        self.version.send_modify(|v| *v += 1);
        Ok(())
    }

    /// The metadata version and a receiver that sees its next changes.
    pub fn watch_version(&self) -> (i64, tokio::sync::watch::Receiver<i64>) {
        let receiver = self.version.subscribe();
        let version = *receiver.borrow();
        (version, receiver)
    }

    /// A copy of the durable state and the live broker ids.
    pub fn snapshot(&self) -> (DurableState, Vec<i32>) {
        let inner = self.inner();
        (inner.durable.clone(), inner.live.keys().copied().collect())
    }

    /// BrokerRegistration: a new incarnation gets a new broker epoch (a restart: partitions it
    /// led get a new leader); the same incarnation retrying gets its epoch back.
    pub fn register(
        &self,
        broker_id: i32,
        incarnation_id: Uuid,
        host: String,
        port: i32,
    ) -> Result<i64, Refusal> {
        let mut inner = self.inner();
        if broker_id < 0 {
            return Err(refuse(ResponseError::InvalidRequest, "negative broker id"));
        }
        if !inner.durable.brokers.contains_key(&broker_id)
            && inner.durable.brokers.len() >= limits::BROKERS_MAX
        {
            return Err(refuse(ResponseError::PolicyViolation, "too many brokers"));
        }
        let now = Instant::now();
        let before = inner.before();
        if let Some(existing) = inner.durable.brokers.get(&broker_id) {
            if existing.incarnation_id == incarnation_id {
                let epoch = existing.epoch;
                let was_live = inner.live.insert(broker_id, now + self.session()).is_some();
                if !was_live {
                    self.broker_up(&mut inner, broker_id);
                    self.persist(&mut inner, before)?;
                }
                return Ok(epoch);
            }
        }
        let restarted = inner.durable.brokers.contains_key(&broker_id);
        let epoch = inner.durable.next_broker_epoch.max(1);
        inner.durable.next_broker_epoch = epoch + 1;
        inner.durable.brokers.insert(
            broker_id,
            Registration {
                epoch,
                incarnation_id,
                host,
                port,
            },
        );
        inner.live.insert(broker_id, now + self.session());
        tracing::info!(broker_id, epoch, restarted, "broker registered");
        if restarted {
            self.broker_restarted(&mut inner, broker_id);
        }
        self.broker_up(&mut inner, broker_id);
        self.persist(&mut inner, before)?;
        Ok(epoch)
    }

    /// BrokerHeartbeat: extends the session; a broker that was declared dead comes back.
    pub fn heartbeat(&self, broker_id: i32, broker_epoch: i64) -> Result<(), Refusal> {
        let mut inner = self.inner();
        match inner.durable.brokers.get(&broker_id) {
            None => {
                return Err(refuse(
                    ResponseError::BrokerIdNotRegistered,
                    "not registered",
                ))
            }
            Some(registration) if registration.epoch != broker_epoch => {
                return Err(refuse(
                    ResponseError::StaleBrokerEpoch,
                    "stale broker epoch",
                ))
            }
            Some(_) => {}
        }
        let deadline = Instant::now() + self.session();
        if let Some(session) = inner.live.get_mut(&broker_id) {
            *session = deadline;
            return Ok(());
        }
        let before = inner.before();
        inner.live.insert(broker_id, deadline);
        tracing::info!(broker_id, "broker is alive again");
        self.broker_up(&mut inner, broker_id);
        self.persist(&mut inner, before)
    }

    /// A broker shutting down gracefully (heartbeat with `want_shut_down`): it is fenced at once
    /// and its partitions get new leaders, as Kafka's controlled shutdown does.
    pub fn controlled_shutdown(&self, broker_id: i32, broker_epoch: i64) -> Result<(), Refusal> {
        let mut inner = self.inner();
        match inner.durable.brokers.get(&broker_id) {
            Some(registration) if registration.epoch == broker_epoch => {}
            _ => {
                return Err(refuse(
                    ResponseError::StaleBrokerEpoch,
                    "stale broker epoch",
                ))
            }
        }
        if inner.live.contains_key(&broker_id) {
            let before = inner.before();
            inner.live.remove(&broker_id);
            tracing::info!(broker_id, "controlled shutdown: moving leadership away");
            self.broker_down(&mut inner, broker_id);
            self.persist(&mut inner, before)?;
        }
        Ok(())
    }

    /// Declares brokers whose session expired dead and elects new leaders.
    pub fn tick(&self) {
        let mut inner = self.inner();
        let now = Instant::now();
        let gap = now.duration_since(inner.last_tick);
        inner.last_tick = now;
        if gap > self.session() / 2 {
            // The controller was paused (SIGSTOP, a stall): the brokers could not reach it, which
            // says nothing about them. Give every live broker a fresh session instead of fencing all.
            tracing::warn!(
                gap_ms = gap.as_millis() as u64,
                "controller was not running: renewing every session"
            );
            let deadline = now + self.session();
            for value in inner.live.values_mut() {
                *value = deadline;
            }
            return;
        }
        let expired: Vec<i32> = inner
            .live
            .iter()
            .filter(|(_, &deadline)| deadline <= now)
            .map(|(&id, _)| id)
            .collect();
        if expired.is_empty() {
            return;
        }
        let before = inner.before();
        for id in expired {
            inner.live.remove(&id);
            tracing::warn!(broker_id = id, "broker session expired: broker is dead");
            self.broker_down(&mut inner, id);
        }
        // Undone when it cannot be written: the sessions stay expired and the next tick retries.
        let _ = self.persist(&mut inner, before);
    }

    fn broker_down(&self, inner: &mut Inner, id: i32) {
        let unclean = self.config.unclean_leader_election_enable;
        let live = inner.live.clone();
        for (name, topic) in inner.durable.topics.iter_mut() {
            for (index, partition) in topic.partitions.iter_mut().enumerate() {
                let mut changed = false;
                if partition.isr.contains(&id) && partition.isr.len() > 1 {
                    partition.isr.retain(|&r| r != id);
                    changed = true;
                }
                if partition.leader == id {
                    elect(partition, &live, None, unclean);
                    tracing::info!(topic = %name, partition = index, leader = partition.leader, leader_epoch = partition.leader_epoch, isr = ?partition.isr, "elected after broker death");
                } else if changed {
                    partition.partition_epoch += 1;
                }
            }
        }
    }

    fn broker_restarted(&self, inner: &mut Inner, id: i32) {
        let unclean = self.config.unclean_leader_election_enable;
        let live = inner.live.clone();
        for (name, topic) in inner.durable.topics.iter_mut() {
            for (index, partition) in topic.partitions.iter_mut().enumerate() {
                if partition.leader == id {
                    elect(partition, &live, Some(id), unclean);
                    tracing::info!(topic = %name, partition = index, leader = partition.leader, leader_epoch = partition.leader_epoch, "elected after leader restart");
                }
            }
        }
    }

    fn broker_up(&self, inner: &mut Inner, _id: i32) {
        let unclean = self.config.unclean_leader_election_enable;
        let live = inner.live.clone();
        for (name, topic) in inner.durable.topics.iter_mut() {
            for (index, partition) in topic.partitions.iter_mut().enumerate() {
                if partition.leader < 0 {
                    elect(partition, &live, None, unclean);
                    if partition.leader >= 0 {
                        tracing::info!(topic = %name, partition = index, leader = partition.leader, leader_epoch = partition.leader_epoch, isr = ?partition.isr, "offline partition has a leader again");
                    }
                }
            }
        }
    }

    /// Replicas assigned round-robin over the `live` brokers, for `num_partitions` and
    /// `replication_factor` (-1: the defaults).
    fn assign_replicas(
        &self,
        live: &[i32],
        num_partitions: i32,
        replication_factor: i16,
    ) -> Result<Vec<Vec<i32>>, Refusal> {
        let count = if num_partitions == -1 {
            self.config.num_partitions
        } else {
            num_partitions
        };
        if !(1..=limits::PARTITIONS_PER_TOPIC_MAX).contains(&count) {
            return Err(refuse(
                ResponseError::InvalidPartitions,
                format!(
                    "{count} partitions is not in 1..={}",
                    limits::PARTITIONS_PER_TOPIC_MAX
                ),
            ));
        }
        let factor = if replication_factor == -1 {
            self.config.default_replication_factor
        } else {
            replication_factor
        };
        if !(1..=limits::REPLICATION_FACTOR_MAX).contains(&factor) || factor as usize > live.len() {
            return Err(refuse(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "replication factor {factor} with {} live brokers",
                    live.len()
                ),
            ));
        }
        Ok((0..count as usize)
            .map(|p| {
                (0..factor as usize)
                    .map(|r| live[(p + r) % live.len()])
                    .collect()
            })
            .collect())
    }

    /// CreateTopics: assigns replicas round-robin over live brokers (or as given).
    pub fn create_topic(
        &self,
        name: &str,
        num_partitions: i32,
        replication_factor: i16,
        assignments: Vec<Vec<i32>>,
        validate_only: bool,
    ) -> Result<(Uuid, i32, i16), Refusal> {
        let placement = (num_partitions, replication_factor, assignments);
        self.create_topic_with(name, placement, validate_only, BTreeMap::new())
    }

    /// The configs of topic `name`, if it exists.
    pub fn topic_configs(&self, name: &str) -> Option<crate::topic_config::TopicConfigs> {
        self.inner()
            .durable
            .topics
            .get(name)
            .map(|t| t.configs.clone())
    }

    /// Replaces topic `name`'s configs (validated by the caller), durably; brokers apply them
    /// at their next image.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: crate::topic_config::TopicConfigs,
    ) -> Result<(), Refusal> {
        let mut inner = self.inner();
        let before = inner.before();
        let topic = inner.durable.topics.get_mut(name).ok_or_else(|| {
            refuse(
                ResponseError::UnknownTopicOrPartition,
                format!("Topic '{name}' does not exist"),
            )
        })?;
        if topic.configs == configs {
            return Ok(());
        }
        topic.configs = configs;
        tracing::info!(topic = name, configs = ?topic.configs, "topic configs changed");
        self.persist(&mut inner, before)
    }

    /// CreateTopics with the topic's own `configs` (validated by the caller); `placement` is
    /// (partitions, replication factor, explicit assignments).
    pub fn create_topic_with(
        &self,
        name: &str,
        placement: (i32, i16, Vec<Vec<i32>>),
        validate_only: bool,
        configs: crate::topic_config::TopicConfigs,
    ) -> Result<(Uuid, i32, i16), Refusal> {
        let (num_partitions, replication_factor, assignments) = placement;
        validate_topic_name(name).map_err(|m| refuse(ResponseError::InvalidTopicException, m))?;
        let mut inner = self.inner();
        if inner.durable.topics.contains_key(name) {
            return Err(refuse(
                ResponseError::TopicAlreadyExists,
                format!("topic '{name}' already exists"),
            ));
        }
        if inner.durable.topics.len() >= limits::TOPICS_MAX {
            return Err(refuse(ResponseError::PolicyViolation, "too many topics"));
        }
        let live: Vec<i32> = inner.live.keys().copied().collect();
        let replica_lists: Vec<Vec<i32>> = if assignments.is_empty() {
            self.assign_replicas(&live, num_partitions, replication_factor)?
        } else {
            check_assignments(&assignments, &inner.durable.brokers)?;
            assignments
        };
        let factor = replica_lists.first().map_or(0, |r| r.len()) as i16;
        let count = replica_lists.len() as i32;
        let id = Uuid::new_v4();
        if validate_only {
            return Ok((id, count, factor));
        }
        let before = inner.before();
        let partitions = new_partitions(replica_lists, &inner.live);
        inner.durable.topics.insert(
            name.to_string(),
            TopicState {
                id,
                partitions,
                configs,
            },
        );
        tracing::info!(
            topic = name,
            partitions = count,
            replication_factor = factor,
            "created topic"
        );
        self.persist(&mut inner, before)?;
        Ok((id, count, factor))
    }

    /// The name of the topic with id `id`, if there is one.
    pub fn topic_name_by_id(&self, id: Uuid) -> Option<String> {
        let inner = self.inner();
        let found = inner.durable.topics.iter().find(|(_, t)| t.id == id);
        found.map(|(name, _)| name.clone())
    }

    /// DeleteTopics: topic `name` leaves the state durably; every broker deletes its replicas
    /// when its image no longer has the topic (or has the name with another id). Returns the
    /// retired topic id: a later CreateTopics of the name makes a new topic with a new id.
    pub fn delete_topic(&self, name: &str) -> Result<Uuid, Refusal> {
        let mut inner = self.inner();
        let before = inner.before();
        let topic = inner.durable.topics.remove(name).ok_or_else(|| {
            refuse(
                ResponseError::UnknownTopicOrPartition,
                "This server does not host this topic-partition.",
            )
        })?;
        tracing::info!(topic = name, topic_id = %topic.id, "deleted topic");
        self.persist(&mut inner, before)?;
        Ok(topic.id)
    }

    /// CreatePartitions: grows topic `name` to `count` partitions, the new ones placed on
    /// `assignments` (one replica list per new partition) or round-robin over the live brokers
    /// with the topic's replication factor. Nothing changes when `validate_only`.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<(), Refusal> {
        let mut inner = self.inner();
        let topic = inner.durable.topics.get(name).ok_or_else(|| {
            refuse(
                ResponseError::UnknownTopicOrPartition,
                format!("Topic '{name}' does not exist"),
            )
        })?;
        let current = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        if count <= current {
            return Err(refuse(
                ResponseError::InvalidPartitions,
                format!("Topic currently has {current} partitions, which is higher than or equal to the requested {count}."),
            ));
        }
        if count > limits::PARTITIONS_PER_TOPIC_MAX {
            return Err(refuse(
                ResponseError::InvalidPartitions,
                format!(
                    "{count} partitions is more than {}",
                    limits::PARTITIONS_PER_TOPIC_MAX
                ),
            ));
        }
        let added = usize::try_from(count - current).unwrap_or(0);
        let factor = topic.partitions.first().map_or(1, |p| p.replicas.len());
        let replica_lists = match assignments {
            Some(assignments) => {
                if assignments.len() != added {
                    return Err(refuse(
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "{} assignments for {added} new partitions",
                            assignments.len()
                        ),
                    ));
                }
                check_assignments(&assignments, &inner.durable.brokers)?;
                if let Some(odd) = assignments.iter().find(|r| r.len() != factor) {
                    return Err(refuse(
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "the assignment {odd:?} has {} replicas, but topic '{name}' has replication factor {factor}",
                            odd.len()
                        ),
                    ));
                }
                assignments
            }
            None => {
                let live: Vec<i32> = inner.live.keys().copied().collect();
                let factor = i16::try_from(factor).unwrap_or(i16::MAX);
                let all = self.assign_replicas(&live, count, factor)?;
                all.into_iter().skip(current as usize).collect()
            }
        };
        if validate_only {
            return Ok(());
        }
        let before = inner.before();
        let added = new_partitions(replica_lists, &inner.live);
        if let Some(topic) = inner.durable.topics.get_mut(name) {
            topic.partitions.extend(added);
        }
        tracing::info!(topic = name, from = current, to = count, "added partitions");
        self.persist(&mut inner, before)
    }

    /// AlterPartition from a leader: a new ISR for a partition it leads in `leader_epoch`.
    pub fn alter_partition(
        &self,
        broker_id: i32,
        broker_epoch: i64,
        topic_id: Uuid,
        index: i32,
        leader_epoch: i32,
        new_isr: Vec<i32>,
    ) -> Result<PartitionState, Refusal> {
        let mut inner = self.inner();
        match inner.durable.brokers.get(&broker_id) {
            Some(r) if r.epoch == broker_epoch || broker_epoch < 0 => {}
            _ => {
                return Err(refuse(
                    ResponseError::StaleBrokerEpoch,
                    "stale broker epoch",
                ))
            }
        }
        let live = inner.live.clone();
        let before = inner.before();
        let Some(topic) = inner.durable.topics.values_mut().find(|t| t.id == topic_id) else {
            return Err(refuse(ResponseError::UnknownTopicId, "unknown topic id"));
        };
        let Some(partition) = usize::try_from(index)
            .ok()
            .and_then(|i| topic.partitions.get_mut(i))
        else {
            return Err(refuse(
                ResponseError::UnknownTopicOrPartition,
                "unknown partition",
            ));
        };
        if partition.leader != broker_id {
            return Err(refuse(ResponseError::NotLeaderOrFollower, "not the leader"));
        }
        if leader_epoch < partition.leader_epoch {
            return Err(refuse(
                ResponseError::FencedLeaderEpoch,
                "stale leader epoch",
            ));
        }
        if leader_epoch > partition.leader_epoch {
            return Err(refuse(
                ResponseError::UnknownLeaderEpoch,
                "leader epoch from the future",
            ));
        }
        let mut sorted = new_isr.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != new_isr.len()
            || !new_isr.contains(&broker_id)
            || new_isr.iter().any(|r| !partition.replicas.contains(r))
        {
            return Err(refuse(
                ResponseError::InvalidRequest,
                format!("invalid ISR {new_isr:?}"),
            ));
        }
        if new_isr
            .iter()
            .any(|r| !partition.isr.contains(r) && !live.contains_key(r))
        {
            return Err(refuse(
                ResponseError::IneligibleReplica,
                "a new ISR member is not alive",
            ));
        }
        if partition.isr != new_isr {
            tracing::info!(broker_id, topic_id = %topic_id, partition = index, from = ?partition.isr, to = ?new_isr, "ISR changed");
            partition.isr = new_isr;
            invariant::enforce(
                invariant::isr_within_replicas(&partition.isr, &partition.replicas),
                "the controller's AlterPartition",
            );
            partition.partition_epoch += 1;
            let answer = partition.clone();
            self.persist(&mut inner, before)?;
            return Ok(answer);
        }
        Ok(partition.clone())
    }
}

/// Elects a leader: the first live ISR member in replica order (not `excluded`, unless it is the
/// only choice); with `unclean`, else any live replica (the ISR becomes just it); else offline.
/// Bumps the leader epoch whatever happens.
fn elect(
    partition: &mut PartitionState,
    live: &BTreeMap<i32, Instant>,
    excluded: Option<i32>,
    unclean: bool,
) {
    let live_isr: Vec<i32> = partition
        .replicas
        .iter()
        .copied()
        .filter(|r| partition.isr.contains(r) && live.contains_key(r))
        .collect();
    let choice = live_isr
        .iter()
        .copied()
        .find(|r| Some(*r) != excluded)
        .or_else(|| live_isr.first().copied());
    let leader_epoch_before = partition.leader_epoch;
    partition.leader_epoch += 1;
    partition.partition_epoch += 1;
    match choice {
        Some(leader) => partition.leader = leader,
        None => {
            let any_live = partition
                .replicas
                .iter()
                .copied()
                .find(|r| live.contains_key(r));
            match (unclean, any_live) {
                (true, Some(leader)) => {
                    tracing::warn!(leader, isr = ?partition.isr, "unclean leader election: an out-of-sync replica leads");
                    partition.leader = leader;
                    partition.isr = vec![leader];
                }
                _ => partition.leader = -1,
            }
        }
    }
    invariant::enforce(
        invariant::leader_epoch_not_older(leader_epoch_before + 1, partition.leader_epoch)
            .and_then(|()| invariant::isr_within_replicas(&partition.isr, &partition.replicas)),
        "the controller's election",
    );
}

/// The invariants of a loaded controller state (the read half of those asserted on every change):
/// every ISR within its replicas, and leader epochs at least -1.
fn check_state(state: &DurableState) -> Result<(), invariant::Violation> {
    for topic in state.topics.values() {
        for partition in &topic.partitions {
            invariant::isr_within_replicas(&partition.isr, &partition.replicas)?;
            invariant::leader_epoch_not_older(-1, partition.leader_epoch)?;
        }
    }
    Ok(())
}

/// Replica lists given by the request: each non-empty, without duplicates, of known brokers.
/// New partitions on `replica_lists`, every replica in the ISR, each with a leader elected among
/// the live ones.
fn new_partitions(
    replica_lists: Vec<Vec<i32>>,
    live: &BTreeMap<i32, Instant>,
) -> Vec<PartitionState> {
    replica_lists
        .into_iter()
        .map(|replicas| {
            let mut partition = PartitionState {
                isr: replicas.clone(),
                leader: -1,
                leader_epoch: -1,
                partition_epoch: 0,
                replicas,
            };
            elect(&mut partition, live, None, false);
            partition
        })
        .collect()
}

fn check_assignments(
    assignments: &[Vec<i32>],
    brokers: &BTreeMap<i32, Registration>,
) -> Result<(), Refusal> {
    if assignments.len() > limits::PARTITIONS_PER_TOPIC_MAX as usize {
        return Err(refuse(
            ResponseError::InvalidPartitions,
            "too many partitions",
        ));
    }
    for replicas in assignments {
        let first = assignments.first().map_or(0, Vec::len);
        if replicas.len() != first {
            return Err(refuse(
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {first} replica(s).",
                    replicas.len()
                ),
            ));
        }
        let mut sorted = replicas.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if replicas.is_empty()
            || sorted.len() != replicas.len()
            || replicas.len() > limits::REPLICATION_FACTOR_MAX as usize
            || replicas.iter().any(|r| !brokers.contains_key(r))
        {
            return Err(refuse(
                ResponseError::InvalidReplicaAssignment,
                format!("invalid replicas {replicas:?}"),
            ));
        }
    }
    Ok(())
}

impl crate::acl::AclStore for Controller {
    fn update_acls<T>(
        &self,
        f: impl FnOnce(&mut BTreeSet<crate::acl::AclBinding>) -> T,
    ) -> Result<T, String> {
        let mut inner = self.inner();
        let before = inner.durable.acls.clone();
        let out = f(&mut inner.durable.acls);
        if inner.durable.acls != before {
            if let Err(e) = store::write(&self.config.data_dir, &inner.durable) {
                inner.durable.acls = before;
                tracing::error!(error = %e, "cannot write the controller state");
                return Err(format!("cannot store the ACL bindings: {e}"));
            }
            tracing::info!(bindings = inner.durable.acls.len(), "ACL bindings changed");
            self.version.send_modify(|v| *v += 1);
        }
        Ok(out)
    }

    fn acls(&self) -> BTreeSet<crate::acl::AclBinding> {
        self.inner().durable.acls.clone()
    }
}

impl crate::scram::ScramStore for Controller {
    fn update_scram<T>(
        &self,
        f: impl FnOnce(&mut crate::scram::Credentials) -> T,
    ) -> Result<T, String> {
        let mut inner = self.inner();
        let before = inner.durable.scram.clone();
        let out = f(&mut inner.durable.scram);
        if inner.durable.scram != before {
            if let Err(e) = store::write(&self.config.data_dir, &inner.durable) {
                inner.durable.scram = before;
                tracing::error!(error = %e, "cannot write the controller state");
                return Err(format!("cannot store the SCRAM credentials: {e}"));
            }
            tracing::info!(
                users = inner.durable.scram.len(),
                "SCRAM credentials changed"
            );
            self.version.send_modify(|v| *v += 1);
        }
        Ok(out)
    }

    fn scram(&self) -> crate::scram::Credentials {
        self.inner().durable.scram.clone()
    }
}

impl crate::broker_config::BrokerConfigStore for Controller {
    fn broker_configs(&self) -> crate::broker_config::AllBrokerConfigs {
        self.inner().durable.broker_configs.clone()
    }

    fn store_broker_configs(
        &self,
        level: &str,
        configs: crate::broker_config::BrokerConfigs,
    ) -> Result<(), String> {
        let mut inner = self.inner();
        let before = inner.durable.broker_configs.clone();
        if configs.is_empty() {
            inner.durable.broker_configs.remove(level);
        } else {
            inner
                .durable
                .broker_configs
                .insert(level.to_string(), configs);
        }
        if inner.durable.broker_configs != before {
            if let Err(e) = store::write(&self.config.data_dir, &inner.durable) {
                inner.durable.broker_configs = before;
                tracing::error!(error = %e, "cannot write the controller state");
                return Err(format!("cannot store the broker configs: {e}"));
            }
            tracing::info!(level, "dynamic broker configs changed");
            self.version.send_modify(|v| *v += 1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn controller(dir: &std::path::Path, unclean: bool) -> Controller {
        Controller::open(ControllerConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.to_owned(),
            num_partitions: 1,
            default_replication_factor: 3,
            unclean_leader_election_enable: unclean,
            broker_session_timeout_ms: 60_000,
            connections: crate::config::ConnectionConfig::default(),
        })
        .expect("open")
    }

    #[test]
    fn a_stored_state_with_an_isr_outside_the_replicas_is_refused_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = controller(dir.path(), false);
        for id in 1..=2 {
            c.register(id, Uuid::new_v4(), "h".into(), 9000 + id)
                .expect("register");
        }
        c.create_topic("t", 1, 2, Vec::new(), false)
            .expect("create");
        drop(c);
        let mut state: DurableState = store::read(dir.path()).expect("read").expect("state");
        state.topics.get_mut("t").expect("topic").partitions[0].isr = vec![1, 7];
        store::write(dir.path(), &state).expect("write");
        let error = Controller::open(ControllerConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().to_owned(),
            num_partitions: 1,
            default_replication_factor: 3,
            unclean_leader_election_enable: false,
            broker_session_timeout_ms: 60_000,
            connections: crate::config::ConnectionConfig::default(),
        })
        .expect_err("refused");
        let message = error.to_string();
        assert!(
            message.contains("controller-state.json")
                && message
                    .contains("invariant isr_within_replicas violated: isr=[1, 7] replicas=[1, 2]"),
            "{message}"
        );
    }

    #[test]
    fn elections_follow_the_isr_and_survive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = controller(dir.path(), false);
        for id in 1..=3 {
            c.register(id, Uuid::new_v4(), "h".into(), 9000 + id)
                .expect("register");
        }
        let (id, _, _) = c
            .create_topic("t", 1, 3, Vec::new(), false)
            .expect("create");
        let leader = |c: &Controller| c.snapshot().0.topics["t"].partitions[0].clone();
        assert_eq!(leader(&c).leader, 1);
        assert_eq!(leader(&c).leader_epoch, 0);
        // Leader 1 shrinks the ISR to {1}; then 1 dies: offline, not unclean.
        let e1 = c.snapshot().0.brokers[&1].epoch;
        c.alter_partition(1, e1, id, 0, 0, vec![1]).expect("shrink");
        {
            let mut inner = c.inner();
            inner.live.remove(&1);
            c.broker_down(&mut inner, 1);
        }
        assert_eq!(leader(&c).leader, -1);
        assert_eq!(leader(&c).isr, vec![1]);
        // A stale AlterPartition is fenced.
        assert!(c.alter_partition(1, e1, id, 0, 0, vec![1, 2]).is_err());
        // 1 comes back: it leads again with a higher epoch.
        c.heartbeat(1, e1).expect("heartbeat");
        assert_eq!(leader(&c).leader, 1);
        assert_eq!(leader(&c).leader_epoch, 2);
        drop(c);
        let again = controller(dir.path(), false);
        assert_eq!(leader(&again).leader_epoch, 2);
    }
}
