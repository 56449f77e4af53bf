//! The checker's output: verdict, counts, anomalies with evidence, series for plots, fault windows.

use serde::{Deserialize, Serialize};

use crate::expect::{Allowance, Expectations};
use crate::history::Position;

/// `valid`: nothing forbidden happened. `invalid`: a forbidden anomaly occurred.
/// `unknown`: nothing forbidden was seen, but the history cannot prove the run valid
/// (no completed final read, so loss was not checked).
///
/// `invalid` wins over `unknown`: a duplicate or an aborted read seen by consumers is proof
/// even without a final read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        }
    }
}

/// Everything the checker concluded from one history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Analysis {
    pub verdict: Verdict,
    pub counts: Counts,
    /// Expectations on the whole run (such as `acknowledged_min`) that it did not meet; any
    /// entry makes the verdict invalid.
    #[serde(default)]
    pub unmet: Vec<String>,
    /// One entry per anomaly class that occurred, in a fixed order (lost, aborted_read,
    /// duplicate, unacknowledged_absent); forbidden and allowed classes alike.
    pub anomalies: Vec<Anomaly>,
    pub series: Series,
    pub faults: Vec<FaultWindow>,
    pub notes: Vec<String>,
    pub expect: Expectations,
}

impl Analysis {
    /// The anomaly entry of one class, if it occurred.
    pub fn anomaly(&self, kind: AnomalyKind) -> Option<&Anomaly> {
        self.anomalies.iter().find(|a| a.kind == kind)
    }

    /// The anomaly classes that occurred and that the scenario forbids (what makes it invalid).
    pub fn forbidden(&self) -> impl Iterator<Item = &Anomaly> {
        self.anomalies
            .iter()
            .filter(|a| a.allowance == Allowance::Forbidden)
    }
}

/// Exact numbers, whatever the evidence cap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Lines (ops) read.
    pub ops: u64,
    /// Distinct message ids whose send was invoked (or completed without a logged invoke).
    pub sends_invoked: u64,
    /// Message ids acknowledged (a send `ok`).
    pub sends_ok: u64,
    /// Message ids whose every send attempt `fail`ed.
    pub sends_fail: u64,
    /// Message ids never acknowledged with at least one attempt `info` or left open.
    pub sends_info: u64,
    /// Of `sends_info`: attempts still open at the end of the history (treated as `info`).
    pub sends_open: u64,
    /// Send ops without a u64 `value.id` (not traceable, so not checked).
    pub sends_without_id: u64,
    /// `poll` ops that completed `ok`, all readers.
    pub polls_ok: u64,
    /// Records returned by consumer polls outside the final read.
    pub records_polled: u64,
    /// Records returned by the final read.
    pub final_read_records: u64,
    /// Distinct message ids in the final read.
    pub final_read_distinct_ids: u64,
    /// Records read (anywhere) whose value carries no message id.
    pub records_without_id: u64,
    /// Distinct message ids read that no send in the history mentions.
    pub unknown_ids_read: u64,
    /// Acknowledged, absent from the final read.
    pub lost: u64,
    /// Never acknowledged, absent from the final read.
    pub unacknowledged_absent: u64,
    /// Message ids read at two or more distinct positions.
    pub duplicates: u64,
    /// Never acknowledged (fail, info or open), yet present in the final read.
    pub recovered: u64,
    /// Every attempt failed, yet the message was read.
    pub aborted_read: u64,
}

