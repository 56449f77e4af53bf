//! A run's files: `results.json` and `report.html` written (atomically) and read back.

use std::io::BufRead as _;
use std::path::Path;

use crate::error::ResultsError;
use crate::run_dir::RunDir;
use crate::series::{PlotBuilder, PlotData};
use crate::summary::RunSummary;

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
