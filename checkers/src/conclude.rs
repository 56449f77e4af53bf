//! The queue checker, the concluding half: `finish` turns what the pass kept into an `Analysis`,
//! one function per anomaly class's evidence and one sentence of cause each.

use std::collections::BTreeMap;

use crate::analysis::{Analysis, Anomaly, AnomalyKind, Case, Counts, FaultWindow, Verdict};
use crate::checker::{
    flag, ms_seconds, seconds, AboveHighWatermark, Checker, Compaction, FastMap, FastSet, Jump,
    LostCommit, Msg, Oddity, Processed, ReadAt, Reset, SendOutcome, NONE,
};
use crate::expect::Allowance;
use crate::history::{OpType, Position};
use crate::limits;

/// Where a position was observed (bits of `PosEntry::src`).
const SRC_ACK: u8 = 1;
const SRC_READ: u8 = 2;
const SRC_FINAL: u8 = 4;

/// One (offset, message) observation of a partition, for the per-offset questions: 16 bytes, the
/// offset and the `SRC_*` bits packed in one word (offsets of 0 to 2^60, what Kafka can reach).
#[derive(Debug, Clone, Copy)]
struct PosEntry {
    packed: u64,
    id: u64,
}

const OFFSET_PACKED_MAX: i64 = 1 << 60;

impl PosEntry {
    fn new(offset: i64, src: u8, id: u64) -> Option<PosEntry> {
        (0..OFFSET_PACKED_MAX)
            .contains(&offset)
            .then_some(PosEntry {
                packed: ((offset as u64) << 3) | u64::from(src),
                id,
            })
    }

    fn offset(&self) -> i64 {
        (self.packed >> 3) as i64
    }

    fn src(&self) -> u8 {
        (self.packed & 7) as u8
    }
}

/// Per (producer process, partition): (first send index, acknowledged offset, id).
type SendsByPartition = FastMap<(u32, u32), Vec<(u64, i64, u64)>>;

/// An occurrence found, before it becomes a `Case` (only the first `CASES_PER_CLASS_MAX` by
/// order do).
#[derive(Debug, Clone)]
enum Found {
    Msg {
        id: u64,
        sub: Option<&'static str>,
    },
    Inconsistent {
        pk: u32,
        offset: i64,
        ids: Vec<u64>,
        src: Vec<u8>,
    },
    Skip {
        jump: Jump,
        skipped: Vec<(i64, u64)>,
    },
    Rewind {
        jump: Jump,
    },
    NonmonotonicSend {
        id: u64,
        earlier: u64,
        earlier_offset: i64,
    },
    Unprocessed {
        id: u64,
        group: u32,
        pk: u32,
        offset: i64,
        committed: i64,
    },
    LostCommit(LostCommit),
    UncommittedRead {
        read: UnsureRead,
        /// What the final read holds there: another message, or nothing (the log ends before).
        final_id: Option<u64>,
    },
    AboveHighWatermark {
        read: AboveHighWatermark,
        then: FinalAt,
    },
}

/// What the final read says of a position a consumer read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FinalAt {
    /// No completed final read.
    Unknown,
    /// It holds the record read (the message id read there).
    Same,
    /// It holds another message there (`None`: a record without an id).
    Other(Option<u64>),
    /// It ends before that offset.
    Ends,
    /// It skipped that offset (a control record).
    Skipped,
}

/// A consumer's read of a message at a position where it was not (yet) acknowledged: a read of
/// a record that may not have been committed, judged against the final read at `finish`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnsureRead {
    pub id: u64,
    pub pk: u32,
    pub offset: i64,
    pub index: u64,
    pub time_ms: u32,
}

/// The occurrences of one class: the exact count and the evidence kept so far.
#[derive(Debug, Default)]
struct Class {
    count: u64,
    found: Vec<(u64, Found)>,
}

impl Class {
    fn push(&mut self, order: u64, found: Found) {
        self.count += 1;
        self.found.push((order, found));
        if self.found.len() >= 2 * limits::CASES_PER_CLASS_MAX {
            self.trim();
        }
    }

    fn trim(&mut self) {
        self.found.sort_by_key(|(order, _)| *order);
        self.found.truncate(limits::CASES_PER_CLASS_MAX);
    }
}

/// What `finish` gathers from the messages before it concludes.
struct Tally {
    final_done: bool,
    buckets: usize,
    classes: BTreeMap<AnomalyKind, Class>,
    /// Observations per partition (index: pk), each nearly in offset order already.
    positions: Vec<Vec<PosEntry>>,
    /// Per (producer process, partition): (first send index, acked offset, id), in slot order.
    sends_order: SendsByPartition,
    histogram: Vec<u64>,
    unseen_diff: Vec<i64>,
    lags: Vec<Vec<u32>>,
    /// Consumer reads of messages not acknowledged at that position before the read.
    unsure_reads: Vec<UnsureRead>,
}

impl Tally {
    fn new(partitions: usize, buckets: usize, final_done: bool) -> Tally {
        Tally {
            final_done,
            buckets,
            classes: BTreeMap::new(),
            positions: vec![Vec::new(); partitions],
            sends_order: FastMap::default(),
            histogram: vec![0u64; limits::DELIVERIES_HISTOGRAM_MAX],
            unseen_diff: vec![0i64; buckets + 1],
            lags: vec![Vec::new(); buckets],
            unsure_reads: Vec::new(),
        }
    }

    fn class(&mut self, kind: AnomalyKind, msg: &Msg, sub: Option<&'static str>) {
        self.classes
            .entry(kind)
            .or_default()
            .push(msg.first_index, Found::Msg { id: msg.id, sub });
    }

    fn second_of(&self, ms: u32) -> usize {
        (ms as usize / 1000).min(self.buckets.saturating_sub(1))
    }
}

impl Checker {
    /// Ends the pass and concludes.
    pub fn finish(mut self) -> Analysis {
        let duration_s = seconds(self.last_time_ns);
        self.close_open_sends();
        self.judge_missing_topic();
        let mut counts = std::mem::take(&mut self.counts);
        counts.ops = self.ops;
        let mut t = Tally::new(self.pks.len(), self.buckets(), self.final_read.completed);
        self.compaction = self.compaction();
        for msg in self.msgs.iter() {
            self.tally_message(&mut t, &mut counts, msg);
        }
        if !t.final_done {
            // Without a final read only Jepsen's second definition of loss applies.
            for kind in [
                AnomalyKind::ReadThenLost,
                AnomalyKind::ProducerLoss,
                AnomalyKind::UnacknowledgedAbsent,
            ] {
                t.classes.remove(&kind);
            }
        }
        self.per_offset_cases(&mut t, counts.processed);
        self.finish_all_series(&mut t, &counts, duration_s);

        let mut anomalies =
            self.anomalies(std::mem::take(&mut t.classes), &t.positions, duration_s);
        drop(t);
        if let Some(note) = self.pipeline_anomalies(&mut anomalies, duration_s) {
            self.notes.push(note);
        }
        let mut replica_cases = std::mem::take(&mut self.replica_cases);
        if self.compaction.is_some() {
            // Each replica cleans its own log when it will: one lacking a record another still
            // holds is compaction, not divergence (a record differing at an offset still is).
            replica_cases.retain(|c| c.sub_kind.as_deref() != Some("missing_below_hw"));
        }
        for anomaly in &anomalies {
            *counts.class_mut(anomaly.kind) = anomaly.count;
        }
        let unmet = self.unmet(&counts, &anomalies, !replica_cases.is_empty());
        let forbidden_found = anomalies
            .iter()
            .any(|a| a.allowance == Allowance::Forbidden);
        let verdict = if forbidden_found || !unmet.is_empty() {
            Verdict::Invalid
        } else if !self.final_read.completed {
            Verdict::Unknown
        } else {
            Verdict::Valid
        };
        let notes = self.conclude_notes(&counts, &anomalies);
        let mut analysis = Analysis {
            verdict,
            counts,
            unmet,
            anomalies,
            series: std::mem::take(&mut self.series),
            faults: std::mem::take(&mut self.faults),
            notes,
            expect: self.expect.clone(),
        };
        analysis.add_replica_divergence(replica_cases);
        let crashes = std::mem::take(&mut self.crashes);
        analysis.add_node_crashes(crashes, self.crashes_omitted);
        if let (false, Some(topic)) = (self.txns.is_empty(), &self.txn_topic) {
            crate::elle::judge(&mut analysis, &self.txns, topic, self.elle_options);
        }
        analysis
    }

    /// A topic the final read found gone is a complete read of nothing: every message
    /// acknowledged to it is lost. Unless nothing was acknowledged at all: then the run verified
    /// nothing, and the final read counts as not completed (no claim from absence; never valid).
    fn judge_missing_topic(&mut self) {
        let Some(missing) = &self.final_read.topic_missing else {
            return;
        };
        let acknowledged = self
            .msgs
            .iter()
            .any(|m| m.has(flag::HAS_SEND) && m.outcome() == SendOutcome::Ok);
        if self.final_read.completed && !acknowledged {
            self.final_read.completed = false;
            self.final_read.ended_without_ok = Some(format!(
                "found no topic {} (Metadata: {}) and nothing had been acknowledged",
                missing.name, missing.error
            ));
        }
    }

