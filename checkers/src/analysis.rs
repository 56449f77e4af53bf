//! The checker's output: verdict, counts, anomalies with evidence, series for plots, fault windows.

use serde::{Deserialize, Serialize};

use crate::classes::Allowance;
pub use crate::classes::AnomalyKind;
use crate::expect::Expectations;
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
    /// One entry per anomaly class that occurred, in the order of `AnomalyKind::ALL`;
    /// forbidden and allowed classes alike.
    pub anomalies: Vec<Anomaly>,
    pub series: Series,
    pub faults: Vec<FaultWindow>,
    pub notes: Vec<String>,
    /// Read with the keys of earlier releases too (`duplicates`, now `duplicate`).
    #[serde(deserialize_with = "Expectations::deserialize_stored")]
    pub expect: Expectations,
}

impl Analysis {
    /// The anomaly entry of one class, if it occurred.
    pub fn anomaly(&self, kind: AnomalyKind) -> Option<&Anomaly> {
        self.anomalies.iter().find(|a| a.kind == kind)
    }

    /// Adds replica-divergence cases (from [`crate::replicas::divergence`]) to a finished
    /// analysis, with the allowance of `self.expect`, and recomputes the verdict.
    pub fn add_replica_divergence(&mut self, cases: Vec<Case>) {
        self.add_cases(AnomalyKind::ReplicaDivergence, cases);
    }

    /// Folds in cases found outside the streaming pass (replica dumps, dependency cycles).
    pub fn add_cases(&mut self, kind: AnomalyKind, cases: Vec<Case>) {
        if cases.is_empty() {
            return;
        }
        let allowance = self.insert_cases(kind, cases, 0);
        if allowance == Allowance::Forbidden {
            self.verdict = Verdict::Invalid;
        } else {
            self.notes.push(format!(
                "{} case(s) occurred; this scenario allows them.",
                kind.as_str()
            ));
        }
    }

    /// Folds in the nodes that exited on their own (`node_crash`: `cases` kept, `omitted`
    /// beyond the evidence cap), each first in the notes. Forbidden: a broker's own stop (exit
    /// 71, 70) makes the run invalid, any other end leaves a valid run unknown.
    pub fn add_node_crashes(&mut self, cases: Vec<Case>, omitted: u64) {
        let kind = AnomalyKind::NodeCrash;
        if cases.is_empty() {
            return;
        }
        for (k, exit) in cases.iter().filter_map(|c| c.exit.as_ref()).enumerate() {
            self.notes.insert(k, exit.note());
        }
        let broker_stop = cases
            .iter()
            .any(|c| c.exit.as_ref().is_some_and(NodeExit::is_broker_stop));
        match self.insert_cases(kind, cases, omitted) {
            Allowance::Forbidden if broker_stop => self.verdict = Verdict::Invalid,
            Allowance::Forbidden if self.verdict == Verdict::Valid => {
                self.verdict = Verdict::Unknown
            }
            Allowance::Forbidden | Allowance::Required => {}
            Allowance::Allowed => self.notes.push(format!(
                "{} case(s) occurred; this scenario allows them.",
                kind.as_str()
            )),
        }
    }

    /// Adds `cases` (and `omitted` more, counted without evidence) to the entry of `kind` and
    /// its count; returns the class's allowance.
    fn insert_cases(&mut self, kind: AnomalyKind, cases: Vec<Case>, omitted: u64) -> Allowance {
        let allowance = kind.allowance(&self.expect);
        *self.counts.class_mut(kind) += cases.len() as u64 + omitted;
        if !self.anomalies.iter().any(|a| a.kind == kind) {
            self.anomalies.push(Anomaly {
                kind,
                allowance,
                count: 0,
                cases: Vec::new(),
                cases_omitted: 0,
            });
            self.anomalies.sort_by_key(|a| a.kind);
        }
        if let Some(anomaly) = self.anomalies.iter_mut().find(|a| a.kind == kind) {
            for case in cases {
                anomaly.count += 1;
                if anomaly.cases.len() < crate::limits::CASES_PER_CLASS_MAX {
                    anomaly.cases.push(case);
                } else {
                    anomaly.cases_omitted += 1;
                }
            }
            anomaly.count += omitted;
            anomaly.cases_omitted += omitted;
        }
        allowance
    }

