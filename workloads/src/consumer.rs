//! A consumer: assigns every partition of the topic (from the beginning, or from the group's
//! committed offsets when it processes), or joins its group with `subscribe()`, and logs what each
//! poll returns as one `poll` op (the records with topic, partition, offset, message id and the
//! partition's high watermark as the client knew it when it received each record).
//! Group events librdkafka reports through callbacks (rebalances, commits) become ops too, in the
//! order they happened relative to the records.

use crate::limits::{
    METADATA_ATTEMPTS_MAX, METADATA_TIMEOUT_MS, POLL_BATCH_RECORDS_MAX, POLL_WAIT_MS,
};
use crate::ops::{OpSink, OpType, F};
use crate::producer::error_name;
use crate::spec::ConsumerSpec;
use crate::{message, WorkloadError};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

pub type KaosConsumer = BaseConsumer<Events>;

/// A plain consumer (a spec with `processing` is run by [`crate::processing::run`]).
pub fn run(spec: &ConsumerSpec, sink: &mut OpSink, stop: &AtomicBool) -> Result<(), WorkloadError> {
    let consumer = create(
        &spec.bootstrap,
        &spec.config,
        false,
        Events::new(&spec.topic, &spec.config, false, false),
    )?;
    join(&consumer, spec, false, sink, stop)?;
    while !stop.load(Ordering::Relaxed) {
        poll_batch(&consumer, sink, |_| {})?;
    }
    Ok(())
}

/// Joins the group (`subscribe`) or assigns every partition: from the beginning, or from the
/// group's committed offsets when `from_committed` (falling back to `auto.offset.reset`).
pub(crate) fn join(
    consumer: &KaosConsumer,
    spec: &ConsumerSpec,
    from_committed: bool,
    sink: &mut OpSink,
    stop: &AtomicBool,
) -> Result<(), WorkloadError> {
    let group = consumer.context().group.clone();
    if spec.subscribe {
        let value = json!({"topic": spec.topic, "group": group});
        sink.op(OpType::Invoke, F::Subscribe, value.clone(), None);
        sink.flush()?;
        consumer
            .subscribe(&[&spec.topic])
            .map_err(WorkloadError::kafka("subscribing"))?;
        // Owning nothing until the first rebalance assigns partitions.
        sink.op(
            OpType::Ok,
            F::Subscribe,
            json!({"topic": spec.topic, "group": group, "partitions": []}),
            None,
        );
        return Ok(sink.flush()?);
    }
    let partitions = partitions_of(consumer.client(), &spec.topic, stop)?;
    let start = if from_committed {
        Offset::Stored
    } else {
        Offset::Beginning
    };
    let mut tpl = TopicPartitionList::new();
    for &p in &partitions {
        tpl.add_partition_offset(&spec.topic, p, start)
            .map_err(WorkloadError::kafka("building the assignment"))?;
    }
    let value = json!({"topic": spec.topic, "partitions": partitions, "group": group});
    sink.op(OpType::Invoke, F::Assign, value.clone(), None);
    sink.flush()?;
    consumer
        .assign(&tpl)
        .map_err(WorkloadError::kafka("assigning partitions"))?;
    sink.op(OpType::Ok, F::Assign, value, None);
    if from_committed {
        // Where reading starts: the group's committed offsets, which the history may not hold
        // (a commit the killed predecessor made but could not report before it died).
        let committed = consumer.committed_offsets(tpl, Duration::from_millis(METADATA_TIMEOUT_MS));
        consumer.context().starting_points(committed);
        consumer.context().drain(sink);
    }
    Ok(sink.flush()?)
}

/// A librdkafka consumer with the caller's properties over kaos's defaults. librdkafka needs a
/// `group.id` even for manual assignment; without one from the caller, the consumer gets a group of
/// its own and commits nothing unless the caller says otherwise.
pub(crate) fn create(
    bootstrap: &str,
    properties: &BTreeMap<String, String>,
    partition_eof: bool,
    events: Events,
) -> Result<KaosConsumer, WorkloadError> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config.set("group.id", &events.group);
    if !properties.contains_key("group.id") {
        config.set("enable.auto.commit", "false");
    }
    config.set(
        "enable.partition.eof",
        if partition_eof { "true" } else { "false" },
    );
    for (k, v) in properties {
        config.set(k, v);
    }
    config
        .create_with_context(events)
        .map_err(WorkloadError::kafka("creating the consumer"))
}

