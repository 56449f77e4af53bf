//! Group admin APIs on the wire (issue 17; librdkafka's 0081 DeleteGroups,
//! DeleteConsumerGroupOffsets and the authorized-operations sub-tests): DeleteGroups deletes an
//! empty group's committed offsets (GROUP_ID_NOT_FOUND for a group the coordinator does not know,
//! NON_EMPTY_GROUP for one with members); OffsetDelete deletes a group's offsets of topics its
//! members do not subscribe to (GROUP_SUBSCRIBED_TO_TOPIC for the others); both durably (the
//! deletions are tombstones in `__consumer_offsets`: a restarted broker loads them). Metadata,
//! DescribeCluster and DescribeGroups report every operation Kafka supports on the resource when
//! asked (no authorizer), and Kafka's INT32_MIN when not.

mod common;
mod group_support;

use std::net::SocketAddr;

use bytes::{BufMut, BytesMut};
use common::*;
use group_support::{offset_fetch, simple_commit};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, DescribeClusterRequest,
    DescribeClusterResponse, DescribeGroupsRequest, DescribeGroupsResponse, GroupId,
    JoinGroupRequest, JoinGroupResponse, MetadataRequest, MetadataResponse, OffsetDeleteRequest,
    OffsetDeleteResponse,
};
use kafka_protocol::protocol::StrBytes;

const CONFIG: &str = "\"group.initial.rebalance.delay.ms\" = 0\n";

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn delete_groups(address: SocketAddr, groups: &[&str]) -> Vec<(String, i16)> {
    let request = DeleteGroupsRequest::default()
        .with_groups_names(groups.iter().map(|g| GroupId(s(g))).collect());
    let response: DeleteGroupsResponse =
        RawClient::connect(address).call(ApiKey::DeleteGroups, 1, &request);
    response
        .results
        .iter()
        .map(|r| (r.group_id.to_string(), r.error_code))
        .collect()
}

/// OffsetDelete v0 of `partitions` (topic, partition): (group error, per-partition errors).
fn offset_delete(address: SocketAddr, group: &str, partitions: &[(&str, i32)]) -> (i16, Vec<i16>) {
    let topics = partitions
        .iter()
        .map(|(t, p)| {
            OffsetDeleteRequestTopic::default()
                .with_name(topic_name(t))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(*p)
                ])
        })
        .collect();
    let request = OffsetDeleteRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(topics);
    let response: OffsetDeleteResponse =
        RawClient::connect(address).call(ApiKey::OffsetDelete, 0, &request);
    let codes = response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect();
    (response.error_code, codes)
}

/// A consumer's subscription metadata (ConsumerProtocolSubscription v0) to `topics`.
fn subscription(topics: &[&str]) -> bytes::Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    buf.put_i32(topics.len() as i32);
    for t in topics {
        buf.put_i16(t.len() as i16);
        buf.put_slice(t.as_bytes());
    }
    buf.put_i32(-1); // user data: null
    buf.freeze()
}

/// JoinGroup v3 of a new consumer subscribed to `topics` (the connection is kept: the member
/// stays until its session times out).
fn join(address: SocketAddr, group: &str, topics: &[&str]) -> (RawClient, JoinGroupResponse) {
    let mut client = RawClient::connect(address);
    let request = JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(subscription(topics))]);
    let response = client.call(ApiKey::JoinGroup, 3, &request);
    (client, response)
}