    /// The anomaly classes that occurred and that the scenario forbids (what makes it invalid).
    pub fn forbidden(&self) -> impl Iterator<Item = &Anomaly> {
        self.anomalies
            .iter()
            .filter(|a| a.allowance == Allowance::Forbidden)
    }
}

/// Exact numbers, whatever the evidence cap. Fields added after the first release default to 0
/// when an older `results.json` is read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
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
    /// Acknowledged, never read, no completed final read and not `lost`.
    #[serde(default)]
    pub unseen: u64,
    /// Transactions whose sends to a partition were not contiguous (`elle`).
    pub int_send_skip: u64,
    /// Reads that ended at a transaction's intermediate send (`elle`, Elle's G1b).
    pub g1b: u64,
    /// Dependency cycles between transactions, by class (`elle`).
    pub g0: u64,
    pub g1c: u64,
    pub g_single: u64,
    pub g2_item: u64,
    /// Never acknowledged (fail, info or open), yet present in the final read.
    pub recovered: u64,
    /// Every attempt failed, yet the message was read.
    pub aborted_read: u64,
    /// A transaction aborted, yet a read_uncommitted consumer read its message.
    #[serde(default)]
    pub aborted_read_uncommitted: u64,
    /// Message ids the application accepted (`enqueue` or `accept` ok).
    pub accepted: u64,
    /// Message ids the application dropped (`drop` ok: a full buffer).
    pub dropped: u64,
    /// `process` ok ops (the application finished processing a message).
    pub processed: u64,
    /// `offset_commit` ok ops.
    pub offset_commits: u64,
    /// Retried batches the brokers recognised as duplicates (answered with their original
    /// offsets), counted by `kaos run` and `kaos check` in kaos-broker's logs; 0 when no broker
    /// log says (another broker, or the checker alone).
    pub duplicate_batches: u64,
    /// Messages delivered two or more times to the application by consumer polls.
    pub delivered_more_than_once: u64,
    /// Cases of each class added after the first four (see `AnomalyKind`).
    pub read_then_lost: u64,
    pub producer_loss: u64,
    pub read_before_ack: u64,
    /// Jepsen's precommitted read (a transaction read its own send); before issue 15 this name
    /// counted what is now `read_before_ack`.
    pub precommitted_read: u64,
    pub future_read: u64,
    pub inconsistent_offsets: u64,
    pub replica_divergence: u64,
    pub duplicate_processing: u64,
    pub pipeline_lost: u64,
    pub pipeline_duplicate: u64,
    pub poll_skip: u64,
    pub nonmonotonic_poll: u64,
    pub nonmonotonic_send: u64,
    pub unprocessed: u64,
    /// Nodes that exited on their own outside any fault (`crash` ops).
    pub node_crash: u64,
    pub retention_deleted: u64,
    /// Removed by compaction as superseded by a later record of the same key (not lost).
    pub compacted: u64,
    pub lost_commit: u64,
    pub uncommitted_read: u64,
}

impl AnomalyKind {
    /// The scenario's allowance for this class.
    pub fn allowance(self, expect: &Expectations) -> Allowance {
        expect.of(self)
    }
}

impl Counts {
    /// The count of cases of one class.
    pub fn class(&self, kind: AnomalyKind) -> u64 {
        let mut copy = self.clone();
        *copy.class_mut(kind)
    }

