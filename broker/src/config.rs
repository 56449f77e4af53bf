//! Broker configuration: a TOML file with Kafka-like dotted keys, overridden by the command line.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::limits;

/// Errors loading or validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is larger than {max} bytes")]
    TooLarge { path: PathBuf, max: u64 },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("`{key}` is required (on the command line or in the config file)")]
    Missing { key: &'static str },
}

/// The settings of the config file. Every key is optional; unknown keys are an error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    #[serde(rename = "node.id")]
    pub node_id: Option<i32>,
    /// Address to listen on, `host:port`.
    #[serde(rename = "listeners")]
    pub listen: Option<String>,
    #[serde(rename = "log.dir")]
    pub data_dir: Option<PathBuf>,
    #[serde(rename = "num.partitions")]
    pub num_partitions: i32,
    #[serde(rename = "auto.create.topics.enable")]
    pub auto_create_topics_enable: bool,
    #[serde(rename = "segment.bytes")]
    pub segment_bytes: u64,
    #[serde(rename = "index.interval.bytes")]
    pub index_interval_bytes: u32,
    #[serde(rename = "flush.messages")]
    pub flush_messages: u64,
    /// A bug switch: see `LogConfig::producer_batches_retained`.
    #[serde(rename = "producer.state.batches.retained")]
    pub producer_state_batches_retained: usize,
    /// A bug switch: see `LogConfig::roll_syncs_dir`.
    #[serde(rename = "log.roll.dir.fsync")]
    pub log_roll_dir_fsync: bool,
    /// A bug switch: see `LogConfig::recovery_cuts_torn_tail`.
    #[serde(rename = "log.recovery.truncate.torn.tail")]
    pub log_recovery_truncate_torn_tail: bool,
    #[serde(rename = "flush.ms")]
    pub flush_interval_ms: u64,
    #[serde(rename = "message.max.bytes")]
    pub message_max_bytes: u32,
    #[serde(rename = "advertised.listener")]
    pub advertised_listener: Option<String>,
    /// `leader-epoch` (KIP-101/279, default) or `high-watermark` (pre-KIP-101).
    #[serde(rename = "replication.truncation")]
    pub replication_truncation: String,
    /// `high-watermark` (default) or `log-end` (a bug switch: see `ReplicationConfig`).
    #[serde(rename = "consumer.fetch.bound")]
    pub consumer_fetch_bound: String,
    /// `wait` (default) or `answer` (a bug switch: see `ReplicationConfig::metadata_waits_for_image`).
    #[serde(rename = "metadata.before.image")]
    pub metadata_before_image: String,
    #[serde(rename = "min.insync.replicas")]
    pub min_insync_replicas: i32,
    #[serde(rename = "replica.lag.time.max.ms")]
    pub replica_lag_time_max_ms: u64,
    #[serde(rename = "unclean.leader.election.enable")]
    pub unclean_leader_election_enable: bool,
    #[serde(rename = "default.replication.factor")]
    pub default_replication_factor: i16,
    #[serde(rename = "broker.session.timeout.ms")]
    pub broker_session_timeout_ms: u64,
    #[serde(rename = "broker.heartbeat.interval.ms")]
    pub broker_heartbeat_interval_ms: u64,
    #[serde(rename = "replica.fetch.wait.max.ms")]
    pub replica_fetch_wait_max_ms: u64,
    #[serde(rename = "replica.fetch.min.bytes")]
    pub replica_fetch_min_bytes: i32,
    #[serde(rename = "replica.high.watermark.checkpoint.interval.ms")]
    pub replica_high_watermark_checkpoint_interval_ms: u64,
    // Group coordinator (see `GroupConfig`).
    #[serde(rename = "offsets.topic.num.partitions")]
    pub offsets_topic_num_partitions: i32,
    #[serde(rename = "offsets.topic.replication.factor")]
    pub offsets_topic_replication_factor: i16,
    #[serde(rename = "offsets.commit.timeout.ms")]
    pub offsets_commit_timeout_ms: u64,
    /// `-1` (default) or `1`: see `GroupConfig::commit_required_acks`.
    #[serde(rename = "offsets.commit.required.acks")]
    pub offsets_commit_required_acks: i16,
    /// `at-commit` (default) or `immediately`: see `GroupConfig::txn_offsets_immediately`.
    #[serde(rename = "transaction.offsets.visible")]
    pub transaction_offsets_visible: String,
    #[serde(rename = "offset.metadata.max.bytes")]
    pub offset_metadata_max_bytes: usize,
    #[serde(rename = "group.min.session.timeout.ms")]
    pub group_min_session_timeout_ms: i32,
    #[serde(rename = "group.max.session.timeout.ms")]
    pub group_max_session_timeout_ms: i32,
    #[serde(rename = "group.initial.rebalance.delay.ms")]
    pub group_initial_rebalance_delay_ms: u64,
    // Transaction coordinator (see `TxnConfig`).
    #[serde(rename = "transaction.state.log.num.partitions")]
    pub transaction_state_log_num_partitions: i32,
    #[serde(rename = "transaction.state.log.replication.factor")]
    pub transaction_state_log_replication_factor: i16,
    #[serde(rename = "transaction.max.timeout.ms")]
    pub transaction_max_timeout_ms: i32,
    #[serde(rename = "transaction.partition.verification.enable")]
    pub transaction_partition_verification_enable: bool,
    // Connections (see `ConnectionConfig`).
    #[serde(rename = "connections.max.idle.ms")]
    pub connections_max_idle_ms: u64,
    #[serde(rename = "max.connections")]
    pub max_connections: i32,
    #[serde(rename = "max.connections.per.ip")]
    pub max_connections_per_ip: i32,
    #[serde(rename = "max.connections.per.ip.overrides")]
    pub max_connections_per_ip_overrides: String,
    #[serde(rename = "socket.request.read.timeout.ms")]
    pub socket_request_read_timeout_ms: u64,
    /// A test's planted crash (see [`Config::debug_crash_after_ms`]); 0 = never.
    #[serde(rename = "debug.crash.after.ms")]
    pub debug_crash_after_ms: u64,
    /// A test's planted hang (see [`Config::debug_txn_offset_commits_unanswered`]); 0 = never.
    #[serde(rename = "debug.txn.offset.commit.unanswered")]
    pub debug_txn_offset_commit_unanswered: u64,
    // Retention (see `LogConfig`): Kafka's broker defaults for every topic.
    #[serde(rename = "log.retention.ms")]
    pub log_retention_ms: i64,
    #[serde(rename = "log.retention.bytes")]
    pub log_retention_bytes: i64,
    #[serde(rename = "log.roll.ms")]
    pub log_roll_ms: i64,
    #[serde(rename = "log.retention.check.interval.ms")]
    pub log_retention_check_interval_ms: u64,
    /// Every topic's `cleanup.policy` (`delete`, `compact` or both, comma-separated) unless
    /// the topic has its own; the internal topics are always `compact`.
    #[serde(rename = "log.cleanup.policy")]
    pub log_cleanup_policy: String,
    // Compaction (see `LogConfig`): Kafka's broker defaults for every compacted topic.
    #[serde(rename = "log.cleaner.backoff.ms")]
    pub log_cleaner_backoff_ms: u64,
    #[serde(rename = "log.cleaner.delete.retention.ms")]
    pub log_cleaner_delete_retention_ms: i64,
    #[serde(rename = "log.cleaner.min.compaction.lag.ms")]
    pub log_cleaner_min_compaction_lag_ms: i64,
    #[serde(rename = "log.cleaner.min.cleanable.ratio")]
    pub log_cleaner_min_cleanable_ratio: f64,
    /// A bug switch: see `LogConfig::cleaner_key_hash_bytes`.
    #[serde(rename = "log.cleaner.key.hash.bytes")]
    pub log_cleaner_key_hash_bytes: u8,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            node_id: None,
            listen: None,
            data_dir: None,
            num_partitions: 1,
            auto_create_topics_enable: true,
            segment_bytes: 1024 * 1024 * 1024,
            index_interval_bytes: 4096,
            flush_messages: 0,
            producer_state_batches_retained: limits::PRODUCER_BATCHES_KEPT,
            log_roll_dir_fsync: true,
            log_recovery_truncate_torn_tail: true,
            flush_interval_ms: 0,
            message_max_bytes: 1_048_588,
            advertised_listener: None,
            replication_truncation: "leader-epoch".to_string(),
            consumer_fetch_bound: "high-watermark".to_string(),
            metadata_before_image: "wait".to_string(),
            min_insync_replicas: 1,
            replica_lag_time_max_ms: 30_000,
            unclean_leader_election_enable: false,
            default_replication_factor: 1,
            broker_session_timeout_ms: 9_000,
            broker_heartbeat_interval_ms: 1_000,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_min_bytes: 1,
            replica_high_watermark_checkpoint_interval_ms: 5_000,
            offsets_topic_num_partitions: 8,
            offsets_topic_replication_factor: 3,
            offsets_commit_timeout_ms: 5_000,
            offsets_commit_required_acks: -1,
            transaction_offsets_visible: "at-commit".to_string(),
            offset_metadata_max_bytes: 4096,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_initial_rebalance_delay_ms: 3_000,
            transaction_state_log_num_partitions: 8,
            transaction_state_log_replication_factor: 3,
            transaction_max_timeout_ms: 900_000,
            transaction_partition_verification_enable: true,
            connections_max_idle_ms: 600_000,
            max_connections: i32::MAX,
            max_connections_per_ip: i32::MAX,
            max_connections_per_ip_overrides: String::new(),
            socket_request_read_timeout_ms: 30_000,
            debug_crash_after_ms: 0,
            debug_txn_offset_commit_unanswered: 0,
            log_retention_ms: 7 * 24 * 3_600_000,
            log_retention_bytes: -1,
            log_roll_ms: 7 * 24 * 3_600_000,
            log_retention_check_interval_ms: 300_000,
            log_cleanup_policy: "delete".to_string(),
            log_cleaner_backoff_ms: 15_000,
            log_cleaner_delete_retention_ms: 24 * 3_600_000,
            log_cleaner_min_compaction_lag_ms: 0,
            log_cleaner_min_cleanable_ratio: 0.5,
            log_cleaner_key_hash_bytes: 0,
        }
    }
}

