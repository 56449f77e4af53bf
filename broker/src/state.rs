//! The broker's state: its topics and partitions on disk, startup recovery, checkpoints and
//! graceful shutdown. No sockets and no protocol here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use uuid::Uuid;

use crate::cluster::{ClusterImage, RoleChange};
use crate::config::Config;
use crate::group::records::OFFSETS_TOPIC;
use crate::limits;
use crate::log::checkpoint::{self, Offsets, LOG_START_OFFSET_FILE_NAME, RECOVERY_POINT_FILE_NAME};
use crate::log::epoch::EpochCache;
use crate::log::{sync_dir, Log, LogError};
use crate::partition::{Partition, Signals};
use crate::topic_config::TopicConfigs;

mod configs;
pub use configs::TOPIC_CONFIGS_FILE_NAME;

/// Kafka's HW checkpoint file (same format as the recovery-point checkpoint).
pub const HIGH_WATERMARK_FILE_NAME: &str = "replication-offset-checkpoint";

/// Marker written on graceful shutdown and removed at start.
pub const CLEAN_SHUTDOWN_FILE_NAME: &str = ".kaos_cleanshutdown";
/// Per-partition file holding the topic id, like Kafka's.
pub const PARTITION_METADATA_FILE_NAME: &str = "partition.metadata";

/// Errors of the broker state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error("{path}: {message}")]
    BadMetadata { path: PathBuf, message: String },
    #[error(transparent)]
    ProducerIds(#[from] crate::producer::ProducerIdError),
    #[error("{count} partition log(s) failed while serving (see the storage errors above)")]
    FailedLogs { count: usize },
    #[error(transparent)]
    TopicConfigs(#[from] configs::ConfigsFileError),
    #[error(transparent)]
    Acls(#[from] crate::acl::AclFileError),
    #[error(transparent)]
    BrokerConfigs(#[from] crate::broker_config::BrokerConfigsFileError),
    #[error(transparent)]
    Scram(#[from] crate::scram::ScramFileError),
}

/// Why a topic's configs could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum AlterConfigsError {
    #[error("Topic '{0}' does not exist")]
    Unknown(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// Why a topic cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateTopicError {
    #[error("topic already exists")]
    AlreadyExists,
    #[error("invalid topic name: {0}")]
    InvalidName(String),
    #[error("number of partitions {0} is not in 1..={max}", max = limits::PARTITIONS_PER_TOPIC_MAX)]
    InvalidPartitions(i32),
    #[error("too many topics (limit {max})", max = limits::TOPICS_MAX)]
    TooManyTopics,
    #[error(transparent)]
    State(#[from] StateError),
}

/// Why a topic could not be deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteTopicError {
    #[error("topic does not exist")]
    Unknown,
    #[error(transparent)]
    State(#[from] StateError),
}

/// Why partitions could not be added to a topic (Kafka's codes in `api::create_partitions`).
#[derive(Debug, thiserror::Error)]
pub enum AddPartitionsError {
    #[error("topic does not exist")]
    Unknown,
    #[error(
        "Topic currently has {current} partitions, which is higher than the requested {count}."
    )]
    NotMore { current: i32, count: i32 },
    #[error("number of partitions {0} is over the limit {max}", max = limits::PARTITIONS_PER_TOPIC_MAX)]
    TooMany(i32),
    #[error(transparent)]
    State(#[from] StateError),
}

/// The end of the name a partition dir of a deleted topic is renamed to (as Kafka's
/// `<topic>-<partition>.<id>-delete`): the rename is the deletion; the dir is removed after it,
/// or at the next start when a crash came first.
pub const DELETED_DIR_SUFFIX: &str = "-delete";

/// The end of the name a stray replica's partition dir is renamed to (as Kafka 3.7+'s
/// `<topic>-<partition>.<id>-stray`, KAFKA-14616): in a cluster, a local replica of a topic the
/// controller's image does not have and no earlier image since this broker registered had (it
/// was loaded from disk). It is kept, never deleted, and not loaded at the next start: a
/// controller that lost its state cannot make brokers destroy acknowledged data.
pub const STRAY_DIR_SUFFIX: &str = "-stray";

/// A topic: its id and the partitions this broker holds a replica of (all of them on a single
/// node; in a cluster, those the controller assigned here).
#[derive(Debug)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub partitions: BTreeMap<i32, Arc<Partition>>,
    /// Its own configs (CreateTopics, AlterConfigs), over the broker's settings.
    pub configs: TopicConfigs,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        self.partitions.get(&index)
    }
}

/// Kafka's topic name rule: 1..=249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("{name:?} is not allowed"));
    }
    if name.len() > limits::TOPIC_NAME_BYTES_MAX {
        return Err(format!(
            "longer than {} characters",
            limits::TOPIC_NAME_BYTES_MAX
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{name:?} contains {bad:?}; only ASCII letters, digits, '.', '_' and '-' are allowed"
        ));
    }
    Ok(())
}

/// What startup found.
#[derive(Debug, Default)]
pub struct StartupReport {
    pub clean_shutdown: bool,
    pub partitions_loaded: usize,
    pub partitions_truncated: usize,
}

/// The broker state shared by every connection.
#[derive(Debug)]
pub struct Broker {
    pub config: Config,
    pub cluster_id: String,
    /// Host and port given to clients in Metadata (known after binding).
    pub advertised_host: String,
    pub advertised_port: i32,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    pub signals: Arc<Signals>,
    /// Serializes checkpoint writers (background task and shutdown share one tmp file).
    checkpoint_lock: Mutex<()>,
    /// The cluster as the controller last described it (empty on a single node).
    pub cluster: crate::cluster::ClusterView,
    /// The group coordinator (groups whose `__consumer_offsets` partitions this broker leads).
    pub groups: Arc<crate::group::Coordinator>,
    /// The transaction coordinator (transactional ids whose `__transaction_state` partitions
    /// this broker leads).
    pub txns: Arc<crate::txn::Coordinator>,
    /// Producer ids handed out by InitProducerId.
    pub producer_ids: Mutex<crate::producer::ProducerIds>,
    /// Per-stage request times, written to [`crate::metrics::METRICS_FILE_NAME`] at shutdown.
    pub metrics: Arc<crate::metrics::RequestMetrics>,
    /// ACL bindings of a single broker (in a cluster the controller keeps them).
    pub acls: crate::acl::AclFile,
    /// TxnOffsetCommit requests still to leave unanswered (`debug.txn.offset.commit.unanswered`).
    pub unanswered_txn_offset_commits: std::sync::atomic::AtomicU64,
    /// Dynamic broker configs of a single broker (in a cluster the controller keeps them).
    pub broker_configs: crate::broker_config::BrokerConfigsFile,
    /// SCRAM credentials of a single broker (in a cluster the controller keeps them).
    pub scram: crate::scram::ScramFile,
}