    /// One message's counts, classes, series and observed positions.
    fn tally_message(&self, t: &mut Tally, counts: &mut Counts, msg: &Msg) {
        let id = msg.id;
        let read = msg.is_read();
        let in_final = msg.has(flag::IN_FINAL);
        if msg.has(flag::ACCEPTED) {
            counts.accepted += 1;
        }
        if msg.has(flag::DROPPED) {
            counts.dropped += 1;
        }
        if msg.has(flag::HAS_SEND) {
            self.tally_send(t, counts, msg);
        } else if msg.has(flag::ACCEPTED) || msg.has(flag::DROPPED) {
            if t.final_done && !in_final && !read {
                let sub = if msg.has(flag::DROPPED) {
                    "dropped"
                } else {
                    "never_sent"
                };
                t.class(AnomalyKind::ProducerLoss, msg, Some(sub));
            }
        } else if read {
            counts.unknown_ids_read += 1;
        }
        // A transaction that did not commit, seen by read_uncommitted consumers only, is
        // rightly absent from the (read_committed) final read.
        let uncommitted_only = msg.uncommitted_only();
        if t.final_done
            && msg.has(flag::READ_BY_CONSUMER)
            && !in_final
            && !self.below_log_start(msg)
            && !self.superseded(msg)
            && !uncommitted_only
        {
            t.class(AnomalyKind::ReadThenLost, msg, None);
        }
        if !msg.others().is_empty() {
            t.class(AnomalyKind::Duplicate, msg, Some("read_twice"));
        } else if acked_elsewhere(msg) {
            t.class(AnomalyKind::Duplicate, msg, Some("acknowledged_elsewhere"));
        }
        let acked = msg.acked_offset();
        let mut ack_merged = false;
        // Positions known only from reads of uncommitted data are not the log's committed
        // content: a read_committed consumer rightly skips them.
        if read && !uncommitted_only {
            let final_bit = if msg.has(flag::FINAL_AT_FIRST) {
                SRC_FINAL
            } else {
                0
            };
            ack_merged = acked == Some((msg.read_pk, msg.read_offset));
            let ack_bit = if ack_merged { SRC_ACK } else { 0 };
            t.positions[msg.read_pk as usize].extend(PosEntry::new(
                msg.read_offset,
                SRC_READ | final_bit | ack_bit,
                id,
            ));
            for r in msg.others() {
                let src = SRC_READ | if r.in_final { SRC_FINAL } else { 0 };
                t.positions[r.pk as usize].extend(PosEntry::new(r.offset, src, id));
            }
        }
        if let (Some((pk, offset)), false) = (acked, ack_merged) {
            t.positions[pk as usize].extend(PosEntry::new(offset, SRC_ACK, id));
        }
        if t.final_done && msg.has(flag::READ_BY_CONSUMER) {
            unsure_reads(msg, &mut t.unsure_reads);
        }
    }

    /// Whether `msg`'s position (acknowledged, else read) lies below the log start offset the
    /// final read found: retention deleted it.
    fn below_log_start(&self, msg: &Msg) -> bool {
        let position = msg
            .acked_offset()
            .or_else(|| msg.is_read().then_some((msg.read_pk, msg.read_offset)));
        position.is_some_and(|(pk, offset)| self.log_start.get(&pk).is_some_and(|s| offset < *s))
    }

    /// On a compacted topic (the `start` op's `topic.cleanup_policy` includes `compact`, and
    /// its producers write `keys`): per (partition, key) the highest offset the final read holds
    /// a record of that key at, and per position the message it holds there.
    fn compaction(&self) -> Option<Compaction> {
        let keys = self.compaction_keys()?;
        let mut c = Compaction {
            keys,
            ..Compaction::default()
        };
        for msg in self.msgs.iter() {
            if !msg.has(flag::IN_FINAL) {
                continue;
            }
            let first = msg
                .has(flag::FINAL_AT_FIRST)
                .then_some((msg.read_pk, msg.read_offset));
            let others = msg
                .others()
                .iter()
                .filter(|r| r.in_final)
                .map(|r| (r.pk, r.offset));
            for (pk, offset) in first.into_iter().chain(others) {
                let entry = c
                    .latest
                    .entry((pk, kaos_history::message_key(msg.id, keys)))
                    .or_insert(offset);
                *entry = (*entry).max(offset);
                c.held.insert((pk, offset), msg.id);
            }
        }
        Some(c)
    }

    /// The producers' key space when the scenario's topic is compacted: the `start` op's
    /// `topic.cleanup_policy` (the harness writes the policy the brokers apply, whichever table
    /// of the scenario set it); a history written before it has the cluster's
    /// `log.cleanup.policy` instead.
    fn compaction_keys(&self) -> Option<u64> {
        let scenario = self.scenario.as_ref()?;
        let policy = scenario
            .pointer("/topic/cleanup_policy")
            .or_else(|| scenario.pointer("/topic/configs/cleanup.policy"))
            .or_else(|| scenario.pointer("/cluster/settings/log.cleanup.policy"))
            .and_then(serde_json::Value::as_str)?;
        if !policy.split(',').any(|p| p.trim() == "compact") {
            return None;
        }
        scenario
            .get("clients")?
            .as_array()?
            .iter()
            .find_map(|c| c.get("keys").and_then(serde_json::Value::as_u64))
            .filter(|&keys| keys > 0)
    }

    /// Whether `msg`'s position (acknowledged, else read) is below a record of its key the final
    /// read holds in the same partition: compaction may remove it. Not when the final read
    /// holds another message at that very position: the cleaner keeps offsets, so that message
    /// was overwritten (truncated and written again), which is a loss.
    pub(crate) fn superseded(&self, msg: &Msg) -> bool {
        let Some(c) = &self.compaction else {
            return false;
        };
        let position = msg
            .acked_offset()
            .or_else(|| msg.is_read().then_some((msg.read_pk, msg.read_offset)));
        position.is_some_and(|(pk, offset)| {
            let overwritten = c.held.get(&(pk, offset)).is_some_and(|&id| id != msg.id);
            !overwritten
                && c.latest
                    .get(&(pk, kaos_history::message_key(msg.id, c.keys)))
                    .is_some_and(|&l| l > offset)
        })
    }

    /// A compacted topic whose final read did not complete: the latest record of a key is known
    /// only from the part read, so a message absent from it may have been removed as superseded
    /// by a later record of its key that part did not reach. No loss or skip is claimed from
    /// such an absence (the message is `unseen`; the verdict at best UNKNOWN).
    fn compaction_unsure(&self) -> bool {
        self.compaction.is_some() && !self.final_read.completed
    }

    /// A message some producer sent: its outcome's counts and the classes about sends.
    fn tally_send(&self, t: &mut Tally, counts: &mut Counts, msg: &Msg) {
        let read = msg.is_read();
        let in_final = msg.has(flag::IN_FINAL);
        let outcome = msg.outcome();
        counts.sends_invoked += 1;
        match outcome {
            SendOutcome::Ok => counts.sends_ok += 1,
            SendOutcome::Fail => counts.sends_fail += 1,
            SendOutcome::Info => counts.sends_info += 1,
        }
        if outcome != SendOutcome::Ok && in_final {
            counts.recovered += 1;
        }
        if outcome == SendOutcome::Fail && read {
            if !msg.has(flag::TXN) || msg.has(flag::READ_COMMITTED) {
                t.class(AnomalyKind::AbortedRead, msg, None);
            }
            if msg.has(flag::TXN) && msg.has(flag::READ_UNCOMMITTED) {
                t.class(AnomalyKind::AbortedReadUncommitted, msg, None);
            }
        }
        if msg.has(flag::FUTURE_READ) {
            t.class(AnomalyKind::FutureRead, msg, None);
        } else if outcome == SendOutcome::Ok && msg.has(flag::READ_BEFORE_ACK) {
            t.class(AnomalyKind::ReadBeforeAck, msg, None);
        }
        let below_frontier = msg
            .acked_offset()
            .is_some_and(|(pk, offset)| self.read_frontier.get(&pk).is_some_and(|f| offset < *f));
        let unread_lost = outcome == SendOutcome::Ok && !read && below_frontier;
        let absent = t.final_done && !in_final;
        let below_log_start = self.below_log_start(msg);
        if below_log_start && (unread_lost || absent) {
            // Retention deleted it: never read, it is `retention_deleted`; read, it was delivered.
            if outcome == SendOutcome::Ok && !read {
                t.class(AnomalyKind::RetentionDeleted, msg, Some("unread"));
            }
        } else if (unread_lost || absent) && self.superseded(msg) {
            // The cleaner removed it: a later record of its key is in the final read.
            if outcome == SendOutcome::Ok {
                t.class(AnomalyKind::Compacted, msg, Some("superseded"));
            }
        } else if unread_lost && !self.compaction_unsure() {
            t.class(AnomalyKind::Lost, msg, Some("unread"));
        } else if !t.final_done && outcome == SendOutcome::Ok && !read {
            t.class(AnomalyKind::Unseen, msg, None);
        } else if absent && outcome == SendOutcome::Ok {
            t.class(AnomalyKind::Lost, msg, Some("absent"));
        } else if absent && outcome == SendOutcome::Info && read && !msg.uncommitted_only() {
            t.class(AnomalyKind::Lost, msg, Some("unknown_outcome_read"));
        }
        if absent && outcome != SendOutcome::Ok && !read {
            if msg.has(flag::DROPPED) {
                t.class(AnomalyKind::ProducerLoss, msg, Some("dropped"));
            } else if msg.has(flag::ACCEPTED) {
                t.class(AnomalyKind::ProducerLoss, msg, Some("sent"));
            } else {
                t.class(AnomalyKind::UnacknowledgedAbsent, msg, None);
            }
        }
        let d = usize::from(msg.deliveries).min(limits::DELIVERIES_HISTOGRAM_MAX - 1);
        t.histogram[d] += 1;
        if msg.deliveries >= 2 {
            counts.delivered_more_than_once += 1;
        }
        if outcome == SendOutcome::Ok && t.buckets > 0 {
            let acked = t.second_of(msg.ack_ms);
            t.unseen_diff[acked] += 1;
            let consumer_read = msg.has(flag::READ_BY_CONSUMER) && !msg.has(flag::FIRST_READ_FINAL);
            if consumer_read {
                let read_second = t.second_of(msg.read_ms);
                t.unseen_diff[read_second.max(acked)] -= 1;
                t.lags[read_second].push(msg.read_ms.saturating_sub(msg.ack_ms));
            }
        }
        if outcome == SendOutcome::Ok && msg.has(flag::HAS_INVOKE) {
            if let Some((pk, offset)) = msg.acked_offset() {
                t.sends_order.entry((msg.process, pk)).or_default().push((
                    msg.first_index,
                    offset,
                    msg.id,
                ));
            }
        }
    }

