//! ListOffsets by timestamp answers the first record at or after it, not the start of the batch
//! holding it (librdkafka's 0054_offset_time; Kafka's `LogSegment.findOffsetByTimestamp`), and
//! MAX_TIMESTAMP the record that bears the largest timestamp: records with their own timestamps,
//! produced as one batch by librdkafka.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

/// A broker whose topic `t` (one partition) holds one batch of records stamped `timestamps`,
/// and a client of it (the temporary directory keeps the data while the test runs).
fn one_batch(timestamps: &[i64]) -> (tempfile::TempDir, BrokerProcess, RawClient) {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), "");
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "t", 1, 1, false), 0);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("linger.ms", "200")
        .create()
        .expect("producer");
    for (i, &timestamp) in timestamps.iter().enumerate() {
        let value = format!("v{i}");
        producer
            .send(
                BaseRecord::<(), _>::to("t")
                    .partition(0)
                    .payload(&value)
                    .timestamp(timestamp),
            )
            .expect("queued");
    }
    producer.flush(Duration::from_secs(30)).expect("delivered");
    let batches = batch_positions(&dir.path().join("data/t-0/00000000000000000000.log"));
    assert_eq!(batches.len(), 1, "the records are one batch");
    (dir, broker, client)
}

#[test]
fn a_timestamp_inside_a_batch_finds_its_record() {
    let (_dir, _broker, mut client) = one_batch(&[1_000, 2_000, 3_000]);
    assert_eq!(list_offset(&mut client, "t", 0, -1), (0, 3));
    assert_eq!(list_offset(&mut client, "t", 0, 0), (0, 0));
    assert_eq!(list_offset(&mut client, "t", 0, 1_000), (0, 0));
    assert_eq!(list_offset(&mut client, "t", 0, 1_500), (0, 1));
    assert_eq!(list_offset(&mut client, "t", 0, 2_000), (0, 1));
    assert_eq!(list_offset(&mut client, "t", 0, 2_001), (0, 2));
    assert_eq!(list_offset(&mut client, "t", 0, 3_001), (0, -1));
}

/// librdkafka's 0081 (do_test_ListOffsets): records stamped 100, 400 and 250 in one batch.
/// MAX_TIMESTAMP (-3, KIP-734) names the record with the largest timestamp, offset 1, as Kafka
/// does since 3.8 (KAFKA-16310), not its batch's first offset; a timestamp between the records
/// finds the first record at or after it.
#[test]
fn max_timestamp_names_the_record_that_bears_it() {
    let (_dir, _broker, mut client) = one_batch(&[10_000_100, 10_000_400, 10_000_250]);
    assert_eq!(
        list_offset(&mut client, "t", 0, -3),
        (0, 1),
        "MAX_TIMESTAMP"
    );
    assert_eq!(list_offset(&mut client, "t", 0, -2), (0, 0), "earliest");
    assert_eq!(list_offset(&mut client, "t", 0, -1), (0, 3), "latest");
    assert_eq!(list_offset(&mut client, "t", 0, 10_000_050), (0, 0));
    assert_eq!(list_offset(&mut client, "t", 0, 10_000_300), (0, 1));
    assert_eq!(list_offset(&mut client, "t", 0, 10_000_150), (0, 1));
}