fn io_err(path: &Path, source: std::io::Error) -> StateError {
    StateError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Broker {
    /// Loads every partition in the data dir, recovering them after an unclean shutdown.
    pub fn open(
        config: Config,
        advertised_host: String,
        advertised_port: i32,
    ) -> Result<(Broker, StartupReport), StateError> {
        let data_dir = config.data_dir.clone();
        // Durably: on a power loss right after the first start, a data dir whose entry in its
        // parent was never fsynced vanishes with everything fsynced inside it.
        crate::log::create_dir_durably(&data_dir)?;
        let marker = data_dir.join(CLEAN_SHUTDOWN_FILE_NAME);
        let clean_shutdown = marker.exists();
        let mut report = StartupReport {
            clean_shutdown,
            ..StartupReport::default()
        };
        let checkpoint_path = data_dir.join(RECOVERY_POINT_FILE_NAME);
        let recovery_points = read_checkpoint(
            &checkpoint_path,
            "recovery-point checkpoint unreadable: recovering every partition from offset 0",
        );
        let high_watermarks = read_checkpoint(
            &data_dir.join(HIGH_WATERMARK_FILE_NAME),
            "HW checkpoint unreadable: HWs start at 0",
        );
        let log_start_offsets = read_checkpoint(
            &data_dir.join(LOG_START_OFFSET_FILE_NAME),
            "log-start-offset checkpoint unreadable: logs start at their first segment",
        );
        let topic_configs = configs::read(&data_dir)?;
        let acls = crate::acl::AclFile::open(&data_dir)?;
        let broker_configs = crate::broker_config::BrokerConfigsFile::open(&data_dir)?;
        let scram = crate::scram::ScramFile::open(&data_dir)?;
        let producer_ids = crate::producer::ProducerIds::open(&data_dir, config.node_id)?;
        let signals = Signals::new();
        let recovery = Recovery {
            config: &config,
            data_dir: &data_dir,
            recovery_points: &recovery_points,
            high_watermarks: &high_watermarks,
            log_start_offsets: &log_start_offsets,
            topic_configs: &topic_configs,
            clean_shutdown,
            signals: &signals,
            single_node: config.controller.is_none(),
        };
        let topics = recovery.open_topics(&mut report)?;
        let unanswered = config.debug_txn_offset_commits_unanswered;
        let broker = Broker {
            cluster_id: "kaos-cluster".to_string(),
            advertised_host,
            advertised_port,
            topics: RwLock::new(topics),
            signals,
            checkpoint_lock: Mutex::new(()),
            config,
            cluster: crate::cluster::ClusterView::default(),
            groups: Arc::default(),
            txns: Arc::default(),
            producer_ids: Mutex::new(producer_ids),
            metrics: Arc::default(),
            acls,
            unanswered_txn_offset_commits: std::sync::atomic::AtomicU64::new(unanswered),
            broker_configs,
            scram,
        };
        broker.finish_recovery(&checkpoint_path, &marker)?;
        Ok((broker, report))
    }

    /// The last step of a start: the recovery-point checkpoint rewritten for the recovered logs,
    /// and the clean-shutdown marker removed.
    fn finish_recovery(&self, checkpoint_path: &Path, marker: &Path) -> Result<(), StateError> {
        let data_dir = &self.config.data_dir;
        // Recovered logs are fsynced: their recovery points are their LEOs now. If that cannot be
        // written (a full disk), the old checkpoint goes: it may name points this recovery cut
        // away, and without one the next start recovers every log from its first segment.
        if let Err(e) = self.write_checkpoint() {
            tracing::warn!(error = %e, "cannot write the recovery-point checkpoint at start: removing it");
            match std::fs::remove_file(checkpoint_path) {
                Ok(()) => sync_dir(data_dir)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(checkpoint_path, e)),
            }
        }
        match std::fs::remove_file(marker) {
            Ok(()) => sync_dir(data_dir)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(marker, e)),
        }
        Ok(())
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .find(|t| t.id == id)
            .cloned()
    }

    /// This broker's replica of `topic`-`index`, if it has one.
    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.topic(topic).and_then(|t| t.partition(index).cloned())
    }

    /// Whether this broker runs in a cluster (has a controller).
    pub fn in_cluster(&self) -> bool {
        self.config.controller.is_some()
    }

    /// Whether the cluster has partition `index` of `topic`: in a cluster as the controller's
    /// image says (this broker need not hold a replica), on a single node as its topics say.
    pub fn partition_exists(&self, topic: &str, index: i32) -> bool {
        if self.in_cluster() {
            self.cluster
                .image()
                .topics
                .get(topic)
                .is_some_and(|t| t.partitions.contains_key(&index))
        } else {
            self.topic(topic)
                .is_some_and(|t| t.partitions.contains_key(&index))
        }
    }

    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.topics()
            .iter()
            .flat_map(|t| t.partitions.values().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Creates (or finds) this broker's replica of `topic`-`index` with the controller's topic id
    /// (cluster mode). A replica created here starts empty and waits for its role.
    pub fn ensure_replica(
        &self,
        topic: &str,
        topic_id: Uuid,
        index: i32,
    ) -> Result<Arc<Partition>, CreateTopicError> {
        validate_topic_name(topic).map_err(CreateTopicError::InvalidName)?;
        if !(0..limits::PARTITIONS_PER_TOPIC_MAX).contains(&index) {
            return Err(CreateTopicError::InvalidPartitions(index));
        }
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = topics.get(topic) {
            if let Some(partition) = existing.partition(index) {
                return Ok(Arc::clone(partition));
            }
        } else if topics.len() >= limits::TOPICS_MAX {
            return Err(CreateTopicError::TooManyTopics);
        }
        // The topic id first: a replica dir without one is never taken for another topic's
        // (see `open`). Then the log: a crash in between leaves an empty log to reopen.
        let dir = self.config.data_dir.join(format!("{topic}-{index}"));
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        write_partition_metadata(&dir, topic_id)?;
        sync_dir(&self.config.data_dir).map_err(StateError::from)?;
        // A dir left by an interrupted creation is recovered like any unclean log.
        let configs = topics
            .get(topic)
            .map(|t| t.configs.clone())
            .unwrap_or_default();
        let log_config = crate::topic_config::log_config(self.config.log, topic, &configs);
        let (log, _) = Log::open(&dir, log_config, 0, false).map_err(StateError::from)?;
        let epochs = load_epochs(&dir, &log)?;
        let partition = Arc::new(Partition::new(
            topic.to_string(),
            topic_id,
            index,
            log,
            epochs,
            self.config.node_id,
            Arc::clone(&self.signals),
            false,
            0,
        ));
        let mut partitions = topics
            .get(topic)
            .map(|t| t.partitions.clone())
            .unwrap_or_default();
        partitions.insert(index, Arc::clone(&partition));
        topics.insert(
            topic.to_string(),
            Arc::new(Topic {
                name: topic.to_string(),
                id: topic_id,
                partitions,
                configs,
            }),
        );
        tracing::info!(topic, partition = index, topic_id = %topic_id, "created replica");
        Ok(partition)
    }

    /// Creates a topic with the broker's settings (or only validates the request when
    /// `validate_only`).
    pub fn create_topic(
        &self,
        name: &str,
        partition_count: i32,
        validate_only: bool,
    ) -> Result<Arc<Topic>, CreateTopicError> {
        self.create_topic_with(name, partition_count, validate_only, TopicConfigs::new())
    }

    /// Creates a topic with its own `configs` (validated by the caller), stored durably first.
    pub fn create_topic_with(
        &self,
        name: &str,
        partition_count: i32,
        validate_only: bool,
        configs: TopicConfigs,
    ) -> Result<Arc<Topic>, CreateTopicError> {
        validate_topic_name(name).map_err(CreateTopicError::InvalidName)?;
        if !(1..=limits::PARTITIONS_PER_TOPIC_MAX).contains(&partition_count) {
            return Err(CreateTopicError::InvalidPartitions(partition_count));
        }
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        if topics.contains_key(name) {
            return Err(CreateTopicError::AlreadyExists);
        }
        if topics.len() >= limits::TOPICS_MAX {
            return Err(CreateTopicError::TooManyTopics);
        }
        let topic_id = Uuid::new_v4();
        if validate_only {
            return Ok(Arc::new(Topic {
                name: name.to_string(),
                id: topic_id,
                partitions: BTreeMap::new(),
                configs,
            }));
        }
        // The configs first: a topic never exists without them (a creation that fails leaves an
        // entry no topic has, which the next write drops).
        let others = topics.iter().map(|(n, t)| (n.as_str(), &t.configs));
        configs::persist(&self.config.data_dir, others.chain([(name, &configs)]))
            .map_err(StateError::from)?;
        let log_config = crate::topic_config::log_config(self.config.log, name, &configs);
        let partitions =
            self.create_partitions_or_none(name, topic_id, 0..partition_count, log_config)?;
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id: topic_id,
            partitions,
            configs,
        });
        topics.insert(name.to_string(), Arc::clone(&topic));
        tracing::info!(topic = %name, partitions = partition_count, topic_id = %topic_id, "created topic");
        Ok(topic)
    }

    /// Deletes topic `name`'s local replicas (a single node's DeleteTopics; in a cluster, a topic
    /// the controller's image no longer has): it leaves the topic map at once (requests that
    /// come after see no such topic; a later CreateTopics makes a new one with a new id), each
    /// partition dir is renamed to `…-delete` and the data dir fsynced (the deletion is durable),
    /// then the renamed dirs are removed. Returns the retired topic id.
    pub fn delete_topic(&self, name: &str) -> Result<Uuid, DeleteTopicError> {
        let (topic, renamed) = self.retire_topic(name, DELETED_DIR_SUFFIX)?;
        let data_dir = &self.config.data_dir;
        for dir in renamed {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                // The next start removes it.
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the dir of a deleted partition");
            }
        }
        // In a cluster the controller keeps topics' configs.
        if !topic.configs.is_empty() && !self.in_cluster() {
            let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
            let all = topics.iter().map(|(n, t)| (n.as_str(), &t.configs));
            if let Err(e) = configs::persist(data_dir, all) {
                // A stale entry applies to no topic; the next write drops it.
                tracing::warn!(topic = %name, error = %e, "cannot rewrite the topic configs");
            }
        }
        tracing::info!(topic = %name, topic_id = %topic.id, "deleted topic");
        Ok(topic.id)
    }

    /// Takes topic `name` out of the topic map, closes its partitions' logs (an append still in
    /// flight fails instead of writing into a dir that goes away) and renames each partition dir
    /// to `<name>-<index>.<topic id><suffix>`, durably (the data dir fsynced). Returns the topic
    /// and the renamed dirs.
    fn retire_topic(
        &self,
        name: &str,
        suffix: &str,
    ) -> Result<(Arc<Topic>, Vec<PathBuf>), DeleteTopicError> {
        let topic = self
            .topics
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
            .ok_or(DeleteTopicError::Unknown)?;
        let data_dir = &self.config.data_dir;
        let mut renamed = Vec::with_capacity(topic.partitions.len());
        for (&index, partition) in &topic.partitions {
            if let Err(e) = partition.close() {
                tracing::warn!(topic = %name, partition = index, error = %e, "cannot close the log of a retired partition");
            }
            let dir = data_dir.join(format!("{name}-{index}"));
            let retired = data_dir.join(format!("{name}-{index}.{}{suffix}", topic.id.simple()));
            std::fs::rename(&dir, &retired).map_err(|e| io_err(&dir, e))?;
            renamed.push(retired);
        }
        sync_dir(data_dir).map_err(StateError::from)?;
        Ok((topic, renamed))
    }

    /// [`Self::create_partitions`], or, when one fails, none: the dirs made are removed (a full
    /// disk must not leave a dir that the next start cannot open).
    fn create_partitions_or_none(
        &self,
        name: &str,
        topic_id: Uuid,
        indexes: std::ops::Range<i32>,
        log_config: crate::config::LogConfig,
    ) -> Result<BTreeMap<i32, Arc<Partition>>, StateError> {
        let mut created = Vec::new();
        let error = match self.create_partitions(name, topic_id, indexes, log_config, &mut created)
        {
            Ok(partitions) => return Ok(partitions),
            Err(e) => e,
        };
        for dir in created.iter().rev() {
            if let Err(e) = std::fs::remove_dir_all(dir) {
                tracing::error!(dir = %dir.display(), error = %e, "cannot remove the partition dir of a failed creation");
            }
        }
        let _ = sync_dir(&self.config.data_dir);
        tracing::warn!(topic = %name, partition_dirs_removed = created.len(), error = %error, "partition creation failed");
        Err(error)
    }

    /// Grows topic `name` to `count` partitions on a single node (CreatePartitions): the new
    /// ones are created empty, the existing ones are untouched. Nothing is created when
    /// `validate_only`.
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), AddPartitionsError> {
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        let topic = topics.get(name).ok_or(AddPartitionsError::Unknown)?;
        let current = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        if count <= current {
            return Err(AddPartitionsError::NotMore { current, count });
        }
        if count > limits::PARTITIONS_PER_TOPIC_MAX {
            return Err(AddPartitionsError::TooMany(count));
        }
        if validate_only {
            return Ok(());
        }
        let log_config = crate::topic_config::log_config(self.config.log, name, &topic.configs);
        let added = self.create_partitions_or_none(name, topic.id, current..count, log_config)?;
        let mut partitions = topic.partitions.clone();
        partitions.extend(added);
        let grown = Topic {
            name: name.to_string(),
            id: topic.id,
            partitions,
            configs: topic.configs.clone(),
        };
        topics.insert(name.to_string(), Arc::new(grown));
        tracing::info!(topic = %name, from = current, to = count, "added partitions");
        Ok(())
    }

    /// Creates the partition dirs of a new topic, each with its topic id first (written
    /// atomically), then its log. `created` gets every dir made, for the caller to remove on error.
    fn create_partitions(
        &self,
        name: &str,
        topic_id: Uuid,
        indexes: std::ops::Range<i32>,
        log_config: crate::config::LogConfig,
        created: &mut Vec<PathBuf>,
    ) -> Result<BTreeMap<i32, Arc<Partition>>, StateError> {
        let mut partitions = BTreeMap::new();
        for index in indexes {
            let dir = self.config.data_dir.join(format!("{name}-{index}"));
            std::fs::create_dir(&dir).map_err(|e| io_err(&dir, e))?;
            created.push(dir.clone());
            write_partition_metadata(&dir, topic_id)?;
            let (log, _) = Log::open(&dir, log_config, 0, true)?;
            let epochs = load_epochs(&dir, &log)?;
            partitions.insert(
                index,
                Arc::new(Partition::new(
                    name.to_string(),
                    topic_id,
                    index,
                    log,
                    epochs,
                    self.config.node_id,
                    Arc::clone(&self.signals),
                    true,
                    0,
                )),
            );
        }
        sync_dir(&self.config.data_dir)?;
        Ok(partitions)
    }

    /// fsyncs every partition (the `flush.ms` task).
    pub fn flush_all(&self) -> Result<(), StateError> {
        for partition in self.partitions() {
            partition.flush()?;
        }
        Ok(())
    }

    /// Rewrites the recovery-point checkpoint from every partition's recovery point.
    pub fn write_checkpoint(&self) -> Result<(), StateError> {
        self.write_offsets_checkpoint(RECOVERY_POINT_FILE_NAME, |p| p.recovery_point())?;
        self.write_offsets_checkpoint(LOG_START_OFFSET_FILE_NAME, |p| p.log_start_offset())
    }

    /// Rewrites the HW checkpoint (`replication-offset-checkpoint`) from every partition's HW.
    pub fn write_high_watermark_checkpoint(&self) -> Result<(), StateError> {
        self.write_offsets_checkpoint(HIGH_WATERMARK_FILE_NAME, |p| p.high_watermark())
    }

    /// One offset per partition into `file_name` in the data directory, one writer at a time
    /// (the writers share a temporary file).
    fn write_offsets_checkpoint(
        &self,
        file_name: &str,
        offset_of: impl Fn(&Partition) -> i64,
    ) -> Result<(), StateError> {
        let _writing = self
            .checkpoint_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let offsets: Offsets = self
            .partitions()
            .iter()
            .map(|p| ((p.topic.clone(), p.index), offset_of(p)))
            .collect();
        checkpoint::write(&self.config.data_dir.join(file_name), &offsets)?;
        Ok(())
    }

    /// Graceful shutdown: flush and close every partition, write the checkpoints, then the marker.
    /// A failed step does not stop the others. The clean-shutdown marker is written only when
    /// every step succeeded and no log failed while serving (a full disk, an I/O error): without
    /// it the next start recovers every log as after a crash, cutting what a failed write left.
    pub fn shutdown(&self) -> Result<(), StateError> {
        let mut errors: Vec<StateError> = Vec::new();
        let mut failed_logs = 0;
        for partition in self.partitions() {
            if let Err(e) = partition.close() {
                errors.push(e.into());
            }
            failed_logs += usize::from(partition.is_failed());
        }
        if let Err(e) = self.write_checkpoint() {
            errors.push(e);
        }
        if let Err(e) = self.write_high_watermark_checkpoint() {
            errors.push(e);
        }
        if errors.is_empty() && failed_logs == 0 {
            if let Err(e) = self.write_clean_shutdown_marker() {
                errors.push(e);
            }
        }
        self.write_metrics();
        for e in &errors {
            tracing::error!(error = %e, "graceful shutdown: a step failed");
        }
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None if failed_logs > 0 => Err(StateError::FailedLogs { count: failed_logs }),
            None => Ok(()),
        }
    }

    fn write_clean_shutdown_marker(&self) -> Result<(), StateError> {
        let marker = self.config.data_dir.join(CLEAN_SHUTDOWN_FILE_NAME);
        let file = std::fs::File::create(&marker).map_err(|e| io_err(&marker, e))?;
        file.sync_all().map_err(|e| io_err(&marker, e))?;
        sync_dir(&self.config.data_dir)?;
        Ok(())
    }

    /// Writes the request metrics' summary to the data dir (not fsynced: a measurement, not state).
    fn write_metrics(&self) {
        let path = self.config.data_dir.join(crate::metrics::METRICS_FILE_NAME);
        let summary = self.metrics.summary();
        tracing::info!(produce_total = ?summary.produce.total, produce_remote = ?summary.produce.remote, "request metrics");
        let written = serde_json::to_vec_pretty(&summary)
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(&path, json));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the request metrics");
        }
    }
}

