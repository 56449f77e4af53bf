//! The consume-transform-produce application (KIP-98 / KIP-447's use case): it reads the input
//! topic from the group's committed offsets (assigning every partition, `read_committed`), and
//! writes each input message `id` to the output topic as message
//! `kaos_history::pipeline_output_id(id)`, at the same partition number. Two ways:
//!
//! - **exactly once** (`transactional`): one transaction per poll batch holds the outputs and
//!   the input offsets (`send_offsets_to_transaction`), one `txn` op (its `poll` micro-op the
//!   batch, its `send`s the outputs); committed, it is followed by an `offset_commit` op per
//!   input partition. A transaction that did not commit (aborted, fenced, unknown) is followed by
//!   a rewind to the committed offsets (an `assign` and `seek` ops), after a new producer's
//!   `init_transactions` when the old one cannot go on; a fenced pipeline stops (a newer instance
//!   with its `transactional.id` has taken over).
//! - **at least once**: `poll`, a `send` per output, wait for every delivery, then a synchronous
//!   commit of the input offsets (`offset_commit` ops); a batch with an output not acknowledged
//!   is not committed but read again from the committed offsets. A crash between the sends and
//!   the commit writes the batch's outputs again: the duplicates this application cannot avoid.
//!
//! Told to stop, it drains: it goes on until the group's committed offsets reach the input's end
//! offsets as they were at the stop (when those cannot be read, until the input has been idle for
//! `PIPELINE_DRAIN_IDLE_MS`), at most `PIPELINE_DRAIN_MS_MAX` after the stop, so that what the
//! producers wrote is through the pipeline before the final read. While it drains it still
//! (re)starts as it does when running: an instance started just before the stop, or one that must
//! rewind after an aborted transaction, gives up only when the drain's time is over.

use crate::consumer::{self, Events, KaosConsumer, Record};
use crate::limits::{
    COMMIT_TIMEOUT_MS, PIPELINE_BATCH_RECORDS_MAX, PIPELINE_DRAIN_IDLE_MS, PIPELINE_DRAIN_MS_MAX,
    POLL_WAIT_MS, TXN_TIMEOUT_MS,
};
use crate::ops::{OpSink, OpType, F};
use crate::processing::{commit, ends};
use crate::producer::{create_producer, drain_reports, error_name, Outcome};
use crate::spec::{ConsumerSpec, PipelineSpec, ProducerMode, ProducerSpec};
use crate::txn::{self, Ending, TxnProducer};
use crate::{message, WorkloadError};
use kaos_history::pipeline_output_id;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs the pipeline until told to stop and drained (see the module's text).
pub fn run(
    spec: &ConsumerSpec,
    pipeline: &PipelineSpec,
    sink: &mut OpSink,
    stop: &AtomicBool,
) -> Result<(), WorkloadError> {
    if !spec.config.contains_key("group.id") {
        return Err(WorkloadError::Incomplete(
            "a pipeline needs a group.id: its input offsets are the group's".into(),
        ));
    }
    if spec.subscribe {
        return Err(WorkloadError::Incomplete(
            "a pipeline assigns every input partition itself (subscribe = false)".into(),
        ));
    }
    let mut config = spec.config.clone();
    config
        .entry("auto.offset.reset".into())
        .or_insert_with(|| "earliest".into());
    config
        .entry("enable.auto.commit".into())
        .or_insert_with(|| "false".into());
    pipeline.validate().map_err(WorkloadError::Incomplete)?;
    let consumer = consumer::create(
        &spec.bootstrap,
        &config,
        false,
        Events::new(&spec.topic, &config, true, false),
    )?;
    let give_up = AtomicBool::new(false);
    let finished = AtomicBool::new(false);
    let drain_max = Duration::from_millis(PIPELINE_DRAIN_MS_MAX);
    std::thread::scope(|scope| {
        scope.spawn(|| give_up_after(drain_max, stop, &finished, &give_up));
        let stops = Stops {
            stop,
            give_up: &give_up,
        };
        let result = pipeline_loop(&consumer, spec, pipeline, sink, stops);
        finished.store(true, Ordering::Relaxed);
        result
    })
}

/// The two stop signals of a pipeline: `stop` starts the drain; `give_up` (the drain's time is
/// over) is what its (re)starts heed, so that a draining pipeline still rewinds and restarts.
#[derive(Clone, Copy)]
struct Stops<'a> {
    stop: &'a AtomicBool,
    give_up: &'a AtomicBool,
}