    /// Where the count of cases of one class is kept (`duplicates` for the class `duplicate`:
    /// the field name `results.json` has always had).
    pub fn class_mut(&mut self, kind: AnomalyKind) -> &mut u64 {
        match kind {
            AnomalyKind::Lost => &mut self.lost,
            AnomalyKind::ReadThenLost => &mut self.read_then_lost,
            AnomalyKind::ProducerLoss => &mut self.producer_loss,
            AnomalyKind::AbortedRead => &mut self.aborted_read,
            AnomalyKind::AbortedReadUncommitted => &mut self.aborted_read_uncommitted,
            AnomalyKind::FutureRead => &mut self.future_read,
            AnomalyKind::ReadBeforeAck => &mut self.read_before_ack,
            AnomalyKind::PrecommittedRead => &mut self.precommitted_read,
            AnomalyKind::InconsistentOffsets => &mut self.inconsistent_offsets,
            AnomalyKind::ReplicaDivergence => &mut self.replica_divergence,
            AnomalyKind::Duplicate => &mut self.duplicates,
            AnomalyKind::DuplicateProcessing => &mut self.duplicate_processing,
            AnomalyKind::PipelineLost => &mut self.pipeline_lost,
            AnomalyKind::PipelineDuplicate => &mut self.pipeline_duplicate,
            AnomalyKind::PollSkip => &mut self.poll_skip,
            AnomalyKind::NonmonotonicPoll => &mut self.nonmonotonic_poll,
            AnomalyKind::NonmonotonicSend => &mut self.nonmonotonic_send,
            AnomalyKind::Unprocessed => &mut self.unprocessed,
            AnomalyKind::LostCommit => &mut self.lost_commit,
            AnomalyKind::UncommittedRead => &mut self.uncommitted_read,
            AnomalyKind::UnacknowledgedAbsent => &mut self.unacknowledged_absent,
            AnomalyKind::Unseen => &mut self.unseen,
            AnomalyKind::RetentionDeleted => &mut self.retention_deleted,
            AnomalyKind::Compacted => &mut self.compacted,
            AnomalyKind::IntSendSkip => &mut self.int_send_skip,
            AnomalyKind::G1b => &mut self.g1b,
            AnomalyKind::G0 => &mut self.g0,
            AnomalyKind::G1c => &mut self.g1c,
            AnomalyKind::GSingle => &mut self.g_single,
            AnomalyKind::G2Item => &mut self.g2_item,
            AnomalyKind::NodeCrash => &mut self.node_crash,
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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
    /// A finer kind within the class, e.g. `unread` for a lost message never read although reads
    /// went past its offset (Jepsen's second definition); see `docs/history.md`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_kind: Option<String>,
    /// Every message involved when the case is about more than one (inconsistent offsets,
    /// skipped messages, the earlier send of a nonmonotonic send); `id` is the first of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<u64>,
    /// The client process the case is about (the consumer that skipped, the producer, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// Further positions: offsets skipped, the position two messages share, where a message
    /// was processed, the replica positions that differ.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub positions: Vec<Position>,
    /// Broker nodes involved (replica divergence).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// The dependency cycle, step by step (g0, g1c, g_single, g2_item); the last step returns to
    /// the first transaction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cycle: Vec<CycleStep>,
    /// How the node of a `node_crash` ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<NodeExit>,
}

/// A node's end of its own (`node_crash`), as the harness's `crash` op recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeExit {
    pub node: String,
    /// `None`: killed by a signal.
    pub exit_code: Option<i64>,
    /// The exit code's meaning by kaos-broker's codes: "invariant violated (exit 71)".
    pub meaning: String,
    /// The last lines of the node's log.
    pub log_tail: String,
    /// Whether the node's profile says this exit means the broker found itself wrong (the
    /// `crash` op's `invalid`); `None` in histories written before profiles: then exit 70 and 71
    /// (kaos-broker's codes) mean it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<bool>,
}

impl NodeExit {
    /// The `node_crash` sub-kind of this end: `invariant` (exit 71), `fatal` (exit 70), `other`.
    pub fn sub_kind(&self) -> &'static str {
        match self.exit_code {
            Some(71) => "invariant",
            Some(70) => "fatal",
            _ => "other",
        }
    }