/// The anomaly classes the checker knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// Acknowledged send absent from the final read.
    Lost,
    /// Send that failed (definitely not written), yet read.
    AbortedRead,
    /// One message id read at two or more distinct positions.
    Duplicate,
    /// Send never acknowledged and absent from the final read.
    UnacknowledgedAbsent,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 4] = [
        AnomalyKind::Lost,
        AnomalyKind::AbortedRead,
        AnomalyKind::Duplicate,
        AnomalyKind::UnacknowledgedAbsent,
    ];

    /// The snake_case name used in results.json and fixtures.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::Lost => "lost",
            AnomalyKind::AbortedRead => "aborted_read",
            AnomalyKind::Duplicate => "duplicate",
            AnomalyKind::UnacknowledgedAbsent => "unacknowledged_absent",
        }
    }

    /// What the class means, in one line, for reports.
    pub fn description(self) -> &'static str {
        match self {
            AnomalyKind::Lost => "acknowledged by the broker, absent from the final read",
            AnomalyKind::AbortedRead => {
                "the send failed (definitely not written), yet the message was read"
            }
            AnomalyKind::Duplicate => "one message id read at two or more distinct positions",
            AnomalyKind::UnacknowledgedAbsent => "never acknowledged, absent from the final read",
        }
    }

    /// The scenario's allowance for this class.
    pub fn allowance(self, expect: &Expectations) -> Allowance {
        match self {
            AnomalyKind::Lost => expect.lost,
            AnomalyKind::AbortedRead => expect.aborted_read,
            AnomalyKind::Duplicate => expect.duplicates,
            AnomalyKind::UnacknowledgedAbsent => expect.unacknowledged_absent,
        }
    }
}

/// All occurrences of one anomaly class: the exact count and up to
/// `limits::CASES_PER_CLASS_MAX` cases of evidence, ordered by the send's op index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    pub allowance: Allowance,
    pub count: u64,
    pub cases: Vec<Case>,
    /// `count - cases.len()`: cases beyond the evidence cap.
    pub cases_omitted: u64,
}

/// One occurrence: one message, where and when it was seen, and the likely cause.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Case {
    pub id: u64,
    pub topic: Option<String>,
    /// Where the broker acknowledged the message, if it did.
    pub acknowledged_at: Option<Position>,
    /// Distinct positions the message was read at (any reader), first seen first.
    pub read_at: Vec<Position>,
    /// Op indexes: the send's invoke and completions, then the polls that read it.
    pub op_indexes: Vec<u64>,
    /// When the event happened, seconds since start: the ack (lost), the send's invoke
    /// (unacknowledged_absent), its failure (aborted_read), the second position read (duplicate).
    pub time_s: f64,
    /// Faults active within `limits::FAULT_NEARBY_S` of `time_s`, e.g. "kill n1 at 12.43 s".
    pub faults_nearby: Vec<String>,
    /// The likely cause, one sentence in plain words.
    pub cause: String,
}

/// Per-second counts for plots; element `i` covers `[i, i+1)` seconds since start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Time of the last op, seconds since start.
    pub duration_s: f64,
    pub sends_ok: Vec<u64>,
    pub sends_fail: Vec<u64>,
    pub sends_info: Vec<u64>,
    /// Records returned by consumer polls (the final read excluded).
    pub records_polled: Vec<u64>,
}

/// A fault in effect from `start_s` to `end_s` (seconds since start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultWindow {
    /// The nemesis op that started it: `kill`, `pause`, `power_loss`, `partition`, …
    pub kind: String,
    /// `value.node` of the op (or the nodes, joined by commas).
    pub target: String,
    pub start_s: f64,
    /// When the matching recovery op (`restart`, `resume`, `heal`, …) completed; `None` when no
    /// recovery came before the history ended (the fault lasts to `Series::duration_s`).
    /// Instantaneous faults (`drop_caches`) have `end_s == Some(start_s)`.
    pub end_s: Option<f64>,
    /// Index of the op that started the window.
    pub op_index: u64,
}

impl FaultWindow {
    /// The end of the window, `duration_s` when it never ended.
    pub fn end_or(&self, duration_s: f64) -> f64 {
        self.end_s.unwrap_or(duration_s)
    }

    /// A short label for plots: "kill n1".
    pub fn label(&self) -> String {
        if self.target.is_empty() {
            self.kind.clone()
        } else {
            format!("{} {}", self.kind, self.target)
        }
    }
}
