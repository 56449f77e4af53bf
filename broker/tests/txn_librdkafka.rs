//! librdkafka's transactional producer (the `rdkafka` crate, librdkafka 2.12) against one broker
//! process: committed transactions are seen by `read_committed` consumers and aborted ones are
//! not (while `read_uncommitted` consumers see both); a zombie producer is fenced by its
//! successor with the same `transactional.id` and nothing it writes afterwards becomes visible;
//! a transaction open past its `transaction.timeout.ms` is aborted by the coordinator and its
//! producer fenced, without holding back the last stable offset.

mod common;
mod rdk;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rdk::{Deliveries, OnError};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};

const TXN_TIMEOUT: Duration = Duration::from_secs(30);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

fn start() -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), "");
    (dir, broker)
}

fn topic(broker: &BrokerProcess, name: &str, partitions: i32) {
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, name, partitions, 1, false), 0);
}

fn transactional(
    broker: &BrokerProcess,
    id: &str,
    extra: &[(&str, &str)],
) -> (BaseProducer<rdk::Reports>, Arc<Deliveries>) {
    let deliveries = Arc::new(Deliveries::default());
    let mut settings = vec![("transactional.id", id), ("linger.ms", "1")];
    settings.extend_from_slice(extra);
    let producer = rdk::producer(&broker.bootstrap(), &settings, &deliveries);
    producer
        .init_transactions(TXN_TIMEOUT)
        .expect("init_transactions");
    (producer, deliveries)
}

/// Sends ids `ids` round-robin over `partitions` partitions of `topic`.
fn send_all(
    producer: &BaseProducer<rdk::Reports>,
    topic: &str,
    partitions: i32,
    ids: impl IntoIterator<Item = u64>,
) {
    for id in ids {
        rdk::send(producer, topic, (id % partitions as u64) as i32, id).expect("send");
    }
}

/// Every message id a consumer with `isolation` reads from the start of every partition until
/// each partition reports its end: id → times seen.
fn read_ids(
    broker: &BrokerProcess,
    topic: &str,
    partitions: i32,
    isolation: &str,
) -> BTreeMap<u64, usize> {
    let bootstrap = broker.bootstrap();
    rdk::read_to_end(
        &bootstrap,
        topic,
        partitions,
        isolation,
        READ_TIMEOUT,
        OnError::Fail,
    )
}

fn once(ids: impl IntoIterator<Item = u64>) -> BTreeMap<u64, usize> {
    ids.into_iter().map(|id| (id, 1)).collect()
}

#[test]
fn read_committed_sees_committed_transactions_only() {
    let (_dir, broker) = start();
    topic(&broker, "t", 2);
    let (producer, deliveries) = transactional(&broker, "txn-a", &[]);
    producer.begin_transaction().expect("begin");
    send_all(&producer, "t", 2, 1..=10);
    producer.commit_transaction(TXN_TIMEOUT).expect("commit");
    producer.begin_transaction().expect("begin");
    send_all(&producer, "t", 2, 11..=20);
    producer.flush(TXN_TIMEOUT).expect("flush");
    producer.abort_transaction(TXN_TIMEOUT).expect("abort");
    producer.begin_transaction().expect("begin");
    send_all(&producer, "t", 2, 21..=30);
    producer.commit_transaction(TXN_TIMEOUT).expect("commit");
    assert_eq!(
        deliveries.acked_count(),
        30,
        "failed: {:?}",
        deliveries.failed()
    );
    let committed = read_ids(&broker, "t", 2, "read_committed");
    assert_eq!(committed, once((1..=10).chain(21..=30)));
    let uncommitted = read_ids(&broker, "t", 2, "read_uncommitted");
    assert_eq!(uncommitted, once(1..=30));
    broker.terminate();
}