    /// Whether the node stopped itself because its state was wrong: as its profile's exit codes
    /// say, or exit 70 or 71 when the op does not say.
    pub fn is_broker_stop(&self) -> bool {
        self.invalid.unwrap_or(self.sub_kind() != "other")
    }

    /// The `node_crash` case of a `crash` op (`{"node", "exit_code", "meaning", "log_tail"}`),
    /// at `time_s`.
    pub fn case_of(op: &crate::history::Op, time_s: f64) -> Case {
        let text = |key: &str| {
            op.value
                .get(key)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let exit = NodeExit {
            node: text("node"),
            exit_code: op
                .value
                .get("exit_code")
                .and_then(serde_json::Value::as_i64),
            meaning: text("meaning"),
            log_tail: text("log_tail"),
            invalid: op.value.get("invalid").and_then(serde_json::Value::as_bool),
        };
        Case {
            op_indexes: vec![op.index],
            time_s,
            cause: format!(
                "node {} crashed: {}, outside any fault (see the last lines of its log)",
                exit.node, exit.meaning
            ),
            sub_kind: Some(exit.sub_kind().to_owned()),
            nodes: vec![exit.node.clone()],
            exit: Some(exit),
            ..Case::default()
        }
    }

    /// The note that leads a run's notes: what ended, how, and the log's last lines.
    pub fn note(&self) -> String {
        format!(
            "node {} crashed: {}, outside any fault; the last lines of its log:\n  {}",
            self.node, self.meaning, self.log_tail
        )
    }
}

impl Case {
    /// The case's evidence on one line, without its prose: the message, sub-kind, where it was
    /// acknowledged and read, the other messages and positions, and the op indexes, e.g.
    /// `id 3 (between_polls) acked p0@3 read [p0@3] ids [1, 2] positions [p0@1, p0@2] ops [6]`.
    pub fn evidence(&self) -> String {
        let at = |p: &Position| format!("p{}@{}", p.partition, p.offset);
        let list = |ps: &[Position]| ps.iter().map(at).collect::<Vec<_>>().join(", ");
        let mut line = format!("id {}", self.id);
        if let Some(sub) = &self.sub_kind {
            line.push_str(&format!(" ({sub})"));
        }
        if let Some(p) = &self.acknowledged_at {
            line.push_str(&format!(" acked {}", at(p)));
        }
        if !self.read_at.is_empty() {
            line.push_str(&format!(" read [{}]", list(&self.read_at)));
        }
        if !self.ids.is_empty() {
            line.push_str(&format!(" ids {:?}", self.ids));
        }
        if !self.positions.is_empty() {
            line.push_str(&format!(" positions [{}]", list(&self.positions)));
        }
        line.push_str(&format!(" ops {:?}", self.op_indexes));
        line
    }
}

/// One edge of a dependency cycle: the transaction completed at op `from_op` precedes the one at
/// `to_op` because of `kind` (`ww`, `wr`, `rw`, `process` or `realtime`), shown by the versions at
/// each end (message id and offset) of `partition` (none for a process or realtime edge; a
/// realtime edge's `from_id` / `to_id` are the first transaction's completion stamp and the
/// second's invoke stamp, the clients' CLOCK_MONOTONIC in ns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleStep {
    pub from_op: u64,
    pub to_op: u64,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_offset: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_offset: Option<i64>,
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
    /// Acknowledged by the end of second `i` and not yet read by any consumer by then.
    #[serde(default)]
    pub unseen: Vec<u64>,
    /// Realtime lag of the messages first read by a consumer in second `i` (first read time −
    /// ack time, 0 when read before the ack): median, 99th percentile and maximum, milliseconds.
    #[serde(default)]
    pub lag_ms_p50: Vec<u64>,
    #[serde(default)]
    pub lag_ms_p99: Vec<u64>,
    #[serde(default)]
    pub lag_ms_max: Vec<u64>,
    /// Element `k`: sent messages delivered `k` times to the application by consumer polls (the
    /// final read excluded); the last element also counts anything delivered more often.
    #[serde(default)]
    pub deliveries_histogram: Vec<u64>,
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
