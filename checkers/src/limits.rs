//! Every bound the checker keeps, in one place.

/// Cases kept as evidence per anomaly class in an `Analysis`; counts stay exact beyond it.
pub const CASES_PER_CLASS_MAX: usize = 1000;

/// Seconds either side of an event within which a fault counts as "around" it.
pub const FAULT_NEARBY_S: f64 = 2.0;

/// Buckets (whole seconds) in each series; later ops are counted in the last bucket.
/// A week: far beyond any run, small enough that a corrupt `time_ns` cannot exhaust memory.
pub const SERIES_SECONDS_MAX: usize = 7 * 24 * 3600;

/// Distinct positions kept per message id for the duplicate evidence (the count stays exact).
pub const POSITIONS_PER_ID_MAX: usize = 16;

/// Characters of an offending history line quoted in an error message.
pub const LINE_QUOTE_CHARS_MAX: usize = 120;

const _: () = assert!(
    CASES_PER_CLASS_MAX >= 50,
    "the report shows up to 50 cases per class"
);
const _: () = assert!(POSITIONS_PER_ID_MAX >= 2, "a duplicate needs two positions");

/// Nesting depth the fast scanner follows in a value it skips; deeper lines take the generic path.
pub const JSON_DEPTH_MAX: usize = 64;

/// Buckets of the deliveries histogram; messages delivered more often count in the last one.
pub const DELIVERIES_HISTOGRAM_MAX: usize = 16;

/// Skipped offsets (and their messages) kept as evidence per poll-skip case.
pub const SKIPPED_EVIDENCE_MAX: usize = 16;

/// Offset jumps of consumers kept until `finish` decides which ones skipped messages; jumps beyond
/// it are counted in a note and not judged.
pub const CONSUMER_JUMPS_MAX: usize = 1 << 22;

/// Ids kept as evidence in one multi-message case (inconsistent offsets).
pub const IDS_PER_CASE_MAX: usize = 16;

/// Nesting depth the EDN reader follows (Jepsen histories are shallow).
pub const EDN_DEPTH_MAX: usize = 64;

const _: () = assert!(DELIVERIES_HISTOGRAM_MAX >= 3, "0, 1 and more deliveries");
const _: () = assert!(CONSUMER_JUMPS_MAX >= CASES_PER_CLASS_MAX);

/// The id → slot pages (`checker::Slots`) may cover twice the number of messages plus this many
/// ids; ids beyond go to a hash map.
pub const DENSE_IDS_SLACK: usize = 1 << 16;

/// How far apart the harness may receive two ops of different client processes from their real
/// order (each process has its own pipe): orders across processes finer than this are not claimed.
pub const RECEIPT_SKEW_MS: u32 = 100;

/// A note about skipped history lines names at most this many of them.
pub const LINES_NAMED_MAX: usize = 10;