/// The leader-epoch cache of a loaded log: the checkpoint (clipped to the LEO), or rebuilt from
/// the batches when there is none.
fn load_epochs(dir: &Path, log: &Log) -> Result<EpochCache, StateError> {
    if let Some(cache) = EpochCache::load(dir, log.log_end_offset())? {
        return Ok(cache);
    }
    let entries = log.scan_epochs()?;
    match EpochCache::rebuilt(dir, entries.clone()) {
        Ok(cache) => Ok(cache),
        Err(e @ LogError::Io { .. }) => {
            // A full disk: the cache holds in memory and is written at its next change.
            tracing::warn!(dir = %dir.display(), error = %e, "cannot write the leader-epoch checkpoint; going on without it");
            Ok(EpochCache::unwritten(dir, entries))
        }
        Err(e) => Err(e.into()),
    }
}

/// Removes a partition dir that a topic creation cannot have finished: no valid
/// `partition.metadata` (written first, atomically) and no record in any segment. Returns true
/// when it was removed. A dir holding records is kept, whatever else it lacks.
fn remove_if_incomplete(dir: &Path) -> Result<bool, StateError> {
    if read_partition_metadata(dir)?.is_some() {
        return Ok(false);
    }
    for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let is_segment = entry
            .file_name()
            .to_str()
            .and_then(crate::log::segment::parse_file_name)
            .is_some();
        let length = entry
            .metadata()
            .map_err(|e| io_err(&entry.path(), e))?
            .len();
        if is_segment && length > 0 {
            return Ok(false);
        }
    }
    std::fs::remove_dir_all(dir).map_err(|e| io_err(dir, e))?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    tracing::warn!(dir = %dir.display(), "removed a partition dir without partition.metadata or records: a topic creation that did not finish");
    Ok(true)
}

