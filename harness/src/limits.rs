//! Every bound the harness keeps, in one place.

/// Ops waiting between the client pipes and the history writer.
pub const HISTORY_QUEUE_MAX: usize = 65_536;
/// A client line longer than this is not an op (it goes to the harness log, not the history).
pub const OP_LINE_BYTES_MAX: usize = 16 << 20;
/// How long a started broker may take to answer ApiVersions.
pub const NODE_START_TIMEOUT_MS: u64 = 60_000;
/// Between two readiness probes.
pub const NODE_PROBE_INTERVAL_MS: u64 = 50;
/// Between two looks for nodes that exited on their own, while the timed phase waits.
pub const NODE_EXIT_PROBE_MS: u64 = 250;
/// How long a lazyfs daemon may take to mount, or to report a power loss.
pub const LAZYFS_READY_TIMEOUT_MS: u64 = 10_000;
/// A graceful stop (SIGTERM) waits this long before SIGKILL.
pub const NODE_STOP_TIMEOUT_MS: u64 = 15_000;
/// A client told to stop may take this long on top of its message timeout to drain its sends.
pub const CLIENT_STOP_GRACE_MS: u64 = 10_000;
/// The final read gives up after this long.
pub const FINAL_READ_TIMEOUT_MS: u64 = 120_000;
/// After the final read, how long to wait for every replica to be back in the ISR before the nodes
/// stop (so that the replica dumps compare caught-up replicas), and how often to ask.
pub const REPLICAS_IN_SYNC_TIMEOUT_MS: u64 = 20_000;
pub const REPLICAS_IN_SYNC_PROBE_MS: u64 = 500;
/// Topic creation: attempts and the pause between them (a restarted node may still be starting).
pub const TOPIC_CREATE_ATTEMPTS_MAX: u32 = 20;
pub const TOPIC_CREATE_RETRY_MS: u64 = 500;
/// One `docker` CLI command (an image build, a graceful `docker stop`) may take this long.
pub const DOCKER_COMMAND_TIMEOUT_MS: u64 = 120_000;
/// /24 subnets tried for a run's docker network before giving up.
pub const DOCKER_SUBNET_ATTEMPTS_MAX: u32 = 16;
/// What an error message quotes of a log that explains it: at most this many lines, read from
/// at most this many bytes at the log's end.
pub const LOG_TAIL_LINES_MAX: usize = 12;
pub const LOG_TAIL_BYTES_MAX: u64 = 64 * 1024;
/// Scenario bounds.
pub const BROKERS_MAX: u32 = 9;
pub const DURATION_S_MAX: u64 = 24 * 3600;
pub const CLIENTS_MAX: usize = 64;
/// `kaos soak --for`: the longest soak; `--seeds A..B`: the most seeds of one range; a matrix's
/// `seeds` per configuration.
pub const SOAK_FOR_S_MAX: u64 = 7 * 24 * 3600;
pub const SOAK_SEEDS_MAX: u64 = 10_000;
pub const MATRIX_SEEDS_MAX: u32 = 100;
/// Steps of one `sequence` fault, and the longest `wait_ms` step.
pub const SEQUENCE_STEPS_MAX: usize = 32;
pub const SEQUENCE_WAIT_MS_MAX: u64 = 3_600_000;
/// A triggered fault (`nemesis.trigger`): the longest delay after its op, and how long it waits
/// for that op before it is not done.
pub const TRIGGER_WITHIN_MS_MAX: u64 = 60_000;
pub const TRIGGER_WAIT_MS_MAX: u64 = 30_000;
/// `nemesis.trigger_follower_lag_min`: the largest lag a fault may wait for, how often the lag is
/// measured while it waits, each Kafka request's timeout and the largest response it reads.
pub const TRIGGER_FOLLOWER_LAG_MIN_MAX: u64 = 1 << 40;
pub const LAG_PROBE_INTERVAL_MS: u64 = 20;
pub const LAG_PROBE_TIMEOUT_MS: u64 = 2_000;
pub const LAG_PROBE_RESPONSE_BYTES_MAX: usize = 1 << 20;
/// `nemesis.reset_in_flight_min`: the most requests in flight a reset may wait for (librdkafka's
/// idempotent producer keeps at most 5 per partition; more partitions share a connection).
pub const IN_FLIGHT_RESET_MIN_MAX: u64 = 1_000;
/// Message ids: each client of the scenario gets its own block of this many ids, and each of its
/// incarnations (a restart after a kill) a sub-block.
pub const ID_BLOCK_SIZE: u64 = 1 << 40;
pub const ID_INCARNATION_BLOCK: u64 = 1 << 32;

const _: () = assert!(NODE_PROBE_INTERVAL_MS < NODE_START_TIMEOUT_MS);
const _: () = assert!(LAG_PROBE_INTERVAL_MS < LAG_PROBE_TIMEOUT_MS);
const _: () = assert!(LAG_PROBE_TIMEOUT_MS < TRIGGER_WAIT_MS_MAX);
const _: () = assert!(NODE_EXIT_PROBE_MS < NODE_START_TIMEOUT_MS);
const _: () = assert!(NODE_STOP_TIMEOUT_MS < DOCKER_COMMAND_TIMEOUT_MS);
const _: () = assert!((CLIENTS_MAX as u64 + 2) < u64::MAX / ID_BLOCK_SIZE);
const _: () = assert!(ID_INCARNATION_BLOCK < ID_BLOCK_SIZE);
