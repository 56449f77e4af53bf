//! Compaction (issue 17) against a real broker and librdkafka: a topic created with
//! `cleanup.policy=compact` refuses keyless records (INVALID_RECORD), and its log cleaner keeps
//! the latest record of each key at its original offset while a consumer from the beginning
//! reads across the gaps; `__consumer_offsets` is compacted the same way, and a group's committed
//! offset survives it and a restart.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

/// Cleaner passes every 100 ms, whatever share of the log is dirty; 1 KiB segments everywhere.
const CONFIG: &str = "\"log.cleaner.backoff.ms\" = 100\n\"log.cleaner.min.cleanable.ratio\" = 0.0\n\"segment.bytes\" = 1024\n";

const KEYS: usize = 20;
const ROUNDS: usize = 10;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn create_compacted(bootstrap: &str, name: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(name, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "1024");
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let created = runtime()
        .block_on(admin.create_topics(&[topic], &options))
        .expect("CreateTopics");
    assert!(created[0].is_ok(), "{created:?}");
}

fn producer(bootstrap: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "0")
        .set("acks", "all")
        .create()
        .expect("producer")
}

/// Every record of `topic`-0 below its end, from the beginning: (offset, key, value).
fn read_all(bootstrap: &str, topic: &str) -> Vec<(i64, Option<Vec<u8>>, Option<Vec<u8>>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("offset");
    consumer.assign(&assignment).expect("assign");
    let mut records = Vec::new();
    for _ in 0..400 {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                records.push((
                    m.offset(),
                    m.key().map(<[u8]>::to_vec),
                    m.payload().map(<[u8]>::to_vec),
                ));
                if m.offset() + 1 >= high {
                    break;
                }
            }
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    records
}

#[test]
fn a_compacted_topic_refuses_keyless_records_and_keeps_each_keys_latest_at_its_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), CONFIG);
    let bootstrap = broker.bootstrap();
    create_compacted(&bootstrap, "c");
    let producer = producer(&bootstrap);
    // Round r of key k lands at offset r * KEYS + k (one partition, sent in order).
    for round in 0..ROUNDS {
        for key in 0..KEYS {
            let (k, v) = (
                format!("key-{key}"),
                format!("value-{round}-{key}-{}", "x".repeat(40)),
            );
            producer
                .send(BaseRecord::<str, str>::to("c").key(&k).payload(&v))
                .expect("queued");
        }
        producer.flush(Duration::from_secs(10)).expect("flushed");
    }
    // A keyless record: refused with Kafka's error.
    let (tx, rx) = std::sync::mpsc::channel();
    let keyless: BaseProducer<Reports> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("message.send.max.retries", "0")
        .create_with_context(Reports(tx))
        .expect("producer");
    keyless
        .send(BaseRecord::<str, str>::to("c").payload("no key"))
        .expect("queued");
    keyless.flush(Duration::from_secs(10)).expect("flushed");
    let refused = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a delivery report");
    assert_eq!(
        refused,
        Err(KafkaError::MessageProduction(
            RDKafkaErrorCode::InvalidRecord
        ))
    );

    // The cleaner runs within a few passes: fewer records than written.
    let written = (ROUNDS * KEYS) as i64;
    let records = poll_until(100, Duration::from_millis(200), || {
        let records = read_all(&bootstrap, "c");
        ((records.len() as i64) < written).then_some(records)
    })
    .expect("the cleaner removed superseded records");
    let partition_dir = broker.data_dir.join("c-0");
    assert!(log_bytes(&partition_dir) > 0);
    // Offsets kept: each record is where it was written; every key's last value is there.
    for (offset, key, value) in &records {
        let value = String::from_utf8(value.clone().expect("value")).expect("utf8");
        let mut parts = value.split('-').skip(1);
        let round: i64 = parts.next().and_then(|r| r.parse().ok()).expect("round");
        let k: i64 = parts.next().and_then(|k| k.parse().ok()).expect("key");
        assert_eq!(*offset, round * KEYS as i64 + k, "{value} moved");
        assert_eq!(key.as_deref(), Some(format!("key-{k}").as_bytes()));
    }
    for key in 0..KEYS {
        let latest = ((ROUNDS - 1) * KEYS + key) as i64;
        assert!(
            records.iter().any(|r| r.0 == latest),
            "key {key}: latest at {latest} lost"
        );
    }
    assert!(
        records.windows(2).all(|w| w[0].0 < w[1].0),
        "offsets increase"
    );
    // Restarted, the broker serves the same (cleaned segments recovered as any other).
    drop(broker);
    let broker = BrokerProcess::start(&dir.path().join("data"), CONFIG);
    let again = read_all(&broker.bootstrap(), "c");
    assert!(again.len() <= records.len());
    for key in 0..KEYS {
        let latest = ((ROUNDS - 1) * KEYS + key) as i64;
        assert!(
            again.iter().any(|r| r.0 == latest),
            "key {key} after restart"
        );
    }
}

/// Delivery reports of a producer: Ok or the error.
struct Reports(std::sync::mpsc::Sender<Result<(), KafkaError>>);

impl rdkafka::ClientContext for Reports {}

impl rdkafka::producer::ProducerContext for Reports {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        let _ = self
            .0
            .send(result.as_ref().map(|_| ()).map_err(|(e, _)| e.clone()));
    }
}

#[test]
fn consumer_offsets_are_compacted_and_the_latest_commit_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), CONFIG);
    let bootstrap = broker.bootstrap();
    create_compacted(&bootstrap, "c");
    let producer = producer(&bootstrap);
    producer
        .send(BaseRecord::<str, str>::to("c").key("k").payload("v"))
        .expect("queued");
    producer.flush(Duration::from_secs(10)).expect("flushed");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "g")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let commits = 300;
    for offset in 1..=commits {
        let mut positions = TopicPartitionList::new();
        positions
            .add_partition_offset("c", 0, Offset::Offset(offset))
            .expect("offset");
        consumer
            .commit(&positions, CommitMode::Sync)
            .expect("commit");
    }
    // 300 commit records of one key in 1 KiB segments: the cleaner keeps the last.
    let offsets_dirs: Vec<_> = std::fs::read_dir(&broker.data_dir)
        .expect("data dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("__consumer_offsets-"))
        })
        .collect();
    assert!(!offsets_dirs.is_empty());
    let total = |dirs: &[std::path::PathBuf]| dirs.iter().map(|d| log_bytes(d)).sum::<u64>();
    let compacted = poll_until(100, Duration::from_millis(200), || {
        let bytes = total(&offsets_dirs);
        // Uncompacted, 300 records of ~100 bytes: about 30 KiB.
        (bytes < 20 * 1024).then_some(bytes)
    });
    assert!(
        compacted.is_some(),
        "__consumer_offsets not compacted: {} bytes",
        total(&offsets_dirs)
    );
    drop(consumer);
    drop(broker);
    let broker = BrokerProcess::start(&dir.path().join("data"), CONFIG);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "g")
        .create()
        .expect("consumer");
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition("c", 0);
    let committed = poll_until(50, Duration::from_millis(200), || {
        consumer
            .committed_offsets(wanted.clone(), Duration::from_secs(5))
            .ok()
            .and_then(|l| l.find_partition("c", 0).map(|p| p.offset()))
            .filter(|o| *o != Offset::Invalid)
    });
    assert_eq!(committed, Some(Offset::Offset(commits)));
}