/// Sets `give_up` `after` `stop` is set (the pipeline's `PIPELINE_DRAIN_MS_MAX`); returns once
/// `finished` is.
fn give_up_after(after: Duration, stop: &AtomicBool, finished: &AtomicBool, give_up: &AtomicBool) {
    let step = Duration::from_millis(POLL_WAIT_MS);
    let mut stopped_at = None;
    while !finished.load(Ordering::Relaxed) {
        if stop.load(Ordering::Relaxed) {
            let at = *stopped_at.get_or_insert_with(Instant::now);
            if at.elapsed() >= after {
                give_up.store(true, Ordering::Relaxed);
            }
        }
        std::thread::sleep(step);
    }
}

/// Joins the input and runs the pipeline the configured way until it is drained.
fn pipeline_loop(
    consumer: &KaosConsumer,
    spec: &ConsumerSpec,
    pipeline: &PipelineSpec,
    sink: &mut OpSink,
    stops: Stops<'_>,
) -> Result<(), WorkloadError> {
    if !started(
        consumer::join(consumer, spec, true, sink, stops.give_up),
        stops.give_up,
    )? {
        return Ok(sink.flush()?);
    }
    let output = output_spec(spec, pipeline);
    let mut drain = Drain::default();
    let input = Input {
        consumer,
        topic: &spec.topic,
    };
    if pipeline.transactional {
        exactly_once(&input, spec, &output, pipeline, sink, stops, &mut drain)
    } else {
        at_least_once(&input, spec, &output, sink, stops, &mut drain)
    }
}

/// The output side as a producer spec, so that the producer code is shared.
fn output_spec(spec: &ConsumerSpec, pipeline: &PipelineSpec) -> ProducerSpec {
    ProducerSpec {
        bootstrap: spec.bootstrap.clone(),
        topic: pipeline.output_topic.clone(),
        id_base: 0,
        mode: if pipeline.transactional {
            ProducerMode::Transactional
        } else {
            ProducerMode::Async
        },
        rate_per_s: 0,
        message_size_bytes: pipeline.message_size_bytes,
        count_max: 0,
        on_full: Default::default(),
        outbox: None,
        config: pipeline.producer_config.clone(),
        transaction: Default::default(),
        seed: spec.seed,
        // Outputs are keyless (a pipeline on a compacted topic is not supported yet).
        keys: 0,
    }
}

/// What a draining pipeline asks of its input (a trait so that the drain's rule is tested alone).
trait InputProgress {
    /// The input's end offsets per partition (its high watermarks); `None` if they cannot be read.
    fn end_offsets(&self) -> Option<BTreeMap<i32, i64>>;
    /// The group's committed offset per input partition (none: not committed); `None` if they
    /// cannot be read.
    fn committed(&self) -> Option<BTreeMap<i32, i64>>;
}

/// The pipeline's input: its consumer and topic.
struct Input<'a> {
    consumer: &'a KaosConsumer,
    topic: &'a str,
}

impl InputProgress for Input<'_> {
    fn end_offsets(&self) -> Option<BTreeMap<i32, i64>> {
        let assignment = self.consumer.assignment().ok()?;
        let timeout = Duration::from_millis(DRAIN_PROBE_TIMEOUT_MS);
        let mut ends = BTreeMap::new();
        for e in assignment.elements_for_topic(self.topic) {
            let (_, high) = self
                .consumer
                .fetch_watermarks(self.topic, e.partition(), timeout)
                .ok()?;
            ends.insert(e.partition(), high);
        }
        (!ends.is_empty()).then_some(ends)
    }

    fn committed(&self) -> Option<BTreeMap<i32, i64>> {
        let timeout = Duration::from_millis(DRAIN_PROBE_TIMEOUT_MS);
        let committed = self.consumer.committed(timeout).ok()?;
        Some(
            committed
                .elements_for_topic(self.topic)
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) => Some((e.partition(), o)),
                    _ => None,
                })
                .collect(),
        )
    }
}

/// How long a draining pipeline waits for its input's end or committed offsets.
const DRAIN_PROBE_TIMEOUT_MS: u64 = 2_000;

/// When a stopping pipeline is done: once the group's committed offsets reach the input's end
/// offsets of the stop (asked when a poll comes back empty), or, when those ends cannot be read,
/// once the input has been idle for `PIPELINE_DRAIN_IDLE_MS`; in any case
/// `PIPELINE_DRAIN_MS_MAX` after the stop.
#[derive(Default)]
struct Drain {
    stopped_at: Option<Instant>,
    idle_since: Option<Instant>,
    /// The input's end offsets, read at the stop (retried while unknown).
    targets: Option<BTreeMap<i32, i64>>,
}

