//! ListOffsets by timestamp answers the first record at or after it, not the start of the batch
//! holding it (librdkafka's 0054_offset_time; Kafka's `LogSegment.findOffsetByTimestamp`):
//! three records with their own timestamps, produced as one batch by librdkafka.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

#[test]
fn a_timestamp_inside_a_batch_finds_its_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), "");
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "t", 1, 1, false), 0);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("linger.ms", "200")
        .create()
        .expect("producer");
    for (i, timestamp) in [1_000i64, 2_000, 3_000].into_iter().enumerate() {
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
    assert_eq!(list_offset(&mut client, "t", 0, -1), (0, 3));
    let batches = batch_positions(&dir.path().join("data/t-0/00000000000000000000.log"));
    assert_eq!(batches.len(), 1, "the three records are one batch");
    assert_eq!(list_offset(&mut client, "t", 0, 0), (0, 0));
    assert_eq!(list_offset(&mut client, "t", 0, 1_000), (0, 0));
    assert_eq!(list_offset(&mut client, "t", 0, 1_500), (0, 1));
    assert_eq!(list_offset(&mut client, "t", 0, 2_000), (0, 1));
    assert_eq!(list_offset(&mut client, "t", 0, 2_001), (0, 2));
    assert_eq!(list_offset(&mut client, "t", 0, 3_001), (0, -1));
}
