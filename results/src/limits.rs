//! Every bound the results crate keeps, in one place.

/// Cases shown per anomaly class in report.html; the rest are in results.json.
pub const REPORT_CASES_PER_CLASS_MAX: usize = 50;

/// Runs of one scenario started in the same millisecond: `<time>`, `<time>-2`, … `<time>-N`.
pub const RUN_DIR_SUFFIX_MAX: u32 = 1000;

/// Size of the throughput plot, in SVG pixels.
pub const PLOT_WIDTH_PX: u32 = 960;
pub const PLOT_HEIGHT_PX: u32 = 320;

/// Fault windows drawn on a plot; more would be unreadable (all are listed in results.json).
pub const PLOT_FAULTS_MAX: usize = 200;

/// Characters of a scenario name used as a directory name.
pub const SCENARIO_NAME_CHARS_MAX: usize = 200;

const _: () = assert!(REPORT_CASES_PER_CLASS_MAX <= checkers::limits::CASES_PER_CLASS_MAX);