/// An op a librdkafka callback produced, waiting to be written in order with the records.
struct PendingOp {
    kind: OpType,
    f: F,
    value: Value,
    error: Option<String>,
}

/// A topic's name for librdkafka and the highest high watermark seen per partition.
struct TopicMarks {
    name: CString,
    highest: HashMap<i32, i64>,
}

/// The consumer's context: collects rebalances and (when `report_commits`) the commits librdkafka
/// makes on its own (auto commit), as ops for the poll loop to write.
pub struct Events {
    pub group: String,
    topic: String,
    report_commits: bool,
    /// After each assignment, report where reading starts (`seek` ops from the committed offsets).
    report_starts: bool,
    pending: Mutex<Vec<PendingOp>>,
    /// Per topic (its name for librdkafka) and partition: the highest high watermark read from
    /// librdkafka's cache so far ([`Events::high_watermark`]).
    high_watermarks: Mutex<HashMap<String, TopicMarks>>,
}

impl Events {
    /// `processing`: the consumer commits (report the starting points after each assignment);
    /// `report_commits`: report librdkafka's own (automatic) commits.
    pub(crate) fn new(
        topic: &str,
        properties: &BTreeMap<String, String>,
        processing: bool,
        report_commits: bool,
    ) -> Events {
        let group = properties
            .get("group.id")
            .cloned()
            .unwrap_or_else(|| format!("kaos-assign-{}", std::process::id()));
        Events {
            group,
            topic: topic.to_string(),
            report_commits,
            report_starts: processing,
            pending: Mutex::new(Vec::new()),
            high_watermarks: Mutex::new(HashMap::new()),
        }
    }

    /// The partition's high watermark as this client knows it: librdkafka caches the one of each
    /// Fetch response it handles (`rd_kafka_get_watermark_offsets`, no request; the `rdkafka`
    /// crate's `fetch_watermarks` asks the broker instead), so when poll() has just returned a
    /// record it is the HW of the response that carried the record, or of a later response
    /// for the partition (librdkafka fetches ahead of the application). A later response's HW
    /// is not lower unless the HW went back (a new leader whose HW lags its predecessor's, a
    /// deposed leader's late answer), so this returns the highest value this process has read
    /// for the partition; an error's `-1` and a partition not fetched yet give `None`.
    #[allow(unsafe_code)]
    pub(crate) fn high_watermark(
        &self,
        consumer: &KaosConsumer,
        topic: &str,
        partition: i32,
    ) -> Option<i64> {
        let mut known = self
            .high_watermarks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !known.contains_key(topic) {
            let name = CString::new(topic).ok()?;
            known.insert(
                topic.to_owned(),
                TopicMarks {
                    name,
                    highest: HashMap::new(),
                },
            );
        }
        let marks = known.get_mut(topic)?;
        let (mut low, mut high) = (-1i64, -1i64);
        // SAFETY: the client pointer is live while `consumer` is borrowed, `name` is a NUL-terminated
        // string that outlives the call, and `low`/`high` are valid for writes; the function only
        // reads the partition's cached offsets under its lock.
        let err = unsafe {
            rdkafka::bindings::rd_kafka_get_watermark_offsets(
                consumer.client().native_ptr(),
                marks.name.as_ptr(),
                partition,
                &mut low,
                &mut high,
            )
        };
        let seen = marks.highest.entry(partition).or_insert(-1);
        if err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 {
            *seen = (*seen).max(high);
        }
        (*seen >= 0).then_some(*seen)
    }