impl FileConfig {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let metadata = std::fs::metadata(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        if metadata.len() > limits::CONFIG_FILE_BYTES_MAX {
            return Err(ConfigError::TooLarge {
                path: path.to_owned(),
                max: limits::CONFIG_FILE_BYTES_MAX,
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses config text; the error message names unknown keys, and the line at fault (with
    /// its text, so a wrong type names its key too).
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| {
            let Some(span) = e.span() else {
                return e.message().to_string();
            };
            let at = span.start.min(text.len());
            let line_number = text.as_bytes()[..at]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            let line = text.lines().nth(line_number - 1).unwrap_or_default().trim();
            format!("line {line_number} ({line}): {}", e.message())
        })
    }
}

/// Log settings of a partition: the broker's, with its topic's configs over them
/// (`topic_config::log_config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub index_interval_bytes: u32,
    /// fsync after this many messages since the last flush; 0 = never by count.
    pub flush_messages: u64,
    /// `retention.ms`: a segment whose newest timestamp is older than this is deleted; -1 = never.
    pub retention_ms: i64,
    /// `retention.bytes`: the oldest segments are deleted while the log stays at least this
    /// large without them; -1 = no bound.
    pub retention_bytes: i64,
    /// `segment.ms`: an append rolls the active segment once it is this old.
    pub segment_ms: i64,
    /// `producer.state.batches.retained` (kaos; 1..=5, default 5): how many of an idempotent
    /// producer's last batches per partition a leader compares a batch with to recognise a retry
    /// (Kafka keeps 5, `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`, since KAFKA-5494 in 1.0, which
    /// let idempotent producers keep 5 requests in flight). `1` is a bug switch: Kafka 0.11's
    /// broker, which remembered only the last batch — a retry of any earlier batch in flight is
    /// not recognised and is refused OUT_OF_ORDER_SEQUENCE_NUMBER.
    pub producer_batches_retained: usize,
    /// `cleanup.policy` includes `compact`: the log cleaner keeps the latest record per key.
    pub compact: bool,
    /// `cleanup.policy` includes `delete`: `retention.ms` and `retention.bytes` apply.
    pub delete: bool,
    /// `delete.retention.ms`: a tombstone (a null value) is kept this long after the newest
    /// record of its segment before the cleaner removes it.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: a segment whose newest record is younger than this is not
    /// cleaned (nor any later one).
    pub min_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio` in thousandths: the cleaner cleans a log once this share of
    /// its cleanable bytes was not cleaned yet.
    pub min_cleanable_dirty_ratio_permille: u32,
    /// `log.cleaner.key.hash.bytes` (kaos; 0, the default, or 1..=8): a bug switch. 0 keys the
    /// cleaner's offset map by the whole record key. N keys it by N bytes of a 64-bit hash of
    /// the key, as Kafka's `SkimpyOffsetMap` keys it by a hash (16 bytes of MD5) standing for the
    /// key: two keys whose hashes agree are one key to the cleaner, which then removes the older
    /// one's latest record as superseded by the other's. At 16 bytes Kafka takes that risk by
    /// design; at 1 byte it is the common case, and the latest value of most keys is lost.
    pub cleaner_key_hash_bytes: u8,
    /// `log.roll.dir.fsync` (kaos; default true): a roll fsyncs the partition directory, so that
    /// the new segment's directory entry is durable before anything fsynced into the segment is
    /// acknowledged. `false` is a bug switch: Kafka before 3.0 (KAFKA-3968, fixed by fsyncing the
    /// parent directory at a new segment's first flush) — a power loss can take a rolled segment
    /// file away with every acknowledged, fsynced message in it.
    pub roll_syncs_dir: bool,
    /// `log.recovery.truncate.torn.tail` (kaos; default true): recovery cuts the file at the first
    /// torn or corrupt batch. `false` is a bug switch: a recovery that stops reading there but
    /// leaves the torn bytes in the file, so the next appends land behind them (the torn-tail
    /// class of amelie#17, dittofs#2230, cqlite#1390): a reader meets the torn batch mid-log, and
    /// the next recovery stops at it again and drops everything appended since.
    pub recovery_cuts_torn_tail: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        let file = FileConfig::default();
        LogConfig::of(&file)
    }
}

impl LogConfig {
    fn of(file: &FileConfig) -> LogConfig {
        LogConfig {
            segment_bytes: file.segment_bytes,
            index_interval_bytes: file.index_interval_bytes,
            flush_messages: file.flush_messages,
            retention_ms: file.log_retention_ms,
            retention_bytes: file.log_retention_bytes,
            segment_ms: file.log_roll_ms,
            producer_batches_retained: file.producer_state_batches_retained,
            compact: policy_has(&file.log_cleanup_policy, "compact"),
            delete: policy_has(&file.log_cleanup_policy, "delete"),
            delete_retention_ms: file.log_cleaner_delete_retention_ms,
            min_compaction_lag_ms: file.log_cleaner_min_compaction_lag_ms,
            min_cleanable_dirty_ratio_permille: ratio_permille(
                file.log_cleaner_min_cleanable_ratio,
            ),
            cleaner_key_hash_bytes: file.log_cleaner_key_hash_bytes,
            roll_syncs_dir: file.log_roll_dir_fsync,
            recovery_cuts_torn_tail: file.log_recovery_truncate_torn_tail,
        }
    }
}

/// How a follower finds where its log diverges from the leader's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Pre-KIP-101: truncate to the own HW, then fetch (can lose or fork acknowledged data).
    HighWatermark,
    /// KIP-101 + KIP-279: ask the leader OffsetForLeaderEpoch until the epochs agree.
    LeaderEpoch,
}

/// How far a consumer's Fetch may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchBound {
    /// Kafka: consumers read below the HW (`read_uncommitted`) or the last stable offset
    /// (`read_committed`); only followers read to the log end.
    HighWatermark,
    /// A bug switch: consumers read to the log end, as followers do — records no follower has
    /// yet, which a leader change truncates. No Kafka release had it as a setting; it is Kafka's
    /// follower isolation (`FetchIsolation.LOG_END` in `ReplicaManager`) given to consumers, the
    /// read of uncommitted data the HW exists to prevent (the checker's `uncommitted_read`).
    LogEnd,
}

/// Replication settings (broker and controller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicationConfig {
    pub truncation: Truncation,
    /// `consumer.fetch.bound`: `high-watermark` (default) or `log-end` (a bug switch).
    pub consumer_fetch_bound: FetchBound,
    /// `metadata.before.image` (kaos): `wait` (the default) holds a client's Metadata request
    /// that reaches a broker of a cluster before it holds the controller's first image (just
    /// started or restarted) until it has it (at most `METADATA_BEFORE_IMAGE_WAIT_MS`), as Kafka
    /// serves no client before its metadata caught up. `answer` (a bug switch) answers at once
    /// from what it has: no brokers, not even itself — kaos-broker before 2026-12-03, and the
    /// class of a Kafka broker answering from a stale or empty metadata cache after a restart
    /// (ZooKeeper-mode brokers served Metadata from their cache before the controller's first
    /// UpdateMetadata). librdkafka decommissions every broker such an answer leaves out, its
    /// coordinators with them: an exactly-once pipeline stalls (librdkafka issues #5511, #5456;
    /// `pipeline_output_min_percent` unmet in `eos-pipeline-coordinator-kill`).
    pub metadata_waits_for_image: bool,
    pub min_insync_replicas: i32,
    pub replica_lag_time_max_ms: u64,
    pub unclean_leader_election_enable: bool,
    pub default_replication_factor: i16,
    pub broker_session_timeout_ms: u64,
    pub broker_heartbeat_interval_ms: u64,
    pub replica_fetch_wait_max_ms: u64,
    /// A follower's fetch waits (up to `replica_fetch_wait_max_ms`) until the leader has this
    /// many bytes for it: larger values batch replication and let followers lag behind.
    pub replica_fetch_min_bytes: i32,
    pub high_watermark_checkpoint_interval_ms: u64,
}

impl ReplicationConfig {
    /// Validates the replication keys of a config file.
    pub fn resolve(file: &FileConfig) -> Result<ReplicationConfig, ConfigError> {
        let truncation = match file.replication_truncation.as_str() {
            "leader-epoch" => Truncation::LeaderEpoch,
            "high-watermark" => Truncation::HighWatermark,
            other => {
                return Err(ConfigError::Invalid {
                    key: "replication.truncation",
                    message: format!(
                        "{other:?} is neither \"leader-epoch\" nor \"high-watermark\""
                    ),
                })
            }
        };
        let consumer_fetch_bound = match file.consumer_fetch_bound.as_str() {
            "high-watermark" => FetchBound::HighWatermark,
            "log-end" => FetchBound::LogEnd,
            other => {
                return Err(ConfigError::Invalid {
                    key: "consumer.fetch.bound",
                    message: format!("{other:?} is neither \"high-watermark\" nor \"log-end\""),
                })
            }
        };
        let metadata_waits_for_image = match file.metadata_before_image.as_str() {
            "wait" => true,
            "answer" => false,
            other => {
                return Err(ConfigError::Invalid {
                    key: "metadata.before.image",
                    message: format!("{other:?} is neither \"wait\" (the default) nor \"answer\""),
                })
            }
        };
        let positive = |key, value| in_range(key, value, 1..=limits::SETTING_MS_MAX);
        in_range(
            "min.insync.replicas",
            file.min_insync_replicas,
            1..=i32::from(limits::REPLICATION_FACTOR_MAX),
        )?;
        in_range(
            "default.replication.factor",
            file.default_replication_factor,
            1..=limits::REPLICATION_FACTOR_MAX,
        )?;
        Ok(ReplicationConfig {
            truncation,
            consumer_fetch_bound,
            metadata_waits_for_image,
            min_insync_replicas: file.min_insync_replicas,
            replica_lag_time_max_ms: positive(
                "replica.lag.time.max.ms",
                file.replica_lag_time_max_ms,
            )?,
            unclean_leader_election_enable: file.unclean_leader_election_enable,
            default_replication_factor: file.default_replication_factor,
            broker_session_timeout_ms: positive(
                "broker.session.timeout.ms",
                file.broker_session_timeout_ms,
            )?,
            broker_heartbeat_interval_ms: positive(
                "broker.heartbeat.interval.ms",
                file.broker_heartbeat_interval_ms,
            )?,
            replica_fetch_wait_max_ms: positive(
                "replica.fetch.wait.max.ms",
                file.replica_fetch_wait_max_ms,
            )?,
            replica_fetch_min_bytes: in_range(
                "replica.fetch.min.bytes",
                file.replica_fetch_min_bytes,
                1..=limits::REPLICA_FETCH_MIN_BYTES_MAX,
            )?,
            high_watermark_checkpoint_interval_ms: positive(
                "replica.high.watermark.checkpoint.interval.ms",
                file.replica_high_watermark_checkpoint_interval_ms,
            )?,
        })
    }
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        #[allow(clippy::unwrap_used)] // the defaults are valid (checked by a unit test)
        ReplicationConfig::resolve(&FileConfig::default()).unwrap()
    }
}

/// The validated configuration the broker runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub node_id: i32,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `advertised.listener` as (host, port); `None` advertises the bound listen address.
    pub advertised_listener: Option<(String, i32)>,
    pub num_partitions: i32,
    pub auto_create_topics_enable: bool,
    pub log: LogConfig,
    /// `log.retention.check.interval.ms`: how often retention deletes what it may.
    pub retention_check_interval_ms: u64,
    /// `log.cleaner.backoff.ms`: how often the log cleaner looks for a log to clean.
    pub cleaner_backoff_ms: u64,
    /// fsync every this many ms; 0 = never by interval.
    pub flush_interval_ms: u64,
    pub message_max_bytes: u32,
    /// The controller's address (`--controller`); `None` = single node, this broker leads everything.
    pub controller: Option<SocketAddr>,
    pub replication: ReplicationConfig,
    pub group: GroupConfig,
    pub txn: TxnConfig,
    pub connections: ConnectionConfig,
    /// `debug.crash.after.ms` (kaos only, for the harness's tests of a node that crashes on its
    /// own outside any fault): this many ms after the broker is ready, the first time it starts
    /// on its data dir (a marker file `debug-crashed` there remembers it), it stops as a violated
    /// invariant stops it: a `kaos-broker fatal: invariant …` line and exit code 71. Restarts
    /// serve normally. `None` (0, the default): never.
    pub debug_crash_after_ms: Option<u64>,
    /// `debug.txn.offset.commit.unanswered` (kaos only, for the tests of a client whose
    /// `send_offsets_to_transaction` hangs, as librdkafka's does in its issues #5511/#5456): the
    /// first this many TxnOffsetCommit requests the broker gets are carried out but never
    /// answered (no response, the connection left open: the request stays in flight until the
    /// client gives up on it). 0, the default: every request is answered.
    pub debug_txn_offset_commits_unanswered: u64,
}

/// Connection settings: Kafka's names and defaults, plus `socket.request.read.timeout.ms`
/// (kaos only: Kafka has no broker-side bound on how long one request may take to arrive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// `connections.max.idle.ms`: a connection with nothing in flight that reads and writes
    /// nothing for this long is closed (Kafka's default, 10 minutes).
    pub idle_ms: u64,
    /// `max.connections`, capped at [`limits::CONNECTIONS_MAX`]: at the limit the least recently
    /// used idle connection is closed to admit a new one; with none idle, accepts wait.
    pub max_connections: usize,
    /// `max.connections.per.ip`: one more from that address is accepted and closed at once.
    pub max_per_ip: usize,
    /// `max.connections.per.ip.overrides` (`host:count,ip:count`), hosts resolved at start.
    pub per_ip_overrides: HashMap<IpAddr, usize>,
    /// `socket.request.read.timeout.ms`: the longest one request frame may take to arrive, from
    /// its first byte to its last; a slower connection is closed (default 30 s, the clients'
    /// `request.timeout.ms`: by then the client has given up on the request).
    pub request_read_timeout_ms: u64,
}

impl ConnectionConfig {
    /// Validates the connection keys of the file (resolving the hosts of the overrides).
    pub fn resolve(file: &FileConfig) -> Result<ConnectionConfig, ConfigError> {
        let ms = |key, value| in_range(key, value, 1..=limits::SETTING_MS_MAX);
        if file.max_connections < 1 {
            return Err(ConfigError::Invalid {
                key: "max.connections",
                message: format!("{} is below 1", file.max_connections),
            });
        }
        if file.max_connections_per_ip < 0 {
            return Err(ConfigError::Invalid {
                key: "max.connections.per.ip",
                message: format!("{} is negative", file.max_connections_per_ip),
            });
        }
        let per_ip_overrides = parse_overrides(&file.max_connections_per_ip_overrides)?;
        if file.max_connections_per_ip == 0 && per_ip_overrides.is_empty() {
            return Err(ConfigError::Invalid {
                key: "max.connections.per.ip",
                message: "0 admits nobody; it needs max.connections.per.ip.overrides".into(),
            });
        }
        Ok(ConnectionConfig {
            idle_ms: ms("connections.max.idle.ms", file.connections_max_idle_ms)?,
            max_connections: (file.max_connections as usize).min(limits::CONNECTIONS_MAX),
            max_per_ip: file.max_connections_per_ip as usize,
            per_ip_overrides,
            request_read_timeout_ms: ms(
                "socket.request.read.timeout.ms",
                file.socket_request_read_timeout_ms,
            )?,
        })
    }

    /// The most connections `ip` may hold.
    pub fn max_for(&self, ip: IpAddr) -> usize {
        self.per_ip_overrides
            .get(&ip)
            .copied()
            .unwrap_or(self.max_per_ip)
    }
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        #[allow(clippy::unwrap_used)] // the defaults are valid (checked by a unit test)
        ConnectionConfig::resolve(&FileConfig::default()).unwrap()
    }
}

/// Parses `max.connections.per.ip.overrides`: `host:count` entries separated by commas (an IPv6
/// address keeps its colons: the count follows the last one); a host name stands for every
/// address it resolves to.
fn parse_overrides(text: &str) -> Result<HashMap<IpAddr, usize>, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        key: "max.connections.per.ip.overrides",
        message,
    };
    let mut overrides = HashMap::new();
    let entries: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.len() > limits::CONNECTION_OVERRIDES_MAX {
        return Err(invalid(format!(
            "{} entries, more than {}",
            entries.len(),
            limits::CONNECTION_OVERRIDES_MAX
        )));
    }
    for entry in entries {
        let (host, count) = entry
            .rsplit_once(':')
            .ok_or_else(|| invalid(format!("{entry:?} is not host:count")))?;
        let count: i32 = count
            .trim()
            .parse()
            .ok()
            .filter(|c: &i32| *c >= 0)
            .ok_or_else(|| invalid(format!("{entry:?}: the count is not a number >= 0")))?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => (host, 0)
                .to_socket_addrs()
                .map_err(|e| invalid(format!("{entry:?}: cannot resolve {host:?} ({e})")))?
                .map(|a| a.ip())
                .collect(),
        };
        for ip in addresses {
            overrides.insert(ip, count as usize);
        }
    }
    Ok(overrides)
}

/// Group coordinator settings (Kafka's names and, except the partition count, its defaults).
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    /// Partitions of `__consumer_offsets` when this broker creates it (Kafka: 50).
    pub offsets_topic_num_partitions: i32,
    /// Its replication factor: not created until that many brokers live (as Kafka).
    pub offsets_topic_replication_factor: i16,
    /// How long an OffsetCommit waits for its record to be below the HW.
    pub offsets_commit_timeout_ms: u64,
    /// `offsets.commit.required.acks`, Kafka's own key (deprecated in 3.8 by KIP-1041,
    /// KAFKA-16735; removed in 4.0, KAFKA-16736): `-1` (the default) answers an OffsetCommit once
    /// its `__consumer_offsets` record is below the HW, on every in-sync replica. `1` answers it
    /// as soon as the coordinator's own log has it, acks=1-style: a coordinator that dies before
    /// its followers fetched the record takes the commit with it, and the group resumes from an
    /// older offset (a bug switch: the checker's `lost_commit`).
    pub commit_required_acks: i16,
    /// `transaction.offsets.visible` (kaos): `at-commit` (the default, KIP-98's transactional
    /// offset commit) keeps a TxnOffsetCommit's offsets pending until the transaction's commit
    /// marker reaches the offsets partition (dropped by an abort marker; OffsetFetch with
    /// `require_stable` answers UNSTABLE_OFFSET_COMMIT meanwhile, KIP-447). `immediately` (a bug
    /// switch) applies them as soon as they are written, as a plain OffsetCommit: a transaction
    /// that aborts — or whose producer dies before EndTxn — has still moved the group past its
    /// input, whose output the abort removed (the pipeline's `pipeline_lost`). No Kafka release
    /// did this on purpose; it is the class of bug KAFKA-17507 neighbours (pending transactional
    /// offsets materialised out of step with the transaction's markers).
    pub txn_offsets_immediately: bool,
    /// Largest metadata string of one committed offset.
    pub offset_metadata_max_bytes: usize,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// How long the first rebalance of an empty group waits for more members.
    pub initial_rebalance_delay_ms: u64,
}

impl GroupConfig {
    /// Validates the group keys of the file.
    pub fn resolve(file: &FileConfig) -> Result<GroupConfig, ConfigError> {
        in_range(
            "offsets.topic.num.partitions",
            file.offsets_topic_num_partitions,
            1..=limits::OFFSETS_TOPIC_PARTITIONS_MAX,
        )?;
        if file.offsets_topic_replication_factor < 1 {
            return Err(ConfigError::Invalid {
                key: "offsets.topic.replication.factor",
                message: format!("{} is below 1", file.offsets_topic_replication_factor),
            });
        }
        if file.group_min_session_timeout_ms < 1
            || file.group_min_session_timeout_ms > file.group_max_session_timeout_ms
        {
            return Err(ConfigError::Invalid {
                key: "group.min.session.timeout.ms",
                message: format!(
                    "{} must be in 1..=group.max.session.timeout.ms ({})",
                    file.group_min_session_timeout_ms, file.group_max_session_timeout_ms
                ),
            });
        }
        in_range(
            "offsets.commit.timeout.ms",
            file.offsets_commit_timeout_ms,
            1..=limits::PRODUCE_TIMEOUT_MS_MAX,
        )?;
        if !matches!(file.offsets_commit_required_acks, -1 | 1) {
            return Err(ConfigError::Invalid {
                key: "offsets.commit.required.acks",
                message: format!(
                    "{} is neither -1 (every in-sync replica, the default) nor 1 (the coordinator alone)",
                    file.offsets_commit_required_acks
                ),
            });
        }
        let txn_offsets_immediately = match file.transaction_offsets_visible.as_str() {
            "at-commit" => false,
            "immediately" => true,
            other => {
                return Err(ConfigError::Invalid {
                    key: "transaction.offsets.visible",
                    message: format!(
                        "{other:?} is neither \"at-commit\" (the default) nor \"immediately\""
                    ),
                })
            }
        };
        if file.offset_metadata_max_bytes > limits::OFFSET_METADATA_BYTES_MAX {
            return Err(ConfigError::Invalid {
                key: "offset.metadata.max.bytes",
                message: format!(
                    "{} is above {}",
                    file.offset_metadata_max_bytes,
                    limits::OFFSET_METADATA_BYTES_MAX
                ),
            });
        }
        Ok(GroupConfig {
            offsets_topic_num_partitions: file.offsets_topic_num_partitions,
            offsets_topic_replication_factor: file.offsets_topic_replication_factor,
            offsets_commit_timeout_ms: file.offsets_commit_timeout_ms,
            commit_required_acks: file.offsets_commit_required_acks,
            txn_offsets_immediately,
            offset_metadata_max_bytes: file.offset_metadata_max_bytes,
            min_session_timeout_ms: file.group_min_session_timeout_ms,
            max_session_timeout_ms: file.group_max_session_timeout_ms,
            initial_rebalance_delay_ms: file
                .group_initial_rebalance_delay_ms
                .min(limits::GROUP_REBALANCE_TIMEOUT_MS_MAX),
        })
    }
}

/// Transaction coordinator settings: Kafka's names and defaults (8 partitions of the state log
/// here, as for `__consumer_offsets`; Kafka: 50).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// Partitions of `__transaction_state` when this broker creates it.
    pub state_log_num_partitions: i32,
    /// Its replication factor: not created until that many brokers live (as Kafka).
    pub state_log_replication_factor: i16,
    /// `transaction.max.timeout.ms`: a longer `transaction.timeout.ms` gets
    /// INVALID_TRANSACTION_TIMEOUT.
    pub max_timeout_ms: i32,
    /// `transaction.partition.verification.enable` (KIP-890 part 1, Kafka 3.6; default true):
    /// a leader accepts a transactional batch only for a partition the producer's ongoing
    /// transaction holds, in the producer's current epoch. `false` reproduces the hanging
    /// transactions KIP-890 closed (KAFKA-14402): a late or zombie transactional write that
    /// reaches a partition after its transaction ended opens a transaction there that no marker
    /// ever ends, and the partition's last stable offset stops for good.
    pub partition_verification: bool,
}

impl TxnConfig {
    /// Validates the transaction keys of the file.
    pub fn resolve(file: &FileConfig) -> Result<TxnConfig, ConfigError> {
        in_range(
            "transaction.state.log.num.partitions",
            file.transaction_state_log_num_partitions,
            1..=limits::TXN_TOPIC_PARTITIONS_MAX,
        )?;
        if file.transaction_state_log_replication_factor < 1 {
            return Err(ConfigError::Invalid {
                key: "transaction.state.log.replication.factor",
                message: format!(
                    "{} is below 1",
                    file.transaction_state_log_replication_factor
                ),
            });
        }
        if file.transaction_max_timeout_ms < 1 {
            return Err(ConfigError::Invalid {
                key: "transaction.max.timeout.ms",
                message: format!("{} is below 1", file.transaction_max_timeout_ms),
            });
        }
        Ok(TxnConfig {
            state_log_num_partitions: file.transaction_state_log_num_partitions,
            state_log_replication_factor: file.transaction_state_log_replication_factor,
            max_timeout_ms: file.transaction_max_timeout_ms,
            partition_verification: file.transaction_partition_verification_enable,
        })
    }
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig::resolve(&FileConfig::default()).unwrap_or(TxnConfig {
            state_log_num_partitions: 8,
            state_log_replication_factor: 3,
            max_timeout_ms: 900_000,
            partition_verification: true,
        })
    }
}

impl Default for GroupConfig {
    fn default() -> Self {
        #[allow(clippy::unwrap_used)] // the defaults are valid
        GroupConfig::resolve(&FileConfig::default()).unwrap()
    }
}

impl Config {
    /// Merges the command line (which wins) with the file and validates everything.
    pub fn resolve(
        file: FileConfig,
        node_id: Option<i32>,
        listen: Option<String>,
        data_dir: Option<PathBuf>,
    ) -> Result<Config, ConfigError> {
        check_retention(&file)?;
        let log = LogConfig::of(&file);
        let replication = ReplicationConfig::resolve(&file)?;
        let group = GroupConfig::resolve(&file)?;
        let txn = TxnConfig::resolve(&file)?;
        let connections = ConnectionConfig::resolve(&file)?;
        let node_id = node_id
            .or(file.node_id)
            .ok_or(ConfigError::Missing { key: "node.id" })?;
        if node_id < 0 {
            return Err(ConfigError::Invalid {
                key: "node.id",
                message: format!("{node_id} is negative"),
            });
        }
        let listen_text = listen
            .or(file.listen)
            .ok_or(ConfigError::Missing { key: "listeners" })?;
        let listen: SocketAddr = listen_text.parse().map_err(|e| ConfigError::Invalid {
            key: "listeners",
            message: format!("{listen_text:?} is not an ip:port address ({e})"),
        })?;
        let data_dir = data_dir
            .or(file.data_dir)
            .ok_or(ConfigError::Missing { key: "log.dir" })?;
        let advertised_listener = match file.advertised_listener {
            None => None,
            Some(text) => Some(split_host_port(&text).ok_or_else(|| ConfigError::Invalid {
                key: "advertised.listener",
                message: format!("{text:?} is not host:port"),
            })?),
        };
        in_range(
            "num.partitions",
            file.num_partitions,
            1..=limits::PARTITIONS_PER_TOPIC_MAX,
        )?;
        in_range(
            "segment.bytes",
            file.segment_bytes,
            limits::SEGMENT_BYTES_MIN..=limits::SEGMENT_BYTES_MAX,
        )?;
        in_range(
            "producer.state.batches.retained",
            file.producer_state_batches_retained,
            1..=limits::PRODUCER_BATCHES_KEPT,
        )?;
        in_range(
            "message.max.bytes",
            file.message_max_bytes,
            61..=limits::MESSAGE_BYTES_MAX,
        )?;
        Ok(Config {
            node_id,
            listen,
            data_dir,
            advertised_listener,
            num_partitions: file.num_partitions,
            auto_create_topics_enable: file.auto_create_topics_enable,
            log,
            retention_check_interval_ms: file.log_retention_check_interval_ms,
            cleaner_backoff_ms: file.log_cleaner_backoff_ms,
            flush_interval_ms: file.flush_interval_ms,
            message_max_bytes: file.message_max_bytes,
            controller: None,
            replication,
            group,
            txn,
            connections,
            debug_crash_after_ms: debug_crash_after_ms(file.debug_crash_after_ms)?,
            debug_txn_offset_commits_unanswered: file.debug_txn_offset_commit_unanswered,
        })
    }
}

/// `value` of setting `key` when it is in `range`, else why not ("… is not in A..=B").
pub(crate) fn in_range<T: PartialOrd + std::fmt::Display>(
    key: &'static str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            key,
            message: format!("{value} is not in {}..={}", range.start(), range.end()),
        })
    }
}

/// `debug.crash.after.ms`: 0 is off, else a delay in 1..=[`limits::SETTING_MS_MAX`].
fn debug_crash_after_ms(ms: u64) -> Result<Option<u64>, ConfigError> {
    match ms {
        0 => Ok(None),
        ms if ms <= limits::SETTING_MS_MAX => Ok(Some(ms)),
        ms => Err(ConfigError::Invalid {
            key: "debug.crash.after.ms",
            message: format!("{ms} is not in 0..={}", limits::SETTING_MS_MAX),
        }),
    }
}

/// The retention settings in the ranges Kafka accepts.
fn check_retention(file: &FileConfig) -> Result<(), ConfigError> {
    let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
    if file.log_retention_ms < -1 {
        return invalid(
            "log.retention.ms",
            format!("{} is below -1", file.log_retention_ms),
        );
    }
    if file.log_roll_ms < 1 {
        return invalid("log.roll.ms", format!("{} is below 1", file.log_roll_ms));
    }
    if file.log_retention_check_interval_ms < 1 {
        return invalid(
            "log.retention.check.interval.ms",
            "0 is below 1".to_string(),
        );
    }
    check_cleaner(file)
}

/// Whether a `cleanup.policy` list names `policy`.
pub fn policy_has(list: &str, policy: &str) -> bool {
    list.split(',').any(|p| p.trim() == policy)
}

/// A ratio in 0..=1 as thousandths.
pub fn ratio_permille(ratio: f64) -> u32 {
    (ratio.clamp(0.0, 1.0) * 1000.0).round() as u32
}

/// The log cleaner's settings in the ranges Kafka accepts.
fn check_cleaner(file: &FileConfig) -> Result<(), ConfigError> {
    let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
    let policies: Vec<&str> = file.log_cleanup_policy.split(',').map(str::trim).collect();
    if policies.iter().any(|p| !matches!(*p, "compact" | "delete")) {
        return invalid(
            "log.cleanup.policy",
            format!(
                "{:?} is not a list of \"compact\" and \"delete\"",
                file.log_cleanup_policy
            ),
        );
    }
    if !(1..=limits::SETTING_MS_MAX).contains(&file.log_cleaner_backoff_ms) {
        return invalid(
            "log.cleaner.backoff.ms",
            format!(
                "{} is not in 1..={}",
                file.log_cleaner_backoff_ms,
                limits::SETTING_MS_MAX
            ),
        );
    }
    if file.log_cleaner_delete_retention_ms < 0 {
        return invalid(
            "log.cleaner.delete.retention.ms",
            format!("{} is below 0", file.log_cleaner_delete_retention_ms),
        );
    }
    if file.log_cleaner_min_compaction_lag_ms < 0 {
        return invalid(
            "log.cleaner.min.compaction.lag.ms",
            format!("{} is below 0", file.log_cleaner_min_compaction_lag_ms),
        );
    }
    if !(0.0..=1.0).contains(&file.log_cleaner_min_cleanable_ratio) {
        return invalid(
            "log.cleaner.min.cleanable.ratio",
            format!("{} is not in 0..=1", file.log_cleaner_min_cleanable_ratio),
        );
    }
    if file.log_cleaner_key_hash_bytes > 8 {
        return invalid(
            "log.cleaner.key.hash.bytes",
            format!(
                "{} is not 0 (the whole key) or 1..=8",
                file.log_cleaner_key_hash_bytes
            ),
        );
    }
    Ok(())
}

/// Splits `host:port` (host may be `[v6]`).
fn split_host_port(text: &str) -> Option<(String, i32)> {
    let (host, port) = text.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), i32::from(port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_keys_parse() {
        let file = FileConfig::parse(
            "\"num.partitions\" = 3\n\"flush.messages\" = 1\n\"advertised.listener\" = \"localhost:9000\"\n",
        )
        .expect("valid config");
        assert_eq!(file.num_partitions, 3);
        assert_eq!(file.flush_messages, 1);
        let config = Config::resolve(
            file,
            Some(1),
            Some("127.0.0.1:9092".into()),
            Some("/tmp/x".into()),
        )
        .expect("resolves");
        assert_eq!(
            config.advertised_listener,
            Some(("localhost".to_string(), 9000))
        );
        assert_eq!(config.log.segment_bytes, 1024 * 1024 * 1024);
    }

    #[test]
    fn replication_keys_parse_and_default() {
        let defaults = ReplicationConfig::default();
        assert_eq!(defaults.truncation, Truncation::LeaderEpoch);
        assert_eq!(defaults.broker_session_timeout_ms, 9_000);
        let file = FileConfig::parse(
            "\"replication.truncation\" = \"high-watermark\"\n\"min.insync.replicas\" = 2\n\"replica.lag.time.max.ms\" = 1000\n",
        )
        .expect("parses");
        let replication = ReplicationConfig::resolve(&file).expect("valid");
        assert_eq!(replication.truncation, Truncation::HighWatermark);
        assert_eq!(replication.min_insync_replicas, 2);
        let bad = FileConfig::parse("\"replication.truncation\" = \"none\"\n").expect("parses");
        assert!(ReplicationConfig::resolve(&bad).is_err());
        assert_eq!(defaults.consumer_fetch_bound, FetchBound::HighWatermark);
        let log_end =
            FileConfig::parse("\"consumer.fetch.bound\" = \"log-end\"\n").expect("parses");
        assert_eq!(
            ReplicationConfig::resolve(&log_end)
                .expect("valid")
                .consumer_fetch_bound,
            FetchBound::LogEnd
        );
        let bad = FileConfig::parse("\"consumer.fetch.bound\" = \"lso\"\n").expect("parses");
        let err = ReplicationConfig::resolve(&bad)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("consumer.fetch.bound"), "{err}");
        assert!(defaults.metadata_waits_for_image);
        let answer = FileConfig::parse("\"metadata.before.image\" = \"answer\"\n").expect("parses");
        assert!(
            !ReplicationConfig::resolve(&answer)
                .expect("valid")
                .metadata_waits_for_image
        );
        let bad = FileConfig::parse("\"metadata.before.image\" = \"later\"\n").expect("parses");
        let err = ReplicationConfig::resolve(&bad)
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("metadata.before.image") && err.contains("later"),
            "{err}"
        );
        assert_eq!(defaults.replica_fetch_min_bytes, 1);
        let lagging = FileConfig::parse("\"replica.fetch.min.bytes\" = 1000000\n").expect("parses");
        assert_eq!(
            ReplicationConfig::resolve(&lagging)
                .expect("valid")
                .replica_fetch_min_bytes,
            1_000_000
        );
        let zero = FileConfig::parse("\"replica.fetch.min.bytes\" = 0\n").expect("parses");
        let err = ReplicationConfig::resolve(&zero)
            .expect_err("0 is refused")
            .to_string();
        assert!(err.contains("replica.fetch.min.bytes"), "{err}");
    }

    #[test]
    fn group_keys_parse_default_and_are_checked() {
        let defaults = GroupConfig::default();
        assert_eq!(defaults.offsets_topic_num_partitions, 8);
        assert_eq!(defaults.min_session_timeout_ms, 6_000);
        assert_eq!(defaults.commit_required_acks, -1);
        assert!(!defaults.txn_offsets_immediately);
        let immediately = FileConfig::parse("\"transaction.offsets.visible\" = \"immediately\"\n")
            .expect("parses");
        assert!(
            GroupConfig::resolve(&immediately)
                .expect("valid")
                .txn_offsets_immediately
        );
        let bogus =
            FileConfig::parse("\"transaction.offsets.visible\" = \"soon\"\n").expect("parses");
        let err = GroupConfig::resolve(&bogus)
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("transaction.offsets.visible") && err.contains("soon"),
            "{err}"
        );
        let acks_1 = FileConfig::parse("\"offsets.commit.required.acks\" = 1\n").expect("parses");
        assert_eq!(
            GroupConfig::resolve(&acks_1)
                .expect("valid")
                .commit_required_acks,
            1
        );
        let file = FileConfig::parse(
            "\"offsets.topic.num.partitions\" = 3\n\"group.min.session.timeout.ms\" = 1000\n",
        )
        .expect("parses");
        let group = GroupConfig::resolve(&file).expect("valid");
        assert_eq!(
            (
                group.offsets_topic_num_partitions,
                group.min_session_timeout_ms
            ),
            (3, 1000)
        );
        for bad in [
            "\"offsets.topic.num.partitions\" = 0\n",
            "\"group.min.session.timeout.ms\" = 2000000\n",
            "\"offset.metadata.max.bytes\" = 40000\n",
            "\"offsets.topic.replication.factor\" = 0\n",
            "\"offsets.commit.required.acks\" = 0\n",
            "\"offsets.commit.required.acks\" = 2\n",
        ] {
            let file = FileConfig::parse(bad).expect("parses");
            assert!(GroupConfig::resolve(&file).is_err(), "{bad}");
        }
    }

    #[test]
    fn connection_keys_default_to_kafka_and_are_checked() {
        let defaults = ConnectionConfig::default();
        assert_eq!(defaults.idle_ms, 600_000);
        assert_eq!(defaults.max_per_ip, i32::MAX as usize);
        assert_eq!(defaults.max_connections, limits::CONNECTIONS_MAX);
        assert_eq!(defaults.request_read_timeout_ms, 30_000);
        let file = FileConfig::parse(
            "\"max.connections\" = 8\n\"max.connections.per.ip\" = 0\n\"max.connections.per.ip.overrides\" = \"127.0.0.2:3, ::1:4,localhost:5\"\n",
        )
        .expect("parses");
        let connections = ConnectionConfig::resolve(&file).expect("valid");
        assert_eq!(connections.max_connections, 8);
        assert_eq!(connections.max_for("127.0.0.2".parse().expect("ip")), 3);
        assert_eq!(connections.max_for("127.0.0.1".parse().expect("ip")), 5);
        assert_eq!(connections.max_for("10.0.0.1".parse().expect("ip")), 0);
        for (bad, key) in [
            ("\"max.connections.per.ip\" = 0\n", "max.connections.per.ip"),
            ("\"max.connections\" = 0\n", "max.connections"),
            (
                "\"connections.max.idle.ms\" = 0\n",
                "connections.max.idle.ms",
            ),
            (
                "\"socket.request.read.timeout.ms\" = 0\n",
                "socket.request.read.timeout.ms",
            ),
            (
                "\"max.connections.per.ip.overrides\" = \"127.0.0.1\"\n",
                "overrides",
            ),
            (
                "\"max.connections.per.ip.overrides\" = \"127.0.0.1:-1\"\n",
                "overrides",
            ),
        ] {
            let file = FileConfig::parse(bad).expect("parses");
            let err = ConnectionConfig::resolve(&file).expect_err(bad).to_string();
            assert!(err.contains(key), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let err = FileConfig::parse("\"segment.byte\" = 5\n").expect_err("unknown key");
        assert!(err.contains("segment.byte"), "{err}");
    }

    #[test]
    fn bad_values_are_rejected() {
        let file = FileConfig::parse("\"segment.bytes\" = 10\n").expect("parses");
        let err = Config::resolve(
            file,
            Some(1),
            Some("127.0.0.1:1".into()),
            Some("/tmp".into()),
        )
        .expect_err("too small");
        assert!(err.to_string().contains("segment.bytes"));
        for bad in ["0", "6"] {
            let file = FileConfig::parse(&format!("\"producer.state.batches.retained\" = {bad}\n"))
                .expect("parses");
            let err = Config::resolve(
                file,
                Some(1),
                Some("127.0.0.1:1".into()),
                Some("/tmp".into()),
            )
            .expect_err("out of range");
            assert!(
                err.to_string().contains("producer.state.batches.retained"),
                "{err}"
            );
        }
    }
}