    /// The per-offset questions, from the sorted observations, and the classes kept aside.
    fn per_offset_cases(&mut self, t: &mut Tally, processed_count: u64) {
        for bucket in &mut t.positions {
            // Stable sort: it merges the natural runs, near linear on nearly sorted input.
            bucket.sort_by_key(|e| (e.packed >> 3, e.id));
            bucket.dedup_by(|b, a| {
                let same = a.packed >> 3 == b.packed >> 3 && a.id == b.id;
                if same {
                    a.packed |= b.packed & 7;
                }
                same
            });
        }
        let classes = &mut t.classes;
        self.uncommitted_read_cases(&t.positions, &t.unsure_reads, t.final_done, classes);
        for lost in std::mem::take(&mut self.lost_commits) {
            classes
                .entry(AnomalyKind::LostCommit)
                .or_default()
                .push(lost.index, Found::LostCommit(lost));
        }
        if let Some(class) = classes.get_mut(&AnomalyKind::LostCommit) {
            class.count = self.lost_commits_count;
        }
        self.inconsistent_offset_cases(&t.positions, classes);
        self.poll_skip_cases(&t.positions, classes);
        self.unprocessed_cases(&t.positions, t.final_done, processed_count, classes);
        self.nonmonotonic_send_cases(std::mem::take(&mut t.sends_order), classes);
        for jump in std::mem::take(&mut self.rewinds) {
            classes
                .entry(AnomalyKind::NonmonotonicPoll)
                .or_default()
                .push(jump.index, Found::Rewind { jump });
        }
        if let Some(class) = classes.get_mut(&AnomalyKind::NonmonotonicPoll) {
            class.count = self.rewinds_count;
        }
        let mut processed: Vec<(u64, u64)> = self
            .processed
            .iter()
            .filter(|(_, p)| p.count >= 2)
            .map(|(id, p)| (p.first.0, *id))
            .collect();
        processed.sort_unstable();
        for (order, id) in processed {
            classes
                .entry(AnomalyKind::DuplicateProcessing)
                .or_default()
                .push(order, Found::Msg { id, sub: None });
        }
    }

    /// The series from the tally: unseen, lag, the deliveries histogram.
    fn finish_all_series(&mut self, t: &mut Tally, counts: &Counts, duration_s: f64) {
        self.finish_series(duration_s, t.buckets);
        let mut unseen = Vec::with_capacity(t.buckets);
        let mut level = 0i64;
        for d in t.unseen_diff.iter().take(t.buckets) {
            level += d;
            unseen.push(u64::try_from(level).unwrap_or(0));
        }
        self.series.unseen = unseen;
        self.lag_series(std::mem::take(&mut t.lags));
        let mut histogram = std::mem::take(&mut t.histogram);
        while histogram.len() > 1 && histogram.last() == Some(&0) {
            histogram.pop();
        }
        if counts.sends_invoked > 0 {
            self.series.deliveries_histogram = histogram;
        }
    }

    /// Each class found, with its first cases by order.
    fn anomalies(
        &self,
        classes: BTreeMap<AnomalyKind, Class>,
        positions: &[Vec<PosEntry>],
        duration_s: f64,
    ) -> Vec<Anomaly> {
        let mut anomalies = Vec::new();
        for (kind, mut class) in classes {
            if class.count == 0 {
                continue;
            }
            class.trim();
            let cases: Vec<Case> = class
                .found
                .iter()
                .map(|(_, found)| self.case(kind, found, positions, duration_s))
                .collect();
            anomalies.push(Anomaly {
                kind,
                allowance: kind.allowance(&self.expect),
                count: class.count,
                cases_omitted: class.count - cases.len() as u64,
                cases,
            });
        }
        anomalies
    }

    /// What the scenario required and the run did not show.
    fn unmet(
        &self,
        counts: &Counts,
        anomalies: &[Anomaly],
        replicas_diverged: bool,
    ) -> Vec<String> {
        let mut unmet = Vec::new();
        for kind in AnomalyKind::ALL {
            // Replica divergence comes from the dumps, added later: it counts as found here.
            // So do node crashes, added after the streaming classes.
            let found = anomalies.iter().any(|a| a.kind == kind)
                || (kind == AnomalyKind::ReplicaDivergence && replicas_diverged)
                || (kind == AnomalyKind::NodeCrash && !self.crashes.is_empty());
            if kind.allowance(&self.expect) == Allowance::Required && !found {
                unmet.push(format!(
                    "expected {} to occur (this scenario demonstrates it), found none",
                    kind.as_str()
                ));
            }
        }
        if counts.sends_ok < self.expect.acknowledged_min {
            unmet.push(format!(
                "expected at least {} acknowledged sends, the run acknowledged {}",
                self.expect.acknowledged_min, counts.sends_ok
            ));
        }
        unmet.extend(self.pipeline_progress_unmet());
        unmet
    }

    fn buckets(&self) -> usize {
        if self.ops == 0 {
            0
        } else {
            usize::try_from(self.last_time_ns / 1_000_000_000)
                .unwrap_or(usize::MAX)
                .min(limits::SERIES_SECONDS_MAX - 1)
                + 1
        }
    }

    fn finish_series(&mut self, duration_s: f64, buckets: usize) {
        self.series.duration_s = duration_s;
        for series in [
            &mut self.series.sends_ok,
            &mut self.series.sends_fail,
            &mut self.series.sends_info,
            &mut self.series.records_polled,
        ] {
            series.resize(buckets, 0);
        }
    }

    /// Per-second p50/p99/max of the realtime lag (`lags[second]`: the lags of the messages first
    /// read in that second), by selection rather than sorting.
    fn lag_series(&mut self, mut lags: Vec<Vec<u32>>) {
        if lags.iter().all(Vec::is_empty) {
            return;
        }
        let buckets = lags.len();
        let (mut p50, mut p99, mut max) = (vec![0; buckets], vec![0; buckets], vec![0; buckets]);
        for (second, group) in lags.iter_mut().enumerate() {
            if group.is_empty() {
                continue;
            }
            let mut at = |q: f64| {
                let i = (((group.len() - 1) as f64) * q).round() as usize;
                u64::from(*group.select_nth_unstable(i).1)
            };
            p50[second] = at(0.5);
            p99[second] = at(0.99);
            max[second] = at(1.0);
        }
        self.series.lag_ms_p50 = p50;
        self.series.lag_ms_p99 = p99;
        self.series.lag_ms_max = max;
    }

    fn inconsistent_offset_cases(
        &self,
        positions: &[Vec<PosEntry>],
        classes: &mut BTreeMap<AnomalyKind, Class>,
    ) {
        for (pk, group) in positions.iter().enumerate().flat_map(|(pk, bucket)| {
            bucket
                .chunk_by(|a, b| a.packed >> 3 == b.packed >> 3)
                .map(move |group| (pk as u32, group))
        }) {
            if group.len() < 2 {
                continue;
            }
            let order = group
                .iter()
                .filter_map(|e| self.msg(e.id).map(|m| m.first_index))
                .min()
                .unwrap_or(NONE);
            classes
                .entry(AnomalyKind::InconsistentOffsets)
                .or_default()
                .push(
                    order,
                    Found::Inconsistent {
                        pk,
                        offset: group[0].offset(),
                        ids: group
                            .iter()
                            .take(limits::IDS_PER_CASE_MAX)
                            .map(|e| e.id)
                            .collect(),
                        src: group
                            .iter()
                            .take(limits::IDS_PER_CASE_MAX)
                            .map(PosEntry::src)
                            .collect(),
                    },
                );
        }
    }

    /// A consumer's jump is a skip when some message is known at an offset it jumped over.
    fn poll_skip_cases(
        &self,
        positions: &[Vec<PosEntry>],
        classes: &mut BTreeMap<AnomalyKind, Class>,
    ) {
        for jump in &self.jumps {
            if self.log_start.get(&jump.pk).is_some_and(|s| jump.to <= *s) {
                // A reset to the log start past what retention deleted (OFFSET_OUT_OF_RANGE and
                // `auto.offset.reset`): its messages are `retention_deleted` when never read.
                continue;
            }
            let bucket = positions
                .get(jump.pk as usize)
                .map_or(&[][..], Vec::as_slice);
            let start = bucket.partition_point(|e| e.offset() <= jump.from);
            let mut skipped: Vec<(i64, u64)> = Vec::new();
            let mut count = 0usize;
            let mut last_offset = None;
            for e in &bucket[start..] {
                if e.offset() >= jump.to {
                    break;
                }
                // The cleaner removed it (or, the final read incomplete, may have): a consumer
                // rightly reads past it. Not one the final read holds: it was still there.
                let held = e.src() & SRC_FINAL != 0;
                let removable =
                    self.compaction_unsure() || self.msg(e.id).is_some_and(|m| self.superseded(m));
                if removable && !held {
                    continue;
                }
                if last_offset != Some(e.offset()) {
                    count += 1;
                    last_offset = Some(e.offset());
                    if skipped.len() < limits::SKIPPED_EVIDENCE_MAX {
                        skipped.push((e.offset(), e.id));
                    }
                }
            }
            if count > 0 {
                classes.entry(AnomalyKind::PollSkip).or_default().push(
                    jump.index,
                    Found::Skip {
                        jump: *jump,
                        skipped,
                    },
                );
            }
        }
    }

