//! kaos-broker: a Kafka-wire-compatible broker with a durable segmented log and Kafka-style
//! replication (controller, leaders and followers, ISR, HW, leader epochs).
//!
//! # Layout
//!
//! Layers call only downward (no module cycle, checked by `tools/tests/module_cycles.rs`):
//! [`server`] → [`api`] → domain ([`state`], [`group`], [`txn`] over [`internal_topic`],
//! [`cluster`], [`controller`], [`partition`], [`producer`], [`stable`]) → [`log`] → [`wire`]; [`config`], [`topic_config`],
//! [`limits`], [`invariant`] and [`metrics`] beside them.
//!
//! | module | job |
//! |---|---|
//! | [`server`] | the only socket code: binding ([`server::bind`]), the broker process ([`server::broker`]) and the controller's ([`server::controller`]), the accept loop, one connection ([`server::connection`]), admission, expiry and the request memory budget ([`server::connections`]), peer client ([`server::client`]), cluster membership and the link to the controller ([`server::cluster`]), followers ([`server::fetcher`]), background tasks (flush, checkpoints, retention, the log cleaner, group ticks) |
//! | [`api`] | Kafka APIs, no socket I/O: the table of APIs, admission and dispatch for both roles ([`api::table`]), one module per API, the controller's handlers ([`api::controller`]) |
//! | [`state`] | the broker's topics and partitions, startup recovery, checkpoints (recovery point, HW, log start offset), topics' configs (stored on a single node, from the controller's image in a cluster), applying the controller's image, graceful shutdown |
//! | [`group`] | the group coordinator: the classic rebalance protocol per group ([`group::state`]), committed offsets in `__consumer_offsets` ([`group::records`]), loading and dropping offsets partitions as their leadership moves; reaches the broker through [`group::Host`] |
//! | [`internal_topic`] | what the group and transaction coordinators share: a key's partition of its internal topic, the shards of the partitions this broker leads (routing a key, loading a partition's log when leadership comes, forgetting it when it goes), the rate limit on creating the topic on first use |
//! | [`cluster`] | the broker's view of the cluster from the controller, the role changes it implies, and [`cluster::ControllerLink`], the way to the controller |
//! | [`controller`] | the controller: registrations, liveness, elections, ISR changes, topics' configs, durable state ([`controller::store`]) |
//! | [`partition`] | one partition replica: log, leader-epoch cache, role, leader epoch, HW (a watch), ISR, follower progress; its side of retention (DeleteRecords, a leader's log start followed) and of compaction (a cleaner pass below its HW and LSO) |
//! | [`producer`] | idempotent producers: producer ids (InitProducerId), per-partition epochs and last batches for deduplication and sequence checks, rebuilt from the log |
//! | [`stable`] | one partition's transactions: open ones, markers not yet below the HW, the aborted-transactions index, the last stable offset; rebuilt from the log |
//! | [`txn`] | the transaction coordinator: transaction states in `__transaction_state` ([`txn::records`]), the state changes of the transactional APIs and timeouts ([`txn::ops`]), markers to every partition of a transaction ([`txn::markers`]); reaches the broker through [`txn::Host`] |
//! | [`log`] | storage: segments ([`log::segment`]), sparse offset index ([`log::index`]), flush policy, recovery, truncation, retention and the log start offset ([`log::retention`]), compaction ([`log::cleaner`]), checkpoint files ([`log::checkpoint`]), leader-epoch cache ([`log::epoch`]), errors and their Kafka codes ([`log::error`]) |
//! | [`wire`] | bytes only: record batch v2 validation and patching ([`wire::batch`]), transaction markers ([`wire::control`]), the records inside a produced batch: framing, codecs, decompression bound ([`wire::records`]), response framing ([`wire::frame`]) |
//! | [`config`] | TOML config with Kafka-like dotted keys, merged with the command line |
//! | [`topic_config`] | Kafka's topic-level configs: names, value types and ranges; validation (INVALID_CONFIG), incremental changes, the log settings they give a partition, DescribeConfigs' rows |
//! | [`broker_config`] | dynamic broker configs (AlterConfigs of BROKER resources, KIP-226): Kafka's update modes (read-only, per-broker, cluster-wide), validation (INVALID_REQUEST), a single broker's `broker-configs.json` (in a cluster the controller keeps them), DescribeConfigs' layers and sources; stored and described, not applied |
//! | [`scram`] | SCRAM credentials (DescribeUserScramCredentials, AlterUserScramCredentials, KIP-554): Kafka's checks, a single broker's `scram-credentials.json` (in a cluster the controller keeps them); stored, not used (no SASL) |
//! | [`limits`] | every limit (frame size, in-flight requests, fetch bytes, …) as named constants |
//! | [`invariant`] | run-time invariants (HW ≤ LEO, offsets increasing, epochs non-decreasing, ISR ⊆ replicas, …): pure checks, a stop with exit code 71 when one fails, and [`invariant::fatal`] (exit code 70) for a log that contradicts itself |
//! | [`metrics`] | request metrics (Kafka's `RequestMetrics`): per-stage time histograms of Produce and Fetch, and of a follower's fetches; summarised to `request-metrics.json` at shutdown |
//! | [`acl`] | ACL bindings (CreateAcls, DescribeAcls, DeleteAcls): Kafka's validation and filters, a single broker's `acls.json` (in a cluster the controller keeps them); not enforced |
//! | [`dump`] | `kaos-broker dump`: every record of every replica in a data dir as JSON lines, read-only |
//!
//! Data flow: connection → `api::table::handle_on_broker` → handler → `Partition` → `Log` →
//! segment files; replies go back through the connection writer in request order. In a cluster
//! the membership task pulls the controller's image (Metadata) every heartbeat and applies it
//! (`Broker::apply_image`); followers fetch from leaders; leaders send AlterPartition.

pub mod acl;
pub mod api;
pub mod broker_config;
pub mod cluster;
pub mod config;
pub mod controller;
pub mod dump;
pub mod group;
pub mod internal_topic;
pub mod invariant;
pub mod limits;
pub mod log;
pub mod metrics;
pub mod partition;
pub mod producer;
pub mod scram;
pub mod server;
pub mod stable;
pub mod state;
pub mod topic_config;
pub mod txn;
pub mod wire;

pub use config::{Config, FileConfig};
pub use invariant::{fatal, FATAL_EXIT_CODE};
pub use server::broker::run;
pub use server::RunError;
pub use state::{Broker, CLEAN_SHUTDOWN_FILE_NAME};

/// Exit code of a graceful stop that could not finish cleanly: a partition's log failed while
/// serving (a full disk, an I/O error) or a checkpoint could not be written. Everything flushed
/// stays; no clean-shutdown marker is written, so the next start recovers every log as after a
/// crash (sysexits' EX_IOERR).
pub const UNCLEAN_SHUTDOWN_EXIT_CODE: i32 = 74;
