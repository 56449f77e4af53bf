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
/// A frame's bytes wait for budget before they are read (reserved as they arrive, doubling from
/// [`FRAME_READ_FIRST_BYTES`]), so memory stays bounded whatever the clients do.
pub const IN_FLIGHT_REQUEST_BYTES_MAX: usize = 512 * 1024 * 1024;

/// Largest duration a request-metrics histogram tells apart (larger ones count as this), in µs.
pub const METRICS_VALUE_US_MAX: u64 = (1 << 32) - 1;

/// Concurrent connections, whatever `max.connections` says (Kafka's default there is unbounded);
/// further connections wait in the accept backlog ([`crate::server::connections`]).
pub const CONNECTIONS_MAX: usize = 4096;

/// Request memory a connection reserves when a frame's first bytes arrive; it reserves more,
/// doubling, only as the frame's bytes come in, so a connection that announces a large frame and
/// sends nothing holds at most this much.
pub const FRAME_READ_FIRST_BYTES: usize = 64 * 1024;
const _: () = assert!(CONNECTIONS_MAX * FRAME_READ_FIRST_BYTES <= IN_FLIGHT_REQUEST_BYTES_MAX / 2);

/// Entries `max.connections.per.ip.overrides` may hold.
pub const CONNECTION_OVERRIDES_MAX: usize = 1024;

/// How often the accept loop looks again for an idle connection to close while every connection
/// is busy and `max.connections` is reached.
pub const ACCEPT_RECHECK_MS: u64 = 100;

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

/// Largest records section a compressed produced batch may decompress to; more is refused
/// (INVALID_RECORD) as soon as decompression passes it, so a decompression bomb costs at most this.
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;
const _: () = assert!(DECOMPRESSED_BATCH_BYTES_MAX >= MESSAGE_BYTES_MAX as usize);

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

/// Largest replication factor (and `min.insync.replicas`).
pub const REPLICATION_FACTOR_MAX: i16 = 16;

/// Largest value of any `*.ms` replication setting (one day).
pub const SETTING_MS_MAX: u64 = 86_400_000;

/// Brokers a controller registers.
pub const BROKERS_MAX: usize = 1024;

/// Largest controller state file we read.
pub const CONTROLLER_STATE_FILE_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// Largest leader-epoch checkpoint file we read, and entries it may hold.
pub const EPOCH_CHECKPOINT_FILE_BYTES_MAX: u64 = 16 * 1024 * 1024;
pub const EPOCH_ENTRIES_MAX: usize = 100_000;

/// OffsetForLeaderEpoch round trips a follower makes before giving up and retrying later (KIP-279).
pub const EPOCH_QUERY_ROUNDS_MAX: usize = 64;

/// Timeout of one broker-to-broker or broker-to-controller request (beyond its own wait).
pub const PEER_REQUEST_TIMEOUT_MS: u64 = 10_000;
/// How long the controller holds a broker's metadata watch when nothing changes.
pub const METADATA_WATCH_WAIT_MS: u64 = 5_000;

/// Timeout of connecting to a peer.
pub const PEER_CONNECT_TIMEOUT_MS: u64 = 3_000;

/// Pause of a follower or a cluster task after an error before it tries again.
pub const RETRY_BACKOFF_MS: u64 = 100;

/// Period of the ISR check on leaders (also bounded by `replica.lag.time.max.ms / 4`).
pub const ISR_CHECK_PERIOD_MS_MAX: u64 = 200;

/// Period of the controller's liveness check.
pub const CONTROLLER_TICK_MS: u64 = 50;

/// Longest a gracefully stopping broker waits for the controller to move its leaderships.
pub const CONTROLLED_SHUTDOWN_MS: u64 = 5_000;

/// How often a broker waiting to register with the controller says so.
pub const READY_WAIT_LOG_MS: u64 = 5_000;

/// How long a broker in a cluster holds a Metadata request that came before its first image
/// (answered then with the image; past this, with what it has).
pub const METADATA_BEFORE_IMAGE_WAIT_MS: u64 = 10_000;

/// Largest response a peer may send us.
pub const PEER_RESPONSE_BYTES_MAX: usize = FRAME_BYTES_MAX;

/// Bytes a follower asks for in one fetch.
pub const REPLICA_FETCH_BYTES_MAX: i32 = 8 * 1024 * 1024;