/// A simple commit of offset 5, retried while the coordinator is not available yet (the offsets
/// topic is created on first use): its last error code.
fn commit(address: SocketAddr, group: &str, topic: &str, partition: i32) -> i16 {
    let not_yet = ResponseError::CoordinatorNotAvailable.code();
    let mut code = not_yet;
    for _ in 0..200 {
        // FindCoordinator creates the offsets topic on first use, as in Kafka.
        let _ = group_support::find_coordinator(address, group);
        code = simple_commit(address, group, topic, partition, 5);
        if code != not_yet && code != ResponseError::CoordinatorLoadInProgress.code() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    code
}

/// DescribeGroups' state of `group`.
fn described_state(address: SocketAddr, group: &str) -> String {
    let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
    let response: DescribeGroupsResponse =
        RawClient::connect(address).call(ApiKey::DescribeGroups, 4, &request);
    assert_eq!(response.groups[0].error_code, 0, "{response:?}");
    response.groups[0].group_state.to_string()
}

fn committed(address: SocketAddr, group: &str, topic: &str) -> Vec<i64> {
    offset_fetch(address, group, topic, &[0, 1])
        .expect("offsets")
        .into_values()
        .collect()
}

#[test]
fn delete_groups_and_offsets_as_kafka_and_durably() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let broker = BrokerProcess::start(&data, CONFIG);
    let address: SocketAddr = broker.bootstrap().parse().expect("address");
    for topic in ["t", "u"] {
        assert_eq!(
            create_topic(&mut RawClient::connect(address), topic, 2, 1, false),
            0
        );
    }
    for (group, topic, partition) in [
        ("empty", "t", 0),
        ("empty", "t", 1),
        ("busy", "t", 0),
        ("busy", "u", 0),
        ("busy", "u", 1),
    ] {
        assert_eq!(commit(address, group, topic, partition), 0);
    }
    assert_eq!(committed(address, "empty", "t"), vec![5, 5]);
    // A group that only committed offsets is Empty, as Kafka describes it; an unknown one Dead.
    assert_eq!(described_state(address, "empty"), "Empty");
    assert_eq!(described_state(address, "missing"), "Dead");

    let deleted = delete_groups(address, &["empty", "missing"]);
    let not_found = ResponseError::GroupIdNotFound.code();
    assert_eq!(
        deleted,
        vec![("empty".to_string(), 0), ("missing".to_string(), not_found)]
    );
    assert_eq!(committed(address, "empty", "t"), vec![-1, -1]);
    assert_eq!(described_state(address, "empty"), "Dead", "deleted");
    assert_eq!(offset_delete(address, "missing", &[("t", 0)]).0, not_found);

    // A member subscribed to t: the group is not empty, t's offsets stay, u's go.
    let (_member, joined) = join(address, "busy", &["t"]);
    assert_eq!(joined.error_code, 0, "{joined:?}");
    let non_empty = ResponseError::NonEmptyGroup.code();
    assert_eq!(
        delete_groups(address, &["busy"]),
        vec![("busy".to_string(), non_empty)]
    );
    let subscribed = ResponseError::GroupSubscribedToTopic.code();
    assert_eq!(
        offset_delete(address, "busy", &[("t", 0), ("u", 0)]),
        (0, vec![subscribed, 0])
    );
    assert_eq!(committed(address, "busy", "t"), vec![5, -1]);
    assert_eq!(committed(address, "busy", "u"), vec![-1, 5]);

    // Durable: a restarted coordinator loads the tombstones.
    assert_eq!(broker.terminate(), Some(0));
    let broker = BrokerProcess::start(&data, CONFIG);
    let address: SocketAddr = broker.bootstrap().parse().expect("address");
    let loaded = poll_until(200, std::time::Duration::from_millis(50), || {
        offset_fetch(address, "busy", "u", &[0, 1]).ok()
    });
    let loaded = loaded.expect("the restarted coordinator answers OffsetFetch");
    assert_eq!(loaded.into_values().collect::<Vec<_>>(), vec![-1, 5]);
    assert_eq!(committed(address, "empty", "t"), vec![-1, -1]);
    assert_eq!(committed(address, "busy", "t"), vec![5, -1]);
    // Loaded from the log, the group is known only by its committed offsets: Empty.
    assert_eq!(described_state(address, "busy"), "Empty");
    // Without members now: the group is deleted whole.
    assert_eq!(
        delete_groups(address, &["busy"]),
        vec![("busy".to_string(), 0)]
    );
    assert_eq!(committed(address, "busy", "u"), vec![-1, -1]);
    assert!(!broker.log_text().contains("panicked"));
}

/// Kafka's `AclOperation` codes as a bit field.
fn bits(codes: &[i32]) -> i32 {
    codes.iter().fold(0, |field, code| field | (1 << code))
}

#[test]
fn authorized_operations_are_every_supported_one_when_asked() {
    let (_dir, broker) = start_broker(CONFIG);
    let address = broker.address;
    assert_eq!(
        create_topic(&mut RawClient::connect(address), "t", 1, 1, false),
        0
    );
    assert_eq!(commit(address, "g", "t", 0), 0);
    let (
        read,
        write,
        create,
        delete,
        alter,
        describe,
        cluster_action,
        describe_configs,
        alter_configs,
        idempotent_write,
    ) = (3, 4, 5, 6, 7, 8, 9, 10, 11, 12);
    let metadata = |asked: bool| -> MetadataResponse {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name("t")))
            ]))
            .with_include_topic_authorized_operations(asked)
            .with_include_cluster_authorized_operations(asked);
        RawClient::connect(address).call(ApiKey::Metadata, 8, &request)
    };
    let topic_ops = bits(&[
        read,
        write,
        create,
        delete,
        alter,
        describe,
        describe_configs,
        alter_configs,
    ]);
    let cluster_ops = bits(&[
        create,
        alter,
        describe,
        cluster_action,
        describe_configs,
        alter_configs,
        idempotent_write,
    ]);
    let asked = metadata(true);
    assert_eq!(asked.topics[0].topic_authorized_operations, topic_ops);
    assert_eq!(asked.cluster_authorized_operations, cluster_ops);
    let not_asked = metadata(false);
    assert_eq!(not_asked.topics[0].topic_authorized_operations, i32::MIN);
    assert_eq!(not_asked.cluster_authorized_operations, i32::MIN);

    for (asked, expected) in [(true, cluster_ops), (false, i32::MIN)] {
        let request =
            DescribeClusterRequest::default().with_include_cluster_authorized_operations(asked);
        let response: DescribeClusterResponse =
            RawClient::connect(address).call(ApiKey::DescribeCluster, 0, &request);
        assert_eq!(response.cluster_authorized_operations, expected);
    }
    let (_member, joined) = join(address, "g", &["t"]);
    assert_eq!(joined.error_code, 0);
    for (asked, expected) in [(true, bits(&[read, delete, describe])), (false, i32::MIN)] {
        let request = DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(s("g"))])
            .with_include_authorized_operations(asked);
        let response: DescribeGroupsResponse =
            RawClient::connect(address).call(ApiKey::DescribeGroups, 3, &request);
        assert_eq!(response.groups[0].authorized_operations, expected);
    }
}
