//! Transactions on a 3-broker cluster (RF 3, min.insync.replicas 2) with librdkafka's
//! transactional producer: the coordinator writes the markers of partitions led by other brokers
//! through WriteTxnMarkers, and a transaction whose coordinator is SIGKILLed while it commits
//! ends atomically (all of it visible to `read_committed`, or none of it) after the coordinator
//! moves, with no partition's last stable offset left hanging: a later transaction's records are
//! read.

mod cluster;
mod common;
mod rdk;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cluster::*;
use common::{decode_response, RawClient};
use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use rdk::{Deliveries, OnError};
use rdkafka::producer::Producer;

const TXN_TIMEOUT: Duration = Duration::from_secs(60);
const PARTITIONS: i32 = 3;

/// The broker coordinating `transactional_id`, as broker `via` answers FindCoordinator.
fn coordinator(cluster: &Cluster, via: i32, transactional_id: &str) -> Option<i32> {
    let mut client = RawClient::connect(cluster.address(via));
    let request = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(transactional_id.to_string()))
        .with_key_type(1);
    let correlation_id = client.send(ApiKey::FindCoordinator, 2, &request);
    let frame = client.read_frame()?;
    let (got, response): (i32, FindCoordinatorResponse) =
        decode_response(ApiKey::FindCoordinator, 2, frame);
    assert_eq!(got, correlation_id);
    (response.error_code == 0).then_some(response.node_id.0)
}

/// Every message id a `read_committed` consumer reads from the start of every partition until
/// each reports its end: id → times seen.
fn read_committed(bootstrap: &str, topic: &str) -> BTreeMap<u64, usize> {
    let limit = Duration::from_secs(90);
    rdk::read_to_end(
        bootstrap,
        topic,
        PARTITIONS,
        "read_committed",
        limit,
        OnError::Print,
    )
}

#[test]
fn a_transaction_survives_its_coordinator_killed_while_committing() {
    let config = "\"broker.session.timeout.ms\" = 2000\n\"broker.heartbeat.interval.ms\" = 200\n\"replica.fetch.wait.max.ms\" = 50\n\"min.insync.replicas\" = 2\n";
    let mut cluster = Cluster::start(3, config);
    assert_eq!(create_topic(cluster.address(1), "c", PARTITIONS, 3), 0);
    for p in 0..PARTITIONS {
        cluster.wait_partition("leader, ISR of 3", "c", p, |l, _, _, isr| {
            l > 0 && isr.len() == 3
        });
    }
    let deliveries = Arc::new(Deliveries::default());
    let settings = [
        ("transactional.id", "txn-c"),
        ("linger.ms", "1"),
        ("transaction.timeout.ms", "20000"),
    ];
    let producer = rdk::producer(&cluster.bootstrap(), &settings, &deliveries);
    producer
        .init_transactions(TXN_TIMEOUT)
        .expect("init_transactions");
    // One transaction over every partition: most of its markers go through WriteTxnMarkers.
    producer.begin_transaction().expect("begin");
    for id in 1..=30u64 {
        rdk::send(&producer, "c", (id % PARTITIONS as u64) as i32, id).expect("send");
    }
    producer.commit_transaction(TXN_TIMEOUT).expect("commit");
    let first: BTreeMap<u64, usize> = (1..=30).map(|id| (id, 1)).collect();
    assert_eq!(read_committed(&cluster.bootstrap(), "c"), first);
    // The second transaction's coordinator dies while the commit is on its way.
    let victim = wait_until("the transaction coordinator", 100, || {
        coordinator(&cluster, 1, "txn-c")
    });
    producer.begin_transaction().expect("begin");
    for id in 101..=130u64 {
        rdk::send(&producer, "c", (id % PARTITIONS as u64) as i32, id).expect("send");
    }
    producer.flush(TXN_TIMEOUT).expect("flush");
    let committing = std::thread::spawn(move || {
        let outcome = producer.commit_transaction(TXN_TIMEOUT);
        if outcome.is_err() {
            let _ = producer.abort_transaction(TXN_TIMEOUT);
        }
        (outcome.is_ok(), producer)
    });
    std::thread::sleep(Duration::from_millis(5));
    cluster.kill_broker(victim);
    let (committed, producer) = committing.join().expect("commit thread");
    // A third transaction through the new coordinator.
    producer.begin_transaction().expect("begin after failover");
    for id in 201..=230u64 {
        rdk::send(&producer, "c", (id % PARTITIONS as u64) as i32, id).expect("send");
    }
    producer
        .commit_transaction(TXN_TIMEOUT)
        .expect("commit after failover");
    let seen = read_committed(&cluster.bootstrap(), "c");
    let second: Vec<u64> = (101..=130).filter(|id| seen.contains_key(id)).collect();
    assert!(
        second.is_empty() || second.len() == 30,
        "the second transaction is partly visible: {second:?}"
    );
    if committed {
        assert_eq!(
            second.len(),
            30,
            "a commit the client saw succeed is not visible"
        );
    }
    assert!(seen.values().all(|&n| n == 1), "duplicates: {seen:?}");
    assert!(
        (1..=30).chain(201..=230).all(|id| seen.contains_key(&id)),
        "{seen:?}"
    );
}