const _: () = assert!(REPLICA_FETCH_BYTES_MAX as usize <= FETCH_RESPONSE_BYTES_MAX);
const _: () = assert!(FRAME_BYTES_MAX <= i32::MAX as usize);
const _: () = assert!(IN_FLIGHT_REQUEST_BYTES_MAX >= FRAME_BYTES_MAX);
const _: () = assert!(IN_FLIGHT_REQUEST_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!((MESSAGE_BYTES_MAX as usize) < FRAME_BYTES_MAX);
const _: () = assert!(FETCH_RESPONSE_BYTES_MAX <= FRAME_BYTES_MAX);
const _: () = assert!(STORED_BATCH_BYTES_MAX >= MESSAGE_BYTES_MAX as usize);
const _: () = assert!(RECOVERY_READ_BUFFER_BYTES >= 61);
const _: () = assert!(SEGMENT_BYTES_MIN >= 61);

/// The largest `replica.fetch.min.bytes` a follower may ask for.
pub const REPLICA_FETCH_MIN_BYTES_MAX: i32 = 64 << 20;

/// Partitions `__consumer_offsets` may be created with.
pub const OFFSETS_TOPIC_PARTITIONS_MAX: i32 = 1_000;

/// Largest `offset.metadata.max.bytes` accepted in the config: the offsets record stores the
/// metadata as a Kafka `STRING` (i16 length).
pub const OFFSET_METADATA_BYTES_MAX: usize = i16::MAX as usize;

/// Members (joined or waiting for their second join) one group may hold; more get
/// GROUP_MAX_SIZE_REACHED.
pub const GROUP_MEMBERS_MAX: usize = 1_000;

/// Groups one coordinator partition holds in memory (members or committed offsets).
pub const GROUPS_PER_OFFSETS_PARTITION_MAX: usize = 100_000;

/// Committed offsets one group may hold (topic-partitions).
pub const OFFSETS_PER_GROUP_MAX: usize = 100_000;

/// Longest rebalance timeout a member may ask for (and cap of the initial rebalance delay).
pub const GROUP_REBALANCE_TIMEOUT_MS_MAX: u64 = 300_000;

/// How often the coordinator checks offsets-partition leadership, sessions and join deadlines.
pub const GROUP_TICK_MS: u64 = 100;

/// Bytes read per step while loading an offsets partition.
pub const OFFSETS_LOAD_READ_BYTES: usize = 1024 * 1024;

/// Least time between two attempts to create `__consumer_offsets` through the controller.
pub const OFFSETS_TOPIC_CREATE_RETRY_MS: u64 = 1_000;

/// Group ids, member ids, protocol names and client ids longer than this are refused (group ids
/// go into offsets records as i16-length strings).
pub const GROUP_STRING_BYTES_MAX: usize = 1024;
const _: () = assert!(GROUP_STRING_BYTES_MAX <= i16::MAX as usize);
const _: () = assert!(TOPIC_NAME_BYTES_MAX <= i16::MAX as usize);

/// A dynamic broker config's name and value (AlterConfigs of a BROKER resource) are at most this
/// long, and one level (a broker, or the cluster-wide default) holds at most this many.
pub const BROKER_CONFIG_NAME_BYTES_MAX: usize = 1024;
pub const BROKER_CONFIG_VALUE_BYTES_MAX: usize = 64 * 1024;
pub const BROKER_CONFIGS_PER_LEVEL_MAX: usize = 1_000;

/// A SCRAM credential's salt and salted password are at most this long; at most this many users
/// hold credentials.
pub const SCRAM_BYTES_MAX: usize = 1024;
pub const SCRAM_USERS_MAX: usize = 10_000;

/// Protocols one JoinGroup may offer.
pub const GROUP_PROTOCOLS_MAX: usize = 32;
/// Batches kept per producer and partition for deduplication (Kafka's
/// `NUM_BATCHES_TO_RETAIN`; librdkafka keeps at most 5 requests in flight with idempotence).
pub const PRODUCER_BATCHES_KEPT: usize = 5;

/// Producers whose state one partition keeps; beyond it the one that wrote least recently is
/// forgotten (its next batch is then accepted at any sequence, KIP-360).
pub const PRODUCERS_PER_PARTITION_MAX: usize = 10_000;

/// Producer ids a node allocates durably at once (one fsync per block).
pub const PRODUCER_ID_BLOCK_SIZE: u64 = 1_000;

/// Aborted transactions kept per partition for read_committed fetches (the oldest is forgotten
/// first: a consumer reading further back than that would see its records).
pub const ABORTED_TXNS_PER_PARTITION_MAX: usize = 100_000;

/// Aborted transactions returned with one partition of a Fetch response.
pub const ABORTED_TXNS_PER_FETCH_MAX: usize = 10_000;

/// Transactional ids one `__transaction_state` partition keeps in memory.
pub const TRANSACTIONAL_IDS_PER_PARTITION_MAX: usize = 100_000;

/// Partitions one transaction may span.
pub const TXN_PARTITIONS_MAX: usize = 10_000;

/// How long the transaction coordinator waits for one of its writes (a state record, a marker)
/// to be below the HW.
pub const TXN_APPEND_TIMEOUT_MS: u64 = 10_000;

/// Partitions of `__transaction_state` at most.
pub const TXN_TOPIC_PARTITIONS_MAX: i32 = 1_000;

/// Log bytes scanned, from the end, to rebuild a partition's producer state at startup and after
/// a truncation: whole segments from the newest back while they fit (the active segment always).
pub const PRODUCER_STATE_SCAN_BYTES_MAX: u64 = 256 * 1024 * 1024;

const _: () = assert!(PRODUCER_ID_BLOCK_SIZE > 0);

/// The log cleaner's offset map (Kafka's `log.cleaner.dedupe.buffer.size`, 128 MiB across its
/// threads): the bytes of keys it holds in one pass; a pass whose keys do not fit cleans the
/// segments mapped before the map filled, the rest in a later pass.
pub const CLEANER_MAP_BYTES_MAX: usize = 64 * 1024 * 1024;
/// What one key costs the map beyond its bytes (its offset and the map's own bookkeeping).
pub const CLEANER_MAP_ENTRY_OVERHEAD_BYTES: usize = 48;
const _: () = assert!(CLEANER_MAP_BYTES_MAX >= MESSAGE_BYTES_MAX as usize);
/// Empty batches (emptied by the log cleaner) a consumer's read skips to find a record; past
/// this it is served the empty batches, which move its position all the same.
pub const CLEANER_EMPTY_BATCHES_SKIPPED_MAX: usize = 100_000;
/// Record errors a Produce response lists per partition (KIP-467's `record_errors`); a batch
/// with more invalid records is refused whole all the same.
pub const RECORD_ERRORS_MAX: usize = 1024;
/// ACL bindings kept (CreateAcls beyond it: INVALID_REQUEST; Kafka has no bound).
pub const ACL_BINDINGS_MAX: usize = 10_000;
/// Bytes of an ACL binding's resource name, principal or host.
pub const ACL_STRING_BYTES_MAX: usize = 1024;
