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
//! Told to stop, it goes on until the input has been idle for `PIPELINE_DRAIN_IDLE_MS` (at most
//! `PIPELINE_DRAIN_MS_MAX`), so that what the producers wrote is through the pipeline before the
//! final read.

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
use std::time::{Duration, Instant};

/// Runs the pipeline until told to stop and the input has gone idle.
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
    if !started(consumer::join(&consumer, spec, true, sink, stop), stop)? {
        return Ok(sink.flush()?);
    }
    let output = output_spec(spec, pipeline);
    let mut drain = Drain::default();
    if pipeline.transactional {
        let abort_fraction = pipeline.abort_fraction;
        exactly_once(
            &consumer,
            spec,
            &output,
            abort_fraction,
            sink,
            stop,
            &mut drain,
        )
    } else {
        at_least_once(&consumer, spec, &output, sink, stop, &mut drain)
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

/// When a stopping pipeline is done: the input idle for `PIPELINE_DRAIN_IDLE_MS`, or
/// `PIPELINE_DRAIN_MS_MAX` after the stop.
#[derive(Default)]
struct Drain {
    stopped_at: Option<Instant>,
    idle_since: Option<Instant>,
}

impl Drain {
    fn done(&mut self, stop: &AtomicBool, batch_empty: bool) -> bool {
        if !stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        let stopped_at = *self.stopped_at.get_or_insert(now);
        if now.duration_since(stopped_at) > Duration::from_millis(PIPELINE_DRAIN_MS_MAX) {
            return true;
        }
        if !batch_empty {
            self.idle_since = None;
            return false;
        }
        let idle_since = *self.idle_since.get_or_insert(now);
        now.duration_since(idle_since) >= Duration::from_millis(PIPELINE_DRAIN_IDLE_MS)
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
    consumer: &KaosConsumer,
    spec: &ConsumerSpec,
    output: &ProducerSpec,
    abort_fraction: f64,
    sink: &mut OpSink,
    stop: &AtomicBool,
    drain: &mut Drain,
) -> Result<(), WorkloadError> {
    let Some(mut producer) = started_with(txn::start_producer(output, stop), stop)? else {
        return Ok(sink.flush()?);
    };
    let mut transactions: u64 = 0;
    loop {
        let (batch, records) = take_batch(consumer, sink)?;
        if drain.done(stop, batch.is_empty()) {
            break;
        }
        if batch.is_empty() {
            continue;
        }
        transactions += 1;
        let commit = message::seeded_unit(spec.seed ^ 0x7069_7065, transactions) >= abort_fraction;
        let batch = Batch {
            records: &batch,
            json: records,
            commit,
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
            match started_with(txn::start_producer(output, stop), stop)? {
                Some(p) => producer = p,
                None => break,
            }
        }
        // What was polled and not committed is read again from the group's committed offsets.
        if !started(consumer::join(consumer, spec, true, sink, stop), stop)? {
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
                records.push(consumer::record_json(&m));
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
}

/// One transaction: the batch's outputs, its input offsets, the commit (or an abort by choice);
/// the `txn` op around it and, committed, the `offset_commit` ops of the input offsets.
fn transaction(
    producer: &TxnProducer,
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
            None => match send_offsets(producer, consumer, &spec.topic, &offsets) {
                Ok(()) if commit => txn::commit_transaction(producer),
                Ok(()) => txn::abort(producer, None),
                Err(KafkaError::Transaction(rd)) if txn::fenced(rd.code()) => {
                    Ending::fenced(error_name(&KafkaError::Transaction(rd)))
                }
                Err(KafkaError::Transaction(rd)) if rd.txn_requires_abort() => {
                    txn::abort(producer, Some(error_name(&KafkaError::Transaction(rd))))
                }
                // No EndTxn(commit) was sent: the coordinator can only abort it (the next
                // producer's init_transactions does).
                Err(e) => Ending::new(OpType::Fail, Some(error_name(&e)), true),
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

/// `send_offsets_to_transaction` of the input offsets, with the consumer's group metadata.
fn send_offsets(
    producer: &TxnProducer,
    consumer: &KaosConsumer,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
) -> Result<(), KafkaError> {
    let mut tpl = TopicPartitionList::new();
    for (&p, &o) in offsets {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))?;
    }
    // (librdkafka gives every consumer with a group.id its group metadata.)
    let metadata = consumer.group_metadata().ok_or(KafkaError::OffsetFetch(
        rdkafka::types::RDKafkaErrorCode::InvalidGroupId,
    ))?;
    producer.send_offsets_to_transaction(&tpl, &metadata, Duration::from_millis(TXN_TIMEOUT_MS))
}

/// At least once: produce the batch's outputs, wait for every delivery, then commit.
fn at_least_once(
    consumer: &KaosConsumer,
    spec: &ConsumerSpec,
    output: &ProducerSpec,
    sink: &mut OpSink,
    stop: &AtomicBool,
    drain: &mut Drain,
) -> Result<(), WorkloadError> {
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
        if drain.done(stop, batch.is_empty()) {
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
            if !started(consumer::join(consumer, spec, true, sink, stop), stop)? {
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

    #[test]
    fn a_running_pipeline_is_never_done_and_a_stopped_one_waits_for_idle_input() {
        let stop = AtomicBool::new(false);
        let mut drain = Drain::default();
        assert!(!drain.done(&stop, true));
        stop.store(true, Ordering::Relaxed);
        assert!(!drain.done(&stop, true), "idle just now");
        assert!(!drain.done(&stop, false), "records came: not idle");
        drain.idle_since = Some(Instant::now() - Duration::from_millis(PIPELINE_DRAIN_IDLE_MS));
        assert!(drain.done(&stop, true));
        let mut late = Drain {
            stopped_at: Some(Instant::now() - Duration::from_millis(PIPELINE_DRAIN_MS_MAX + 1)),
            idle_since: None,
        };
        assert!(late.done(&stop, false), "the drain is bounded");
    }
}
