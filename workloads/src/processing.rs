//! A consumer application that processes what it reads, the way applications are really written:
//! processing a message means appending its id to a durable local sink (fdatasync'd before the
//! `process` op is reported), and the group's position is committed automatically (librdkafka's
//! defaults), before processing, after processing, or — with worker threads — either naively (the
//! highest offset handed out) or as the contiguous prefix of processed offsets. A configurable
//! fraction of messages fails processing (`process` fail: the application logs it and moves on).
//!
//! Where the commit sits relative to processing decides what a crash costs: a commit before
//! processing (or of offsets still in a worker's hands) skips messages after a restart
//! (`unprocessed`); a commit after processing reprocesses them (`duplicate_processing`).

use crate::consumer::{create, join, poll_batch, Events, KaosConsumer, Record};
use crate::limits::{COMMIT_TIMEOUT_MS, POLL_WAIT_MS};
use crate::ops::{OpSink, OpType, F};
use crate::spec::{CommitMode, ConsumerSpec, Processing};
use crate::WorkloadError;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Messages handed to worker threads and not yet finished, at most; the poller waits beyond it.
const IN_FLIGHT_MAX: usize = 2_000;
/// Processed ids are fdatasync'd (and reported) at least this often.
const SINK_SYNC_INTERVAL_MS: u64 = 20;

pub fn run(
    spec: &ConsumerSpec,
    processing: &Processing,
    ops: &mut OpSink,
    stop: &AtomicBool,
) -> Result<(), WorkloadError> {
    processing.validate().map_err(WorkloadError::Incomplete)?;
    if !spec.config.contains_key("group.id") {
        return Err(WorkloadError::Incomplete(
            "a processing consumer needs a group.id to commit to".into(),
        ));
    }
    let sink_path = spec.sink.as_deref().ok_or_else(|| {
        WorkloadError::Incomplete("a processing consumer needs a sink path".into())
    })?;
    let mut sink = Sink::open(sink_path)?;

    let mut properties = BTreeMap::new();
    properties.insert("auto.offset.reset".to_string(), "earliest".to_string());
    let auto = processing.commit == CommitMode::Auto;
    properties.insert("enable.auto.commit".to_string(), auto.to_string());
    properties.insert("enable.auto.offset.store".to_string(), "true".to_string());
    properties.extend(spec.config.clone());
    let consumer = create(
        &spec.bootstrap,
        &properties,
        false,
        Events::new(&spec.topic, &properties, true, auto),
    )?;
    join(&consumer, spec, true, ops, stop)?;

    let failing = Failing {
        seed: spec.seed,
        fraction: processing.fail_fraction,
    };
    let delay = Duration::from_millis(processing.process_ms);
    if processing.commit.threaded() {
        return threaded(&consumer, spec, processing, &mut sink, ops, stop, failing);
    }
    while !stop.load(Ordering::Relaxed) {
        let mut batch: Vec<Record> = Vec::new();
        poll_batch(&consumer, ops, |r| {
            if r.offset >= 0 {
                batch.push(r)
            }
        })?;
        if batch.is_empty() {
            continue;
        }
        if processing.commit == CommitMode::BeforeProcessing {
            commit(&consumer, &spec.topic, &ends(&batch), ops)?;
        }
        for r in &batch {
            // A stop request lets the current message finish, not the rest of the batch.
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            sink.processed(*r, failing.fails(r.id), &spec.topic, ops)?;
        }
        sink.sync(&spec.topic, ops)?;
        if processing.commit == CommitMode::AfterProcessing && !stop.load(Ordering::Relaxed) {
            commit(&consumer, &spec.topic, &ends(&batch), ops)?;
        }
    }
    sink.sync(&spec.topic, ops)?;
    Ok(())
}

/// Per partition, the offset after the last record of a batch (Kafka's committed offset: the next
/// to read).
pub(crate) fn ends(batch: &[Record]) -> BTreeMap<i32, i64> {
    let mut ends = BTreeMap::new();
    for r in batch {
        let e = ends.entry(r.partition).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }
    ends
}

/// A synchronous commit of `offsets`, one `offset_commit` op per partition. A failed commit is
/// logged and the application goes on (as applications do: the next commit covers it).
pub(crate) fn commit(
    consumer: &KaosConsumer,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
    ops: &mut OpSink,
) -> Result<(), WorkloadError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for (&p, &o) in offsets {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))
            .map_err(WorkloadError::kafka("building the commit"))?;
    }
    let result = consumer.commit(&tpl, rdkafka::consumer::CommitMode::Sync);
    consumer.context().commit_ops(&result, &tpl, Some(ops));
    Ok(ops.flush()?)
}

/// Which messages fail processing: a fixed fraction, chosen from the seed and the message id so
/// that a reprocessed message fails again (a poison message, not bad luck).
#[derive(Clone, Copy)]
struct Failing {
    seed: u64,
    fraction: f64,
}