    /// Messages in the log below an offset a group committed that no `process` op handled.
    fn unprocessed_cases(
        &self,
        positions: &[Vec<PosEntry>],
        final_done: bool,
        processed_ops: u64,
        classes: &mut BTreeMap<AnomalyKind, Class>,
    ) {
        if processed_ops == 0 {
            return;
        }
        let mut commits: Vec<((u32, u32), i64)> =
            self.committed.iter().map(|(k, v)| (*k, *v)).collect();
        commits.sort_unstable();
        let in_log = if final_done {
            SRC_FINAL
        } else {
            SRC_READ | SRC_FINAL
        };
        let mut reported: FastSet<u64> = FastSet::default();
        for ((group, pk), committed) in commits {
            let bucket = positions.get(pk as usize).map_or(&[][..], Vec::as_slice);
            for e in bucket {
                if e.offset() >= committed {
                    break;
                }
                if e.src() & in_log == 0 || self.processed.contains_key(&e.id) {
                    continue;
                }
                if reported.insert(e.id) {
                    let order = self.msg(e.id).map_or(NONE, |m| m.first_index);
                    classes.entry(AnomalyKind::Unprocessed).or_default().push(
                        order,
                        Found::Unprocessed {
                            id: e.id,
                            group,
                            pk,
                            offset: e.offset(),
                            committed,
                        },
                    );
                }
            }
        }
    }

    /// `uncommitted_read`: the consumer reads at or above the high watermark their client
    /// recorded with them (`above_high_watermark`, direct evidence); and, for reads without a
    /// recorded high watermark (older histories, Jepsen's), those made where the message was not
    /// acknowledged yet (and whose ack, if it came, named another position) whose position the
    /// final read ends before (`truncated`) or holds another message at (`overwritten`). A gap
    /// the final read skipped (a control record) is not claimed by the inference.
    fn uncommitted_read_cases(
        &mut self,
        positions: &[Vec<PosEntry>],
        reads: &[UnsureRead],
        final_done: bool,
        classes: &mut BTreeMap<AnomalyKind, Class>,
    ) {
        let above = std::mem::take(&mut self.above_hw);
        for read in above {
            let then = self.final_at(positions, final_done, read.pk, read.offset, read.id);
            classes
                .entry(AnomalyKind::UncommittedRead)
                .or_default()
                .push(read.index, Found::AboveHighWatermark { read, then });
        }
        // The inferred cases are each pushed; the direct ones are counted exactly.
        let kept = self.above_hw_count.min(limits::CASES_PER_CLASS_MAX as u64);
        let uncounted = self.above_hw_count - kept;
        self.inferred_uncommitted_reads(positions, reads, classes);
        if let Some(class) = classes.get_mut(&AnomalyKind::UncommittedRead) {
            class.count += uncounted;
        }
    }

    /// What the completed final read holds at a position a consumer read message `id` at.
    fn final_at(
        &self,
        positions: &[Vec<PosEntry>],
        final_done: bool,
        pk: u32,
        offset: i64,
        id: Option<u64>,
    ) -> FinalAt {
        if !final_done {
            return FinalAt::Unknown;
        }
        match self.final_ends.get(&pk) {
            Some(end) if offset <= *end => {}
            _ => return FinalAt::Ends,
        }
        let bucket = positions.get(pk as usize).map_or(&[][..], Vec::as_slice);
        let start = bucket.partition_point(|e| e.offset() < offset);
        let in_final = bucket[start..]
            .iter()
            .take_while(|e| e.offset() == offset)
            .any(|e| e.src() & SRC_FINAL != 0 && Some(e.id) == id);
        if in_final {
            return FinalAt::Same;
        }
        match self.final_holder(positions, pk, offset) {
            Some(other) => FinalAt::Other(other),
            None => FinalAt::Skipped,
        }
    }

    /// The inference for reads without a recorded high watermark (see `uncommitted_read_cases`).
    fn inferred_uncommitted_reads(
        &self,
        positions: &[Vec<PosEntry>],
        reads: &[UnsureRead],
        classes: &mut BTreeMap<AnomalyKind, Class>,
    ) {
        // One replica: the high watermark is the log end, so every record served was committed
        // (its later absence is a loss of committed data, `lost` / `read_then_lost`).
        let single_replica = self
            .scenario
            .as_ref()
            .and_then(|s| s.pointer("/topic/replication_factor"))
            .and_then(serde_json::Value::as_u64)
            == Some(1);
        if single_replica {
            return;
        }
        for read in reads {
            // An aborted (or unknown) transaction's record read at read_uncommitted is what that
            // isolation level returns, not a record the broker lost: `aborted_read_uncommitted`.
            if self.msg(read.id).is_some_and(|m| m.uncommitted_only()) {
                continue;
            }
            // Acknowledged at the very position it was read: the broker committed that record
            // there, so its later absence is a loss of committed data (`lost`, `read_then_lost`),
            // not a read of a record that was never committed.
            if self
                .msg(read.id)
                .is_some_and(|m| m.acked_offset() == Some((read.pk, read.offset)))
            {
                continue;
            }
            let final_id = match self.final_ends.get(&read.pk) {
                Some(end) if read.offset <= *end => {
                    match self.final_holder(positions, read.pk, read.offset) {
                        Some(Some(other)) if other != read.id => Some(other),
                        _ => continue,
                    }
                }
                _ => None,
            };
            classes
                .entry(AnomalyKind::UncommittedRead)
                .or_default()
                .push(
                    read.index,
                    Found::UncommittedRead {
                        read: *read,
                        final_id,
                    },
                );
        }
    }

    /// Within one producer process and partition, acknowledged offsets must follow send order.
    fn nonmonotonic_send_cases(
        &self,
        sends: SendsByPartition,
        classes: &mut BTreeMap<AnomalyKind, Class>,
    ) {
        for (_, mut group) in sends {
            group.sort_by_key(|s| s.0); // nearly sorted already: linear
            let mut max: Option<(i64, u64)> = None;
            for (first_index, offset, id) in group {
                match max {
                    Some((max_offset, earlier)) if offset < max_offset => {
                        classes
                            .entry(AnomalyKind::NonmonotonicSend)
                            .or_default()
                            .push(
                                first_index,
                                Found::NonmonotonicSend {
                                    id,
                                    earlier,
                                    earlier_offset: max_offset,
                                },
                            );
                    }
                    Some((max_offset, _)) if offset <= max_offset => {}
                    _ => max = Some((offset, id)),
                }
            }
        }
    }

    pub(crate) fn position_of(&self, pk: u32, offset: i64) -> Position {
        let (topic, partition) = self.pks.get(pk as usize).copied().unwrap_or((u32::MAX, -1));
        Position {
            topic: self.names.name(topic).to_owned(),
            partition,
            offset,
        }
    }

    pub(crate) fn partition_of(&self, pk: u32) -> i32 {
        self.pks.get(pk as usize).map_or(-1, |(_, p)| *p)
    }

    pub(crate) fn faults_near(&self, time_s: f64, duration_s: f64) -> Vec<&FaultWindow> {
        self.faults
            .iter()
            .filter(|w| {
                w.start_s <= time_s + limits::FAULT_NEARBY_S
                    && w.end_or(duration_s) >= time_s - limits::FAULT_NEARBY_S
            })
            .collect()
    }

    pub(crate) fn fault_clause(&self, nearby: &[&FaultWindow]) -> String {
        match nearby {
            [] => format!("no fault was active within {} s", limits::FAULT_NEARBY_S),
            [one] => fault_phrase(one),
            [first, rest @ ..] => format!(
                "{} (and {} more fault{} nearby)",
                fault_phrase(first),
                rest.len(),
                if rest.len() == 1 { "" } else { "s" }
            ),
        }
    }

    /// The id the final read returned at a position: `Some(Some(id))`, `Some(None)` for a record
    /// without an id, `None` when the final read returned nothing there.
    fn final_holder(
        &self,
        positions: &[Vec<PosEntry>],
        pk: u32,
        offset: i64,
    ) -> Option<Option<u64>> {
        let bucket = positions.get(pk as usize).map_or(&[][..], Vec::as_slice);
        let start = bucket.partition_point(|e| e.offset() < offset);
        for e in &bucket[start..] {
            if e.offset() != offset {
                break;
            }
            if e.src() & SRC_FINAL != 0 {
                return Some(Some(e.id));
            }
        }
        self.final_without_id
            .contains(&(pk, offset))
            .then_some(None)
    }

    fn case(
        &self,
        kind: AnomalyKind,
        found: &Found,
        positions: &[Vec<PosEntry>],
        duration_s: f64,
    ) -> Case {
        match found {
            Found::Msg { id, sub } => self.message_case(kind, *id, *sub, positions, duration_s),
            Found::Inconsistent {
                pk,
                offset,
                ids,
                src,
            } => self.inconsistent_case(*pk, *offset, ids, src, duration_s),
            Found::Skip { jump, skipped } => self.skip_case(jump, skipped, duration_s),
            Found::Rewind { jump } => self.rewind_case(jump, duration_s),
            Found::NonmonotonicSend {
                id,
                earlier,
                earlier_offset,
            } => self.nonmonotonic_send_case(*id, *earlier, *earlier_offset, duration_s),
            Found::Unprocessed {
                id,
                group,
                pk,
                offset,
                committed,
            } => self.unprocessed_case(*id, *group, *pk, *offset, *committed, duration_s),
            Found::LostCommit(lost) => self.lost_commit_case(lost, duration_s),
            Found::UncommittedRead { read, final_id } => {
                self.uncommitted_read_case(read, *final_id, duration_s)
            }
            Found::AboveHighWatermark { read, then } => {
                self.above_high_watermark_case(read, *then, duration_s)
            }
        }
    }