/// Reads the topic id from `partition.metadata` (`version: 0` / `topic_id: <uuid>`).
fn read_partition_metadata(dir: &Path) -> Result<Option<Uuid>, StateError> {
    let path = dir.join(PARTITION_METADATA_FILE_NAME);
    let metadata = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path, e)),
    };
    if metadata.len() > limits::PARTITION_METADATA_BYTES_MAX {
        tracing::warn!(path = %path.display(), "partition.metadata too large; ignoring it");
        return Ok(None);
    }
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "partition.metadata unreadable; ignoring it");
            return Ok(None);
        }
    };
    let id = text
        .lines()
        .find_map(|line| line.strip_prefix("topic_id:"))
        .and_then(|id| Uuid::parse_str(id.trim()).ok());
    if id.is_none() {
        tracing::warn!(path = %path.display(), "partition.metadata has no valid topic_id; ignoring it");
    }
    Ok(id)
}

fn write_partition_metadata(dir: &Path, topic_id: Uuid) -> Result<(), StateError> {
    let path = dir.join(PARTITION_METADATA_FILE_NAME);
    if read_partition_metadata(dir)? == Some(topic_id) {
        return Ok(());
    }
    let tmp = dir.join("partition.metadata.tmp");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(
            &mut file,
            format!("version: 0\ntopic_id: {topic_id}\n").as_bytes(),
        )?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| io_err(&path, e))?;
    sync_dir(dir)?;
    Ok(())
}

