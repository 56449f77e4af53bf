//! A producer application. It logs `send` invoke for each message before handing it to librdkafka,
//! and completes it from librdkafka's delivery report: `ok` with partition and offset, `fail` when
//! librdkafka says the message was definitely not persisted, `info` when it may have been.
//! `flush()` returning Ok proves nothing (it does so even when every message timed out), so acks
//! are counted from delivery reports only.

use crate::limits::{
    MESSAGE_SIZE_MAX_BYTES, MESSAGE_SIZE_MIN_BYTES, POLL_WAIT_MS, SEND_BATCH_COUNT_MAX,
};
use crate::ops::{OpSink, OpType, F};
use crate::spec::{OnFull, ProducerMode, ProducerSpec};
use crate::{message, WorkloadError};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::ClientContext;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a delivery report said about one message.
#[derive(Debug)]
pub(crate) enum Outcome {
    Acked {
        topic: String,
        partition: i32,
        offset: i64,
    },
    /// librdkafka's message status NOT_PERSISTED: it never reached a broker's log.
    Failed(String),
    /// POSSIBLY_PERSISTED (for example a timeout with a request in flight): unknown.
    Unknown(String),
}

struct Delivery {
    id: u64,
    outcome: Outcome,
}

/// Collects delivery reports; the application thread drains them after each poll.
#[derive(Default)]
pub(crate) struct Reports {
    deliveries: Mutex<Vec<Delivery>>,
    /// With acks=0 the broker names no offset: librdkafka reports `OFFSET_INVALID` (-1001) plus the
    /// message's index in its batch, which reaches 0, 1, … in batches of over 1001 messages and
    /// would pass for a position. Such reports are recorded as offset -1.
    no_positions: bool,
}

impl Reports {
    pub(crate) fn for_config(config: &std::collections::BTreeMap<String, String>) -> Reports {
        let acks = config
            .get("acks")
            .or_else(|| config.get("request.required.acks"));
        Reports {
            no_positions: acks.is_some_and(|a| a.trim() == "0"),
            ..Reports::default()
        }
    }
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, id: usize) {
        let outcome = match result {
            Ok(msg) => {
                let offset = if self.no_positions { -1 } else { msg.offset() };
                Outcome::Acked {
                    topic: msg.topic().to_string(),
                    partition: msg.partition(),
                    offset,
                }
            }
            Err((err, msg)) => {
                let name = error_name(err);
                if persisted_status(msg) == PersistStatus::NotPersisted {
                    Outcome::Failed(name)
                } else {
                    Outcome::Unknown(name)
                }
            }
        };
        if let Ok(mut d) = self.deliveries.lock() {
            d.push(Delivery {
                id: id as u64,
                outcome,
            });
        }
    }
}

#[derive(PartialEq, Eq)]
enum PersistStatus {
    NotPersisted,
    PossiblyPersisted,
    Persisted,
}

/// librdkafka's own verdict on whether a failed message may still be in the log.
#[allow(unsafe_code)]
fn persisted_status(msg: &rdkafka::message::BorrowedMessage<'_>) -> PersistStatus {
    use rdkafka::bindings::rd_kafka_msg_status_t as S;
    // SAFETY: `msg.ptr()` is the live rd_kafka_message_t that librdkafka passed to the delivery
    // callback; rd_kafka_message_status only reads its status field.
    let status = unsafe { rdkafka::bindings::rd_kafka_message_status(msg.ptr()) };
    match status {
        S::RD_KAFKA_MSG_STATUS_NOT_PERSISTED => PersistStatus::NotPersisted,
        S::RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED => PersistStatus::PossiblyPersisted,
        S::RD_KAFKA_MSG_STATUS_PERSISTED => PersistStatus::Persisted,
    }
}

/// A short error name for the history (librdkafka's code name, e.g. `MessageTimedOut`).
pub(crate) fn error_name(err: &KafkaError) -> String {
    match err.rdkafka_error_code() {
        Some(code) => format!("{code:?}"),
        None => err.to_string(),
    }
}