    fn inconsistent_case(
        &self,
        pk: u32,
        offset: i64,
        ids: &[u64],
        src: &[u8],
        duration_s: f64,
    ) -> Case {
        let first = ids.first().and_then(|id| self.msg(*id));
        let time_ms = ids
            .iter()
            .filter_map(|id| self.msg(*id))
            .map(|m| {
                if m.ack_index != NONE {
                    m.ack_ms
                } else {
                    m.read_ms
                }
            })
            .max()
            .unwrap_or(0);
        let time_s = ms_seconds(time_ms);
        let nearby = self.faults_near(time_s, duration_s);
        let seen: Vec<String> = ids
            .iter()
            .zip(src)
            .map(|(id, s)| format!("message {id} ({})", source_words(*s)))
            .collect();
        let cause = format!(
            "{} were all observed at partition {} offset {offset}: the log at that offset \
             was rewritten, most likely truncated and overwritten after a leader change{}; {}.",
            seen.join(" and "),
            self.partition_of(pk),
            self.scenario_clause(),
            self.fault_clause(&nearby)
        );
        let mut case = self.base_case(
            ids.first().copied().unwrap_or(0),
            first,
            time_s,
            &nearby,
            cause,
        );
        case.ids = ids.to_vec();
        case.positions = vec![self.position_of(pk, offset)];
        case.op_indexes = ids
            .iter()
            .filter_map(|id| self.msg(*id))
            .flat_map(|m| [m.ack_index, m.read_index])
            .filter(|i| *i != NONE)
            .collect();
        case.op_indexes.sort_unstable();
        case.op_indexes.dedup();
        case
    }

    fn skip_case(&self, jump: &Jump, skipped: &[(i64, u64)], duration_s: f64) -> Case {
        let time_s = ms_seconds(jump.time_ms);
        let nearby = self.faults_near(time_s, duration_s);
        let process = self.names.name(jump.process);
        let offsets: Vec<String> = skipped.iter().map(|(o, _)| o.to_string()).collect();
        let how = match jump.after {
            Some(Reset::Committed) => format!(
                "its first read after an assignment (generation {}) started at offset {} \
                 although the group had committed offset {}",
                jump.generation,
                jump.to,
                jump.from + 1
            ),
            Some(Reset::Seek) => format!(
                "its first read after a seek to offset {} returned offset {}",
                jump.from + 1,
                jump.to
            ),
            None => format!(
                "it read offset {} then offset {}{}",
                jump.from,
                jump.to,
                if jump.within_poll {
                    " in the same poll"
                } else {
                    " in its next poll"
                }
            ),
        };
        let cause = format!(
            "{process} skipped message(s) at offset(s) {} of partition {}: {how}{}, so the \
             application never saw them (a fetch that jumped past records, or an offset \
             reset); {}.",
            offsets.join(", "),
            self.partition_of(jump.pk),
            uncommitted_clause(jump),
            self.fault_clause(&nearby)
        );
        let id = jump.id.or(skipped.first().map(|s| s.1)).unwrap_or(0);
        let mut case = self.base_case(id, self.msg(id), time_s, &nearby, cause);
        case.sub_kind = Some(
            match jump.after {
                Some(Reset::Committed) => "after_assignment",
                Some(Reset::Seek) => "after_seek",
                None if jump.within_poll => "within_poll",
                None => "between_polls",
            }
            .to_owned(),
        );
        case.ids = skipped.iter().map(|s| s.1).collect();
        case.process = Some(process.to_owned());
        case.positions = skipped
            .iter()
            .map(|(o, _)| self.position_of(jump.pk, *o))
            .collect();
        case.read_at = vec![self.position_of(jump.pk, jump.to)];
        case.op_indexes = vec![jump.index];
        case
    }

    fn rewind_case(&self, jump: &Jump, duration_s: f64) -> Case {
        let time_s = ms_seconds(jump.time_ms);
        let nearby = self.faults_near(time_s, duration_s);
        let process = self.names.name(jump.process);
        let (sub, how) = match jump.after {
            Some(Reset::Committed) => (
                "below_committed",
                format!(
                    "after an assignment (generation {}) it started at offset {}, below the \
                     group's committed offset {}, so committed messages were delivered again",
                    jump.generation,
                    jump.to,
                    jump.from + 1
                ),
            ),
            Some(Reset::Seek) => (
                "below_seek",
                format!(
                    "after a seek to offset {} it read offset {}",
                    jump.from + 1,
                    jump.to
                ),
            ),
            None if jump.within_poll => (
                "within_poll",
                format!(
                    "one poll returned offset {} after offset {}",
                    jump.to, jump.from
                ),
            ),
            None => (
                "between_polls",
                format!(
                    "it read offset {} and then, in a later poll, offset {} without a \
                     seek or rebalance in between",
                    jump.from, jump.to
                ),
            ),
        };
        let cause = format!(
            "{process} read partition {} backwards: {how}{} (a fetch from a stale leader or \
             a log truncated under the consumer); {}.",
            self.partition_of(jump.pk),
            uncommitted_clause(jump),
            self.fault_clause(&nearby)
        );
        let id = jump.id.unwrap_or(0);
        let mut case = self.base_case(id, self.msg(id), time_s, &nearby, cause);
        case.sub_kind = Some(sub.to_owned());
        case.process = Some(process.to_owned());
        case.read_at = vec![self.position_of(jump.pk, jump.to)];
        case.positions = vec![self.position_of(jump.pk, jump.from)];
        case.op_indexes = vec![jump.index];
        case
    }

    fn nonmonotonic_send_case(
        &self,
        id: u64,
        earlier: u64,
        earlier_offset: i64,
        duration_s: f64,
    ) -> Case {
        let msg = self.msg(id);
        let time_s = msg.map_or(0.0, |m| ms_seconds(m.ack_ms));
        let nearby = self.faults_near(time_s, duration_s);
        let process = msg.map_or("?", |m| self.names.name(m.process));
        let (pk, offset) = msg.and_then(Msg::acked_offset).unwrap_or((u32::MAX, -1));
        let idempotence = match self.client_setting(process, &["enable.idempotence", "enable_idempotence", "idempotence"]) {
            Some(v) if is_true(&v) => "with enable.idempotence on, which promises per-partition order: a producer or broker bug".to_owned(),
            Some(_) => "with enable.idempotence off, so retries with more than one request in flight may reorder".to_owned(),
            None => "whether idempotence was on is not in the history; without it, retries with more than one request in flight reorder".to_owned(),
        };
        // Both sends invoked by one op: one transaction's (Jepsen's int-nonmonotonic-send).
        let within = msg
            .zip(self.msg(earlier))
            .filter(|(m, e)| m.first_index == e.first_index)
            .map(|(m, _)| m.first_index);
        let how = within.map_or(String::new(), |op| {
            format!(" (both sends of the transaction invoked at op {op})")
        });
        let cause = format!(
            "{process} sent message {earlier} before message {id}{how}, yet the broker \
             acknowledged message {earlier} at offset {earlier_offset} and message {id} at offset \
             {offset} of partition {}, {idempotence}; {}.",
            self.partition_of(pk),
            self.fault_clause(&nearby)
        );
        let mut case = self.base_case(id, msg, time_s, &nearby, cause);
        case.sub_kind = Some(
            if within.is_some() {
                "within_transaction"
            } else {
                "between_sends"
            }
            .to_owned(),
        );
        case.ids = vec![id, earlier];
        case.process = Some(process.to_owned());
        case.positions = vec![self.position_of(pk, earlier_offset)];
        case
    }

    fn unprocessed_case(
        &self,
        id: u64,
        group: u32,
        pk: u32,
        offset: i64,
        committed: i64,
        duration_s: f64,
    ) -> Case {
        let msg = self.msg(id);
        let time_s = msg.map_or(0.0, |m| {
            ms_seconds(if m.read_index != NONE {
                m.read_ms
            } else {
                m.ack_ms
            })
        });
        let nearby = self.faults_near(time_s, duration_s);
        let group_name = self.names.name(group);
        let cause = format!(
            "Message {id} sits at partition {} offset {offset}, below offset {committed} that \
             group {} committed, yet no consumer processed it: the offset was committed \
             before processing finished and the consumer died or moved on (commit before \
             processing, or naive commits of concurrent work); {}.",
            self.partition_of(pk),
            if group_name.is_empty() {
                "(unnamed)"
            } else {
                group_name
            },
            self.fault_clause(&nearby)
        );
        let mut case = self.base_case(id, msg, time_s, &nearby, cause);
        case.positions = vec![self.position_of(pk, offset)];
        case
    }

    /// The fields every case about one message shares.
    pub(crate) fn base_case(
        &self,
        id: u64,
        msg: Option<&Msg>,
        time_s: f64,
        nearby: &[&FaultWindow],
        cause: String,
    ) -> Case {
        let read_at = msg.map(|m| self.read_positions(m)).unwrap_or_default();
        Case {
            id,
            topic: msg
                .and_then(|m| (m.topic != u32::MAX).then(|| self.names.name(m.topic).to_owned()))
                .or_else(|| {
                    read_at
                        .first()
                        .map(|r| self.position_of(r.pk, r.offset).topic)
                }),
            acknowledged_at: msg
                .and_then(Msg::acked_offset)
                .map(|(pk, o)| self.position_of(pk, o)),
            read_at: read_at
                .iter()
                .map(|r| self.position_of(r.pk, r.offset))
                .collect(),
            op_indexes: msg
                .map(|m| self.op_indexes(m, &read_at))
                .unwrap_or_default(),
            time_s,
            faults_nearby: nearby.iter().map(|w| fault_summary(w)).collect(),
            cause,
            sub_kind: None,
            ids: Vec::new(),
            process: msg.and_then(|m| {
                (m.process != u32::MAX).then(|| self.names.name(m.process).to_owned())
            }),
            positions: Vec::new(),
            nodes: Vec::new(),
            cycle: Vec::new(),
            exit: None,
        }
    }