    fn push(&self, kind: OpType, f: F, value: Value, error: Option<String>) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(PendingOp {
                kind,
                f,
                value,
                error,
            });
    }

    /// `seek` ops for the partitions with a committed offset: the consumer's next read of each is
    /// there. A failed lookup is an `info` (the starting points are then unknown to the checker).
    fn starting_points(&self, committed: KafkaResult<TopicPartitionList>) {
        match committed {
            Ok(tpl) => {
                for e in tpl.elements() {
                    if let Offset::Offset(offset) = e.offset() {
                        self.push(OpType::Ok, F::Seek, json!({"topic": e.topic(), "partition": e.partition(), "offset": offset}), None);
                    }
                }
            }
            Err(e) => self.push(
                OpType::Info,
                F::Seek,
                json!({"topic": self.topic}),
                Some(error_name(&e)),
            ),
        }
    }

    fn has_pending(&self) -> bool {
        !self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Writes the ops the callbacks produced so far.
    pub(crate) fn drain(&self, sink: &mut OpSink) {
        let ops = std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        for op in ops {
            sink.op(op.kind, op.f, op.value, op.error.as_deref());
        }
    }

    /// One `offset_commit` op per partition of a commit: ok with the committed offset, or fail.
    pub(crate) fn commit_ops(
        &self,
        result: &KafkaResult<()>,
        offsets: &TopicPartitionList,
        sink: Option<&mut OpSink>,
    ) {
        let mut ops = Vec::new();
        for e in offsets.elements() {
            let Offset::Offset(offset) = e.offset() else {
                continue;
            };
            let value = json!({"group": self.group, "topic": e.topic(), "partition": e.partition(), "offset": offset});
            let failure = match (result, e.error()) {
                (Err(err), _) => Some(error_name(err)),
                (Ok(()), Err(err)) => Some(error_name(&err)),
                (Ok(()), Ok(())) => None,
            };
            let kind = if failure.is_some() {
                OpType::Fail
            } else {
                OpType::Ok
            };
            ops.push(PendingOp {
                kind,
                f: F::OffsetCommit,
                value,
                error: failure,
            });
        }
        match sink {
            Some(sink) => ops
                .into_iter()
                .for_each(|op| sink.op(op.kind, op.f, op.value, op.error.as_deref())),
            None => self
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(ops),
        }
    }
}

impl ClientContext for Events {}

impl ConsumerContext for Events {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let owned = |tpl: &TopicPartitionList| -> Vec<i32> {
            let mut p: Vec<i32> = tpl
                .elements()
                .iter()
                .filter(|e| e.topic() == self.topic)
                .map(|e| e.partition())
                .collect();
            p.sort_unstable();
            p
        };
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.push(
                    OpType::Ok,
                    F::Rebalance,
                    json!({"group": self.group, "topic": self.topic, "partitions": owned(tpl)}),
                    None,
                );
                if self.report_starts {
                    self.starting_points(consumer.committed_offsets(
                        (*tpl).clone(),
                        Duration::from_millis(METADATA_TIMEOUT_MS),
                    ));
                }
            }
            // Eager rebalancing: a revocation takes every partition away.
            Rebalance::Revoke(_) => self.push(
                OpType::Ok,
                F::Rebalance,
                json!({"group": self.group, "topic": self.topic, "partitions": []}),
                None,
            ),
            Rebalance::Error(e) => self.push(
                OpType::Info,
                F::Rebalance,
                json!({"group": self.group, "topic": self.topic}),
                Some(e.to_string()),
            ),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if self.report_commits {
            // librdkafka calls back with _NO_OFFSET when there was nothing new to commit.
            if matches!(&result, Err(e) if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::NoOffset))
            {
                return;
            }
            self.commit_ops(&result, offsets, None);
        }
    }
}

/// The partition ids of `topic`, asking the cluster until it answers (bounded).
pub(crate) fn partitions_of<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    stop: &AtomicBool,
) -> Result<Vec<i32>, WorkloadError> {
    lookup_partitions(client, topic, stop).map_err(|e| e.into_error(topic))
}

/// Why [`lookup_partitions`] found no partitions.
#[derive(Debug)]
pub(crate) struct NoPartitions {
    /// The last answer or error.
    pub last_error: String,
    /// Every one of the `METADATA_ATTEMPTS_MAX` attempts was answered by a broker, and every
    /// answer said the topic does not exist (its error, or the topic absent from the answer).
    pub unknown_every_time: bool,
}

impl NoPartitions {
    pub(crate) fn into_error(self, topic: &str) -> WorkloadError {
        WorkloadError::Incomplete(format!(
            "no metadata for topic {topic}: {}",
            self.last_error
        ))
    }
}

