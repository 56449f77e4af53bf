//! Every bound the results crate keeps, in one place.

/// Cases shown per anomaly class in report.html; the rest are in results.json.
pub const REPORT_CASES_PER_CLASS_MAX: usize = 25;

/// Fault windows listed in the report's fault table (all are in results.json).
pub const REPORT_FAULT_ROWS_MAX: usize = 100;

/// Notes listed in the report (all are in results.json).
pub const REPORT_NOTES_MAX: usize = 50;

/// Logs linked from the report.
pub const REPORT_LOGS_MAX: usize = 200;

/// Runs of one scenario started in the same millisecond: `<time>`, `<time>-2`, … `<time>-N`.
pub const RUN_DIR_SUFFIX_MAX: u32 = 1000;

/// Size of the time-series plots, in SVG pixels.
pub const PLOT_WIDTH_PX: u32 = 960;
pub const PLOT_HEIGHT_PX: u32 = 300;

/// Points drawn per line; longer series are averaged (rates) or maxed (percentiles) down to it.
pub const PLOT_POINTS_MAX: usize = 480;

/// Fault windows shaded on a plot; more would be unreadable (all are listed in results.json).
pub const PLOT_FAULTS_MAX: usize = 200;

/// Fault windows labelled on a plot; with more, only the shading (the timeline names them).
pub const PLOT_FAULT_LABELS_MAX: usize = 16;

/// Buckets kept by `series::PlotBuilder`; the bucket width doubles to stay within it.
pub const PLOT_BUCKETS_MAX: usize = 512;

/// Op times beyond a week are clamped (a corrupt `time_ns` cannot blow up the bucket width).
pub const PLOT_TIME_NS_MAX: u64 = 7 * 24 * 3600 * 1_000_000_000;

/// Sends remembered between invoke and completion for latency; beyond it, new sends go unmeasured.
pub const PLOT_SENDS_IN_FLIGHT_MAX: usize = 1 << 20;

/// Client processes tracked (a restarted client is a new process); later ones share one slot.
pub const PLOT_PROCESSES_MAX: usize = 1000;

/// Consumer lines on the throughput plot; the rest are summed into one.
pub const PLOT_CONSUMER_LINES_MAX: usize = 8;

/// Fault windows drawn on the fault timeline (one bar each; the rest are in results.json).
pub const PLOT_TIMELINE_FAULTS_MAX: usize = 1000;

/// Rows of the fault timeline (nodes and client processes each).
pub const PLOT_TIMELINE_ROWS_MAX: usize = 40;

/// Rows of the comparison page.
pub const COMPARISON_ROWS_MAX: usize = 500;
/// Heatmap panels per count on a comparison page (one per combination of the settings beyond
/// the two the heatmap spans).
pub const COMPARISON_PANELS_MAX: usize = 16;

/// Runs listed per scenario on the index page, and squares in its trend.
pub const INDEX_RUNS_PER_SCENARIO_MAX: usize = 200;
pub const INDEX_TREND_MAX: usize = 60;

/// Characters of a scenario name used as a directory name.
pub const SCENARIO_NAME_CHARS_MAX: usize = 200;

/// Characters of an anomaly summary in a JUnit failure message.
pub const JUNIT_MESSAGE_CHARS_MAX: usize = 1000;

const _: () = assert!(REPORT_CASES_PER_CLASS_MAX <= checkers::limits::CASES_PER_CLASS_MAX);
const _: () = assert!(PLOT_POINTS_MAX <= PLOT_BUCKETS_MAX);
const _: () = assert!(PLOT_FAULT_LABELS_MAX <= PLOT_FAULTS_MAX);
const _: () = assert!(PLOT_CONSUMER_LINES_MAX >= 2, "one line plus the others");