    fn read_positions(&self, msg: &Msg) -> Vec<ReadAt> {
        if !msg.is_read() {
            return Vec::new();
        }
        let first = ReadAt {
            pk: msg.read_pk,
            offset: msg.read_offset,
            index: msg.read_index,
            time_ms: msg.read_ms,
            in_final: msg.has(flag::FIRST_READ_FINAL),
            hw_known: msg.has(flag::HW_AT_FIRST),
        };
        std::iter::once(first)
            .chain(msg.others().iter().copied())
            .collect()
    }

    fn op_indexes(&self, msg: &Msg, read_at: &[ReadAt]) -> Vec<u64> {
        let mut indexes = Vec::new();
        if msg.has(flag::HAS_SEND) {
            indexes.push(msg.first_index);
        }
        if msg.ack_index != NONE {
            indexes.push(msg.ack_index);
        }
        if let Some(u) = msg.last_unacked() {
            indexes.push(u.index);
        }
        if let Some(extra) = &msg.extra {
            indexes.extend(extra.accepted_at.map(|a| a.0));
            indexes.extend(extra.dropped_at.map(|a| a.0));
        }
        indexes.extend(read_at.iter().map(|r| r.index));
        indexes.sort_unstable();
        indexes.dedup();
        indexes
    }

    fn message_case(
        &self,
        kind: AnomalyKind,
        id: u64,
        sub: Option<&'static str>,
        positions: &[Vec<PosEntry>],
        duration_s: f64,
    ) -> Case {
        let msg = self.msg(id);
        let read_at = msg.map(|m| self.read_positions(m)).unwrap_or_default();
        let processed = self.processed.get(&id);
        let time_ms = self.message_time_ms(kind, msg, &read_at, processed);
        let time_s = ms_seconds(time_ms);
        let nearby = self.faults_near(time_s, duration_s);
        let facts = Facts {
            id,
            msg,
            sub,
            read_at: &read_at,
            processed,
            process: msg
                .filter(|m| m.process != u32::MAX)
                .map(|m| self.names.name(m.process)),
            time_s,
            fault_clause: self.fault_clause(&nearby),
        };
        let cause = self.message_cause(kind, &facts, positions);
        let mut case = self.base_case(id, msg, time_s, &nearby, cause);
        case.sub_kind = sub.map(str::to_owned);
        if kind == AnomalyKind::DuplicateProcessing {
            self.add_processing(&mut case, processed);
        }
        case
    }

    /// When the case happened, by its class: the moment its evidence completed.
    fn message_time_ms(
        &self,
        kind: AnomalyKind,
        msg: Option<&Msg>,
        read_at: &[ReadAt],
        processed: Option<&Processed>,
    ) -> u32 {
        match (kind, msg) {
            (_, None) => 0,
            (AnomalyKind::Lost | AnomalyKind::Unseen | AnomalyKind::RetentionDeleted, Some(m))
                if m.ack_index != NONE =>
            {
                m.ack_ms
            }
            (AnomalyKind::Lost | AnomalyKind::UnacknowledgedAbsent, Some(m)) => m.invoke_ms,
            (AnomalyKind::ProducerLoss, Some(m)) => m
                .extra
                .as_ref()
                .and_then(|e| e.accepted_at)
                .map_or(m.invoke_ms, |a| a.1),
            (AnomalyKind::AbortedRead | AnomalyKind::AbortedReadUncommitted, Some(m)) => {
                m.last_unacked().map_or(0, |u| u.time_ms)
            }
            (AnomalyKind::Duplicate, Some(_)) => read_at.get(1).map_or(0, |r| r.time_ms),
            (AnomalyKind::DuplicateProcessing, Some(m)) => {
                processed.and_then(|p| p.second).map_or(m.read_ms, |s| s.1)
            }
            (_, Some(m)) => m.read_ms,
        }
    }

    /// The sentence of cause of a case about one message.
    fn message_cause(
        &self,
        kind: AnomalyKind,
        f: &Facts<'_>,
        positions: &[Vec<PosEntry>],
    ) -> String {
        let (id, time_s, fault_clause) = (f.id, f.time_s, f.fault_clause.as_str());
        let Some(m) = f.msg else {
            return format!("Message {id}; {fault_clause}.");
        };
        match kind {
            AnomalyKind::Lost => self.lost_cause(m, f.sub, positions, time_s, fault_clause),
            AnomalyKind::ReadThenLost => self.read_then_lost_cause(m, f),
            AnomalyKind::Compacted => {
                let (pk, offset) = m.acked_offset().unwrap_or((0, -1));
                let c = self.compaction.as_ref();
                let key = kaos_history::message_key(m.id, c.map_or(1, |c| c.keys));
                let latest = c
                    .and_then(|c| c.latest.get(&(pk, key)).copied())
                    .unwrap_or(-1);
                format!(
                    "Message {id} (key {key}) was acknowledged at offset {offset} at {time_s:.2} s; \
                     the final read holds a later record of key {key} at offset {latest} of the \
                     same partition, therefore the log cleaner removed it as superseded, which \
                     compaction permits."
                )
            }
            AnomalyKind::RetentionDeleted => {
                let (pk, offset) = m.acked_offset().unwrap_or((0, -1));
                let start = self.log_start.get(&pk).copied().unwrap_or(-1);
                format!(
                    "Message {id} was acknowledged at offset {offset} at {time_s:.2} s and never \
                     read; the final read found the partition's log start offset at {start}: \
                     retention (or DeleteRecords) deleted it before any consumer read it; {fault_clause}."
                )
            }
            AnomalyKind::ProducerLoss => producer_loss_cause(m, id, time_s, fault_clause),
            AnomalyKind::UnacknowledgedAbsent => {
                unacknowledged_cause(m, f.process, time_s, fault_clause)
            }
            AnomalyKind::AbortedRead => self.aborted_read_cause(m, f),
            AnomalyKind::AbortedReadUncommitted => format!(
                "Message {id}'s transaction aborted{}, and a consumer at \
                 isolation.level=read_uncommitted read it at {time_s:.2} s: read_uncommitted \
                 returns every record below the high watermark, aborted transactions' included \
                 (read_committed consumers must not see it); {fault_clause}.",
                m.last_unacked().map_or_else(String::new, |u| format!(
                    " at {:.2} s",
                    ms_seconds(u.time_ms)
                ))
            ),
            AnomalyKind::FutureRead => format!(
                "Message {id} was read by a poll that completed at {time_s:.2} s (op {}), before \
                 its send was invoked (op {}): impossible for one message, so its id was reused or \
                 the history is out of order; {fault_clause}.",
                m.read_index, m.first_index
            ),
            AnomalyKind::ReadBeforeAck => format!(
                "Message {id} was read at {time_s:.2} s (op {}), before its send was acknowledged \
                 at {:.2} s (op {}): the broker exposed the write before the producer heard back \
                 (normal while an ack is in flight; a problem only if the ack then failed); {fault_clause}.",
                m.read_index,
                ms_seconds(m.ack_ms),
                m.ack_index
            ),
            AnomalyKind::Duplicate => duplicate_cause(self, m, f.read_at, fault_clause),
            AnomalyKind::DuplicateProcessing => self.duplicate_processing_cause(f),
            AnomalyKind::Unseen => self.unseen_cause(m, time_s, fault_clause),
            _ => format!("Message {id}; {fault_clause}."),
        }
    }

    fn unseen_cause(&self, m: &Msg, time_s: f64, fault_clause: &str) -> String {
        let at = match m.acked_offset() {
            Some((pk, offset)) => format!(
                " at partition {} offset {offset}, {} the highest offset any poll of that \
                 partition returned{}",
                self.partition_of(pk),
                if self.read_frontier.get(&pk).is_some_and(|f| offset < *f) {
                    "below"
                } else {
                    "at or past"
                },
                match self.read_frontier.get(&pk) {
                    Some(f) => format!(" ({f})"),
                    None => " (none did)".to_owned(),
                }
            ),
            None => String::new(),
        };
        let compacted = if self.compaction_unsure() {
            " On this compacted topic the log cleaner may also have removed it as superseded by a \
             later record of its key that the final read did not reach."
        } else {
            ""
        };
        format!(
            "Acknowledged at {time_s:.2} s{at}, and no poll returned it by the end of the history, \
             which has no completed final read: it may not have been fetched yet, or it was lost \
             (a final read would tell); {fault_clause}.{compacted}"
        )
    }

    fn read_then_lost_cause(&self, m: &Msg, f: &Facts<'_>) -> String {
        let first = f.read_at.iter().find(|r| !r.in_final).or(f.read_at.first());
        let at = first.map_or_else(String::new, |r| {
            format!(
                " at partition {} offset {} at {:.2} s",
                self.partition_of(r.pk),
                r.offset,
                ms_seconds(r.time_ms)
            )
        });
        format!(
            "A consumer read message {}{at}, yet the final read does not have it: the \
             broker exposed a record it later lost (a leader change truncated it{}){}; {}.",
            f.id,
            self.scenario_clause(),
            self.acks_clause(f.process, m),
            f.fault_clause
        )
    }

