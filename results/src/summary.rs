//! The run summary (`results.json`) and writing a run's results to its directory.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ResultsError;
use crate::run_dir::RunDir;

/// Everything a report is drawn from; stored as `results.json`.
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
}

/// Writes `results.json` (pretty) and `report.html`, each atomically (temporary file + rename).
pub fn write_results(dir: &RunDir, summary: &RunSummary) -> Result<(), ResultsError> {
    let json = serde_json::to_string_pretty(summary).map_err(|source| ResultsError::Json {
        what: "the run summary",
        source,
    })?;
    write_atomically(&dir.results_path(), json.as_bytes())?;
    let html = crate::report::render_report(summary);
    write_atomically(&dir.report_path(), html.as_bytes())
}

/// Reads a stored `results.json`.
pub fn read_results(dir: &RunDir) -> Result<RunSummary, ResultsError> {
    let path = dir.results_path();
    let text = std::fs::read_to_string(&path).map_err(|e| ResultsError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|source| ResultsError::Parse { path, source })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ResultsError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| ResultsError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ResultsError::io(path, e))
}