#[test]
fn a_zombie_is_fenced_by_its_successor() {
    let (_dir, broker) = start();
    topic(&broker, "z", 1);
    let (zombie, _) = transactional(&broker, "txn-z", &[]);
    zombie.begin_transaction().expect("begin");
    send_all(&zombie, "z", 1, 1..=5);
    zombie.flush(TXN_TIMEOUT).expect("flush");
    // The successor's init fences the zombie and aborts its open transaction.
    let (successor, _) = transactional(&broker, "txn-z", &[]);
    successor.begin_transaction().expect("begin");
    send_all(&successor, "z", 1, 100..=104);
    successor.commit_transaction(TXN_TIMEOUT).expect("commit");
    // The zombie goes on: its writes and its commit are refused.
    let _ = rdk::send(&zombie, "z", 0, 6);
    let commit = zombie.commit_transaction(TXN_TIMEOUT);
    assert!(commit.is_err(), "the zombie's commit succeeded");
    assert_eq!(read_ids(&broker, "z", 1, "read_committed"), once(100..=104));
    // Its first transaction's records are in the log, aborted.
    let all = read_ids(&broker, "z", 1, "read_uncommitted");
    assert!((1..=5).all(|id| all.contains_key(&id)), "{all:?}");
    assert!(
        !all.contains_key(&6),
        "a fenced write reached the log: {all:?}"
    );
    broker.terminate();
}

#[test]
fn a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let (_dir, broker) = start();
    topic(&broker, "slow", 1);
    let (slow, _) = transactional(&broker, "txn-slow", &[("transaction.timeout.ms", "2000")]);
    slow.begin_transaction().expect("begin");
    send_all(&slow, "slow", 1, 1..=3);
    slow.flush(TXN_TIMEOUT).expect("flush");
    // The coordinator aborts it (its tick runs every few hundred ms).
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        slow.commit_transaction(TXN_TIMEOUT).is_err(),
        "a timed-out transaction committed"
    );
    // The LSO moved past the aborted transaction: a new producer's commit is readable.
    let (next, _) = transactional(&broker, "txn-next", &[]);
    next.begin_transaction().expect("begin");
    send_all(&next, "slow", 1, 10..=12);
    next.commit_transaction(TXN_TIMEOUT).expect("commit");
    assert_eq!(
        read_ids(&broker, "slow", 1, "read_committed"),
        once(10..=12)
    );
    broker.terminate();
}

#[test]
fn an_invalid_transaction_timeout_is_refused() {
    let (_dir, broker) = start();
    let deliveries = Arc::new(Deliveries::default());
    // Above transaction.max.timeout.ms (900 s by default).
    let producer = rdk::producer(
        &broker.bootstrap(),
        &[
            ("transactional.id", "txn-long"),
            ("transaction.timeout.ms", "1000000"),
        ],
        &deliveries,
    );
    let error = producer
        .init_transactions(TXN_TIMEOUT)
        .expect_err("refused");
    assert!(
        error.to_string().to_lowercase().contains("timeout"),
        "{error}"
    );
    broker.terminate();
}

/// The offset the group `eos` has committed for `in`/0, as a `read_committed` consumer fetches it
/// (OffsetFetch with require_stable).
fn committed_offset(consumer: &BaseConsumer) -> Option<i64> {
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition("in", 0);
    let committed = consumer
        .committed_offsets(wanted, Duration::from_secs(30))
        .expect("committed offsets");
    match committed.find_partition("in", 0).expect("in/0").offset() {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

#[test]
fn offsets_sent_to_a_transaction_are_committed_with_it_and_dropped_with_an_abort() {
    let (_dir, broker) = start();
    topic(&broker, "in", 1);
    topic(&broker, "out", 1);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "eos")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let group = consumer.group_metadata().expect("group metadata");
    let (producer, _) = transactional(&broker, "txn-eos", &[]);
    let offsets = |offset: i64| {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset("in", 0, Offset::Offset(offset))
            .expect("offset");
        list
    };
    producer.begin_transaction().expect("begin");
    send_all(&producer, "out", 1, 1..=5);
    producer
        .send_offsets_to_transaction(&offsets(5), &group, TXN_TIMEOUT)
        .expect("send offsets");
    producer.commit_transaction(TXN_TIMEOUT).expect("commit");
    assert_eq!(committed_offset(&consumer), Some(5));
    producer.begin_transaction().expect("begin");
    send_all(&producer, "out", 1, 6..=8);
    producer
        .send_offsets_to_transaction(&offsets(8), &group, TXN_TIMEOUT)
        .expect("send offsets");
    producer.flush(TXN_TIMEOUT).expect("flush");
    producer.abort_transaction(TXN_TIMEOUT).expect("abort");
    assert_eq!(
        committed_offset(&consumer),
        Some(5),
        "an aborted transaction's offsets took effect"
    );
    assert_eq!(read_ids(&broker, "out", 1, "read_committed"), once(1..=5));
    broker.terminate();
}