/// The topic's partitions from Metadata, retried (bounded) while the topic is unknown or the
/// brokers do not answer.
pub(crate) fn lookup_partitions<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    stop: &AtomicBool,
) -> Result<Vec<i32>, NoPartitions> {
    let mut last_error = String::from("no answer");
    let mut unknown_answers = 0;
    for _ in 0..METADATA_ATTEMPTS_MAX {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match client.fetch_metadata(Some(topic), Duration::from_millis(METADATA_TIMEOUT_MS)) {
            Ok(md) => {
                let found = md.topics().iter().find(|t| t.name() == topic);
                match found.map(|t| (t, t.error().map(RDKafkaErrorCode::from))) {
                    Some((t, None)) if !t.partitions().is_empty() => {
                        let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
                        ids.sort_unstable();
                        return Ok(ids);
                    }
                    Some((_, Some(RDKafkaErrorCode::UnknownTopicOrPartition))) => {
                        unknown_answers += 1;
                        last_error = "UNKNOWN_TOPIC_OR_PARTITION".to_owned();
                    }
                    Some((_, error)) => last_error = format!("topic {topic}: {error:?}"),
                    None => {
                        unknown_answers += 1;
                        last_error = format!("topic {topic} not in metadata");
                    }
                }
            }
            Err(e) => last_error = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(POLL_WAIT_MS * 5));
    }
    Err(NoPartitions {
        last_error,
        unknown_every_time: unknown_answers == METADATA_ATTEMPTS_MAX,
    })
}

/// A record one poll returned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    pub partition: i32,
    pub offset: i64,
    pub id: Option<u64>,
}

/// One poll op: waits up to `POLL_WAIT_MS` for a first record, then takes what is already
/// there, up to `POLL_BATCH_RECORDS_MAX`. `on_record` sees each record; partition EOF events are
/// passed with `offset = -1`. Ops from callbacks (rebalances, commits) are written where they
/// happened: the records read before them first.
pub(crate) fn poll_batch(
    consumer: &KaosConsumer,
    sink: &mut OpSink,
    mut on_record: impl FnMut(Record),
) -> Result<(), WorkloadError> {
    let mut records: Vec<Value> = Vec::new();
    let mut wait = Duration::from_millis(POLL_WAIT_MS);
    let events = consumer.context();
    while records.len() < POLL_BATCH_RECORDS_MAX {
        let polled = consumer.poll(wait);
        if events.has_pending() {
            emit(sink, std::mem::take(&mut records))?;
            events.drain(sink);
        }
        match polled {
            None => break,
            Some(Ok(m)) => {
                let id = m.payload().and_then(message::decode);
                on_record(Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    id,
                });
                records.push(record_json(consumer, &m));
            }
            Some(Err(KafkaError::PartitionEOF(p))) => on_record(Record {
                partition: p,
                offset: -1,
                id: None,
            }),
            Some(Err(e)) => {
                // Flush what this poll already read, then log the error as its own failed poll.
                emit(sink, std::mem::take(&mut records))?;
                sink.op(OpType::Invoke, F::Poll, Value::Null, None);
                sink.op(OpType::Fail, F::Poll, Value::Null, Some(&error_name(&e)));
                sink.flush()?;
                break;
            }
        }
        wait = Duration::ZERO;
    }
    emit(sink, records)?;
    Ok(sink.flush()?)
}

/// A record as a poll op lists it: topic, partition, offset, message id and the partition's high
/// watermark as `consumer` knew it on receiving the record (read right after poll() returned it).
pub(crate) fn record_json(
    consumer: &KaosConsumer,
    m: &rdkafka::message::BorrowedMessage<'_>,
) -> Value {
    let id = m.payload().and_then(message::decode);
    let high_watermark = consumer
        .context()
        .high_watermark(consumer, m.topic(), m.partition());
    kaos_history::record::poll_record(m.topic(), m.partition(), m.offset(), id, high_watermark)
}

fn emit(sink: &mut OpSink, records: Vec<Value>) -> Result<(), WorkloadError> {
    if records.is_empty() {
        return Ok(());
    }
    sink.op(OpType::Invoke, F::Poll, Value::Null, None);
    sink.op(OpType::Ok, F::Poll, json!({ "records": records }), None);
    sink.flush()?;
    Ok(())
}