impl Drain {
    fn done(&mut self, stop: &AtomicBool, batch_empty: bool, input: &dyn InputProgress) -> bool {
        if !stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        let stopped_at = *self.stopped_at.get_or_insert(now);
        if now.duration_since(stopped_at) > Duration::from_millis(PIPELINE_DRAIN_MS_MAX) {
            return true;
        }
        if self.targets.is_none() {
            self.targets = input.end_offsets();
        }
        if !batch_empty {
            self.idle_since = None;
            return false;
        }
        let idle_since = *self.idle_since.get_or_insert(now);
        match &self.targets {
            Some(targets) => input.committed().is_some_and(|committed| {
                targets
                    .iter()
                    .all(|(p, &end)| end <= 0 || committed.get(p).is_some_and(|&c| c >= end))
            }),
            None => now.duration_since(idle_since) >= Duration::from_millis(PIPELINE_DRAIN_IDLE_MS),
        }
    }
}

/// The outputs of a batch: (output id, partition) per input record that carries an id.
fn plan_of(batch: &[Record]) -> Vec<(u64, i32)> {
    batch
        .iter()
        .filter_map(|r| r.id.map(|id| (pipeline_output_id(id), r.partition)))
        .collect()
}

/// Exactly once: each batch's outputs and input offsets in one transaction.
fn exactly_once(
    input: &Input<'_>,
    spec: &ConsumerSpec,
    output: &ProducerSpec,
    pipeline: &PipelineSpec,
    sink: &mut OpSink,
    stops: Stops<'_>,
    drain: &mut Drain,
) -> Result<(), WorkloadError> {
    let consumer = input.consumer;
    let send_offsets_timeout = Duration::from_millis(match pipeline.send_offsets_timeout_ms {
        0 => TXN_TIMEOUT_MS,
        ms => ms,
    });
    let Some(first) = started_with(txn::start_producer(output, stops.give_up), stops.give_up)?
    else {
        return Ok(sink.flush()?);
    };
    // Shared with a `send_offsets` left hanging in librdkafka, which keeps its producer alive.
    let mut producer = Arc::new(first);
    let mut transactions: u64 = 0;
    loop {
        let (batch, records) = take_batch(consumer, sink)?;
        if drain.done(stops.stop, batch.is_empty(), input) {
            break;
        }
        if batch.is_empty() {
            continue;
        }
        transactions += 1;
        let commit =
            message::seeded_unit(spec.seed ^ 0x7069_7065, transactions) >= pipeline.abort_fraction;
        let batch = Batch {
            records: &batch,
            json: records,
            commit,
            send_offsets_timeout,
        };
        let ending = transaction(&producer, consumer, spec, output, batch, sink)?;
        if ending.fenced {
            eprintln!(
                "fenced ({}): a newer pipeline has this transactional.id; stopping",
                ending.error.as_deref().unwrap_or("")
            );
            break;
        }
        if ending.kind == OpType::Ok {
            continue;
        }
        if ending.rebuild {
            drop(producer);
            match started_with(txn::start_producer(output, stops.give_up), stops.give_up)? {
                Some(p) => producer = Arc::new(p),
                None => break,
            }
        }
        // What was polled and not committed is read again from the group's committed offsets.
        if !started(
            consumer::join(consumer, spec, true, sink, stops.give_up),
            stops.give_up,
        )? {
            break;
        }
    }
    Ok(sink.flush()?)
}

/// One poll batch, not yet written to the history (it becomes the transaction's `poll`): the
/// records and their JSON. A poll error is a failed `poll` op, ending the batch.
fn take_batch(
    consumer: &KaosConsumer,
    sink: &mut OpSink,
) -> Result<(Vec<Record>, Vec<Value>), WorkloadError> {
    let (mut batch, mut records) = (Vec::new(), Vec::new());
    let mut wait = Duration::from_millis(POLL_WAIT_MS);
    while batch.len() < PIPELINE_BATCH_RECORDS_MAX {
        match consumer.poll(wait) {
            None => break,
            Some(Ok(m)) => {
                batch.push(Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    id: m.payload().and_then(message::decode),
                });
                records.push(consumer::record_json(consumer, &m));
            }
            Some(Err(e)) => {
                sink.op(OpType::Invoke, F::Poll, Value::Null, None);
                sink.op(OpType::Fail, F::Poll, Value::Null, Some(&error_name(&e)));
                break;
            }
        }
        wait = Duration::ZERO;
    }
    consumer.context().drain(sink);
    sink.flush()?;
    Ok((batch, records))
}

