//! CreatePartitions on a single node (issue 17): a topic grows, the new partitions take records,
//! the old ones keep theirs, the growth survives a restart; `validate_only` changes nothing;
//! a count not above the current one, an unknown topic and an assignment to another node get
//! Kafka's error codes. In a cluster, a CreatePartitions sent to any broker reaches the
//! controller: the new partitions get the topic's replication factor and every replica.

mod cluster;
mod common;

use std::net::SocketAddr;

use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreatePartitionsRequest, CreatePartitionsResponse,
};

fn create_partitions(
    address: SocketAddr,
    name: &str,
    count: i32,
    assignments: Option<Vec<i32>>,
    validate_only: bool,
) -> i16 {
    let topic = CreatePartitionsTopic::default()
        .with_name(topic_name(name))
        .with_count(count)
        .with_assignments(assignments.map(|ids| {
            ids.into_iter()
                .map(|id| CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(id)]))
                .collect()
        }));
    let request = CreatePartitionsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(10_000)
        .with_validate_only(validate_only);
    let response: CreatePartitionsResponse = call(address, ApiKey::CreatePartitions, 3, &request);
    response.results[0].error_code
}

fn partition_count(address: SocketAddr, name: &str) -> usize {
    let topic = topic_metadata(address, name);
    assert_eq!(topic.error_code, 0, "{topic:?}");
    topic.partitions.len()
}

#[test]
fn a_topic_grows_and_keeps_what_it_held() {
    let (_dir, broker) = start_broker("");
    let data_dir = broker.data_dir.clone();
    let address = broker.address;
    let mut client = RawClient::connect(address);
    assert_eq!(create_topic(&mut client, "t", 2, 1, false), 0);
    assert_eq!(produce_values(&mut client, "t", 0, &[b"a", b"b"]).0, 0);

    assert_eq!(create_partitions(address, "t", 4, None, true), 0);
    assert_eq!(
        partition_count(address, "t"),
        2,
        "validate_only creates nothing"
    );
    assert_eq!(
        create_partitions(address, "t", 4, Some(vec![1, 1]), false),
        0
    );
    assert_eq!(partition_count(address, "t"), 4);
    assert_eq!(produce_values(&mut client, "t", 3, &[b"c"]), (0, 0));
    assert_eq!(
        list_offset(&mut client, "t", 0, -1),
        (0, 2),
        "partition 0 kept its records"
    );

    let invalid = ResponseError::InvalidPartitions.code();
    assert_eq!(create_partitions(address, "t", 4, None, false), invalid);
    assert_eq!(create_partitions(address, "t", 3, None, false), invalid);
    assert_eq!(
        create_partitions(address, "nowhere", 5, None, false),
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        create_partitions(address, "t", 5, Some(vec![2]), false),
        ResponseError::InvalidReplicaAssignment.code()
    );
    assert_eq!(partition_count(address, "t"), 4);

    drop(client);
    assert_eq!(broker.terminate(), Some(0));
    let broker = BrokerProcess::start(&data_dir, "");
    assert_eq!(
        partition_count(broker.address, "t"),
        4,
        "the growth is durable"
    );
    let mut client = RawClient::connect(broker.address);
    assert_eq!(list_offset(&mut client, "t", 3, -1), (0, 1));
}

#[test]
fn in_a_cluster_new_partitions_get_the_topics_replication_factor_on_every_replica() {
    let cluster = cluster::Cluster::start(3, "\"auto.create.topics.enable\" = false\n");
    assert_eq!(cluster::create_topic(cluster.address(1), "t", 1, 2), 0);
    let (leader, ..) = cluster.wait_partition("t-0 in sync", "t", 0, |l, _, _, isr| {
        l >= 0 && isr.len() == 2
    });
    cluster.wait_topic_on(leader, "t");
    cluster.produce_ids(leader, "t", 0..2, 0);

    let via = if leader == 2 { 3 } else { 2 };
    let address = cluster.address(via);
    assert_eq!(create_partitions(address, "t", 3, None, true), 0);
    assert_eq!(
        create_partitions(address, "t", 1, None, false),
        ResponseError::InvalidPartitions.code()
    );
    assert_eq!(
        create_partitions(address, "nowhere", 3, None, false),
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        partition_count(cluster.controller_address, "t"),
        1,
        "validate_only and refusals create nothing"
    );
    assert_eq!(create_partitions(address, "t", 3, None, false), 0);
    assert_eq!(partition_count(cluster.controller_address, "t"), 3);
    for index in 1..3 {
        let (leader, _, replicas, _) =
            cluster.wait_partition("a new partition in sync", "t", index, |l, _, r, isr| {
                l >= 0 && r.len() == 2 && isr.len() == 2
            });
        for replica in replicas {
            let dir = cluster.data_dir(replica).join(format!("t-{index}"));
            cluster::wait_until("the new replica's dir", 600, || dir.is_dir().then_some(()));
        }
        cluster.wait_topic_on(leader, "t");
        assert_eq!(
            cluster::produce_id(
                cluster.address(leader),
                "t",
                index,
                100 + index as u64,
                -1,
                10_000
            ),
            (0, 0),
            "the new partition {index} takes records with acks=-1"
        );
    }
    // The old partition kept its records.
    let (leader, ..) = cluster.partition_state("t", 0).expect("t-0");
    let mut client = RawClient::connect(cluster.address(leader));
    assert_eq!(list_offset(&mut client, "t", 0, -1), (0, 2));
}
