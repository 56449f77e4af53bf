//! The broker's state: its topics and partitions on disk, startup recovery, checkpoints and
//! graceful shutdown. No sockets and no protocol here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use uuid::Uuid;

use crate::config::Config;
use crate::limits;
use crate::log::checkpoint::{self, Offsets, RECOVERY_POINT_FILE_NAME};
use crate::log::epoch::EpochCache;
use crate::log::{sync_dir, Log, LogError};
use crate::partition::{Partition, Signals};

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

/// A topic: its id and the partitions this broker holds a replica of (all of them on a single
/// node; in a cluster, those the controller assigned here).
#[derive(Debug)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub partitions: BTreeMap<i32, Arc<Partition>>,
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
    /// Producer ids handed out by InitProducerId.
    pub producer_ids: Mutex<crate::producer::ProducerIds>,
    /// Per-stage request times, written to [`crate::metrics::METRICS_FILE_NAME`] at shutdown.
    pub metrics: Arc<crate::metrics::RequestMetrics>,
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
        let recovery_points = match checkpoint::read(&checkpoint_path) {
            Ok(points) => points,
            Err(e) => {
                tracing::warn!(error = %e, "recovery-point checkpoint unreadable: recovering every partition from offset 0");
                Offsets::new()
            }
        };
        let high_watermarks = match checkpoint::read(&data_dir.join(HIGH_WATERMARK_FILE_NAME)) {
            Ok(points) => points,
            Err(e) => {
                tracing::warn!(error = %e, "HW checkpoint unreadable: HWs start at 0");
                Offsets::new()
            }
        };
        let single_node = config.controller.is_none();
        let producer_ids = crate::producer::ProducerIds::open(&data_dir, config.node_id)?;
        // Group partition directories by topic.
        let mut found: BTreeMap<String, Vec<(i32, PathBuf)>> = BTreeMap::new();
        for entry in std::fs::read_dir(&data_dir).map_err(|e| io_err(&data_dir, e))? {
            let entry = entry.map_err(|e| io_err(&data_dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
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
            found
                .entry(topic.to_string())
                .or_default()
                .push((partition, entry.path()));
        }
        let signals = Signals::new();
        let mut topics = BTreeMap::new();
        for (name, mut dirs) in found {
            dirs.sort();
            // A single node owns every partition 0..count (a missing one is recreated empty);
            // in a cluster only the replicas found here exist.
            let indexes: Vec<i32> = if single_node {
                (0..dirs.last().map_or(0, |(p, _)| p + 1)).collect()
            } else {
                dirs.iter().map(|(p, _)| *p).collect()
            };
            let mut topic_id = None;
            for (_, dir) in &dirs {
                if let Some(id) = read_partition_metadata(dir)? {
                    topic_id = Some(id);
                    break;
                }
            }
            let topic_id = match topic_id {
                Some(id) => id,
                None if single_node => Uuid::new_v4(),
                None => {
                    // A replica whose creation was cut short (its topic id never written): leave
                    // it to the controller's image, which reopens it under the cluster's topic id.
                    tracing::warn!(topic = %name, "no partition.metadata: waiting for the controller to name this topic");
                    continue;
                }
            };
            let mut partitions = BTreeMap::new();
            for index in indexes {
                let dir = data_dir.join(format!("{name}-{index}"));
                let recovery_point = recovery_points
                    .get(&(name.clone(), index))
                    .copied()
                    .unwrap_or(0);
                let (log, outcome) = Log::open(&dir, config.log, recovery_point, clean_shutdown)?;
                write_partition_metadata(&dir, topic_id)?;
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
                let high_watermark = high_watermarks
                    .get(&(name.clone(), index))
                    .copied()
                    .unwrap_or(0);
                partitions.insert(
                    index,
                    Arc::new(Partition::new(
                        name.clone(),
                        topic_id,
                        index,
                        log,
                        epochs,
                        config.node_id,
                        Arc::clone(&signals),
                        single_node,
                        high_watermark,
                    )),
                );
            }
            topics.insert(
                name.clone(),
                Arc::new(Topic {
                    name,
                    id: topic_id,
                    partitions,
                }),
            );
        }
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
            producer_ids: Mutex::new(producer_ids),
            metrics: Arc::default(),
        };
        // Recovered logs are fsynced: their recovery points are their LEOs now.
        broker.write_checkpoint()?;
        match std::fs::remove_file(&marker) {
            Ok(()) => sync_dir(&data_dir)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&marker, e)),
        }
        Ok((broker, report))
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
        let (log, _) = Log::open(&dir, self.config.log, 0, false).map_err(StateError::from)?;
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
            }),
        );
        tracing::info!(topic, partition = index, topic_id = %topic_id, "created replica");
        Ok(partition)
    }

    /// Creates a topic (or only validates the request when `validate_only`).
    pub fn create_topic(
        &self,
        name: &str,
        partition_count: i32,
        validate_only: bool,
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
            }));
        }
        let mut partitions = BTreeMap::new();
        for index in 0..partition_count {
            let dir = self.config.data_dir.join(format!("{name}-{index}"));
            let (log, _) = Log::open(&dir, self.config.log, 0, true).map_err(StateError::from)?;
            write_partition_metadata(&dir, topic_id)?;
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
        sync_dir(&self.config.data_dir).map_err(StateError::from)?;
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id: topic_id,
            partitions,
        });
        topics.insert(name.to_string(), Arc::clone(&topic));
        tracing::info!(topic = %name, partitions = partition_count, topic_id = %topic_id, "created topic");
        Ok(topic)
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
        self.write_offsets_checkpoint(RECOVERY_POINT_FILE_NAME, |p| p.recovery_point())
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
    pub fn shutdown(&self) -> Result<(), StateError> {
        for partition in self.partitions() {
            partition.close()?;
        }
        self.write_checkpoint()?;
        self.write_high_watermark_checkpoint()?;
        let marker = self.config.data_dir.join(CLEAN_SHUTDOWN_FILE_NAME);
        let file = std::fs::File::create(&marker).map_err(|e| io_err(&marker, e))?;
        file.sync_all().map_err(|e| io_err(&marker, e))?;
        sync_dir(&self.config.data_dir)?;
        self.write_metrics();
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
    Ok(EpochCache::rebuilt(dir, log.scan_epochs()?)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1_a-b").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é"] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }
}