/// One poll batch on its way through a transaction.
struct Batch<'a> {
    records: &'a [Record],
    /// The records as the `poll` micro-op lists them.
    json: Vec<Value>,
    /// The application commits it (`false`: it aborts it by choice, after the offsets).
    commit: bool,
    /// The timeout given to `send_offsets_to_transaction` (see [`send_offsets`]).
    send_offsets_timeout: Duration,
}

/// One transaction: the batch's outputs, its input offsets, the commit (or an abort by choice);
/// the `txn` op around it and, committed, the `offset_commit` ops of the input offsets.
fn transaction(
    producer: &Arc<TxnProducer>,
    consumer: &KaosConsumer,
    spec: &ConsumerSpec,
    output: &ProducerSpec,
    batch: Batch<'_>,
    sink: &mut OpSink,
) -> Result<Ending, WorkloadError> {
    let plan = plan_of(batch.records);
    let offsets = ends(batch.records);
    let commit = batch.commit;
    let mut mops = vec![json!({"f": "poll", "records": batch.json})];
    mops.extend(
        plan.iter()
            .map(|&(id, p)| json!({"f": "send", "id": id, "topic": output.topic, "partition": p})),
    );
    txn::invoke(sink, commit, &mops)?;
    let ending = match producer.begin_transaction() {
        Ok(()) => match txn::send_all(producer, output, &plan) {
            Some(e) => txn::abort(producer, Some(e)),
            None => match send_offsets(
                producer,
                consumer,
                &spec.topic,
                &offsets,
                batch.send_offsets_timeout,
            ) {
                // No EndTxn was sent: the next producer's init_transactions aborts it.
                None => Ending::new(OpType::Fail, Some(SEND_OFFSETS_HUNG.to_owned()), true),
                Some(Ok(())) if commit => txn::commit_transaction(producer),
                Some(Ok(())) => txn::abort(producer, None),
                Some(Err(KafkaError::Transaction(rd))) if txn::fenced(rd.code()) => {
                    Ending::fenced(error_name(&KafkaError::Transaction(rd)))
                }
                Some(Err(KafkaError::Transaction(rd))) if rd.txn_requires_abort() => {
                    txn::abort(producer, Some(error_name(&KafkaError::Transaction(rd))))
                }
                // No EndTxn(commit) was sent: the coordinator can only abort it (the next
                // producer's init_transactions does).
                Some(Err(e)) => Ending::new(OpType::Fail, Some(error_name(&e)), true),
            },
        },
        Err(KafkaError::Transaction(rd)) if txn::fenced(rd.code()) => {
            Ending::fenced(error_name(&KafkaError::Transaction(rd)))
        }
        Err(e) => Ending::new(OpType::Fail, Some(error_name(&e)), true),
    };
    txn::record_deliveries(producer, &mut mops[1..])?;
    sink.op(
        ending.kind,
        F::Txn,
        json!({"commit": commit, "mops": mops}),
        ending.error.as_deref(),
    );
    if ending.kind == OpType::Ok {
        let group = consumer.context().group.clone();
        for (&p, &o) in &offsets {
            sink.op(
                OpType::Ok,
                F::OffsetCommit,
                json!({"group": group, "topic": spec.topic, "partition": p, "offset": o}),
                None,
            );
        }
    }
    sink.flush()?;
    Ok(ending)
}

/// The error a transaction records when `send_offsets_to_transaction` hung (see [`send_offsets`]).
const SEND_OFFSETS_HUNG: &str = "SendOffsetsHung";