impl Failing {
    fn fails(&self, id: Option<u64>) -> bool {
        let Some(id) = id else { return false };
        if self.fraction <= 0.0 {
            return false;
        }
        crate::message::seeded_unit(self.seed, id) < self.fraction
    }
}

/// The durable processed record: one message id per line, fdatasync'd before its `process` op is
/// written, so a `process` ok in the history is always in the sink.
struct Sink {
    file: File,
    unsynced: Vec<Record>,
    last_sync: Instant,
}

impl Sink {
    fn open(path: &Path) -> Result<Sink, WorkloadError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Sink {
            file,
            unsynced: Vec::new(),
            last_sync: Instant::now(),
        })
    }

    /// One message processed (`failed`: its processing failed and left nothing in the sink).
    fn processed(
        &mut self,
        r: Record,
        failed: bool,
        topic: &str,
        ops: &mut OpSink,
    ) -> Result<(), WorkloadError> {
        let Some(id) = r.id else { return Ok(()) };
        if failed {
            ops.op(
                OpType::Fail,
                F::Process,
                json!({"id": id, "topic": topic, "partition": r.partition, "offset": r.offset}),
                Some("processing failed"),
            );
        } else {
            writeln!(self.file, "{id}")?;
            self.unsynced.push(r);
        }
        if self.last_sync.elapsed() >= Duration::from_millis(SINK_SYNC_INTERVAL_MS) {
            self.sync(topic, ops)?;
        }
        Ok(())
    }

    /// Makes what was appended durable, then reports it.
    fn sync(&mut self, topic: &str, ops: &mut OpSink) -> Result<(), WorkloadError> {
        self.last_sync = Instant::now();
        if !self.unsynced.is_empty() {
            self.file.sync_data()?;
            for r in self.unsynced.drain(..) {
                ops.op(OpType::Ok, F::Process, json!({"id": r.id, "topic": topic, "partition": r.partition, "offset": r.offset}), None);
            }
        }
        Ok(ops.flush()?)
    }
}

/// What a worker hands back: the record and whether its processing failed.
type Done = (Record, bool);

/// Worker threads process; the polling thread records what they finish and commits every
/// `commit_interval_ms`: the highest offset handed out (`highest_received`) or the end of the
/// contiguous prefix of finished offsets (`contiguous_processed`).
fn threaded(
    consumer: &KaosConsumer,
    spec: &ConsumerSpec,
    processing: &Processing,
    sink: &mut Sink,
    ops: &mut OpSink,
    stop: &AtomicBool,
    failing: Failing,
) -> Result<(), WorkloadError> {
    let delay = Duration::from_millis(processing.process_ms);
    let (workers, done_rx, handles) = spawn_workers(processing.worker_count(), delay, failing);
    let mut tracker = Tracker {
        topic: spec.topic.as_str(),
        workers,
        outstanding: BTreeMap::new(),
        highest: BTreeMap::new(),
        committed: BTreeMap::new(),
        in_flight: 0,
        next_worker: 0,
    };
    let interval = Duration::from_millis(processing.commit_interval_ms);
    let mut last_commit = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if tracker.in_flight < IN_FLIGHT_MAX {
            let mut batch = Vec::new();
            poll_batch(consumer, ops, |r| {
                if r.offset >= 0 {
                    batch.push(r)
                }
            })?;
            for r in batch {
                tracker.hand_out(r)?;
            }
        } else if let Ok(d) = done_rx.recv_timeout(Duration::from_millis(POLL_WAIT_MS)) {
            tracker.finish(d, sink, ops)?;
        }
        while let Ok(d) = done_rx.try_recv() {
            tracker.finish(d, sink, ops)?;
        }
        sink.sync(tracker.topic, ops)?;
        if last_commit.elapsed() >= interval {
            last_commit = Instant::now();
            tracker.commit(consumer, processing.commit, ops)?;
        }
    }
    // Stopping: the workers finish what they hold (bounded by what is in flight).
    drop(std::mem::take(&mut tracker.workers));
    let deadline = Instant::now()
        + delay * (tracker.in_flight as u32).min(IN_FLIGHT_MAX as u32)
        + Duration::from_millis(COMMIT_TIMEOUT_MS);
    while tracker.in_flight > 0 && Instant::now() < deadline {
        match done_rx.recv_timeout(Duration::from_millis(POLL_WAIT_MS)) {
            Ok(d) => tracker.finish(d, sink, ops)?,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    sink.sync(tracker.topic, ops)?;
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}

/// `count` worker threads, each taking records from its own channel, sleeping `delay` for
/// each, and handing it back on the shared done channel with whether it failed.
fn spawn_workers(
    count: u32,
    delay: Duration,
    failing: Failing,
) -> (
    Vec<mpsc::Sender<Record>>,
    mpsc::Receiver<Done>,
    Vec<std::thread::JoinHandle<()>>,
) {
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let mut workers = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..count {
        let (tx, rx) = mpsc::channel::<Record>();
        let done_tx = done_tx.clone();
        handles.push(std::thread::spawn(move || {
            for r in rx {
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                if done_tx.send((r, failing.fails(r.id))).is_err() {
                    break;
                }
            }
        }));
        workers.push(tx);
    }
    (workers, done_rx, handles)
}

/// The polling thread's view of the records handed to the workers.
struct Tracker<'a> {
    topic: &'a str,
    workers: Vec<mpsc::Sender<Record>>,
    /// Per partition: offsets handed out and not yet committed past, with whether they are done.
    outstanding: BTreeMap<i32, BTreeMap<i64, bool>>,
    highest: BTreeMap<i32, i64>,
    committed: BTreeMap<i32, i64>,
    in_flight: usize,
    next_worker: usize,
}

