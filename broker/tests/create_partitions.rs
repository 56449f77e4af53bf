//! CreatePartitions on a single node (issue 17): a topic grows, the new partitions take records,
//! the old ones keep theirs, the growth survives a restart; `validate_only` changes nothing;
//! a count not above the current one, an unknown topic and an assignment to another node get
//! Kafka's error codes. In a cluster, a CreatePartitions sent to any broker reaches the
//! controller: the new partitions get the topic's replication factor and every replica. There,
//! CreateTopics with a manual assignment is refused as Kafka's controller refuses it (counts not
//! -1, a partition twice, gaps, replica lists of unequal length).

mod cluster;
mod common;

use std::net::SocketAddr;

use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse,
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
    let (_dir, broker, mut client) = start_broker_with_topic("", "t", 2);
    let data_dir = broker.data_dir.clone();
    let address = broker.address;
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
    let leader = cluster.create_in_sync("t", 2).leader;
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

/// CreatePartitions with explicit replica lists through broker `via`: the error code.
fn create_partitions_on(address: SocketAddr, name: &str, count: i32, lists: &[&[i32]]) -> i16 {
    let assignments = lists
        .iter()
        .map(|ids| {
            CreatePartitionsAssignment::default()
                .with_broker_ids(ids.iter().map(|&id| BrokerId(id)).collect())
        })
        .collect();
    let topic = CreatePartitionsTopic::default()
        .with_name(topic_name(name))
        .with_count(count)
        .with_assignments(Some(assignments));
    let request = CreatePartitionsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(10_000);
    let response: CreatePartitionsResponse = call(address, ApiKey::CreatePartitions, 3, &request);
    response.results[0].error_code
}

#[test]
fn in_a_cluster_explicit_assignments_must_match_the_replication_factor_and_known_brokers() {
    let cluster = cluster::Cluster::start(3, "\"auto.create.topics.enable\" = false\n");
    assert_eq!(cluster::create_topic(cluster.address(1), "t", 1, 2), 0);
    let invalid = ResponseError::InvalidReplicaAssignment.code();
    let address = cluster.address(2);
    for lists in [&[&[1][..]][..], &[&[1, 2, 3]], &[&[1, 1]], &[&[1, 9]]] {
        assert_eq!(
            create_partitions_on(address, "t", 2, lists),
            invalid,
            "{lists:?} for replication factor 2"
        );
    }
    assert_eq!(
        partition_count(cluster.controller_address, "t"),
        1,
        "refused assignments create nothing"
    );
    assert_eq!(create_partitions_on(address, "t", 2, &[&[3, 1]]), 0);
    let (_, _, replicas, _) =
        cluster.wait_partition("t-1 placed", "t", 1, |_, _, r, _| !r.is_empty());
    assert_eq!(replicas, vec![3, 1], "placed as asked");
}

/// CreateTopics of `name` with `(partition, replicas)` assignments and the given counts: the
/// error code and message.
fn create_assigned(
    address: SocketAddr,
    name: &str,
    counts: (i32, i16),
    lists: &[(i32, &[i32])],
) -> (i16, Option<String>) {
    let assignments = lists
        .iter()
        .map(|(partition, ids)| {
            CreatableReplicaAssignment::default()
                .with_partition_index(*partition)
                .with_broker_ids(ids.iter().map(|&id| BrokerId(id)).collect())
        })
        .collect();
    let topic = CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(counts.0)
        .with_replication_factor(counts.1)
        .with_assignments(assignments);
    let request = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(10_000);
    let response: CreateTopicsResponse = call(address, ApiKey::CreateTopics, 5, &request);
    let result = &response.topics[0];
    (
        result.error_code,
        result.error_message.as_ref().map(|m| m.to_string()),
    )
}

#[test]
fn in_a_cluster_create_topics_takes_a_manual_assignment_as_kafka_does() {
    let cluster = cluster::Cluster::start(3, "\"auto.create.topics.enable\" = false\n");
    let address = cluster.address(2);
    let invalid = ResponseError::InvalidReplicaAssignment.code();
    let refused: [((i32, i16), &[(i32, &[i32])], i16, &str); 5] = [
        ((2, -1), &[(0, &[1, 2])], ResponseError::InvalidRequest.code(), "numPartitions was not set to -1"),
        ((-1, 2), &[(0, &[1, 2])], ResponseError::InvalidRequest.code(), "replication factor was not set to -1"),
        ((-1, -1), &[(0, &[1, 2]), (0, &[2, 3])], invalid, "multiple manual partition assignments for partition 0"),
        ((-1, -1), &[(0, &[1, 2]), (2, &[2, 3])], invalid, "consecutive 0-based"),
        ((-1, -1), &[(0, &[1, 2]), (1, &[2, 3, 1])], invalid, "a partition with 3 replica(s), but this is not consistent with previous partitions, which have 2"),
    ];
    for (counts, lists, code, message) in refused {
        let (got, text) = create_assigned(address, "t", counts, lists);
        assert_eq!(got, code, "{counts:?} {lists:?}: {text:?}");
        assert!(
            text.as_deref().is_some_and(|t| t.contains(message)),
            "{counts:?} {lists:?}: {text:?}"
        );
    }
    assert!(
        cluster::metadata(cluster.controller_address)
            .topics
            .iter()
            .all(|t| t.name.as_ref().is_none_or(|n| n.as_str() != "t")),
        "refused assignments create nothing"
    );
    // Given out of order, placed by partition index.
    let (code, text) = create_assigned(address, "t", (-1, -1), &[(1, &[3, 1]), (0, &[2, 3])]);
    assert_eq!(code, 0, "{text:?}");
    for (partition, expected) in [(0, vec![2, 3]), (1, vec![3, 1])] {
        let (_, _, replicas, _) =
            cluster.wait_partition("placed", "t", partition, |_, _, r, _| !r.is_empty());
        assert_eq!(replicas, expected, "partition {partition}");
    }
}
