//! Every limit of the broker, in one place (TIGER_STYLE: a limit on everything).
//!
//! Limits that relate to each other are tied together with `const _: () = assert!(...)`.

/// Largest request frame (after the 4-byte length prefix) a connection may send. Larger (or negative)
/// lengths close the connection.
pub const FRAME_BYTES_MAX: usize = 100 * 1024 * 1024;

/// Smallest request frame: api key (2) + api version (2) + correlation id (4).
pub const FRAME_BYTES_MIN: usize = 8;

/// Requests read from one connection but not yet answered (pipelining depth).
pub const IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX: usize = 1024;

/// Request bytes held in memory across all connections (frames being read, decoded and handled).
/// A frame waits for budget before it is read, so memory stays bounded whatever the clients do.
pub const IN_FLIGHT_REQUEST_BYTES_MAX: usize = 512 * 1024 * 1024;

/// Concurrent client connections; further connections wait in the accept backlog.
pub const CONNECTIONS_MAX: usize = 4096;

/// Upper bound of a whole fetch response's record bytes, whatever the client asks for
/// (a single batch larger than this is still returned, KIP-74).
pub const FETCH_RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Longest long-poll a fetch may ask for.
pub const FETCH_WAIT_MS_MAX: u64 = 60_000;

/// Longest a produce with acks=-1 waits for the HW, whatever its timeout says.
pub const PRODUCE_TIMEOUT_MS_MAX: u64 = 300_000;

/// Partitions one topic may have.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;

/// Topics (of any size) a broker will create.
pub const TOPICS_MAX: usize = 10_000;

/// Kafka's limit on topic name length (a partition directory name must stay below 255 bytes).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

/// Largest `message.max.bytes` (a record batch must fit in one request frame).
pub const MESSAGE_BYTES_MAX: u32 = 64 * 1024 * 1024;

/// Smallest `segment.bytes` accepted (Kafka's minimum is 14; we want at least one batch header).
pub const SEGMENT_BYTES_MIN: u64 = 1024;

/// Largest `segment.bytes`: index positions are u32.
pub const SEGMENT_BYTES_MAX: u64 = u32::MAX as u64;

/// Read buffer used when scanning a segment during recovery (grown to one batch if a batch is larger).
pub const RECOVERY_READ_BUFFER_BYTES: usize = 1024 * 1024;

/// Largest batch the recovery scan believes; a length field above this is corruption.
pub const STORED_BATCH_BYTES_MAX: usize = FRAME_BYTES_MAX;

/// Largest recovery-point checkpoint file we read (bounded memory on a corrupt file).
pub const CHECKPOINT_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Largest `partition.metadata` file we read.
pub const PARTITION_METADATA_BYTES_MAX: u64 = 4096;

/// Largest config file we read.
pub const CONFIG_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// Header bytes read per step when scanning batch headers in a segment (offset lookup).
pub const SCAN_HEADER_BYTES: usize = 27;

const _: () = assert!(FRAME_BYTES_MAX <= i32::MAX as usize);
const _: () = assert!(IN_FLIGHT_REQUEST_BYTES_MAX >= FRAME_BYTES_MAX);
const _: () = assert!(IN_FLIGHT_REQUEST_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!((MESSAGE_BYTES_MAX as usize) < FRAME_BYTES_MAX);
const _: () = assert!(FETCH_RESPONSE_BYTES_MAX <= FRAME_BYTES_MAX);
const _: () = assert!(STORED_BATCH_BYTES_MAX >= MESSAGE_BYTES_MAX as usize);
const _: () = assert!(RECOVERY_READ_BUFFER_BYTES >= 61);
const _: () = assert!(SEGMENT_BYTES_MIN >= 61);
