//! A consumer application: assigns every partition of the topic from the beginning and logs what
//! each poll returns as one `poll` op (the records with topic, partition, offset and message id).

use crate::limits::{METADATA_ATTEMPTS_MAX, METADATA_TIMEOUT_MS, POLL_BATCH_RECORDS_MAX, POLL_WAIT_MS};
use crate::ops::OpSink;
use crate::producer::error_name;
use crate::spec::ConsumerSpec;
use crate::{message, WorkloadError};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub fn run(spec: &ConsumerSpec, sink: &mut OpSink, stop: &AtomicBool) -> Result<(), WorkloadError> {
    let consumer = create(&spec.bootstrap, &spec.config, false)?;
    let partitions = partitions_of(&consumer, &spec.topic, stop)?;
    let mut tpl = TopicPartitionList::new();
    for &p in &partitions {
        tpl.add_partition_offset(&spec.topic, p, Offset::Beginning)
            .map_err(WorkloadError::kafka("building the assignment"))?;
    }
    sink.op("invoke", "assign", json!({"topic": spec.topic, "partitions": partitions}), None);
    sink.flush()?;
    consumer.assign(&tpl).map_err(WorkloadError::kafka("assigning partitions"))?;
    sink.op("ok", "assign", json!({"topic": spec.topic, "partitions": partitions}), None);
    sink.flush()?;

    while !stop.load(Ordering::Relaxed) {
        poll_batch(&consumer, sink, |_, _| {})?;
    }
    Ok(())
}

/// A librdkafka consumer with the caller's properties over kaos's defaults. librdkafka needs a
/// `group.id` even for manual assignment; without one from the caller, the consumer gets a group of
/// its own and commits nothing unless the caller says otherwise.
pub(crate) fn create(
    bootstrap: &str,
    properties: &BTreeMap<String, String>,
    partition_eof: bool,
) -> Result<BaseConsumer, WorkloadError> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    if !properties.contains_key("group.id") {
        config.set("group.id", format!("kaos-assign-{}", std::process::id()));
        config.set("enable.auto.commit", "false");
    }
    config.set("enable.partition.eof", if partition_eof { "true" } else { "false" });
    for (k, v) in properties {
        config.set(k, v);
    }
    config.create().map_err(WorkloadError::kafka("creating the consumer"))
}

/// The partition ids of `topic`, asking the cluster until it answers (bounded).
pub(crate) fn partitions_of(consumer: &BaseConsumer, topic: &str, stop: &AtomicBool) -> Result<Vec<i32>, WorkloadError> {
    let mut last_error = String::from("no answer");
    for _ in 0..METADATA_ATTEMPTS_MAX {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match consumer.fetch_metadata(Some(topic), Duration::from_millis(METADATA_TIMEOUT_MS)) {
            Ok(md) => {
                let found = md.topics().iter().find(|t| t.name() == topic);
                match found {
                    Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                        let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
                        ids.sort_unstable();
                        return Ok(ids);
                    }
                    Some(t) => last_error = format!("topic {topic}: {:?}", t.error()),
                    None => last_error = format!("topic {topic} not in metadata"),
                }
            }
            Err(e) => last_error = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(POLL_WAIT_MS * 5));
    }
    Err(WorkloadError::Incomplete(format!("no metadata for topic {topic}: {last_error}")))
}

/// One poll op: waits up to [`POLL_WAIT_MS`] for a first record, then takes what is already
/// there, up to [`POLL_BATCH_RECORDS_MAX`]. `on_record(partition, offset)` sees each record;
/// partition EOF events are passed as `offset = -1`.
pub(crate) fn poll_batch(
    consumer: &BaseConsumer,
    sink: &mut OpSink,
    mut on_record: impl FnMut(i32, i64),
) -> Result<(), WorkloadError> {
    let mut records: Vec<Value> = Vec::new();
    let mut wait = Duration::from_millis(POLL_WAIT_MS);
    while records.len() < POLL_BATCH_RECORDS_MAX {
        match consumer.poll(wait) {
            None => break,
            Some(Ok(m)) => {
                on_record(m.partition(), m.offset());
                let id = m.payload().and_then(message::decode);
                records.push(json!({"topic": m.topic(), "partition": m.partition(), "offset": m.offset(), "id": id}));
            }
            Some(Err(KafkaError::PartitionEOF(p))) => on_record(p, -1),
            Some(Err(e)) => {
                // Flush what this poll already read, then log the error as its own failed poll.
                emit(sink, std::mem::take(&mut records))?;
                sink.op("invoke", "poll", Value::Null, None);
                sink.op("fail", "poll", Value::Null, Some(&error_name(&e)));
                sink.flush()?;
                break;
            }
        }
        wait = Duration::ZERO;
    }
    emit(sink, records)
}

fn emit(sink: &mut OpSink, records: Vec<Value>) -> Result<(), WorkloadError> {
    if records.is_empty() {
        return Ok(());
    }
    sink.op("invoke", "poll", Value::Null, None);
    sink.op("ok", "poll", json!({ "records": records }), None);
    sink.flush()?;
    Ok(())
}