/// What startup recovery opens each partition with.
struct Recovery<'a> {
    config: &'a Config,
    data_dir: &'a Path,
    recovery_points: &'a Offsets,
    high_watermarks: &'a Offsets,
    log_start_offsets: &'a Offsets,
    topic_configs: &'a BTreeMap<String, TopicConfigs>,
    clean_shutdown: bool,
    signals: &'a Arc<Signals>,
    single_node: bool,
}

impl Recovery<'_> {
    /// Opens every topic with a partition dir in the data dir.
    fn open_topics(
        &self,
        report: &mut StartupReport,
    ) -> Result<BTreeMap<String, Arc<Topic>>, StateError> {
        let mut topics = BTreeMap::new();
        for (name, mut dirs) in partition_dirs(self.data_dir)? {
            dirs.sort();
            if let Some(topic) = self.open_topic(name.clone(), &dirs, report)? {
                topics.insert(name, Arc::new(topic));
            }
        }
        Ok(topics)
    }

    /// Opens the partitions of topic `name` found in `dirs` (sorted); `None` for a replica whose
    /// creation was cut short before its topic id was written.
    fn open_topic(
        &self,
        name: String,
        dirs: &[(i32, PathBuf)],
        report: &mut StartupReport,
    ) -> Result<Option<Topic>, StateError> {
        // A single node owns every partition 0..count (a missing one is recreated empty);
        // in a cluster only the replicas found here exist.
        let indexes: Vec<i32> = if self.single_node {
            (0..dirs.last().map_or(0, |(p, _)| p + 1)).collect()
        } else {
            dirs.iter().map(|(p, _)| *p).collect()
        };
        let topic_id = match first_topic_id(dirs)? {
            Some(id) => id,
            None if self.single_node => Uuid::new_v4(),
            None => {
                // Leave it to the controller's image, which reopens it under the cluster's topic id.
                tracing::warn!(topic = %name, "no partition.metadata: waiting for the controller to name this topic");
                return Ok(None);
            }
        };
        let configs = self.topic_configs.get(&name).cloned().unwrap_or_default();
        let log_config = crate::topic_config::log_config(self.config.log, &name, &configs);
        let mut partitions = BTreeMap::new();
        for index in indexes {
            let partition = self.open_partition(&name, topic_id, index, log_config, report)?;
            partitions.insert(index, Arc::new(partition));
        }
        Ok(Some(Topic {
            name,
            id: topic_id,
            partitions,
            configs,
        }))
    }

    /// Opens (recovers) the log of `name`-`index` and its leader-epoch cache, counting it in
    /// `report`.
    fn open_partition(
        &self,
        name: &str,
        topic_id: Uuid,
        index: i32,
        log_config: crate::config::LogConfig,
        report: &mut StartupReport,
    ) -> Result<Partition, StateError> {
        let dir = self.data_dir.join(format!("{name}-{index}"));
        let recovery_point = self
            .recovery_points
            .get(&(name.to_string(), index))
            .copied()
            .unwrap_or(0);
        let (mut log, outcome) = Log::open(&dir, log_config, recovery_point, self.clean_shutdown)?;
        if let Some(&start) = self.log_start_offsets.get(&(name.to_string(), index)) {
            log.restore_log_start_offset(start);
        }
        if let Err(e) = write_partition_metadata(&dir, topic_id) {
            // A full disk: the id holds in memory; a later start writes it.
            tracing::warn!(topic = %name, partition = index, error = %e, "cannot write partition.metadata; going on without it");
        }
        if let Some(t) = &outcome.truncated {
            report.partitions_truncated += 1;
            tracing::warn!(
                topic = %name, partition = index, segment = t.segment_base_offset, position = t.position,
                offset = t.offset, bytes_dropped = t.bytes_dropped, segments_deleted = t.segments_deleted,
                reason = %t.reason, "recovery truncated the log"
            );
        }
        tracing::info!(
            topic = %name, partition = index, log_start_offset = log.log_start_offset(),
            log_end_offset = log.log_end_offset(), segments_scanned = outcome.segments_scanned,
            bytes_scanned = outcome.batches_bytes_scanned, "partition loaded"
        );
        report.partitions_loaded += 1;
        let epochs = load_epochs(&dir, &log)?;
        let high_watermark = self
            .high_watermarks
            .get(&(name.to_string(), index))
            .copied()
            .unwrap_or(0);
        Ok(Partition::new(
            name.to_string(),
            topic_id,
            index,
            log,
            epochs,
            self.config.node_id,
            Arc::clone(self.signals),
            self.single_node,
            high_watermark,
        ))
    }
}

