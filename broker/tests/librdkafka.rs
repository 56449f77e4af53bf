//! librdkafka (the `rdkafka` crate) against a real broker process: produce with acks=all,
//! count acks only from delivery reports, read everything back with an assigned consumer.

mod common;
mod rdk;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rdk::{ValueDeliveries, ValueReports};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const PRODUCE_TIMEOUT: Duration = Duration::from_secs(90);
const CONSUME_TIMEOUT: Duration = Duration::from_secs(90);

/// Produces `count` keyed messages with `acks`; returns the delivery reports once all are reported.
fn produce(bootstrap: &str, topic: &str, count: usize, acks: &str) -> Arc<ValueDeliveries> {
    let deliveries = Arc::new(ValueDeliveries::default());
    let producer: BaseProducer<ValueReports> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", acks)
        .set("linger.ms", "5")
        // Many batches per partition, so segment rolls and index lookups happen.
        .set("batch.num.messages", "50")
        .set("message.timeout.ms", "60000")
        .create_with_context(ValueReports {
            deliveries: Arc::clone(&deliveries),
            one_ack_per_offset: true,
        })
        .expect("producer");
    let started = Instant::now();
    for i in 0..count {
        let key = format!("key-{i}");
        let value = format!("value-{i}");
        let mut record = BaseRecord::to(topic).key(&key).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    assert!(started.elapsed() < PRODUCE_TIMEOUT, "queue stayed full");
                    record = returned;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => panic!("send failed: {e}"),
            }
        }
    }
    while started.elapsed() < PRODUCE_TIMEOUT {
        let reported = deliveries.acked.lock().expect("lock").len()
            + deliveries.failed.lock().expect("lock").len();
        if reported == count {
            break;
        }
        producer.poll(Duration::from_millis(100));
    }
    let _ = producer.flush(Duration::from_secs(1));
    deliveries
}

/// Reads `partitions` from the beginning until `expected` records arrived (or the timeout).
fn consume(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
) -> BTreeMap<(i32, i64), Vec<u8>> {
    let consumer = rdk::from_beginning(bootstrap, topic, partitions);
    let mut read = BTreeMap::new();
    let started = Instant::now();
    while read.len() < expected && started.elapsed() < CONSUME_TIMEOUT {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let value = message.payload().unwrap_or_default().to_vec();
                let previous = read.insert((message.partition(), message.offset()), value);
                assert!(previous.is_none(), "offset {} read twice", message.offset());
            }
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    // Nothing beyond what was acknowledged.
    if let Some(Ok(extra)) = consumer.poll(Duration::from_millis(500)) {
        panic!(
            "unexpected extra record at {}:{}",
            extra.partition(),
            extra.offset()
        );
    }
    read
}

fn round_trip(bootstrap: &str, topic: &str, partitions: i32, count: usize) {
    let deliveries = produce(bootstrap, topic, count, "all");
    let failed = deliveries.failed.lock().expect("lock").clone();
    assert!(
        failed.is_empty(),
        "delivery failures: {:?}",
        &failed[..failed.len().min(5)]
    );
    let acked = deliveries.acked.lock().expect("lock").clone();
    assert_eq!(
        acked.len(),
        count,
        "every message acknowledged by a delivery report"
    );
    let used: std::collections::BTreeSet<i32> = acked.keys().map(|(p, _)| *p).collect();
    assert_eq!(
        used.len(),
        partitions as usize,
        "keys spread over every partition"
    );
    // Offsets per partition are 0..n without gaps.
    for partition in 0..partitions {
        let offsets: Vec<i64> = acked
            .keys()
            .filter(|(p, _)| *p == partition)
            .map(|(_, o)| *o)
            .collect();
        assert_eq!(
            offsets,
            (0..offsets.len() as i64).collect::<Vec<_>>(),
            "partition {partition}"
        );
    }
    let read = consume(bootstrap, topic, partitions, count);
    assert_eq!(read.len(), count, "read back every message");
    assert_eq!(read, acked, "values and offsets match the delivery reports");
}

#[test]
fn acks_all_round_trip_on_a_created_topic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        "\"auto.create.topics.enable\" = false\n",
    );
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "created", 3, -1, false), 0);
    round_trip(&broker.bootstrap(), "created", 3, 2000);
}

#[test]
fn acks_all_round_trip_on_an_auto_created_topic() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Small segments and a flush policy, so rolls, index lookups and fsyncs are exercised too.
    let config = "\"num.partitions\" = 3\n\"segment.bytes\" = 4096\n\"index.interval.bytes\" = 512\n\"flush.messages\" = 100\n\"flush.ms\" = 50\n";
    let broker = BrokerProcess::start(&dir.path().join("data"), config);
    round_trip(&broker.bootstrap(), "auto", 3, 2000);
    let data_dir = broker.data_dir.clone();
    assert_eq!(broker.terminate(), Some(0), "graceful shutdown exits 0");
    assert!(
        data_dir.join(::broker::CLEAN_SHUTDOWN_FILE_NAME).exists(),
        "clean-shutdown marker written"
    );
    let checkpoint = std::fs::read_to_string(data_dir.join("recovery-point-offset-checkpoint"))
        .expect("checkpoint");
    let mut total = 0;
    for partition in 0..3 {
        let partition_dir = data_dir.join(format!("auto-{partition}"));
        assert!(segment_files(&partition_dir).len() > 1, "segments rolled");
        let log_end_offset = validate_partition_dir(&partition_dir);
        assert!(
            checkpoint.contains(&format!("auto {partition} {log_end_offset}\n")),
            "{checkpoint}"
        );
        total += log_end_offset;
    }
    assert_eq!(total, 2000);
}