    fn aborted_read_cause(&self, m: &Msg, f: &Facts<'_>) -> String {
        let error = m
            .last_unacked()
            .and_then(|u| u.error.clone())
            .map(|e| format!(" with {e}"))
            .unwrap_or_default();
        let at = f
            .read_at
            .first()
            .map(|r| format!("partition {} offset {}", self.partition_of(r.pk), r.offset))
            .unwrap_or_else(|| "an unknown position".to_owned());
        if m.has(flag::TXN) {
            return format!(
                "The message's transaction aborted{error} at {:.2} s, yet a reader at \
                 read_committed read it at {at}: an aborted transaction's record was served as \
                 committed (a missing abort marker or aborted-transactions index entry, or a \
                 last stable offset past an open transaction: Jepsen's G1a); {}.",
                f.time_s, f.fault_clause
            );
        }
        format!(
            "The send failed{error} at {:.2} s, yet the message was read at {at}; \
             the client reported a definite failure for a write the broker kept \
             (a retry that landed after the failure was reported?); {}.",
            f.time_s, f.fault_clause
        )
    }

    fn duplicate_processing_cause(&self, f: &Facts<'_>) -> String {
        let (id, fault_clause) = (f.id, &f.fault_clause);
        let Some(p) = f.processed else {
            return format!("Message {id} was processed more than once; {fault_clause}.");
        };
        let (i1, _, p1, _, o1) = p.first;
        let second = p.second.unwrap_or(p.first);
        let (i2, _, p2, _, o2) = second;
        let why = if p1 == p2 {
            "the same consumer processed it again (a rewind after an error, or a \
             restart from an older committed offset)"
        } else {
            "the partition moved to another consumer before an offset commit covered \
             it (at-least-once delivery across a rebalance or crash)"
        };
        format!(
            "Message {id} was processed {} times: by {} (op {i1}, offset {o1}) and by {} \
             (op {i2}, offset {o2}); {why}; {fault_clause}.",
            p.count,
            self.names.name(p1),
            self.names.name(p2)
        )
    }

    /// A duplicate_processing case: the two `process` ops, their positions and the first process.
    fn add_processing(&self, case: &mut Case, processed: Option<&Processed>) {
        if let Some(p) = processed {
            let mut indexes = vec![p.first.0];
            let mut ats = vec![p.first];
            if let Some(s) = p.second {
                indexes.push(s.0);
                ats.push(s);
            }
            case.op_indexes.extend(indexes);
            case.op_indexes.sort_unstable();
            case.op_indexes.dedup();
            case.positions = ats
                .iter()
                .filter(|a| a.3 != u32::MAX)
                .map(|a| self.position_of(a.3, a.4))
                .collect();
            case.process = Some(self.names.name(p.first.2).to_owned());
        }
    }

    /// lost: says what the final read found instead, and what the configuration suggests.
    fn lost_cause(
        &self,
        msg: &Msg,
        sub: Option<&'static str>,
        positions: &[Vec<PosEntry>],
        time_s: f64,
        fault_clause: &str,
    ) -> String {
        let acked = msg.acked_offset();
        let process = (msg.process != u32::MAX).then(|| self.names.name(msg.process));
        if msg.ack_index == NONE {
            return format!(
                "Sent at {time_s:.2} s with an unknown outcome, read by a consumer (so it was \
                 written), yet absent from the final read; {fault_clause}{}.",
                self.scenario_clause()
            );
        }
        let mut sentence = match acked {
            Some((pk, offset)) => format!(
                "Acknowledged at {time_s:.2} s at partition {} offset {offset}, absent from the final read; {fault_clause}",
                self.partition_of(pk)
            ),
            None => format!("Acknowledged at {time_s:.2} s, absent from the final read; {fault_clause}"),
        };
        if sub == Some("unread") {
            if let Some((pk, offset)) = acked {
                let frontier = self.read_frontier.get(&pk).copied().unwrap_or(offset);
                sentence = format!(
                    "Acknowledged at {time_s:.2} s at partition {} offset {offset}, never read by \
                     anyone although reads of that partition reached offset {frontier}; {fault_clause}",
                    self.partition_of(pk)
                );
            }
        }
        if let Some((pk, offset)) = acked {
            let partition = self.partition_of(pk);
            match self.final_holder(positions, pk, offset) {
                Some(Some(other)) if other != msg.id => sentence.push_str(&format!(
                    ", and offset {offset} of partition {partition} now holds message {other}, so the log was truncated and rewritten after the ack"
                )),
                Some(Some(_)) => {}
                Some(None) => sentence.push_str(&format!(
                    ", and offset {offset} of partition {partition} now holds a record without a message id, so the log was rewritten after the ack"
                )),
                None if self.final_read.completed => match self.final_ends.get(&pk) {
                    Some(end) if *end < offset => sentence.push_str(&format!(
                        ", and the final read of partition {partition} ends at offset {end}, so the log was truncated below the acknowledged offset"
                    )),
                    Some(_) => sentence.push_str(&format!(
                        ", and the final read of partition {partition} went past offset {offset} without it (a gap in the log)"
                    )),
                    None => match &self.final_read.topic_missing {
                        Some(m) if self.pks.get(pk as usize).is_some_and(|(t, _)| *t == m.topic) => {
                            sentence.push_str(&format!(
                                ", and the final read found no topic {} at all (Metadata: {}): the topic itself was gone",
                                m.name, m.error
                            ))
                        }
                        _ => sentence.push_str(&format!(
                            ", and the final read returned nothing from partition {partition}"
                        )),
                    },
                },
                None => {}
            }
        }
        if msg.is_read() {
            sentence.push_str(&format!(
                "; a consumer had read it at {:.2} s, so it was lost after it became visible",
                ms_seconds(msg.read_ms)
            ));
        }
        if msg.attempts > 1 {
            sentence.push_str("; the application sent it more than once");
        }
        sentence.push_str(&self.acks_clause(process, msg));
        sentence.push_str(&self.scenario_clause());
        sentence.push('.');
        sentence
    }

    /// "; producer-1 ran with acks=1, so …" when the client spec says so.
    fn acks_clause(&self, process: Option<&str>, _msg: &Msg) -> String {
        let Some(process) = process else {
            return String::new();
        };
        match self.client_setting(process, &["acks", "request.required.acks"]) {
            Some(acks) => {
                let acks = acks.trim_matches('"').to_owned();
                let why = match acks.as_str() {
                    "0" => "the producer never waited for the broker, so nothing was promised",
                    "1" => "the leader alone acknowledged it, so losing that leader before followers copied it loses it",
                    _ => "the in-sync replicas acknowledged it, so losing it takes a broker that gave up data it had acknowledged (unclean election, high-watermark truncation, or unsynced writes lost on every replica)",
                };
                format!("; {process} ran with acks={acks}: {why}")
            }
            None => String::new(),
        }
    }

    /// The scenario's broker settings that explain loss, when the `start` op names them.
    pub(crate) fn scenario_clause(&self) -> String {
        let Some(scenario) = &self.scenario else {
            return String::new();
        };
        let mut parts = Vec::new();
        if let Some(v) = find_key(
            scenario,
            &[
                "unclean.leader.election.enable",
                "unclean_leader_election",
                "unclean_election",
            ],
        ) {
            if is_true(&setting_text(v)) {
                parts.push("unclean leader election was enabled".to_owned());
            }
        }
        if let Some(v) = find_key(scenario, &["truncation"]) {
            let t = setting_text(v);
            if t.contains("high") {
                parts.push(
                    "followers truncate to the high watermark (pre-KIP-101), which can drop acknowledged writes"
                        .to_owned(),
                );
            }
        }
        if let Some(v) = find_key(scenario, &["broker_durability"]) {
            parts.push(format!("its broker profile says: {}", setting_text(v)));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("; the scenario says {}", parts.join(" and "))
        }
    }

    /// A client setting from its `client_start` spec, searched at any depth, as text.
    fn client_setting(&self, client: &str, keys: &[&str]) -> Option<String> {
        let spec = self.client_specs.get(client)?;
        find_key(spec, keys).map(setting_text)
    }

