//! The queue checker: one pass over the ops, then `finish` turns what it kept into an `Analysis`.
//!
//! Memory is proportional to the number of messages (maps keyed by message id and by the
//! positions the final read returned), never to offset values or to the number of ops.

use std::collections::{HashMap, VecDeque};

use crate::analysis::{Analysis, Anomaly, AnomalyKind, Case, Counts, FaultWindow, Series, Verdict};
use crate::expect::{Allowance, Expectations};
use crate::history::{self, Op, OpType, Position};
use crate::limits;

const NS_PER_S: f64 = 1e9;

fn seconds(time_ns: u64) -> f64 {
    time_ns as f64 / NS_PER_S
}

/// A position with the topic interned: what the maps keep per record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Pos {
    topic: u32,
    partition: i32,
    offset: i64,
}

/// A send invoke not yet completed.
#[derive(Debug, Clone, Copy)]
struct OpenSend {
    id: Option<u64>,
}

/// A send completion that was not an ack.
#[derive(Debug, Clone)]
struct Unacked {
    kind: OpType,
    index: u64,
    time_ns: u64,
    error: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct Ack {
    index: u64,
    time_ns: u64,
    pos: Option<Pos>,
}

/// Everything known about the sends of one message id.
#[derive(Debug, Clone, Default)]
struct SendRecord {
    /// Index of the first op that mentioned this id (the invoke, normally): the order of cases.
    first_index: u64,
    invoke_index: Option<u64>,
    invoke_time_ns: u64,
    /// Interned process name (see `Checker::names`).
    process: Option<u32>,
    topic: Option<u32>,
    attempts: u32,
    ack: Option<Ack>,
    fails: u32,
    infos: u32,
    open: u32,
    /// Boxed: only sends that were never acknowledged carry it.
    last_unacked: Option<Box<Unacked>>,
}

impl SendRecord {
    fn outcome(&self) -> SendOutcome {
        if self.ack.is_some() {
            SendOutcome::Ok
        } else if self.infos > 0 || self.open > 0 || self.fails == 0 {
            SendOutcome::Info
        } else {
            SendOutcome::Fail
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendOutcome {
    Ok,
    Fail,
    Info,
}

/// A distinct position an id was read at, with the first poll that returned it there.
#[derive(Debug, Clone, Copy)]
struct ReadAt {
    pos: Pos,
    index: u64,
    time_ns: u64,
}

/// Everything known about the reads of one message id.
#[derive(Debug, Clone)]
struct ReadRecord {
    first: ReadAt,
    /// Further distinct positions (up to `limits::POSITIONS_PER_ID_MAX - 1`).
    others: Vec<ReadAt>,
    in_final_read: bool,
}

/// Where the harness is in its `final_read` phase.
#[derive(Debug, Clone, Default)]
struct FinalRead {
    active: bool,
    invoked_at_ns: Option<u64>,
    completed: bool,
    ended_without_ok: Option<String>,
}

/// A note that may repeat, counted rather than repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Oddity {
    CompletionWithoutInvoke,
    MalformedRecords,
    RecoveryWithoutFault,
}

/// The queue checker. Feed it every op in history order with [`Checker::observe`], then call
/// [`Checker::finish`].
#[derive(Debug)]
pub struct Checker {
    expect: Expectations,
    ops: u64,
    last_time_ns: u64,
    /// Topic and process names, interned: per-message records keep a u32.
    names: Interner,
    sends: HashMap<u64, SendRecord>,
    open_sends: HashMap<String, VecDeque<OpenSend>>,
    reads: HashMap<u64, ReadRecord>,
    /// What the final read found at each position (`None`: a record without an id).
    final_positions: HashMap<Pos, Option<u64>>,
    /// Highest offset the final read returned per (topic, partition).
    final_ends: HashMap<(u32, i32), i64>,
    final_read: FinalRead,
    faults: Vec<FaultWindow>,
    series: Series,
    counts: Counts,
    oddities: HashMap<Oddity, u64>,
    notes: Vec<String>,
}

impl Checker {
    pub fn new(expect: Expectations) -> Self {
        Checker {
            expect,
            ops: 0,
            last_time_ns: 0,
            names: Interner::default(),
            sends: HashMap::new(),
            open_sends: HashMap::new(),
            reads: HashMap::new(),
            final_positions: HashMap::new(),
            final_ends: HashMap::new(),
            final_read: FinalRead::default(),
            faults: Vec::new(),
            series: Series::default(),
            counts: Counts::default(),
            oddities: HashMap::new(),
            notes: Vec::new(),
        }
    }

    /// Takes one op, in history order.
    pub fn observe(&mut self, op: &Op) {
        self.ops += 1;
        self.last_time_ns = self.last_time_ns.max(op.time_ns);
        match op.f.as_str() {
            "send" => self.observe_send(op),
            "poll" if op.kind == OpType::Ok => self.observe_poll(op),
            "final_read" if op.process == "harness" => self.observe_final_read(op),
            _ if op.process == "nemesis" => self.observe_nemesis(op),
            _ => {}
        }
    }

    /// Adds a note to the analysis (for example from the reader of the history text).
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    fn topic_id(&mut self, topic: &str) -> u32 {
        self.names.intern(topic)
    }

    fn position(&self, pos: Pos) -> Position {
        Position {
            topic: self.topic_name(pos.topic).to_owned(),
            partition: pos.partition,
            offset: pos.offset,
        }
    }

    fn topic_name(&self, topic: u32) -> &str {
        self.names.name(topic)
    }

    fn bump(series: &mut Vec<u64>, time_ns: u64, by: u64) {
        let second = usize::try_from(time_ns / 1_000_000_000)
            .unwrap_or(usize::MAX)
            .min(limits::SERIES_SECONDS_MAX - 1);
        if series.len() <= second {
            series.resize(second + 1, 0);
        }
        series[second] += by;
    }

    fn observe_send(&mut self, op: &Op) {
        let value_id = history::message_id(&op.value);
        let topic = history::topic_of(&op.value).map(|t| self.topic_id(t));
        if op.kind == OpType::Invoke {
            let open = OpenSend { id: value_id };
            match self.open_sends.get_mut(&op.process) {
                Some(queue) => queue.push_back(open),
                None => {
                    self.open_sends
                        .insert(op.process.clone(), VecDeque::from([open]));
                }
            }
            let Some(id) = value_id else {
                self.counts.sends_without_id += 1;
                return;
            };
            let record = self.sends.entry(id).or_insert_with(|| SendRecord {
                first_index: op.index,
                ..SendRecord::default()
            });
            record.attempts += 1;
            if record.invoke_index.is_none() {
                record.invoke_index = Some(op.index);
                record.invoke_time_ns = op.time_ns;
                record.process = Some(self.names.intern(&op.process));
            }
            if record.topic.is_none() {
                record.topic = topic;
            }
            return;
        }

        // A completion: the next ok/fail/info of the same process and f completes the oldest
        // open invoke; when the completion names its id, the open invoke with that id.
        let matched = self.open_sends.get_mut(&op.process).and_then(|queue| {
            let at = match value_id {
                Some(id) => queue
                    .iter()
                    .position(|open| open.id == Some(id))
                    .or(Some(0)),
                None => Some(0),
            }?;
            queue.remove(at)
        });
        if matched.is_none() {
            *self
                .oddities
                .entry(Oddity::CompletionWithoutInvoke)
                .or_default() += 1;
        }
        match op.kind {
            OpType::Ok => Self::bump(&mut self.series.sends_ok, op.time_ns, 1),
            OpType::Fail => Self::bump(&mut self.series.sends_fail, op.time_ns, 1),
            OpType::Info | OpType::Invoke => Self::bump(&mut self.series.sends_info, op.time_ns, 1),
        }
        let Some(id) = value_id.or(matched.and_then(|open| open.id)) else {
            if matched.is_none() {
                self.counts.sends_without_id += 1;
            }
            return;
        };
        let pos = match (op.kind, history::acked_at(&op.value)) {
            (OpType::Ok, Some((partition, offset))) => {
                let topic = match topic {
                    Some(t) => t,
                    None => {
                        let known = self.sends.get(&id).and_then(|r| r.topic);
                        match known {
                            Some(t) => t,
                            None => self.topic_id(""),
                        }
                    }
                };
                Some(Pos {
                    topic,
                    partition,
                    offset,
                })
            }
            _ => None,
        };
        let process = self.names.intern(&op.process);
        let record = self.sends.entry(id).or_insert_with(|| SendRecord {
            first_index: op.index,
            invoke_time_ns: op.time_ns,
            process: Some(process),
            attempts: 1,
            ..SendRecord::default()
        });
        if record.topic.is_none() {
            record.topic = topic;
        }
        match op.kind {
            OpType::Ok => {
                if record.ack.is_none() {
                    record.ack = Some(Ack {
                        index: op.index,
                        time_ns: op.time_ns,
                        pos,
                    });
                }
            }
            OpType::Fail | OpType::Info | OpType::Invoke => {
                if op.kind == OpType::Fail {
                    record.fails += 1;
                } else {
                    record.infos += 1;
                }
                record.last_unacked = Some(Box::new(Unacked {
                    kind: op.kind,
                    index: op.index,
                    time_ns: op.time_ns,
                    error: op.error.clone(),
                }));
            }
        }
    }

    fn observe_poll(&mut self, op: &Op) {
        self.counts.polls_ok += 1;
        let (records, malformed) = history::polled_records(&op.value);
        if malformed > 0 {
            *self.oddities.entry(Oddity::MalformedRecords).or_default() += malformed;
        }
        let in_final_read = self.final_read.active;
        if !in_final_read {
            self.counts.records_polled += records.len() as u64;
            Self::bump(
                &mut self.series.records_polled,
                op.time_ns,
                records.len() as u64,
            );
        }
        for record in records {
            let pos = Pos {
                topic: self.topic_id(&record.topic),
                partition: record.partition,
                offset: record.offset,
            };
            if in_final_read {
                self.counts.final_read_records += 1;
                self.final_positions.insert(pos, record.id);
                let end = self
                    .final_ends
                    .entry((pos.topic, pos.partition))
                    .or_insert(pos.offset);
                *end = (*end).max(pos.offset);
            }
            let Some(id) = record.id else {
                self.counts.records_without_id += 1;
                continue;
            };
            let here = ReadAt {
                pos,
                index: op.index,
                time_ns: op.time_ns,
            };
            let read = self.reads.entry(id).or_insert_with(|| ReadRecord {
                first: here,
                others: Vec::new(),
                in_final_read: false,
            });
            if in_final_read && !read.in_final_read {
                read.in_final_read = true;
                self.counts.final_read_distinct_ids += 1;
            }
            let seen = read.first.pos == pos || read.others.iter().any(|r| r.pos == pos);
            if !seen && read.others.len() + 1 < limits::POSITIONS_PER_ID_MAX {
                read.others.push(here);
            }
        }
    }

    fn observe_final_read(&mut self, op: &Op) {
        match op.kind {
            OpType::Invoke => {
                self.final_read.active = true;
                self.final_read.invoked_at_ns.get_or_insert(op.time_ns);
            }
            OpType::Ok => {
                self.final_read.active = false;
                self.final_read.completed = true;
            }
            OpType::Fail | OpType::Info => {
                self.final_read.active = false;
                self.final_read.ended_without_ok = Some(format!(
                    "{} at {:.2} s{}",
                    if op.kind == OpType::Fail {
                        "failed"
                    } else {
                        "ended with an unknown outcome"
                    },
                    seconds(op.time_ns),
                    op.error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                ));
            }
        }
    }

    fn observe_nemesis(&mut self, op: &Op) {
        // A fault takes effect when its op completes ok (or info: probably happened).
        if !matches!(op.kind, OpType::Ok | OpType::Info) {
            return;
        }
        let target = history::fault_target(&op.value);
        let now_s = seconds(op.time_ns);
        if let Some(recovers) = recovered_kinds(&op.f) {
            let closes_all = target.is_empty()
                || !self.faults.iter().any(|w| {
                    w.end_s.is_none() && w.target == target && recovers.contains(&w.kind.as_str())
                });
            let mut closed = 0;
            for window in &mut self.faults {
                if window.end_s.is_none()
                    && recovers.contains(&window.kind.as_str())
                    && (window.target == target || (closes_all && op.f == "heal"))
                {
                    window.end_s = Some(now_s);
                    closed += 1;
                }
            }
            if closed == 0 && op.f != "heal" && op.f != "start" {
                *self
                    .oddities
                    .entry(Oddity::RecoveryWithoutFault)
                    .or_default() += 1;
            }
            return;
        }
        let instantaneous = !is_lasting_fault(&op.f);
        if !instantaneous
            && self
                .faults
                .iter()
                .any(|w| w.end_s.is_none() && w.kind == op.f && w.target == target)
        {
            return; // already in effect: the first op opened the window
        }
        self.faults.push(FaultWindow {
            kind: op.f.clone(),
            target,
            start_s: now_s,
            end_s: instantaneous.then_some(now_s),
            op_index: op.index,
        });
    }

    /// Ends the pass and concludes.
    pub fn finish(mut self) -> Analysis {
        let duration_s = seconds(self.last_time_ns);
        self.close_open_sends();
        let mut counts = std::mem::take(&mut self.counts);
        counts.ops = self.ops;
        let final_read_done = self.final_read.completed;

        let mut lost_ids = Vec::new();
        let mut unacknowledged_absent_ids = Vec::new();
        let mut aborted_read_ids = Vec::new();
        for (id, send) in &self.sends {
            counts.sends_invoked += 1;
            let read = self.reads.get(id);
            let in_final_read = read.is_some_and(|r| r.in_final_read);
            let outcome = send.outcome();
            match outcome {
                SendOutcome::Ok => counts.sends_ok += 1,
                SendOutcome::Fail => counts.sends_fail += 1,
                SendOutcome::Info => counts.sends_info += 1,
            }
            if outcome != SendOutcome::Ok && in_final_read {
                counts.recovered += 1;
            }
            if outcome == SendOutcome::Fail && read.is_some() {
                aborted_read_ids.push((send.first_index, *id));
            }
            if final_read_done && !in_final_read {
                if outcome == SendOutcome::Ok {
                    lost_ids.push((send.first_index, *id));
                } else {
                    unacknowledged_absent_ids.push((send.first_index, *id));
                }
            }
        }
        let mut duplicate_ids = Vec::new();
        for (id, read) in &self.reads {
            if !read.others.is_empty() {
                duplicate_ids.push((read.first.index, *id));
            }
            if !self.sends.contains_key(id) {
                counts.unknown_ids_read += 1;
            }
        }
        counts.lost = lost_ids.len() as u64;
        counts.unacknowledged_absent = unacknowledged_absent_ids.len() as u64;
        counts.duplicates = duplicate_ids.len() as u64;
        counts.aborted_read = aborted_read_ids.len() as u64;

        self.finish_series(duration_s);
        let mut anomalies = Vec::new();
        for kind in AnomalyKind::ALL {
            let ids = match kind {
                AnomalyKind::Lost => &mut lost_ids,
                AnomalyKind::AbortedRead => &mut aborted_read_ids,
                AnomalyKind::Duplicate => &mut duplicate_ids,
                AnomalyKind::UnacknowledgedAbsent => &mut unacknowledged_absent_ids,
            };
            if ids.is_empty() {
                continue;
            }
            ids.sort_unstable();
            let cases: Vec<Case> = ids
                .iter()
                .take(limits::CASES_PER_CLASS_MAX)
                .map(|(_, id)| self.case(kind, *id, duration_s))
                .collect();
            anomalies.push(Anomaly {
                kind,
                allowance: kind.allowance(&self.expect),
                count: ids.len() as u64,
                cases_omitted: (ids.len() - cases.len()) as u64,
                cases,
            });
        }

        let forbidden_found = anomalies
            .iter()
            .any(|a| a.allowance == Allowance::Forbidden);
        let mut unmet = Vec::new();
        if counts.sends_ok < self.expect.acknowledged_min {
            unmet.push(format!(
                "expected at least {} acknowledged sends, the run acknowledged {}",
                self.expect.acknowledged_min, counts.sends_ok
            ));
        }
        let verdict = if forbidden_found || !unmet.is_empty() {
            Verdict::Invalid
        } else if !final_read_done {
            Verdict::Unknown
        } else {
            Verdict::Valid
        };
        let notes = self.conclude_notes(&counts, &anomalies);
        Analysis {
            verdict,
            counts,
            unmet,
            anomalies,
            series: std::mem::take(&mut self.series),
            faults: std::mem::take(&mut self.faults),
            notes,
            expect: self.expect,
        }
    }

    fn close_open_sends(&mut self) {
        for queue in self.open_sends.values() {
            for open in queue {
                let Some(id) = open.id else { continue };
                if let Some(record) = self.sends.get_mut(&id) {
                    record.open += 1;
                    self.counts.sends_open += 1;
                }
            }
        }
    }

    fn finish_series(&mut self, duration_s: f64) {
        self.series.duration_s = duration_s;
        let buckets = if self.ops == 0 {
            0
        } else {
            usize::try_from(self.last_time_ns / 1_000_000_000)
                .unwrap_or(usize::MAX)
                .min(limits::SERIES_SECONDS_MAX - 1)
                + 1
        };
        for series in [
            &mut self.series.sends_ok,
            &mut self.series.sends_fail,
            &mut self.series.sends_info,
            &mut self.series.records_polled,
        ] {
            series.resize(buckets, 0);
        }
    }

    fn faults_near(&self, time_s: f64, duration_s: f64) -> Vec<&FaultWindow> {
        self.faults
            .iter()
            .filter(|w| {
                w.start_s <= time_s + limits::FAULT_NEARBY_S
                    && w.end_or(duration_s) >= time_s - limits::FAULT_NEARBY_S
            })
            .collect()
    }

    fn case(&self, kind: AnomalyKind, id: u64, duration_s: f64) -> Case {
        let send = self.sends.get(&id);
        let read = self.reads.get(&id);
        let read_at: Vec<ReadAt> = read
            .map(|r| {
                std::iter::once(r.first)
                    .chain(r.others.iter().copied())
                    .collect()
            })
            .unwrap_or_default();
        let acked_pos = send.and_then(|s| s.ack).and_then(|a| a.pos);

        let mut op_indexes = Vec::new();
        if let Some(send) = send {
            op_indexes.extend(send.invoke_index);
            op_indexes.extend(send.ack.map(|a| a.index));
            op_indexes.extend(send.last_unacked.as_ref().map(|u| u.index));
        }
        op_indexes.extend(read_at.iter().map(|r| r.index));
        op_indexes.sort_unstable();
        op_indexes.dedup();

        let time_ns = match kind {
            AnomalyKind::Lost => send.and_then(|s| s.ack).map(|a| a.time_ns),
            AnomalyKind::AbortedRead => send
                .and_then(|s| s.last_unacked.as_ref())
                .map(|u| u.time_ns),
            AnomalyKind::UnacknowledgedAbsent => send.map(|s| s.invoke_time_ns),
            AnomalyKind::Duplicate => read_at.get(1).map(|r| r.time_ns),
        }
        .unwrap_or(0);
        let time_s = seconds(time_ns);
        let nearby = self.faults_near(time_s, duration_s);
        let fault_clause = match nearby.as_slice() {
            [] => format!("no fault was active within {} s", limits::FAULT_NEARBY_S),
            [one] => fault_phrase(one),
            [first, rest @ ..] => format!(
                "{} (and {} more fault{} nearby)",
                fault_phrase(first),
                rest.len(),
                if rest.len() == 1 { "" } else { "s" }
            ),
        };

        let cause = match kind {
            AnomalyKind::Lost => self.lost_cause(send, read, acked_pos, time_s, &fault_clause),
            AnomalyKind::UnacknowledgedAbsent => {
                let process = send.and_then(|s| s.process).map(|p| self.names.name(p));
                unacknowledged_cause(send, process, time_s, &fault_clause)
            }
            AnomalyKind::AbortedRead => {
                let error = send
                    .and_then(|s| s.last_unacked.as_ref())
                    .and_then(|u| u.error.clone())
                    .map(|e| format!(" with {e}"))
                    .unwrap_or_default();
                let at = read_at
                    .first()
                    .map(|r| format!("partition {} offset {}", r.pos.partition, r.pos.offset))
                    .unwrap_or_else(|| "an unknown position".to_owned());
                format!(
                    "The send failed{error} at {time_s:.2} s, yet the message was read at {at}; \
                     the client reported a definite failure for a write the broker kept \
                     (a retry that landed after the failure was reported?); {fault_clause}."
                )
            }
            AnomalyKind::Duplicate => duplicate_cause(send, &read_at, &fault_clause),
        };

        Case {
            id,
            topic: send
                .and_then(|s| s.topic)
                .or_else(|| read_at.first().map(|r| r.pos.topic))
                .map(|t| self.topic_name(t).to_owned()),
            acknowledged_at: acked_pos.map(|p| self.position(p)),
            read_at: read_at.iter().map(|r| self.position(r.pos)).collect(),
            op_indexes,
            time_s,
            faults_nearby: nearby.iter().map(|w| fault_summary(w)).collect(),
            cause,
        }
    }

    /// lost: acknowledged, absent from the final read. Says what the final read found instead.
    fn lost_cause(
        &self,
        send: Option<&SendRecord>,
        read: Option<&ReadRecord>,
        acked_pos: Option<Pos>,
        time_s: f64,
        fault_clause: &str,
    ) -> String {
        let mut sentence = match acked_pos {
            Some(p) => format!(
                "Acknowledged at {time_s:.2} s at partition {} offset {}, absent from the final read; {fault_clause}",
                p.partition, p.offset
            ),
            None => format!("Acknowledged at {time_s:.2} s, absent from the final read; {fault_clause}"),
        };
        if let Some(p) = acked_pos {
            match self.final_positions.get(&p) {
                Some(Some(other)) => sentence.push_str(&format!(
                    ", and offset {} of partition {} now holds message {other}, so the log was truncated and rewritten after the ack",
                    p.offset, p.partition
                )),
                Some(None) => sentence.push_str(&format!(
                    ", and offset {} of partition {} now holds a record without a message id, so the log was rewritten after the ack",
                    p.offset, p.partition
                )),
                None => match self.final_ends.get(&(p.topic, p.partition)) {
                    Some(end) if *end < p.offset => sentence.push_str(&format!(
                        ", and the final read of partition {} ends at offset {end}, so the log was truncated below the acknowledged offset",
                        p.partition
                    )),
                    Some(_) => sentence.push_str(&format!(
                        ", and the final read of partition {} went past offset {} without it (a gap in the log)",
                        p.partition, p.offset
                    )),
                    None => sentence.push_str(&format!(
                        ", and the final read returned nothing from partition {}",
                        p.partition
                    )),
                },
            }
        }
        if let Some(read) = read {
            sentence.push_str(&format!(
                "; a consumer had read it at {:.2} s, so it was lost after it became visible",
                seconds(read.first.time_ns)
            ));
        }
        if send.is_some_and(|s| s.attempts > 1) {
            sentence.push_str("; the application sent it more than once");
        }
        sentence.push('.');
        sentence
    }

    fn conclude_notes(&mut self, counts: &Counts, anomalies: &[Anomaly]) -> Vec<String> {
        let mut notes = Vec::new();
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
                "No completed final read: {why}, so no loss claim is made (lost and unacknowledged_absent were not checked); the verdict cannot be valid."
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

/// Names (topics, processes) stored once and referred to by a u32.
#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }

    fn name(&self, id: u32) -> &str {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.names.get(i))
            .map_or("?", String::as_str)
    }
}

/// Nemesis ops that end fault windows, and the fault kinds each one ends.
fn recovered_kinds(f: &str) -> Option<&'static [&'static str]> {
    match f {
        "restart" | "start" => Some(&["kill", "power_loss", "stop", "crash"]),
        "resume" => Some(&["pause"]),
        "heal" => Some(&[
            "partition",
            "isolate",
            "split",
            "cut_clients",
            "link_fault",
            "degrade",
        ]),
        _ => None,
    }
}

/// Faults that last until a recovery op; any other nemesis op is an instantaneous event.
fn is_lasting_fault(f: &str) -> bool {
    matches!(
        f,
        "kill"
            | "power_loss"
            | "stop"
            | "crash"
            | "pause"
            | "partition"
            | "isolate"
            | "split"
            | "cut_clients"
            | "link_fault"
            | "degrade"
    )
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

/// "node n1 was killed at 12.43 s"
fn fault_phrase(w: &FaultWindow) -> String {
    let subject = if w.target.is_empty() {
        "the cluster".to_owned()
    } else {
        format!("node {}", w.target)
    };
    let verb = match w.kind.as_str() {
        "kill" => "was killed".to_owned(),
        "crash" => "crashed".to_owned(),
        "stop" => "was stopped".to_owned(),
        "power_loss" => "lost power (unsynced writes gone)".to_owned(),
        "pause" => "was paused".to_owned(),
        "partition" | "isolate" | "split" | "cut_clients" => {
            "was cut off by a network partition".to_owned()
        }
        "link_fault" | "degrade" => "had a degraded network link".to_owned(),
        "drop_caches" => "had its page cache dropped".to_owned(),
        other => format!("had a {other} fault"),
    };
    format!("{subject} {verb} at {:.2} s", w.start_s)
}

fn unacknowledged_cause(
    send: Option<&SendRecord>,
    process: Option<&str>,
    time_s: f64,
    fault_clause: &str,
) -> String {
    let outcome = match send {
        Some(s) if s.open > 0 && s.infos == 0 => {
            format!(
                "the send was still open when {} stopped",
                process.unwrap_or("its producer")
            )
        }
        Some(s) => match &s.last_unacked {
            Some(u) => {
                let error = u
                    .error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                match u.kind {
                    OpType::Fail => {
                        format!("the send failed{error} at {:.2} s", seconds(u.time_ns))
                    }
                    _ => format!(
                        "the send's outcome was unknown{error} at {:.2} s",
                        seconds(u.time_ns)
                    ),
                }
            }
            None => "the send never completed".to_owned(),
        },
        None => "the send never completed".to_owned(),
    };
    format!(
        "Sent at {time_s:.2} s and never acknowledged ({outcome}), absent from the final read; \
         {fault_clause}, so the producer most likely never delivered it."
    )
}

fn duplicate_cause(send: Option<&SendRecord>, read_at: &[ReadAt], fault_clause: &str) -> String {
    let one_partition = read_at
        .windows(2)
        .all(|w| w[0].pos.topic == w[1].pos.topic && w[0].pos.partition == w[1].pos.partition);
    let places: Vec<String> = read_at
        .iter()
        .map(|r| format!("partition {} offset {}", r.pos.partition, r.pos.offset))
        .collect();
    let why = match send.map(|s| s.attempts) {
        Some(n) if n > 1 => format!("the application sent it {n} times"),
        _ if one_partition => {
            "the same message was written twice to one partition, most likely a producer retry after a lost ack without idempotence".to_owned()
        }
        _ => "the message was written to more than one partition, so it was sent more than once".to_owned(),
    };
    format!("Read at {}: {why}; {fault_clause}.", places.join(" and "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::parse_op;

    fn run(lines: &[&str], expect: Expectations) -> Analysis {
        let mut checker = Checker::new(expect);
        for (i, line) in lines.iter().enumerate() {
            checker.observe(&parse_op(line, i + 1).expect("valid fixture line"));
        }
        checker.finish()
    }

    const FINAL_READ: [&str; 2] = [
        r#"{"index":90,"time_ns":9000000000,"process":"harness","type":"invoke","f":"final_read"}"#,
        r#"{"index":99,"time_ns":9900000000,"process":"harness","type":"ok","f":"final_read"}"#,
    ];

    #[test]
    fn async_completions_match_by_id() {
        let lines = [
            r#"{"index":0,"time_ns":0,"process":"p","type":"invoke","f":"send","value":{"id":1,"topic":"t"}}"#,
            r#"{"index":1,"time_ns":1,"process":"p","type":"invoke","f":"send","value":{"id":2,"topic":"t"}}"#,
            r#"{"index":2,"time_ns":2,"process":"p","type":"ok","f":"send","value":{"id":2,"topic":"t","partition":0,"offset":0}}"#,
            r#"{"index":3,"time_ns":3,"process":"p","type":"info","f":"send","value":{"id":1,"topic":"t"},"error":"TIMED_OUT"}"#,
        ];
        let a = run(&lines, Expectations::default());
        assert_eq!(a.counts.sends_ok, 1);
        assert_eq!(a.counts.sends_info, 1);
        assert_eq!(a.counts.sends_open, 0);
        assert_eq!(a.verdict, Verdict::Unknown);
    }

    #[test]
    fn completion_without_id_completes_the_oldest_invoke() {
        let mut lines = vec![
            r#"{"index":0,"time_ns":0,"process":"p","type":"invoke","f":"send","value":{"id":1,"topic":"t"}}"#,
            r#"{"index":1,"time_ns":1,"process":"p","type":"fail","f":"send","error":"MSG_SIZE_TOO_LARGE"}"#,
        ];
        lines.extend(FINAL_READ);
        let a = run(&lines, Expectations::default());
        assert_eq!(a.counts.sends_fail, 1);
        assert_eq!(a.counts.unacknowledged_absent, 1);
        assert_eq!(a.verdict, Verdict::Valid);
        let case = &a
            .anomaly(AnomalyKind::UnacknowledgedAbsent)
            .expect("present")
            .cases[0];
        assert!(case.cause.contains("MSG_SIZE_TOO_LARGE"), "{}", case.cause);
        assert_eq!(case.op_indexes, vec![0, 1]);
    }

    #[test]
    fn fault_windows_open_and_close_per_node() {
        let lines = [
            r#"{"index":0,"time_ns":1000000000,"process":"nemesis","type":"invoke","f":"kill","value":{"node":"n1"}}"#,
            r#"{"index":1,"time_ns":1500000000,"process":"nemesis","type":"ok","f":"kill","value":{"node":"n1"}}"#,
            r#"{"index":2,"time_ns":2000000000,"process":"nemesis","type":"ok","f":"kill","value":{"node":"n2"}}"#,
            r#"{"index":3,"time_ns":3000000000,"process":"nemesis","type":"ok","f":"restart","value":{"node":"n1"}}"#,
            r#"{"index":4,"time_ns":3500000000,"process":"nemesis","type":"ok","f":"drop_caches","value":{"node":"n3"}}"#,
            r#"{"index":5,"time_ns":4000000000,"process":"nemesis","type":"ok","f":"partition","value":{"nodes":["n1","n2"]}}"#,
            r#"{"index":6,"time_ns":5000000000,"process":"nemesis","type":"ok","f":"heal","value":null}"#,
        ];
        let a = run(&lines, Expectations::default());
        let windows: Vec<(String, Option<f64>)> =
            a.faults.iter().map(|w| (w.label(), w.end_s)).collect();
        assert_eq!(
            windows,
            vec![
                ("kill n1".to_owned(), Some(3.0)),
                ("kill n2".to_owned(), None),
                ("drop_caches n3".to_owned(), Some(3.5)),
                ("partition n1,n2".to_owned(), Some(5.0)),
            ]
        );
        assert_eq!(a.faults[0].start_s, 1.5);
    }

    #[test]
    fn series_bucket_by_second() {
        let lines = [
            r#"{"index":0,"time_ns":100,"process":"p","type":"invoke","f":"send","value":{"id":1,"topic":"t"}}"#,
            r#"{"index":1,"time_ns":200,"process":"p","type":"ok","f":"send","value":{"id":1,"topic":"t","partition":0,"offset":0}}"#,
            r#"{"index":2,"time_ns":2100000000,"process":"c","type":"ok","f":"poll","value":{"records":[{"topic":"t","partition":0,"offset":0,"id":1}]}}"#,
            r#"{"index":3,"time_ns":2500000000,"process":"p","type":"invoke","f":"send","value":{"id":2,"topic":"t"}}"#,
        ];
        let a = run(&lines, Expectations::default());
        assert_eq!(a.series.sends_ok, vec![1, 0, 0]);
        assert_eq!(a.series.records_polled, vec![0, 0, 1]);
        assert_eq!(a.series.duration_s, 2.5);
        assert_eq!(a.counts.sends_open, 1);
    }

    #[test]
    fn proof_without_a_final_read_is_invalid_not_unknown() {
        let lines = [
            r#"{"index":0,"time_ns":0,"process":"p","type":"invoke","f":"send","value":{"id":1,"topic":"t"}}"#,
            r#"{"index":1,"time_ns":1,"process":"p","type":"fail","f":"send","value":{"id":1,"topic":"t"},"error":"NOT_LEADER"}"#,
            r#"{"index":2,"time_ns":2,"process":"c","type":"ok","f":"poll","value":{"records":[{"topic":"t","partition":0,"offset":7,"id":1}]}}"#,
        ];
        let a = run(&lines, Expectations::default());
        assert_eq!(a.verdict, Verdict::Invalid);
        assert_eq!(a.counts.aborted_read, 1);
        assert_eq!(a.counts.recovered, 0, "recovered is about the final read");
        assert!(a.notes.iter().any(|n| n.contains("no loss claim")));
    }

    #[test]
    fn acks_zero_offsets_are_no_position() {
        let mut lines = vec![
            r#"{"index":0,"time_ns":0,"process":"p","type":"invoke","f":"send","value":{"id":1,"topic":"t"}}"#,
            r#"{"index":1,"time_ns":1,"process":"p","type":"ok","f":"send","value":{"id":1,"topic":"t","partition":0,"offset":-1}}"#,
        ];
        lines.extend(FINAL_READ);
        let a = run(&lines, Expectations::default());
        let case = &a.anomaly(AnomalyKind::Lost).expect("lost").cases[0];
        assert_eq!(case.acknowledged_at, None);
        assert!(
            case.cause.starts_with("Acknowledged at 0.00 s, absent"),
            "{}",
            case.cause
        );
    }

    #[test]
    fn a_huge_time_cannot_exhaust_memory() {
        let lines = [
            r#"{"index":0,"time_ns":18446744073709551615,"process":"p","type":"ok","f":"send","value":{"id":1}}"#,
        ];
        let a = run(&lines, Expectations::default());
        assert_eq!(a.series.sends_ok.len(), limits::SERIES_SECONDS_MAX);
    }

    #[test]
    fn lost_cause_names_the_overwriting_message_and_the_fault() {
        let mut lines = vec![
            r#"{"index":0,"time_ns":12000000000,"process":"p","type":"invoke","f":"send","value":{"id":1,"topic":"t"}}"#,
            r#"{"index":1,"time_ns":12410000000,"process":"p","type":"ok","f":"send","value":{"id":1,"topic":"t","partition":0,"offset":5012}}"#,
            r#"{"index":2,"time_ns":12430000000,"process":"nemesis","type":"ok","f":"kill","value":{"node":"n1"}}"#,
            r#"{"index":3,"time_ns":13000000000,"process":"p","type":"invoke","f":"send","value":{"id":2,"topic":"t"}}"#,
            r#"{"index":4,"time_ns":13100000000,"process":"p","type":"ok","f":"send","value":{"id":2,"topic":"t","partition":0,"offset":5012}}"#,
        ];
        lines.push(FINAL_READ[0]);
        lines.push(r#"{"index":95,"time_ns":9500000000,"process":"r","type":"ok","f":"poll","value":{"records":[{"topic":"t","partition":0,"offset":5012,"id":2}]}}"#);
        lines.push(FINAL_READ[1]);
        let a = run(&lines, Expectations::default());
        assert_eq!(a.verdict, Verdict::Invalid);
        let lost = a.anomaly(AnomalyKind::Lost).expect("lost");
        assert_eq!(lost.count, 1);
        let case = &lost.cases[0];
        assert_eq!(case.id, 1);
        assert!(
            case.cause.contains("partition 0 offset 5012"),
            "{}",
            case.cause
        );
        assert!(
            case.cause.contains("node n1 was killed at 12.43 s"),
            "{}",
            case.cause
        );
        assert!(case.cause.contains("now holds message 2"), "{}", case.cause);
        assert_eq!(
            case.faults_nearby,
            vec!["kill n1 at 12.43 s (never recovered)".to_owned()]
        );
    }
}
