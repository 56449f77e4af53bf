//! A transactional producer application (KIP-98), Jepsen-style: each transaction sends
//! `transaction.sends` messages spread over the topic's partitions (and, with `transaction.polls`,
//! polls the topic once with a read_committed consumer), then commits — or aborts, when the seed
//! says so. Each transaction is one `txn` op (`docs/history.md`): its invoke lists the planned
//! micro-ops, its completion the micro-ops as they happened (sends with the offsets their delivery
//! reports gave, the poll's records): `ok` committed, `fail` definitely not committed (aborted by
//! choice, after an abortable error, or fenced), `info` unknown (a commit that timed out or failed
//! fatally). After a fatal error or an unknown outcome the application builds a new producer with
//! the same `transactional.id`, whose `init_transactions` finishes or aborts what the old one left
//! open. Fenced (a newer instance initialised the same `transactional.id`), it stops: another
//! instance has taken over. `transaction.init_delay_ms` makes a successor that starts later.

use crate::consumer::{self, partitions_of, Events, KaosConsumer};
use crate::limits::{
    POLL_BATCH_RECORDS_MAX, POLL_WAIT_MS, SEND_BATCH_COUNT_MAX, TXN_COMMIT_ATTEMPTS_MAX,
    TXN_TIMEOUT_MS,
};
use crate::ops::{OpSink, OpType, F};
use crate::producer::{check_message_size, create_producer, error_name, take_deliveries};
use crate::producer::{Outcome, Reports};
use crate::spec::ProducerSpec;
use crate::{message, WorkloadError};
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub(crate) type TxnProducer = BaseProducer<Reports>;

/// How a transaction ended, as the history records it.
pub(crate) struct Ending {
    pub(crate) kind: OpType,
    pub(crate) error: Option<String>,
    /// The producer cannot go on (fatal, or its transaction's state unknown): a new one is built.
    pub(crate) rebuild: bool,
    /// A newer producer with the same transactional.id exists: this application stops, as Kafka's
    /// documentation says a fenced producer must (another instance has taken over).
    pub(crate) fenced: bool,
}

impl Ending {
    pub(crate) fn new(kind: OpType, error: Option<String>, rebuild: bool) -> Ending {
        Ending {
            kind,
            error,
            rebuild,
            fenced: false,
        }
    }

    pub(crate) fn fenced(error: String) -> Ending {
        Ending {
            kind: OpType::Fail,
            error: Some(error),
            rebuild: false,
            fenced: true,
        }
    }
}

/// The transactional producer: transactions until told to stop (or `count_max` messages).
pub fn run(spec: &ProducerSpec, sink: &mut OpSink, stop: &AtomicBool) -> Result<(), WorkloadError> {
    check_message_size(spec)?;
    spec.transaction
        .validate()
        .map_err(WorkloadError::Incomplete)?;
    if !spec.config.contains_key("transactional.id") {
        return Err(WorkloadError::Incomplete(
            "a transactional producer needs a transactional.id in its config".into(),
        ));
    }
    sleep_unless_stopped(spec.transaction.init_delay_ms, stop);
    let mut producer = start_producer(spec, stop)?;
    let partitions = partitions_of(producer.client(), &spec.topic, stop)?;
    let reader = match spec.transaction.polls {
        true => Some(reader(spec, &partitions)?),
        false => None,
    };
    let started = Instant::now();
    let mut sent: u64 = 0;
    while !stop.load(Ordering::Relaxed) && (spec.count_max == 0 || sent < spec.count_max) {
        pace(spec, started, sent);
        let mut count = u64::from(spec.transaction.sends);
        if spec.count_max > 0 {
            count = count.min(spec.count_max - sent);
        }
        let first = spec.id_base + sent;
        sent += count;
        let plan: Vec<(u64, i32)> = (first..first + count)
            .map(|id| (id, partition_for(spec.seed, id, &partitions)))
            .collect();
        let commit =
            message::seeded_unit(spec.seed ^ 0x7458_6e00, first) >= spec.transaction.abort_fraction;
        let ending = transaction(&producer, spec, &plan, commit, reader.as_ref(), sink)?;
        if ending.fenced {
            eprintln!(
                "fenced ({}): a newer producer has this transactional.id; stopping",
                ending.error.as_deref().unwrap_or("")
            );
            break;
        }
        if ending.rebuild && !stop.load(Ordering::Relaxed) {
            drop(producer);
            producer = start_producer(spec, stop)?;
        }
    }
    sink.flush()?;
    Ok(())
}

/// Sleeps `ms` milliseconds, in short steps, unless told to stop.
fn sleep_unless_stopped(ms: u64, stop: &AtomicBool) {
    let until = Instant::now() + Duration::from_millis(ms);
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(POLL_WAIT_MS));
    }
}