    fn conclude_notes(&mut self, counts: &Counts, anomalies: &[Anomaly]) -> Vec<String> {
        let mut notes = Vec::new();
        if let (true, Some(m)) = (self.final_read.completed, &self.final_read.topic_missing) {
            notes.push(format!(
                "The topic itself was gone: the final read found no topic {} (Metadata: {}), so every message acknowledged to it is lost ({} lost).",
                m.name, m.error, counts.lost
            ));
        }
        if !self.final_read.completed {
            let why = match (&self.final_read.invoked_at_ns, &self.final_read.ended_without_ok) {
                (_, Some(ended)) => format!("the final read {ended}"),
                (Some(at), None) => format!(
                    "the final read started at {:.2} s but never completed (the harness stopped mid-run?)",
                    seconds(*at)
                ),
                (None, None) => "the history has no final read (no `final_read` phase of the harness)".to_owned(),
            };
            notes.push(format!(
                "No completed final read: {why}, so no loss claim is made from absence (only messages never read although reads went past their offset count as lost; read_then_lost, producer_loss and unacknowledged_absent were not checked); the verdict cannot be valid."
            ));
        }
        if counts.sends_open > 0 {
            notes.push(format!(
                "{} send(s) were still open when the history ended; they count as info (outcome unknown).",
                counts.sends_open
            ));
        }
        if counts.sends_without_id > 0 {
            notes.push(format!(
                "{} send op(s) carry no u64 value.id and could not be traced.",
                counts.sends_without_id
            ));
        }
        if counts.records_without_id > 0 {
            notes.push(format!(
                "{} record(s) read carry no message id (written by something other than a kaos producer?).",
                counts.records_without_id
            ));
        }
        if counts.unknown_ids_read > 0 {
            notes.push(format!(
                "{} message id(s) were read that no send in the history mentions.",
                counts.unknown_ids_read
            ));
        }
        if counts.processed == 0 && counts.offset_commits > 0 {
            notes.push(
                "The history has offset commits but no `process` ops, so unprocessed messages were not checked."
                    .to_owned(),
            );
        }
        let mut oddities: Vec<(Oddity, u64)> =
            self.oddities.iter().map(|(k, v)| (*k, *v)).collect();
        oddities.sort_by_key(|(k, _)| *k as u8);
        for (oddity, count) in oddities {
            notes.push(match oddity {
                Oddity::CompletionWithoutInvoke => format!(
                    "{count} send completion(s) had no open invoke of the same process; they were counted on their own."
                ),
                Oddity::MalformedRecords => format!(
                    "{count} polled record(s) lack a topic, partition or offset and were skipped."
                ),
                Oddity::RecoveryWithoutFault => format!(
                    "{count} nemesis recovery op(s) matched no open fault window."
                ),
                Oddity::JumpsBeyondLimit => format!(
                    "{count} consumer offset jump(s) beyond the limit of {} were not judged for poll skips.",
                    limits::CONSUMER_JUMPS_MAX
                ),
            });
        }
        for anomaly in anomalies {
            if anomaly.allowance == Allowance::Allowed {
                notes.push(format!(
                    "{} {} case(s) occurred; this scenario allows them.",
                    anomaly.count,
                    anomaly.kind.as_str()
                ));
            }
        }
        notes.extend(std::mem::take(&mut self.notes));
        notes
    }
}

/// For a jump read by a transaction that did not commit: why its poll is still held to the
/// consumer's position.
fn uncommitted_clause(jump: &Jump) -> &'static str {
    if jump.uncommitted {
        " (that poll's transaction then failed or ended unknown, yet it still had to start where \
         the consumer's last committed poll left off: an aborted transaction rewinds the consumer \
         and its polls do not move it)"
    } else {
        ""
    }
}

fn source_words(src: u8) -> String {
    let mut words = Vec::new();
    if src & SRC_ACK != 0 {
        words.push("acknowledged there");
    }
    if src & SRC_FINAL != 0 {
        words.push("in the final read");
    } else if src & SRC_READ != 0 {
        words.push("read there");
    }
    words.join(", ")
}

/// The first value under any of `keys`, at any depth.
fn find_key<'v>(value: &'v serde_json::Value, keys: &[&str]) -> Option<&'v serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => {
            for key in keys {
                if let Some(v) = map.get(*key) {
                    return Some(v);
                }
            }
            map.values().find_map(|v| find_key(v, keys))
        }
        serde_json::Value::Array(items) => items.iter().find_map(|v| find_key(v, keys)),
        _ => None,
    }
}

fn setting_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_true(text: &str) -> bool {
    matches!(text.trim_matches('"'), "true" | "1" | "yes" | "on")
}

/// "kill n1 at 12.43 s (until 15.00 s)"
fn fault_summary(w: &FaultWindow) -> String {
    match w.end_s {
        Some(end) if end > w.start_s => {
            format!("{} at {:.2} s (until {end:.2} s)", w.label(), w.start_s)
        }
        Some(_) => format!("{} at {:.2} s", w.label(), w.start_s),
        None => format!("{} at {:.2} s (never recovered)", w.label(), w.start_s),
    }
}

/// A consumer-read message's reads made before it was acknowledged (its ack later or absent)
/// at positions the final read did not return it at. A read after the ack, at another position,
/// is `inconsistent_offsets`' (a divergent replica), not a read of an uncommitted record. A read
/// that carried its client's high watermark is not inferred about: the high watermark says
/// whether it was committed when served (`Checker::above_hw`).
fn unsure_reads(msg: &Msg, out: &mut Vec<UnsureRead>) {
    let acked_before = |time_ms: u32| msg.ack_index != NONE && msg.ack_ms <= time_ms;
    let mut push = |pk: u32, offset: i64, index: u64, time_ms: u32, hw_known: bool| {
        if !acked_before(time_ms) && !hw_known {
            out.push(UnsureRead {
                id: msg.id,
                pk,
                offset,
                index,
                time_ms,
            });
        }
    };
    if !msg.has(flag::FIRST_READ_FINAL) && !msg.has(flag::FINAL_AT_FIRST) {
        push(
            msg.read_pk,
            msg.read_offset,
            msg.read_index,
            msg.read_ms,
            msg.has(flag::HW_AT_FIRST),
        );
    }
    for r in msg.others().iter().filter(|r| !r.in_final) {
        push(r.pk, r.offset, r.index, r.time_ms, r.hw_known);
    }
}

/// "node n1 was killed at 12.43 s"
fn fault_phrase(w: &FaultWindow) -> String {
    let subject = if w.target.is_empty() {
        "the cluster".to_owned()
    } else {
        format!("node {}", w.target)
    };
    let verb = match kaos_history::FaultKind::from_name(&w.kind) {
        Some(kind) => kind.explained().to_owned(),
        None => format!("had a {} fault", w.kind),
    };
    format!("{subject} {verb} at {:.2} s", w.start_s)
}

fn unacknowledged_cause(
    msg: &Msg,
    process: Option<&str>,
    time_s: f64,
    fault_clause: &str,
) -> String {
    let outcome = if msg.open > 0 && msg.infos == 0 {
        format!(
            "the send was still open when {} stopped",
            process.unwrap_or("its producer")
        )
    } else {
        match msg.last_unacked() {
            Some(u) => {
                let error = u
                    .error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                match u.kind {
                    OpType::Fail => {
                        format!("the send failed{error} at {:.2} s", ms_seconds(u.time_ms))
                    }
                    _ => format!(
                        "the send's outcome was unknown{error} at {:.2} s",
                        ms_seconds(u.time_ms)
                    ),
                }
            }
            None => "the send never completed".to_owned(),
        }
    };
    format!(
        "Sent at {time_s:.2} s and never acknowledged ({outcome}), absent from the final read; \
         {fault_clause}, so the producer most likely never delivered it."
    )
}

/// Acknowledged at one position and read (only) at another of the same partition: written twice,
/// as Jepsen counts a duplicate by position (its ack is one of the positions).
fn acked_elsewhere(msg: &Msg) -> bool {
    msg.is_read()
        && msg
            .acked_offset()
            .is_some_and(|(pk, offset)| pk == msg.read_pk && offset != msg.read_offset)
}

fn duplicate_cause(checker: &Checker, msg: &Msg, read_at: &[ReadAt], fault_clause: &str) -> String {
    if let (true, Some((pk, offset))) = (acked_elsewhere(msg), msg.acked_offset()) {
        if read_at.len() < 2 {
            return format!(
                "Acknowledged at partition {} offset {offset} but read at offset {}: the message \
                 was written twice (a producer retry after a lost ack, or a log rewritten under \
                 it); {fault_clause}.",
                checker.partition_of(pk),
                msg.read_offset
            );
        }
    }
    let one_partition = read_at.windows(2).all(|w| w[0].pk == w[1].pk);
    let places: Vec<String> = read_at
        .iter()
        .map(|r| {
            format!(
                "partition {} offset {}",
                checker.partition_of(r.pk),
                r.offset
            )
        })
        .collect();
    let why = if msg.attempts > 1 {
        format!("the application sent it {} times", msg.attempts)
    } else if one_partition {
        let process = (msg.process != u32::MAX).then(|| checker.names.name(msg.process));
        let idempotence = process.and_then(|p| {
            checker.client_setting(
                p,
                &["enable.idempotence", "enable_idempotence", "idempotence"],
            )
        });
        match idempotence {
            Some(v) if is_true(&v) => "the same message was written twice to one partition although the producer ran with enable.idempotence on (a broker dedup bug?)".to_owned(),
            Some(_) => "the same message was written twice to one partition: a producer retry after a lost ack, with enable.idempotence off".to_owned(),
            None => "the same message was written twice to one partition, most likely a producer retry after a lost ack without idempotence".to_owned(),
        }
    } else {
        "the message was written to more than one partition, so it was sent more than once"
            .to_owned()
    };
    format!("Read at {}: {why}; {fault_clause}.", places.join(" and "))
}

/// producer_loss: dropped by the application's policy, or lost on the producer's side.
fn producer_loss_cause(m: &Msg, id: u64, time_s: f64, fault_clause: &str) -> String {
    if m.has(flag::DROPPED) {
        return format!(
            "The application dropped message {id} at {time_s:.2} s: the producer's buffer was \
             full and the application's policy is to drop rather than block, so it was lost on \
             the producer's side by design (block, or an outbox, keeps it); {fault_clause}."
        );
    }
    let how = if m.has(flag::HAS_SEND) {
        match m.last_unacked() {
            Some(u) => format!(
                "its send ended {}{}",
                if u.kind == OpType::Fail {
                    "failed"
                } else {
                    "with an unknown outcome"
                },
                u.error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ),
            None => "its send never completed".to_owned(),
        }
    } else {
        "no send was ever attempted for it".to_owned()
    };
    format!(
        "The application accepted message {id} at {time_s:.2} s, but it never reached \
         the log ({how}): the producer lost it on its side (a buffer or outbox lost \
         when the client died, or never retried); {fault_clause}."
    )
}

/// What a case about one message is built from.
struct Facts<'a> {
    id: u64,
    msg: Option<&'a Msg>,
    sub: Option<&'static str>,
    read_at: &'a [ReadAt],
    processed: Option<&'a Processed>,
    process: Option<&'a str>,
    time_s: f64,
    fault_clause: String,
}