/// The topic id the first of `dirs` with a `partition.metadata` names.
fn first_topic_id(dirs: &[(i32, PathBuf)]) -> Result<Option<Uuid>, StateError> {
    for (_, dir) in dirs {
        if let Some(id) = read_partition_metadata(dir)? {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// The partition directories in `data_dir` (`<topic>-<index>`), by topic; an incomplete one
/// (neither `partition.metadata` nor a record) is removed, anything else unexpected is ignored.
fn partition_dirs(data_dir: &Path) -> Result<BTreeMap<String, Vec<(i32, PathBuf)>>, StateError> {
    let mut found: BTreeMap<String, Vec<(i32, PathBuf)>> = BTreeMap::new();
    for entry in std::fs::read_dir(data_dir).map_err(|e| io_err(data_dir, e))? {
        let entry = entry.map_err(|e| io_err(data_dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir && name.ends_with(STRAY_DIR_SUFFIX) {
            // Kept for an operator: the controller did not know its topic (see STRAY_DIR_SUFFIX).
            tracing::warn!(dir = %entry.path().display(), "not loading a stray replica's dir (kept for inspection)");
            continue;
        }
        if is_dir && name.ends_with(DELETED_DIR_SUFFIX) {
            // A deleted partition whose removal a crash cut short.
            let path = entry.path();
            std::fs::remove_dir_all(&path).map_err(|e| io_err(&path, e))?;
            tracing::info!(dir = %path.display(), "removed the dir of a deleted partition");
            continue;
        }
        let Some((topic, partition)) = name.rsplit_once('-') else {
            continue;
        };
        let Ok(partition) = partition.parse::<i32>() else {
            continue;
        };
        if !is_dir
            || !(0..limits::PARTITIONS_PER_TOPIC_MAX).contains(&partition)
            || validate_topic_name(topic).is_err()
        {
            tracing::warn!(entry = %name, "ignoring unexpected entry in the data dir");
            continue;
        }
        if remove_if_incomplete(&entry.path())? {
            continue;
        }
        found
            .entry(topic.to_string())
            .or_default()
            .push((partition, entry.path()));
    }
    Ok(found)
}

/// The offsets of a checkpoint file; none (and a warning saying what follows) if unreadable.
fn read_checkpoint(path: &Path, unreadable: &str) -> Offsets {
    checkpoint::read(path).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "{unreadable}");
        Offsets::new()
    })
}

impl Broker {
    /// Partition count of an internal topic (`__consumer_offsets`, `__transaction_state`) as
    /// this broker knows it (the controller's image in a cluster), `None` if it does not exist.
    fn internal_partition_count(&self, topic: &str) -> Option<i32> {
        let count = if self.in_cluster() {
            self.cluster.image().topics.get(topic)?.partitions.len()
        } else {
            self.topic(topic)?.partitions.len()
        };
        i32::try_from(count).ok().filter(|&n| n > 0)
    }

    /// Every local replica of `topic`, by index.
    fn local_partitions(&self, topic: &str) -> Vec<(i32, Arc<Partition>)> {
        self.topic(topic)
            .map(|t| {
                t.partitions
                    .iter()
                    .map(|(&i, p)| (i, Arc::clone(p)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl crate::group::Host for Broker {
    fn offsets_partition_count(&self) -> Option<i32> {
        self.internal_partition_count(OFFSETS_TOPIC)
    }

    fn offsets_partition(&self, index: i32) -> Option<Arc<Partition>> {
        self.partition(OFFSETS_TOPIC, index)
    }

    fn offsets_partitions(&self) -> Vec<(i32, Arc<Partition>)> {
        self.local_partitions(OFFSETS_TOPIC)
    }

    fn min_insync_replicas(&self) -> i32 {
        self.config.replication.min_insync_replicas
    }

    fn group_config(&self) -> &crate::config::GroupConfig {
        &self.config.group
    }
}

impl crate::txn::Host for Broker {
    fn txn_partition_count(&self) -> Option<i32> {
        self.internal_partition_count(crate::txn::TRANSACTION_STATE_TOPIC)
    }

    fn txn_partition(&self, index: i32) -> Option<Arc<Partition>> {
        self.partition(crate::txn::TRANSACTION_STATE_TOPIC, index)
    }

    fn txn_partitions(&self) -> Vec<(i32, Arc<Partition>)> {
        self.local_partitions(crate::txn::TRANSACTION_STATE_TOPIC)
    }

    fn data_partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.partition(topic, index)
    }

    fn leader_of(&self, topic: &str, index: i32) -> Option<i32> {
        if !self.in_cluster() {
            return None;
        }
        let image = self.cluster.image();
        let leader = image.topics.get(topic)?.partitions.get(&index)?.leader_id;
        (leader >= 0).then_some(leader)
    }

    fn send_markers(
        &self,
        node_id: i32,
        request: kafka_protocol::messages::WriteTxnMarkersRequest,
    ) -> crate::cluster::MarkersFuture {
        self.cluster.write_txn_markers(node_id, request)
    }

    fn partition_exists(&self, topic: &str, index: i32) -> bool {
        Broker::partition_exists(self, topic, index)
    }

    fn next_producer_id(&self) -> Result<i64, String> {
        self.producer_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_id()
            .map_err(|e| e.to_string())
    }

    fn min_insync_replicas(&self) -> i32 {
        self.config.replication.min_insync_replicas
    }

    fn txn_config(&self) -> &crate::config::TxnConfig {
        &self.config.txn
    }

    fn offsets_marker_written(&self, index: i32, producer_id: i64, commit: bool) {
        self.groups.txn_marker_written(index, producer_id, commit);
    }
}

/// In a cluster: the controller's image applied to the local replicas.
impl Broker {
    /// Applies a new image to the local replicas: creates the replicas assigned here, changes
    /// roles whose leader or epoch moved. Returns the changes the fetchers must follow. The
    /// topics the image no longer has (or has under another topic id) were taken away first
    /// ([`Self::strays`], their fetchers stopped, then [`Self::remove_strays`]).
    /// `requested_at`: when the image was asked for (an image older than the leader's last accepted
    /// ISR change does not overwrite it).
    pub fn apply_image(
        &self,
        image: &ClusterImage,
        requested_at: std::time::Instant,
    ) -> Vec<RoleChange> {
        if self
            .cluster
            .stopping
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Vec::new();
        }
        let node_id = self.node_id();
        let mut changes = Vec::new();
        self.cluster.saw_topics(image.topics.values().map(|t| t.id));
        for (name, topic) in &image.topics {
            for (&index, view) in &topic.partitions {
                let local = if view.replicas.contains(&node_id) {
                    match self.ensure_replica(name, topic.id, index) {
                        Ok(partition) => Some(partition),
                        Err(e) => {
                            tracing::error!(topic = %name, partition = index, error = %e, "cannot create replica");
                            None
                        }
                    }
                } else {
                    self.partition(name, index)
                };
                let Some(partition) = local else { continue };
                if partition.topic_id != topic.id {
                    tracing::warn!(topic = %name, partition = index, "local replica has another topic id; ignoring it");
                    continue;
                }
                let (_, _, local_epoch) = partition.leadership();
                if view.leader_epoch < local_epoch {
                    // An older image than what we already acted on: ignore (leader epochs never go
                    // back, see `invariant::Invariant::LeaderEpochNonDecreasing`).
                    continue;
                }
                // -1: no leader to follow (none elected, or this node is no longer a replica and
                // stops); node ids are never negative.
                let leader_id = if view.leader_id >= 0 && view.replicas.contains(&node_id) {
                    view.leader_id
                } else {
                    -1
                };
                if leader_id == node_id {
                    match partition.become_leader(
                        view.leader_epoch,
                        view.replicas.clone(),
                        view.isr.clone(),
                        requested_at,
                    ) {
                        Ok(true) => changes.push(RoleChange::Lead(partition)),
                        Ok(false) => {}
                        Err(e) => {
                            tracing::error!(topic = %name, partition = index, error = %e, "cannot become leader")
                        }
                    }
                } else if partition.become_follower(
                    leader_id,
                    view.leader_epoch,
                    view.replicas.clone(),
                    view.isr.clone(),
                ) {
                    changes.push(if leader_id < 0 {
                        RoleChange::Stop(partition)
                    } else {
                        RoleChange::Follow {
                            partition,
                            leader_id,
                            leader_epoch: view.leader_epoch,
                        }
                    });
                }
            }
            self.apply_topic_configs(name, &topic.configs);
        }
        changes
    }

    /// The local topics the controller's `image` does not have, or has under another id (none
    /// once stopping). Their fetchers must stop before [`Self::remove_strays`] takes them away.
    pub fn strays(&self, image: &ClusterImage) -> Vec<Arc<Topic>> {
        if self
            .cluster
            .stopping
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Vec::new();
        }
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|local| {
                image
                    .topics
                    .get(&local.name)
                    .is_none_or(|t| t.id != local.id)
            })
            .cloned()
            .collect()
    }

    /// Takes away the local replicas of `strays` (their fetchers stopped): a topic an earlier
    /// image since this broker registered had was deleted by the controller, and its replicas
    /// are deleted; any other (loaded from disk, never in an image) is a stray replica, set
    /// aside in `-stray` dirs as Kafka 3.7+ does (see [`STRAY_DIR_SUFFIX`]).
    pub fn remove_strays(&self, strays: &[Arc<Topic>]) {
        for stray in strays {
            let name = &stray.name;
            if self.cluster.saw_topic(stray.id) {
                match self.delete_topic(name) {
                    Ok(id) => {
                        tracing::info!(topic = %name, topic_id = %id, "deleted the replicas of a topic the controller deleted")
                    }
                    Err(e) => {
                        tracing::error!(topic = %name, error = %e, "cannot delete the replicas of a deleted topic")
                    }
                }
                continue;
            }
            match self.retire_topic(name, STRAY_DIR_SUFFIX) {
                Ok((topic, dirs)) => {
                    tracing::warn!(topic = %name, topic_id = %topic.id, dirs = ?dirs, "the controller does not know this topic: its replicas are kept as stray dirs, not loaded")
                }
                Err(e) => {
                    tracing::error!(topic = %name, error = %e, "cannot set aside the replicas of a stray topic")
                }
            }
        }
    }
}

/// Topics' configs and retention.
impl Broker {
    /// Replaces topic `name`'s configs (validated by the caller): stored durably, then applied to
    /// every partition's log.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: TopicConfigs,
    ) -> Result<(), AlterConfigsError> {
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        let topic = topics
            .get(name)
            .ok_or_else(|| AlterConfigsError::Unknown(name.to_string()))?;
        if topic.configs == configs {
            return Ok(());
        }
        if !self.in_cluster() {
            let others = topics.iter().filter(|(n, _)| n.as_str() != name);
            let others = others.map(|(n, t)| (n.as_str(), &t.configs));
            configs::persist(&self.config.data_dir, others.chain([(name, &configs)]))
                .map_err(StateError::from)?;
        }
        let changed = Arc::new(Topic {
            name: topic.name.clone(),
            id: topic.id,
            partitions: topic.partitions.clone(),
            configs,
        });
        let log_config = crate::topic_config::log_config(self.config.log, name, &changed.configs);
        for partition in changed.partitions.values() {
            partition.set_log_config(log_config);
        }
        tracing::info!(topic = %name, configs = ?changed.configs, "topic configs changed");
        topics.insert(name.to_string(), changed);
        Ok(())
    }

    /// In a cluster: applies the controller's configs of topic `name` to its local replicas
    /// (nothing when this broker has none of them, or they did not change).
    pub fn apply_topic_configs(&self, name: &str, configs: &TopicConfigs) {
        let changed = self.topic(name).is_some_and(|t| &t.configs != configs);
        if changed {
            if let Err(e) = self.set_topic_configs(name, configs.clone()) {
                tracing::warn!(topic = name, error = %e, "cannot apply the topic's configs");
            }
        }
    }

    /// One retention pass over every partition at wall-clock time `now_ms` (the
    /// `log.retention.check.interval.ms` task); returns the segments deleted.
    pub fn delete_retained(&self, now_ms: i64) -> usize {
        let mut segments = 0;
        for partition in self.partitions() {
            match partition.delete_retained(now_ms) {
                Ok(deleted) => segments += deleted.iter().map(|d| d.segments).sum::<usize>(),
                Err(e) => {
                    tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "retention failed")
                }
            }
        }
        segments
    }

    /// One log cleaner pass over every partition of a compacted topic at wall-clock `now_ms`
    /// (the `log.cleaner.backoff.ms` task); returns the segments cleaned.
    pub fn clean_logs(&self, now_ms: i64) -> usize {
        let mut segments = 0;
        for partition in self.partitions() {
            if !partition.log_config().compact {
                continue;
            }
            match partition.clean(now_ms) {
                Ok(cleaned) => segments += cleaned.segments,
                Err(e) => {
                    tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "log cleaning failed")
                }
            }
        }
        segments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_broker(data_dir: &Path) -> Broker {
        let config = Config::resolve(
            crate::config::FileConfig::default(),
            Some(1),
            Some("127.0.0.1:0".into()),
            Some(data_dir.to_owned()),
        )
        .expect("config");
        Broker::open(config, "127.0.0.1".into(), 9092)
            .expect("open")
            .0
    }

    #[test]
    fn startup_removes_a_partition_dir_a_creation_cannot_have_finished() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        // Left by a creation cut short: segment files, no partition.metadata, no record.
        let half = data.join("half-0");
        std::fs::create_dir_all(&half).expect("mkdir");
        std::fs::write(half.join("00000000000000000000.log"), b"").expect("segment");
        std::fs::write(half.join("00000000000000000000.index"), b"").expect("index");
        std::fs::write(half.join("partition.metadata.tmp"), b"").expect("tmp");
        // Records without partition.metadata: kept, whatever else it lacks.
        let records = data.join("records-0");
        {
            let (mut log, _) =
                Log::open(&records, crate::config::LogConfig::default(), 0, false).expect("log");
            let batch = crate::wire::batch::build_batch(0, 1000, &[b"kept"]);
            let spans = crate::wire::batch::validate_records(&batch, 1 << 20).expect("valid");
            log.append(&batch, &spans, 0).expect("append");
            log.close().expect("close");
        }
        let broker = open_broker(&data);
        assert!(broker.topic("half").is_none());
        assert!(!half.exists(), "the incomplete dir is removed");
        let kept = broker
            .partition("records", 0)
            .expect("the dir with records is kept");
        assert_eq!(kept.log_end_offset(), 1);
    }

    #[test]
    fn a_failed_topic_creation_removes_the_dirs_it_made() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let broker = open_broker(&data);
        // Partition 2's dir cannot be made: a file holds its name.
        std::fs::write(data.join("x-2"), b"in the way").expect("file");
        assert!(matches!(
            broker.create_topic("x", 4, false),
            Err(CreateTopicError::State(_))
        ));
        assert!(broker.topic("x").is_none());
        for index in [0, 1, 3] {
            assert!(
                !data.join(format!("x-{index}")).exists(),
                "x-{index} left behind"
            );
        }
        assert!(data.join("x-2").is_file(), "what it did not make stays");
        assert!(broker.create_topic("y", 2, false).is_ok());
    }

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1_a-b").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é"] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }
}
