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