/// A message size within bounds: the producer's and the outbox's check before anything is sent.
pub(crate) fn check_message_size(spec: &ProducerSpec) -> Result<(), WorkloadError> {
    if !(MESSAGE_SIZE_MIN_BYTES..=MESSAGE_SIZE_MAX_BYTES).contains(&spec.message_size_bytes) {
        return Err(WorkloadError::Incomplete(format!(
            "message_size_bytes {} is outside {MESSAGE_SIZE_MIN_BYTES}..={MESSAGE_SIZE_MAX_BYTES}",
            spec.message_size_bytes
        )));
    }
    Ok(())
}

/// A producer application, synchronous or asynchronous (the `outbox` mode is
/// [`crate::outbox::run`]).
pub fn run(spec: &ProducerSpec, sink: &mut OpSink, stop: &AtomicBool) -> Result<(), WorkloadError> {
    check_message_size(spec)?;
    let producer = create_producer(spec)?;

    let started = Instant::now();
    let interval_ns = if spec.rate_per_s == 0 {
        0
    } else {
        1_000_000_000 / spec.rate_per_s
    };
    let mut sent: u64 = 0;
    let mut in_flight: u64 = 0;
    let mut batch: Vec<(u64, Vec<u8>)> = Vec::with_capacity(SEND_BATCH_COUNT_MAX);

    while !stop.load(Ordering::Relaxed) && (spec.count_max == 0 || sent < spec.count_max) {
        // How many messages the application has due now.
        let due = if interval_ns == 0 {
            SEND_BATCH_COUNT_MAX as u64
        } else {
            let elapsed_ns = started.elapsed().as_nanos() as u64;
            (elapsed_ns / interval_ns + 1).saturating_sub(sent)
        };
        let mut count = due.min(SEND_BATCH_COUNT_MAX as u64);
        if spec.mode == ProducerMode::Sync {
            count = count.min(1);
        }
        if spec.count_max > 0 {
            count = count.min(spec.count_max - sent);
        }
        if count == 0 {
            let next_due_ns =
                (sent * interval_ns).saturating_sub(started.elapsed().as_nanos() as u64);
            let wait = Duration::from_nanos(next_due_ns).min(Duration::from_millis(POLL_WAIT_MS));
            producer.poll(wait);
            in_flight = in_flight.saturating_sub(drain(&producer, sink)?);
            continue;
        }
        // Invokes are on the wire before librdkafka sees the messages.
        batch.clear();
        for _ in 0..count {
            let id = spec.id_base + sent;
            sent += 1;
            sink.op(
                OpType::Invoke,
                F::Send,
                json!({"id": id, "topic": spec.topic}),
                None,
            );
            batch.push((id, message::encode(id, spec.message_size_bytes)));
        }
        sink.flush()?;
        for (id, value) in &batch {
            send_one(&producer, spec, *id, value, sink, stop, &mut in_flight)?;
        }
        producer.poll(Duration::ZERO);
        in_flight = in_flight.saturating_sub(drain(&producer, sink)?);
        if spec.mode == ProducerMode::Sync {
            while in_flight > 0 {
                producer.poll(Duration::from_millis(POLL_WAIT_MS));
                in_flight = in_flight.saturating_sub(drain(&producer, sink)?);
            }
        }
    }

    // Stop: no new sends; wait for the reports of what is in flight (librdkafka bounds each
    // message by message.timeout.ms, and the harness bounds this process).
    while in_flight > 0 {
        producer.poll(Duration::from_millis(POLL_WAIT_MS));
        in_flight = in_flight.saturating_sub(drain(&producer, sink)?);
    }
    sink.flush()?;
    Ok(())
}

