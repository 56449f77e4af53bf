//! `transaction.partition.verification.enable` both ways, on the wire (raw Kafka requests against
//! a broker process). A transactional producer adds partition 0 to its transaction and then
//! writes a transactional batch to partition 1 too, which it never added (what a late or zombie
//! write looks like to the partition: KAFKA-14402, the hanging transactions KIP-890 closed).
//! With verification (the default) the leader asks the coordinator and refuses the batch with
//! INVALID_TXN_STATE; the commit ends everything and both partitions' last stable offsets reach
//! their HWs. Without it the batch is accepted, no marker ever reaches partition 1, and its last
//! stable offset stays at that batch for good: `read_committed` consumers stop there.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, BrokerId, EndTxnRequest,
    EndTxnResponse, FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest,
    InitProducerIdResponse, ListOffsetsRequest, ListOffsetsResponse, ProduceRequest,
    ProduceResponse, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

const TXN: &str = "verified";
const INVALID_TXN_STATE: i16 = 48;
/// Errors a coordinator answers while it is being created, loaded or busy: ask again.
const RETRIABLE: [i16; 3] = [14, 15, 51];

fn txn_id() -> TransactionalId {
    TransactionalId(StrBytes::from_static_str(TXN))
}

/// Calls `attempt` until its error code is not a retriable coordinator error.
fn retrying<T>(mut attempt: impl FnMut() -> (i16, T)) -> (i16, T) {
    poll_until(200, Duration::from_millis(50), || {
        let (code, value) = attempt();
        (!RETRIABLE.contains(&code)).then_some((code, value))
    })
    .expect("the coordinator kept answering a retriable error")
}

/// A transactional batch of one record.
fn transactional_batch(producer_id: i64, epoch: i16, sequence: i32) -> Vec<u8> {
    let mut batch = broker::wire::batch::build_producer_batch(
        0,
        1_700_000_000_000,
        &[b"kaos:1:x"],
        producer_id,
        epoch,
        sequence,
    );
    broker::wire::batch::set_attributes(&mut batch, broker::wire::batch::ATTRIBUTE_TRANSACTIONAL);
    batch
}

fn produce(client: &mut RawClient, partition: i32, batch: Vec<u8>) -> i16 {
    let request = ProduceRequest::default()
        .with_transactional_id(Some(txn_id()))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name("v"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(Bytes::from(batch)))])]);
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request);
    response.responses[0].partition_responses[0].error_code
}

/// (last stable offset, HW) of partition `partition` of `v`, from ListOffsets.
fn stable_and_high(client: &mut RawClient, partition: i32) -> (i64, i64) {
    let mut offsets = [0i64; 2];
    for (slot, isolation) in [(0, 1i8), (1, 0i8)] {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(isolation)
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name("v"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(-1)])]);
        let response: ListOffsetsResponse = client.call(ApiKey::ListOffsets, 5, &request);
        let p = &response.topics[0].partitions[0];
        assert_eq!(p.error_code, 0);
        offsets[slot] = p.offset;
    }
    (offsets[0], offsets[1])
}

/// Runs the scenario: (Produce's code for the partition never added, the last stable offset and
/// HW of each partition once the commit's markers are written).
fn run(verification: bool) -> (i16, [(i64, i64); 2]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!("\"transaction.partition.verification.enable\" = {verification}\n");
    let broker = BrokerProcess::start(&dir.path().join("data"), &config);
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "v", 2, 1, false), 0);
    let find = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_static_str(TXN))
        .with_key_type(1);
    retrying(|| {
        let r: FindCoordinatorResponse = client.call(ApiKey::FindCoordinator, 2, &find);
        (r.error_code, ())
    });
    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(txn_id()))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let (code, (producer_id, epoch)) = retrying(|| {
        let r: InitProducerIdResponse = client.call(ApiKey::InitProducerId, 4, &init);
        (r.error_code, (r.producer_id.0, r.producer_epoch))
    });
    assert_eq!(code, 0);
    let add = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txn_id())
        .with_v3_and_below_producer_id(ProducerId(producer_id))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(topic_name("v"))
            .with_partitions(vec![0])]);
    let (code, ()) = retrying(|| {
        let r: AddPartitionsToTxnResponse = client.call(ApiKey::AddPartitionsToTxn, 3, &add);
        (
            r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
            (),
        )
    });
    assert_eq!(code, 0);
    assert_eq!(
        produce(&mut client, 0, transactional_batch(producer_id, epoch, 0)),
        0
    );
    let unadded = produce(&mut client, 1, transactional_batch(producer_id, epoch, 0));
    let end = EndTxnRequest::default()
        .with_transactional_id(txn_id())
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_committed(true);
    let (code, ()) = retrying(|| {
        let r: EndTxnResponse = client.call(ApiKey::EndTxn, 3, &end);
        (r.error_code, ())
    });
    assert_eq!(code, 0);
    // The commit marker reaches partition 0: its LSO catches up with its HW (data + marker).
    poll_until(200, Duration::from_millis(50), || {
        let (stable, high) = stable_and_high(&mut client, 0);
        (stable == high && high == 2).then_some(())
    })
    .expect("partition 0's transaction never completed");
    // Several coordinator ticks later, partition 1 is as it will stay.
    std::thread::sleep(Duration::from_millis(1_000));
    let offsets = [
        stable_and_high(&mut client, 0),
        stable_and_high(&mut client, 1),
    ];
    broker.terminate();
    (unadded, offsets)
}

#[test]
fn verification_refuses_a_write_to_a_partition_outside_the_transaction() {
    let (unadded, offsets) = run(true);
    assert_eq!(unadded, INVALID_TXN_STATE);
    assert_eq!(
        offsets,
        [(2, 2), (0, 0)],
        "[(LSO, HW)] of partitions 0 and 1"
    );
}

#[test]
fn without_verification_the_write_hangs_the_partition_last_stable_offset() {
    let (unadded, offsets) = run(false);
    assert_eq!(unadded, 0, "accepted without verification");
    // Partition 1 holds an open transaction no marker will end: LSO 0 below HW 1.
    assert_eq!(
        offsets,
        [(2, 2), (0, 1)],
        "[(LSO, HW)] of partitions 0 and 1"
    );
}
