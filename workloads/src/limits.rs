//! Every bound the clients keep, in one place.

/// Messages a producer prepares (and logs as invoked) before handing them to librdkafka.
pub const SEND_BATCH_COUNT_MAX: usize = 64;
/// Records one `poll` op carries at most.
pub const POLL_BATCH_RECORDS_MAX: usize = 500;
/// How long one blocking librdkafka poll waits.
pub const POLL_WAIT_MS: u64 = 100;
/// Metadata and watermark requests: per-attempt timeout and attempts.
pub const METADATA_TIMEOUT_MS: u64 = 5_000;
pub const METADATA_ATTEMPTS_MAX: u32 = 12;
/// Processing threads of a multi-threaded consumer, at most.
pub const PROCESSING_WORKERS_MAX: u32 = 64;
/// Time processing one message may take, at most.
pub const PROCESS_MS_MAX: u64 = 10_000;
/// The multi-threaded consumers' commit interval, at most.
pub const COMMIT_INTERVAL_MS_MAX: u64 = 60_000;
/// Synchronous commits wait at most this long.
pub const COMMIT_TIMEOUT_MS: u64 = 10_000;
/// The final read asks for the end offsets until two readings this far apart agree, at most this
/// many more times.
pub const FINAL_READ_SETTLE_MS: u64 = 1_000;
pub const FINAL_READ_SETTLE_ROUNDS_MAX: u32 = 10;
/// Sends in one transaction, at most.
pub const TXN_SENDS_MAX: u32 = 10_000;
/// init_transactions, commit_transaction and abort_transaction wait at most this long.
pub const TXN_TIMEOUT_MS: u64 = 10_000;
/// A pipeline's `send_offsets_timeout_ms`, at most.
pub const SEND_OFFSETS_TIMEOUT_MS_MAX: u64 = 600_000;
/// A transactional producer waits at most this long before it initialises.
pub const TXN_INIT_DELAY_MS_MAX: u64 = 3_600_000;
/// A commit_transaction that times out (a retriable error) is called again this many times.
pub const TXN_COMMIT_ATTEMPTS_MAX: u32 = 3;
/// Input records one pipeline transaction carries at most (an at-least-once batch is a poll op).
pub const PIPELINE_BATCH_RECORDS_MAX: usize = 200;
/// A stopping pipeline goes on until its input has been idle this long…
pub const PIPELINE_DRAIN_IDLE_MS: u64 = 2_000;
/// …or this long after the stop, at most.
pub const PIPELINE_DRAIN_MS_MAX: u64 = 30_000;
/// Size of a message value below which the id does not fit.
pub const MESSAGE_SIZE_MIN_BYTES: usize = 32;
pub const MESSAGE_SIZE_MAX_BYTES: usize = 1 << 20;

const _: () = assert!(MESSAGE_SIZE_MIN_BYTES < MESSAGE_SIZE_MAX_BYTES);
const _: () = assert!(SEND_BATCH_COUNT_MAX > 0 && POLL_BATCH_RECORDS_MAX > 0);
const _: () =
    assert!(PIPELINE_BATCH_RECORDS_MAX > 0 && PIPELINE_DRAIN_IDLE_MS < PIPELINE_DRAIN_MS_MAX);