/// `send_offsets_to_transaction` of the input offsets, with the consumer's group metadata, on a
/// thread of its own; `None` when it has not returned after twice its `timeout` (the pipeline's
/// `send_offsets_timeout_ms`, default `TXN_TIMEOUT_MS`). librdkafka 2.12
/// can wait in it forever once the group coordinator it had cached was decommissioned (a broker
/// left out of a Metadata response; librdkafka issue #5511, its timeout unchecked: #5456), as a
/// stack of a stalled eos-pipeline-coordinator-kill run showed. The call is then left behind (its
/// thread keeps that producer alive) and the caller builds a new producer, whose
/// init_transactions fences the old one and aborts its transaction.
fn send_offsets(
    producer: &Arc<TxnProducer>,
    consumer: &KaosConsumer,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
    timeout: Duration,
) -> Option<Result<(), KafkaError>> {
    let mut tpl = TopicPartitionList::new();
    for (&p, &o) in offsets {
        if let Err(e) = tpl.add_partition_offset(topic, p, Offset::Offset(o)) {
            return Some(Err(e));
        }
    }
    // (librdkafka gives every consumer with a group.id its group metadata.)
    let Some(metadata) = consumer.group_metadata() else {
        return Some(Err(KafkaError::OffsetFetch(
            rdkafka::types::RDKafkaErrorCode::InvalidGroupId,
        )));
    };
    let (done, result) = std::sync::mpsc::channel();
    let calling = Arc::clone(producer);
    let call = move || {
        let _ = done.send(calling.send_offsets_to_transaction(&tpl, &metadata, timeout));
    };
    if let Err(e) = std::thread::Builder::new()
        .name("send-offsets".into())
        .spawn(call)
    {
        eprintln!("no thread for send_offsets_to_transaction ({e})");
        return Some(Err(KafkaError::Global(
            rdkafka::types::RDKafkaErrorCode::Fail,
        )));
    }
    match result.recv_timeout(timeout * 2) {
        Ok(r) => Some(r),
        Err(_) => {
            eprintln!(
                "send_offsets_to_transaction has not returned after {} ms: leaving it behind",
                2 * timeout.as_millis()
            );
            None
        }
    }
}

/// At least once: produce the batch's outputs, wait for every delivery, then commit.
fn at_least_once(
    input: &Input<'_>,
    spec: &ConsumerSpec,
    output: &ProducerSpec,
    sink: &mut OpSink,
    stops: Stops<'_>,
    drain: &mut Drain,
) -> Result<(), WorkloadError> {
    let consumer = input.consumer;
    let producer = create_producer(output)?;
    loop {
        let mut batch = Vec::new();
        // Every record of the poll (at most `POLL_BATCH_RECORDS_MAX`): the consumer's position
        // is past them all, so a record left out would be committed without its output.
        consumer::poll_batch(consumer, sink, |r| {
            if r.offset >= 0 {
                batch.push(r)
            }
        })?;
        if drain.done(stops.stop, batch.is_empty(), input) {
            break;
        }
        if batch.is_empty() {
            continue;
        }
        let plan = plan_of(&batch);
        for &(id, _) in &plan {
            sink.op(
                OpType::Invoke,
                F::Send,
                json!({"id": id, "topic": output.topic}),
                None,
            );
        }
        sink.flush()?;
        let refused = txn::send_all(&producer, output, &plan);
        let _ = producer.flush(Duration::from_millis(COMMIT_TIMEOUT_MS));
        let reports = drain_reports(&producer, sink)?;
        let acked = reports
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Acked { .. }))
            .count();
        if refused.is_none() && acked == plan.len() {
            commit(consumer, &spec.topic, &ends(&batch), sink)?;
        } else {
            eprintln!(
                "{} of {} outputs acknowledged{}: reading the batch again",
                acked,
                plan.len(),
                refused.map(|e| format!(" ({e})")).unwrap_or_default()
            );
            if !started(
                consumer::join(consumer, spec, true, sink, stops.give_up),
                stops.give_up,
            )? {
                break;
            }
        }
    }
    Ok(sink.flush()?)
}