/// Waits until the next transaction is due at `rate_per_s` messages per second (0: at once).
fn pace(spec: &ProducerSpec, started: Instant, sent: u64) {
    if spec.rate_per_s == 0 {
        return;
    }
    let due = Duration::from_nanos(sent.saturating_mul(1_000_000_000) / spec.rate_per_s);
    if let Some(wait) = due.checked_sub(started.elapsed()) {
        std::thread::sleep(wait);
    }
}

/// The partition message `id` goes to, drawn from the seed.
fn partition_for(seed: u64, id: u64, partitions: &[i32]) -> i32 {
    let at = (message::seeded_unit(seed, id) * partitions.len() as f64) as usize;
    partitions[at.min(partitions.len() - 1)]
}

/// A producer whose `init_transactions` succeeded (fencing any earlier one with the same id and
/// finishing its open transaction), retried until it does or the client is told to stop.
pub(crate) fn start_producer(
    spec: &ProducerSpec,
    stop: &AtomicBool,
) -> Result<TxnProducer, WorkloadError> {
    loop {
        let producer = create_producer(spec)?;
        match producer.init_transactions(Duration::from_millis(TXN_TIMEOUT_MS)) {
            Ok(()) => return Ok(producer),
            Err(e) if !stop.load(Ordering::Relaxed) => {
                eprintln!("init_transactions: {e}; trying again with a new producer");
                std::thread::sleep(Duration::from_millis(POLL_WAIT_MS * 5));
            }
            Err(e) => return Err(WorkloadError::kafka("init_transactions")(e)),
        }
    }
}

/// The read_committed consumer of a producer whose transactions also poll: every partition
/// from the beginning, in a group of its own that commits nothing.
fn reader(spec: &ProducerSpec, partitions: &[i32]) -> Result<KaosConsumer, WorkloadError> {
    let mut properties = BTreeMap::new();
    properties.insert("isolation.level".to_owned(), "read_committed".to_owned());
    let consumer = consumer::create(
        &spec.bootstrap,
        &properties,
        false,
        Events::new(&spec.topic, &properties, false, false),
    )?;
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition_offset(&spec.topic, p, Offset::Beginning)
            .map_err(WorkloadError::kafka("building the assignment"))?;
    }
    consumer
        .assign(&tpl)
        .map_err(WorkloadError::kafka("assigning partitions"))?;
    Ok(consumer)
}

/// One transaction, from its invoke to its completion.
fn transaction(
    producer: &TxnProducer,
    spec: &ProducerSpec,
    plan: &[(u64, i32)],
    commit: bool,
    reader: Option<&KaosConsumer>,
    sink: &mut OpSink,
) -> Result<Ending, WorkloadError> {
    let mut mops: Vec<Value> = plan
        .iter()
        .map(|&(id, p)| json!({"f": "send", "id": id, "topic": spec.topic, "partition": p}))
        .collect();
    if reader.is_some() {
        mops.push(json!({"f": "poll"}));
    }
    invoke(sink, commit, &mops)?;
    let ending = match producer.begin_transaction() {
        Ok(()) => {
            let refused = send_all(producer, spec, plan);
            if let Some(reader) = reader {
                let records = poll_records(reader);
                if let Some(poll) = mops.last_mut() {
                    poll["records"] = Value::Array(records);
                }
            }
            match refused {
                Some(e) => abort(producer, Some(e)),
                None if commit => commit_transaction(producer),
                None => abort(producer, None),
            }
        }
        // Nothing was sent: the transaction did not happen.
        Err(KafkaError::Transaction(rd)) if fenced(rd.code()) => {
            Ending::fenced(error_name(&KafkaError::Transaction(rd)))
        }
        Err(e) => Ending::new(OpType::Fail, Some(error_name(&e)), true),
    };
    let sends = plan.len().min(mops.len());
    record_deliveries(producer, &mut mops[..sends])?;
    sink.op(
        ending.kind,
        F::Txn,
        json!({"commit": commit, "mops": mops}),
        ending.error.as_deref(),
    );
    sink.flush()?;
    Ok(ending)
}

/// The `invoke` of a transaction op (its micro-ops `mops`, whether the seed commits it), written
/// through before the transaction begins.
pub(crate) fn invoke(
    sink: &mut OpSink,
    commit: bool,
    mops: &[serde_json::Value],
) -> std::io::Result<()> {
    sink.op(
        OpType::Invoke,
        F::Txn,
        json!({"commit": commit, "mops": mops}),
        None,
    );
    sink.flush()
}

/// Writes into each `send` micro-op the partition and offset its delivery report gave, taking
/// the reports collected so far.
pub(crate) fn record_deliveries(
    producer: &TxnProducer,
    sends: &mut [Value],
) -> Result<(), WorkloadError> {
    let delivered: BTreeMap<u64, Outcome> = take_deliveries(producer)?.into_iter().collect();
    for mop in sends {
        let id = mop["id"].as_u64().unwrap_or(u64::MAX);
        if let Some(Outcome::Acked {
            partition, offset, ..
        }) = delivered.get(&id)
        {
            mop["partition"] = json!(partition);
            mop["offset"] = json!(offset);
        }
    }
    Ok(())
}

