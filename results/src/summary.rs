//! The run summary (`results.json`) and writing a run's results to its directory.

use std::io::BufRead as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ResultsError;
use crate::run_dir::RunDir;
use crate::series::{PlotBuilder, PlotData};

/// Everything a report is drawn from; stored as `results.json` (fields: `results/SCHEMA.md`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    pub scenario_name: String,
    /// RFC 3339, UTC: `2026-11-27T10:43:43.123Z`.
    pub started_at: String,
    pub duration_s: f64,
    pub seed: u64,
    /// Readable rows: cluster, client settings, faults.
    pub settings: Vec<(String, String)>,
    /// (label, path relative to the run dir) of node and client logs.
    pub logs: Vec<(String, String)>,
    pub analysis: checkers::Analysis,
    /// Plot series computed from the history ([`PlotData::from_ops`]); bounded (at most
    /// `limits::PLOT_BUCKETS_MAX` points a series), so it is stored in results.json. Empty in a
    /// results.json written before it existed; [`write_results`] fills it from `history.jsonl`
    /// when the caller left it empty.
    #[serde(default)]
    pub plots: PlotData,
}

/// The figures every page shows about a run, computed one way.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyFigures {
    pub acknowledged: u64,
    /// Acknowledged, absent from the final read.
    pub lost: u64,
    /// Never acknowledged, absent from the final read.
    pub unacknowledged_absent: u64,
    /// Producer-side loss: `unacknowledged_absent` plus, when the checker counts it,
    /// `producer_loss` (accepted by the application, never written).
    pub producer_side_loss: u64,
    pub duplicates: u64,
    /// Messages behind a committed offset never processed, when the checker counts them.
    pub unprocessed: Option<u64>,
    /// Acknowledged sends per second of run.
    pub throughput_acks_per_s: f64,
    pub latency_ms_p99: Option<f64>,
}

impl RunSummary {
    pub fn key_figures(&self) -> KeyFigures {
        let counts = &self.analysis.counts;
        let duration_s = if self.duration_s > 0.0 {
            self.duration_s
        } else {
            self.analysis.series.duration_s
        };
        let counts_json = serde_json::to_value(counts).unwrap_or_default();
        let count = |key: &str| counts_json.get(key).and_then(serde_json::Value::as_u64);
        let unprocessed = count("unprocessed");
        KeyFigures {
            acknowledged: counts.sends_ok,
            lost: counts.lost,
            unacknowledged_absent: counts.unacknowledged_absent,
            producer_side_loss: counts.unacknowledged_absent + count("producer_loss").unwrap_or(0),
            duplicates: counts.duplicates,
            unprocessed,
            throughput_acks_per_s: if duration_s > 0.0 {
                counts.sends_ok as f64 / duration_s
            } else {
                0.0
            },
            latency_ms_p99: self.plots.latency_ms_overall.map(|l| l.p99_ms),
        }
    }
}

/// Writes `results.json` (pretty) and `report.html`, each atomically (temporary file + rename).
/// When `summary.plots` is empty and the run directory holds a `history.jsonl`, the plot series
/// are computed from it first (one streaming pass).
pub fn write_results(dir: &RunDir, summary: &RunSummary) -> Result<(), ResultsError> {
    let filled;
    let summary = if summary.plots.is_empty() && dir.history_path().is_file() {
        let mut with_plots = summary.clone();
        with_plots.plots = plots_from_history_file(&dir.history_path())?;
        filled = with_plots;
        &filled
    } else {
        summary
    };
    let json = serde_json::to_string_pretty(summary).map_err(|source| ResultsError::Json {
        what: "the run summary",
        source,
    })?;
    write_atomically(&dir.results_path(), json.as_bytes())?;
    let html = crate::report::render_report(summary);
    write_atomically(&dir.report_path(), html.as_bytes())
}

/// [`PlotData`] from a stored `history.jsonl`, read line by line.
pub fn plots_from_history_file(path: &Path) -> Result<PlotData, ResultsError> {
    let file = std::fs::File::open(path).map_err(|e| ResultsError::io(path, e))?;
    let mut builder = PlotBuilder::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| ResultsError::io(path, e))?;
        builder.observe_line(&line);
    }
    Ok(builder.finish())
}

/// Reads a stored `results.json`.
pub fn read_results(dir: &RunDir) -> Result<RunSummary, ResultsError> {
    let path = dir.results_path();
    let text = std::fs::read_to_string(&path).map_err(|e| ResultsError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|source| ResultsError::Parse { path, source })
}

pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ResultsError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| ResultsError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ResultsError::io(path, e))
}