/// `Some` of what a start gave; `None` when it failed because the client was told to stop
/// meanwhile (a pipeline stopped while it (re)started has nothing left to do: its ops are
/// complete); any other failure is the client's error.
fn started_with<T>(
    result: Result<T, WorkloadError>,
    stop: &AtomicBool,
) -> Result<Option<T>, WorkloadError> {
    match result {
        Ok(t) => Ok(Some(t)),
        Err(e) if stop.load(Ordering::Relaxed) => {
            eprintln!("stopped while starting: {e}");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// [`started_with`] of a start that gives nothing: whether it happened.
fn started(result: Result<(), WorkloadError>, stop: &AtomicBool) -> Result<bool, WorkloadError> {
    Ok(started_with(result, stop)?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_keep_the_partition_and_map_back_to_their_input() {
        let r = |partition, offset, id| Record {
            partition,
            offset,
            id,
        };
        let plan = plan_of(&[r(0, 4, Some(7)), r(2, 9, None), r(1, 3, Some(8))]);
        assert_eq!(
            plan,
            vec![(pipeline_output_id(7), 0), (pipeline_output_id(8), 1)]
        );
        assert_eq!(kaos_history::pipeline_input_id(plan[0].0), Some(7));
    }

    /// An input whose end and committed offsets the test sets.
    struct FakeInput {
        ends: Option<BTreeMap<i32, i64>>,
        committed: std::cell::RefCell<Option<BTreeMap<i32, i64>>>,
    }

    impl InputProgress for FakeInput {
        fn end_offsets(&self) -> Option<BTreeMap<i32, i64>> {
            self.ends.clone()
        }
        fn committed(&self) -> Option<BTreeMap<i32, i64>> {
            self.committed.borrow().clone()
        }
    }

    #[test]
    fn a_stopped_pipeline_is_done_when_its_commits_reach_the_input_ends_of_the_stop() {
        let stop = AtomicBool::new(false);
        let input = FakeInput {
            ends: Some(BTreeMap::from([(0, 10), (1, 0), (2, 5)])),
            committed: Default::default(),
        };
        let mut drain = Drain::default();
        assert!(!drain.done(&stop, true, &input), "not told to stop");
        assert!(
            drain.targets.is_none(),
            "ends are read at the stop, not before"
        );
        stop.store(true, Ordering::Relaxed);
        assert!(!drain.done(&stop, true, &input), "nothing committed yet");
        assert_eq!(drain.targets, input.ends, "the ends of the stop");
        // Idle for longer than the idle rule: still not done while the group is behind (a
        // restarted instance that polls nothing for a while has not drained its input).
        drain.idle_since = Some(Instant::now() - Duration::from_millis(PIPELINE_DRAIN_IDLE_MS));
        *input.committed.borrow_mut() = Some(BTreeMap::from([(0, 10), (2, 4)]));
        assert!(!drain.done(&stop, true, &input), "partition 2 behind");
        // Committed past the ends (the producers wrote on after the stop); an empty partition
        // needs no commit.
        *input.committed.borrow_mut() = Some(BTreeMap::from([(0, 12), (2, 5)]));
        assert!(
            !drain.done(&stop, false, &input),
            "a batch came: it is processed first"
        );
        assert!(drain.done(&stop, true, &input));
        *input.committed.borrow_mut() = None;
        assert!(
            !drain.done(&stop, true, &input),
            "commits unreadable: not known drained"
        );
    }

    #[test]
    fn without_the_input_ends_a_stopped_pipeline_waits_for_idle_input() {
        let stop = AtomicBool::new(false);
        let input = FakeInput {
            ends: None,
            committed: Default::default(),
        };
        let mut drain = Drain::default();
        assert!(!drain.done(&stop, true, &input));
        stop.store(true, Ordering::Relaxed);
        assert!(!drain.done(&stop, true, &input), "idle just now");
        assert!(!drain.done(&stop, false, &input), "records came: not idle");
        drain.idle_since = Some(Instant::now() - Duration::from_millis(PIPELINE_DRAIN_IDLE_MS));
        assert!(drain.done(&stop, true, &input));
        let mut late = Drain {
            stopped_at: Some(Instant::now() - Duration::from_millis(PIPELINE_DRAIN_MS_MAX + 1)),
            ..Drain::default()
        };
        assert!(late.done(&stop, false, &input), "the drain is bounded");
    }

    #[test]
    fn the_restarts_give_up_once_stopped_for_the_drain_time_and_the_watcher_ends_with_the_pipeline()
    {
        let (stop, finished, give_up): (AtomicBool, AtomicBool, AtomicBool) = Default::default();
        // Never stopped: the watcher ends with the pipeline and never gives up.
        finished.store(true, Ordering::Relaxed);
        give_up_after(Duration::ZERO, &stop, &finished, &give_up);
        assert!(!give_up.load(Ordering::Relaxed));
        // Stopped, with no drain time: it gives up (waited for, bounded), then ends.
        let (stop, finished, give_up) = (AtomicBool::new(true), AtomicBool::new(false), give_up);
        std::thread::scope(|scope| {
            let watcher = scope.spawn(|| give_up_after(Duration::ZERO, &stop, &finished, &give_up));
            let mut polls = 0;
            while !give_up.load(Ordering::Relaxed) {
                polls += 1;
                assert!(polls < 1_000, "gave up only once the drain time was over");
                std::thread::sleep(Duration::from_millis(10));
            }
            finished.store(true, Ordering::Relaxed);
            watcher
                .join()
                .expect("the watcher ends when the pipeline has finished");
        });
    }
}