impl Tracker<'_> {
    /// Hands a record to the next worker, round robin.
    fn hand_out(&mut self, r: Record) -> Result<(), WorkloadError> {
        self.outstanding
            .entry(r.partition)
            .or_default()
            .insert(r.offset, false);
        let h = self.highest.entry(r.partition).or_insert(-1);
        *h = (*h).max(r.offset);
        if self.workers[self.next_worker % self.workers.len()]
            .send(r)
            .is_err()
        {
            return Err(WorkloadError::Incomplete(
                "a processing thread ended".into(),
            ));
        }
        self.next_worker += 1;
        self.in_flight += 1;
        Ok(())
    }

    /// A worker finished a record: mark it done and record it as processed.
    fn finish(
        &mut self,
        (r, failed): Done,
        sink: &mut Sink,
        ops: &mut OpSink,
    ) -> Result<(), WorkloadError> {
        self.in_flight -= 1;
        if let Some(slot) = self
            .outstanding
            .get_mut(&r.partition)
            .and_then(|m| m.get_mut(&r.offset))
        {
            *slot = true;
        }
        sink.processed(r, failed, self.topic, ops)
    }

    /// Commits, per partition whose position changed, what `mode` says is done.
    fn commit(
        &mut self,
        consumer: &KaosConsumer,
        mode: CommitMode,
        ops: &mut OpSink,
    ) -> Result<(), WorkloadError> {
        let wanted = match mode {
            CommitMode::HighestReceived => self.highest.iter().map(|(&p, &h)| (p, h + 1)).collect(),
            _ => contiguous_ends(&mut self.outstanding, &self.highest),
        };
        let changed: BTreeMap<i32, i64> = wanted
            .into_iter()
            .filter(|(p, o)| self.committed.get(p) != Some(o))
            .collect();
        commit(consumer, self.topic, &changed, ops)?;
        self.committed.extend(changed);
        Ok(())
    }
}

/// Per partition, the first offset not yet processed (or one past the highest handed out when all
/// are), dropping the processed prefix from `outstanding`.
fn contiguous_ends(
    outstanding: &mut BTreeMap<i32, BTreeMap<i64, bool>>,
    highest: &BTreeMap<i32, i64>,
) -> BTreeMap<i32, i64> {
    let mut ends = BTreeMap::new();
    for (&p, offsets) in outstanding.iter_mut() {
        while let Some((_, true)) = offsets.first_key_value() {
            offsets.pop_first();
        }
        let end = match offsets.first_key_value() {
            Some((&first, _)) => first,
            None => match highest.get(&p) {
                Some(&h) => h + 1,
                None => continue,
            },
        };
        ends.insert(p, end);
    }
    ends
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_prefix_stops_at_the_first_unfinished_offset() {
        let mut outstanding: BTreeMap<i32, BTreeMap<i64, bool>> = BTreeMap::new();
        outstanding.insert(
            0,
            [(10, true), (11, false), (12, true)].into_iter().collect(),
        );
        outstanding.insert(1, [(5, true), (6, true)].into_iter().collect());
        let highest: BTreeMap<i32, i64> = [(0, 12), (1, 6)].into_iter().collect();
        let ends = contiguous_ends(&mut outstanding, &highest);
        assert_eq!(ends.get(&0), Some(&11));
        assert_eq!(ends.get(&1), Some(&7));
        assert_eq!(
            outstanding[&0].len(),
            2,
            "offset 10 is committed past and forgotten"
        );
    }

    #[test]
    fn failing_fraction_is_close_to_what_was_asked_and_repeatable() {
        let f = Failing {
            seed: 7,
            fraction: 0.1,
        };
        let failed = (0..100_000u64).filter(|&id| f.fails(Some(id))).count();
        assert!(
            (9_000..11_000).contains(&failed),
            "{failed} of 100000 failed"
        );
        assert_eq!(f.fails(Some(42)), f.fails(Some(42)));
        assert!(!Failing {
            seed: 7,
            fraction: 0.0
        }
        .fails(Some(1)));
        assert!(!f.fails(None));
    }

    #[test]
    fn batch_ends_are_one_past_the_last_offset_per_partition() {
        let r = |partition, offset| Record {
            partition,
            offset,
            id: Some(1),
        };
        let e = ends(&[r(0, 4), r(1, 9), r(0, 7)]);
        assert_eq!(e.get(&0), Some(&8));
        assert_eq!(e.get(&1), Some(&10));
    }
}
