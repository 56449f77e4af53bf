//! Idempotent producer on the wire (raw Kafka requests against real broker processes):
//! InitProducerId, a duplicate batch answered with its original offsets and not appended again,
//! OUT_OF_ORDER_SEQUENCE_NUMBER on a gap, INVALID_PRODUCER_EPOCH for an old epoch, and the
//! producer state surviving a SIGKILL + restart (rebuilt from the log) and a leader change
//! (maintained by followers).

mod cluster;
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchResponse, InitProducerIdRequest,
    InitProducerIdResponse, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

const NONE: i16 = 0;
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const LATEST: i64 = -1;

/// InitProducerId v4 (flexible) with an optional transactional id: (error, producer id, epoch).
fn init_producer_id(client: &mut RawClient, transactional_id: Option<&str>) -> (i16, i64, i16) {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(
            transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.to_string()))),
        )
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(kafka_protocol::messages::ProducerId(-1))
        .with_producer_epoch(-1);
    let response: InitProducerIdResponse = client.call(ApiKey::InitProducerId, 4, &request);
    (
        response.error_code,
        response.producer_id.0,
        response.producer_epoch,
    )
}

/// An idempotent batch of `count` records whose values name their sequences.
fn batch(producer_id: i64, epoch: i16, first_sequence: i32, count: i32) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (first_sequence..first_sequence + count)
        .map(|s| format!("p{producer_id}-e{epoch}-s{s}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    broker::wire::batch::build_producer_batch(
        0,
        1_700_000_000_000,
        &refs,
        producer_id,
        epoch,
        first_sequence,
    )
}

/// Produce v9 with `acks` on a fresh connection (bounded wait): (error code, base offset).
fn produce(address: SocketAddr, topic: &str, records: Vec<u8>, acks: i16) -> (i16, i64) {
    produce_on_new_connection(
        address,
        topic,
        0,
        records,
        acks,
        (10_000, Duration::from_secs(40)),
    )
}

fn log_end_offset(address: SocketAddr, topic: &str) -> i64 {
    let mut client = RawClient::connect(address);
    let (error, offset) = list_offset(&mut client, topic, 0, LATEST);
    assert_eq!(error, NONE);
    offset
}

/// Every value in the partition, in offset order.
fn values(address: SocketAddr, topic: &str) -> Vec<String> {
    let mut client = RawClient::connect(address);
    fetch_all(&mut client, topic, 0, 0)
        .into_iter()
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
        .collect()
}