/// Hands every message of the transaction to librdkafka (waiting for room when its queue is
/// full); the first error it refuses one with, if any.
pub(crate) fn send_all(
    producer: &TxnProducer,
    spec: &ProducerSpec,
    plan: &[(u64, i32)],
) -> Option<String> {
    for (k, &(id, partition)) in plan.iter().enumerate() {
        let value = message::encode(id, spec.message_size_bytes);
        loop {
            let record: BaseRecord<'_, (), [u8], usize> =
                BaseRecord::with_opaque_to(&spec.topic, id as usize)
                    .partition(partition)
                    .payload(&value);
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(POLL_WAIT_MS));
                }
                Err((e, _)) => return Some(error_name(&e)),
            }
        }
        if k % SEND_BATCH_COUNT_MAX == SEND_BATCH_COUNT_MAX - 1 {
            producer.poll(Duration::ZERO);
        }
    }
    None
}

/// One poll of the transaction's consumer: what is there within `POLL_WAIT_MS`, as records.
fn poll_records(reader: &KaosConsumer) -> Vec<Value> {
    let mut records = Vec::new();
    let mut wait = Duration::from_millis(POLL_WAIT_MS);
    while records.len() < POLL_BATCH_RECORDS_MAX {
        match reader.poll(wait) {
            Some(Ok(m)) => records.push(consumer::record_json(reader, &m)),
            Some(Err(e)) => {
                eprintln!("transaction poll: {e}");
                break;
            }
            None => break,
        }
        wait = Duration::ZERO;
    }
    records
}

/// commit_transaction, again while it times out (librdkafka's retriable error), aborting after an
/// abortable one. Fenced: not committed (the coordinator refused the commit; the new producer's
/// InitProducerId aborts it). Any other fatal error or a commit still timing out: unknown.
pub(crate) fn commit_transaction(producer: &TxnProducer) -> Ending {
    let mut last = String::new();
    for _ in 0..TXN_COMMIT_ATTEMPTS_MAX {
        let error = match producer.commit_transaction(Duration::from_millis(TXN_TIMEOUT_MS)) {
            Ok(()) => return Ending::new(OpType::Ok, None, false),
            Err(e) => e,
        };
        last = error_name(&error);
        let KafkaError::Transaction(rd) = &error else {
            return Ending::new(OpType::Info, Some(last), true);
        };
        if fenced(rd.code()) {
            return Ending::fenced(last);
        }
        if rd.txn_requires_abort() {
            return abort(producer, Some(last));
        }
        if rd.is_fatal() || !rd.is_retriable() {
            return Ending::new(OpType::Info, Some(last), true);
        }
    }
    Ending::new(OpType::Info, Some(last), true)
}

/// abort_transaction: `fail` once it is done (with `cause` when an error forced it, else
/// "aborted"), `info` when even the abort could not be completed.
pub(crate) fn abort(producer: &TxnProducer, cause: Option<String>) -> Ending {
    let error = cause.unwrap_or_else(|| "aborted".to_owned());
    // abort_transaction waits until every message of the transaction has had its delivery report
    // served, which a BaseProducer does only when polled: flush first (the records reach the log,
    // where the abort marker then closes them, as an application's aborted writes do).
    let _ = producer.flush(Duration::from_millis(TXN_TIMEOUT_MS));
    match producer.abort_transaction(Duration::from_millis(TXN_TIMEOUT_MS)) {
        Ok(()) => Ending::new(OpType::Fail, Some(error), false),
        Err(KafkaError::Transaction(rd)) if fenced(rd.code()) => Ending::fenced(format!(
            "{error}; abort: {}",
            error_name(&KafkaError::Transaction(rd))
        )),
        Err(e) => Ending::new(
            OpType::Info,
            Some(format!("{error}; abort: {}", error_name(&e))),
            true,
        ),
    }
}

/// A newer producer with the same transactional.id exists: this one's epoch is dead.
pub(crate) fn fenced(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
            | RDKafkaErrorCode::Fenced
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_spread_and_repeat_with_the_seed() {
        let partitions = [0, 1, 2];
        let drawn: Vec<i32> = (0..300)
            .map(|id| partition_for(7, id, &partitions))
            .collect();
        for p in partitions {
            assert!(drawn.iter().filter(|&&d| d == p).count() > 50, "{drawn:?}");
        }
        let again: Vec<i32> = (0..300)
            .map(|id| partition_for(7, id, &partitions))
            .collect();
        assert_eq!(drawn, again);
        assert_eq!(partition_for(1, 5, &[4]), 4);
    }
}