/// Hands one message to librdkafka; it is then in flight until its delivery report. A message
/// librdkafka refuses outright is logged as `fail` (it never left the process). A full queue
/// blocks the application until there is room.
fn send_one(
    producer: &BaseProducer<Reports>,
    spec: &ProducerSpec,
    id: u64,
    value: &[u8],
    sink: &mut OpSink,
    stop: &AtomicBool,
    in_flight: &mut u64,
) -> Result<(), WorkloadError> {
    let key =
        (spec.keys > 0).then(|| kaos_history::key_bytes(kaos_history::message_key(id, spec.keys)));
    loop {
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&spec.topic, id as usize).payload(value);
        if let Some(key) = &key {
            record = record.key(&key[..]);
        }
        match producer.send(record) {
            Ok(()) => {
                *in_flight += 1;
                if spec.mode == ProducerMode::Async {
                    // The application now considers the message handled: it is in the buffer.
                    sink.op(
                        OpType::Ok,
                        F::Accept,
                        json!({"id": id, "topic": spec.topic}),
                        None,
                    );
                }
                return Ok(());
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                if spec.on_full == OnFull::Drop =>
            {
                // The application's policy: give the message up rather than wait for room.
                sink.op(
                    OpType::Fail,
                    F::Send,
                    json!({"id": id, "topic": spec.topic}),
                    Some("QueueFull"),
                );
                sink.op(
                    OpType::Ok,
                    F::Drop,
                    json!({"id": id, "topic": spec.topic}),
                    Some("QUEUE_FULL"),
                );
                return Ok(());
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                if !stop.load(Ordering::Relaxed) =>
            {
                producer.poll(Duration::from_millis(POLL_WAIT_MS));
                *in_flight = in_flight.saturating_sub(drain(producer, sink)?);
            }
            Err((err, _)) => {
                sink.op(
                    OpType::Fail,
                    F::Send,
                    json!({"id": id, "topic": spec.topic}),
                    Some(&error_name(&err)),
                );
                sink.flush()?;
                return Ok(());
            }
        }
    }
}

/// A librdkafka producer with the spec's properties, collecting delivery reports.
pub(crate) fn create_producer(spec: &ProducerSpec) -> Result<BaseProducer<Reports>, WorkloadError> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &spec.bootstrap);
    for (k, v) in &spec.config {
        config.set(k, v);
    }
    config
        .create_with_context(Reports::for_config(&spec.config))
        .map_err(WorkloadError::kafka("creating the producer"))
}

/// The delivery reports collected so far, taken: (message id, outcome).
pub(crate) fn take_deliveries(
    producer: &BaseProducer<Reports>,
) -> Result<Vec<(u64, Outcome)>, WorkloadError> {
    match producer.context().deliveries.lock() {
        Ok(mut d) => Ok(std::mem::take(&mut *d)
            .into_iter()
            .map(|d| (d.id, d.outcome))
            .collect()),
        Err(_) => Err(WorkloadError::Incomplete(
            "delivery report lock poisoned".into(),
        )),
    }
}

/// Writes out the delivery reports collected so far as `send` completions, and returns them.
pub(crate) fn drain_reports(
    producer: &BaseProducer<Reports>,
    sink: &mut OpSink,
) -> Result<Vec<(u64, Outcome)>, WorkloadError> {
    let deliveries = take_deliveries(producer)?;
    let mut out = Vec::with_capacity(deliveries.len());
    for (id, outcome) in deliveries {
        let d = Delivery { id, outcome };
        match &d.outcome {
            Outcome::Acked {
                topic,
                partition,
                offset,
            } => sink.op(
                OpType::Ok,
                F::Send,
                json!({"id": d.id, "topic": topic, "partition": partition, "offset": offset}),
                None,
            ),
            Outcome::Failed(e) => sink.op(OpType::Fail, F::Send, json!({"id": d.id}), Some(e)),
            Outcome::Unknown(e) => sink.op(OpType::Info, F::Send, json!({"id": d.id}), Some(e)),
        }
        out.push((d.id, d.outcome));
    }
    sink.flush()?;
    Ok(out)
}

/// Writes out the delivery reports collected so far; returns how many messages they completed.
fn drain(producer: &BaseProducer<Reports>, sink: &mut OpSink) -> Result<u64, WorkloadError> {
    Ok(drain_reports(producer, sink)?.len() as u64)
}

#[cfg(test)]
mod reports_tests {
    use super::*;

    #[test]
    fn acks_zero_reports_carry_no_position() {
        let config = |k: &str, v: &str| [(k.to_string(), v.to_string())].into_iter().collect();
        assert!(Reports::for_config(&config("acks", "0")).no_positions);
        assert!(Reports::for_config(&config("request.required.acks", "0")).no_positions);
        assert!(!Reports::for_config(&config("acks", "1")).no_positions);
        assert!(!Reports::for_config(&config("acks", "all")).no_positions);
        assert!(!Reports::for_config(&Default::default()).no_positions);
    }
}