#[test]
fn single_node_dedups_refuses_gaps_and_old_epochs_and_survives_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let broker = BrokerProcess::start(&data_dir, "");
    let address = broker.address;
    let mut client = RawClient::connect(address);

    // Advertised in ApiVersions.
    let versions: ApiVersionsResponse =
        client.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert!(versions
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::InitProducerId as i16 && k.max_version >= 4));

    assert_eq!(create_topic(&mut client, "idem", 1, 1, false), NONE);
    let (error, pid, epoch) = init_producer_id(&mut client, None);
    assert_eq!((error, epoch), (NONE, 0));
    assert!(pid >= 0);
    let (error, other_pid, _) = init_producer_id(&mut client, None);
    assert_eq!(error, NONE);
    assert_ne!(
        pid, other_pid,
        "every InitProducerId gets a new producer id"
    );
    // A transactional id needs the transaction coordinator, whose topic FindCoordinator creates:
    // asked before that, the broker answers COORDINATOR_NOT_AVAILABLE (the client looks for the
    // coordinator first).
    let (error, refused_pid, _) = init_producer_id(&mut client, Some("txn-1"));
    assert_eq!((error, refused_pid), (COORDINATOR_NOT_AVAILABLE, -1));

    // Sequences 0..3 at offset 0, 3..5 at offset 3.
    assert_eq!(produce(address, "idem", batch(pid, 0, 0, 3), 1), (NONE, 0));
    assert_eq!(produce(address, "idem", batch(pid, 0, 3, 2), -1), (NONE, 3));
    // Retries of both: their original offsets, as success, nothing appended.
    assert_eq!(produce(address, "idem", batch(pid, 0, 0, 3), 1), (NONE, 0));
    assert_eq!(produce(address, "idem", batch(pid, 0, 3, 2), -1), (NONE, 3));
    assert_eq!(log_end_offset(address, "idem"), 5);
    // A gap, and an overlapping batch that is no retry: out of order, nothing appended.
    assert_eq!(
        produce(address, "idem", batch(pid, 0, 7, 1), 1).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(
        produce(address, "idem", batch(pid, 0, 4, 2), 1).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    // A new epoch must start at 0; then the old epoch is fenced.
    assert_eq!(
        produce(address, "idem", batch(pid, 1, 5, 1), 1).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(produce(address, "idem", batch(pid, 1, 0, 1), 1), (NONE, 5));
    assert_eq!(
        produce(address, "idem", batch(pid, 0, 5, 1), 1).0,
        INVALID_PRODUCER_EPOCH
    );
    // A producer id this partition has no state for is accepted at any sequence (KIP-360).
    assert_eq!(
        produce(address, "idem", batch(other_pid, 0, 42, 1), 1),
        (NONE, 6)
    );
    assert_eq!(log_end_offset(address, "idem"), 7);

    // SIGKILL: the state comes back from the log.
    broker.kill();
    let broker = BrokerProcess::start(&data_dir, "");
    let address = broker.address;
    assert_eq!(produce(address, "idem", batch(pid, 1, 0, 1), 1), (NONE, 5));
    assert_eq!(
        produce(address, "idem", batch(other_pid, 0, 42, 1), -1),
        (NONE, 6)
    );
    assert_eq!(
        produce(address, "idem", batch(pid, 1, 2, 1), 1).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(
        produce(address, "idem", batch(pid, 0, 5, 1), 1).0,
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(produce(address, "idem", batch(pid, 1, 1, 1), 1), (NONE, 7));
    assert_eq!(log_end_offset(address, "idem"), 8);
    // Producer ids are not reused after the restart.
    let mut client = RawClient::connect(address);
    let (error, new_pid, _) = init_producer_id(&mut client, None);
    assert_eq!(error, NONE);
    assert!(new_pid != pid && new_pid != other_pid);
    let v = |p: i64, e: i16, s: i32| format!("p{p}-e{e}-s{s}");
    let expected = [
        v(pid, 0, 0),
        v(pid, 0, 1),
        v(pid, 0, 2),
        v(pid, 0, 3),
        v(pid, 0, 4),
        v(pid, 1, 0),
        v(other_pid, 0, 42),
        v(pid, 1, 1),
    ];
    assert_eq!(values(address, "idem"), expected);

    // Fetch (what read_committed consumers look at): the last stable offset is the HW, and no
    // transaction was aborted.
    let correlation_id = send_fetch(&mut client, "idem", 0, 0, 0);
    let (got, response): (i32, FetchResponse) = decode_response(
        ApiKey::Fetch,
        12,
        client.read_frame().expect("Fetch response"),
    );
    assert_eq!(got, correlation_id);
    let partition = &response.responses[0].partitions[0];
    assert_eq!(
        (
            partition.error_code,
            partition.high_watermark,
            partition.last_stable_offset
        ),
        (NONE, 8, 8)
    );
    assert!(partition
        .aborted_transactions
        .as_ref()
        .is_none_or(|aborted| aborted.is_empty()));
}

#[test]
fn producer_state_follows_the_leader_change_with_leader_epoch_truncation() {
    producer_state_follows_the_leader_change("leader-epoch");
}

#[test]
fn producer_state_follows_the_leader_change_with_high_watermark_truncation() {
    producer_state_follows_the_leader_change("high-watermark");
}

/// Acks=all batches, the leader SIGKILLed: the new leader (a follower that kept the producer
/// state as it replicated) answers retries with the original offsets. The old leader restarts
/// (state rebuilt from its log, truncated per `truncation`, then fetched), catches up and is made
/// the only leader left: the same retry is still a duplicate there.
fn producer_state_follows_the_leader_change(truncation: &str) {
    let config = format!("\"replication.truncation\" = \"{truncation}\"\n\"broker.session.timeout.ms\" = 2000\n\"broker.heartbeat.interval.ms\" = 200\n\"replica.fetch.wait.max.ms\" = 100\n\"min.insync.replicas\" = 2\n");
    let mut cluster = cluster::Cluster::start(3, &config);
    assert_eq!(
        cluster::create_topic(cluster.address(1), "idem3", 1, 3),
        NONE
    );
    let (leader, epoch, _, _) =
        cluster.wait_partition("leader with full ISR", "idem3", 0, |l, _, _, isr| {
            l > 0 && isr.len() == 3
        });
    cluster.wait_topic_on(leader, "idem3");
    let mut client = RawClient::connect(cluster.address(leader));
    let (error, pid, _) = init_producer_id(&mut client, None);
    assert_eq!(error, NONE);
    // Ids from different brokers never collide (node id in the high bits).
    let other = (1..=3).find(|&id| id != leader).expect("another broker");
    let (_, other_pid, _) = init_producer_id(&mut RawClient::connect(cluster.address(other)), None);
    assert_ne!(pid, other_pid);

    for i in 0..5 {
        assert_eq!(
            produce(
                cluster.address(leader),
                "idem3",
                batch(pid, 0, i * 2, 2),
                -1
            ),
            (NONE, i64::from(i) * 2)
        );
    }
    // acks=all answered: every ISR member has the batches (and their producer state).
    cluster.kill_broker(leader);
    let (new_leader, _, _, _) = cluster.wait_partition("a new leader", "idem3", 0, |l, e, _, _| {
        l > 0 && l != leader && e > epoch
    });
    cluster.wait_topic_on(new_leader, "idem3");
    let address = cluster.address(new_leader);
    // The retry of the last batches, sent to the new leader: original offsets, no second copy.
    let answer = cluster::wait_until("the new leader accepts acks=all", 600, || {
        let answer = produce(address, "idem3", batch(pid, 0, 8, 2), -1);
        (answer.0 == NONE).then_some(answer)
    });
    assert_eq!(answer, (NONE, 8));
    assert_eq!(
        produce(address, "idem3", batch(pid, 0, 6, 2), -1),
        (NONE, 6)
    );
    assert_eq!(
        produce(address, "idem3", batch(pid, 0, 11, 1), -1).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(
        produce(address, "idem3", batch(pid, 0, 10, 1), -1),
        (NONE, 10)
    );
    let expected: Vec<String> = (0..11).map(|s| format!("p{pid}-e0-s{s}")).collect();
    assert_eq!(values(address, "idem3"), expected);

    // The old leader comes back and catches up (back in the ISR); then the two others die, so
    // it is the only replica left to lead.
    cluster.start_broker(leader);
    cluster.wait_partition(
        "the old leader back in the ISR",
        "idem3",
        0,
        |_, _, _, isr| isr.len() == 3,
    );
    let third = (1..=3)
        .find(|&id| id != leader && id != new_leader)
        .expect("third broker");
    cluster.kill_broker(new_leader);
    cluster.kill_broker(third);
    cluster.wait_partition("the old leader leads again", "idem3", 0, |l, _, _, _| {
        l == leader
    });
    cluster.wait_topic_on(leader, "idem3");
    let address = cluster.address(leader);
    // acks=1: acks=all would be refused with the ISR below min.insync.replicas.
    let answer = cluster::wait_until("the old leader answers", 600, || {
        let answer = produce(address, "idem3", batch(pid, 0, 10, 1), 1);
        (answer.0 == NONE).then_some(answer)
    });
    assert_eq!(answer, (NONE, 10));
    assert_eq!(produce(address, "idem3", batch(pid, 0, 4, 2), 1), (NONE, 4));
    assert_eq!(
        produce(address, "idem3", batch(pid, 0, 11, 1), 1),
        (NONE, 11)
    );
    let mut expected = expected;
    expected.push(format!("p{pid}-e0-s11"));
    // acks=1 answers at the append; reads stop at the HW, which passes s11 once this leader has
    // taken the controller's shrunk ISR (the dead replicas out), a metadata round later.
    let read = cluster::wait_until("the HW covers s11", 600, || {
        let read = values(address, "idem3");
        (read.len() >= expected.len()).then_some(read)
    });
    assert_eq!(read, expected);
}
