//! The run summary (`results.json`) and the key figures drawn from it.

use serde::{Deserialize, Serialize};

use crate::series::PlotData;

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
