//! Consumer groups on a single node (RF 1 `__consumer_offsets`): librdkafka's auto commit and
//! manual commit as OffsetFetch shows them, committed offsets across a broker restart, the
//! classic protocol's errors on the wire (MEMBER_ID_REQUIRED, fencing), malformed requests,
//! Python confluent-kafka in a group.

mod common;
mod group_support;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use group_support::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;

const CONFIG: &str = "\"group.initial.rebalance.delay.ms\" = 0\n\"group.min.session.timeout.ms\" = 1000\n\"offsets.topic.num.partitions\" = 3\n";

fn produce_strings(client: &mut RawClient, topic: &str, partition: i32, values: &[String]) {
    let values: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
    assert_eq!(produce_values(client, topic, partition, &values).0, 0);
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn consumer(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config.create().expect("consumer")
}

/// Polls until `count` messages arrived (bounded): their offsets.
fn consume(consumer: &BaseConsumer, count: usize) -> Vec<i64> {
    let mut offsets = Vec::new();
    for _ in 0..600 {
        if offsets.len() >= count {
            break;
        }
        if let Some(result) = consumer.poll(Duration::from_millis(100)) {
            offsets.push(result.expect("message").offset());
        }
    }
    assert_eq!(offsets.len(), count, "consumed {offsets:?}");
    offsets
}

fn committed(broker: &BrokerProcess, group: &str, topic: &str) -> i64 {
    let address = broker.bootstrap().parse().expect("address");
    let fetched = poll_until(200, Duration::from_millis(50), || {
        offset_fetch(address, group, topic, &[0]).ok()
    })
    .expect("OffsetFetch answers");
    fetched[&0]
}

fn wait_committed(broker: &BrokerProcess, group: &str, topic: &str, expected: i64) {
    let got = poll_until(400, Duration::from_millis(50), || {
        (committed(broker, group, topic) == expected).then_some(())
    });
    assert!(
        got.is_some(),
        "committed offset of {group} stays {} instead of {expected}",
        committed(broker, group, topic)
    );
}

#[test]
fn librdkafka_auto_and_manual_commits_show_in_offset_fetch_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let broker = BrokerProcess::start(&data, CONFIG);
    let mut client = RawClient::connect(broker.bootstrap().parse().expect("address"));
    assert_eq!(create_topic(&mut client, "events", 1, 1, false), 0);
    produce_strings(
        &mut client,
        "events",
        0,
        &(0..10).map(|i| format!("v{i}")).collect::<Vec<_>>(),
    );
    let bootstrap = broker.bootstrap();

    // Auto commit with automatic offset store: everything consumed gets committed (offset of
    // the next message to read, i.e. last + 1).
    let auto = consumer(
        &bootstrap,
        "auto",
        &[
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "100"),
        ],
    );
    auto.subscribe(&["events"]).expect("subscribe");
    assert_eq!(consume(&auto, 10), (0..10).collect::<Vec<_>>());
    wait_committed(&broker, "auto", "events", 10);

    // Auto commit with manual offset store: only what the application stored is committed.
    let stored = consumer(
        &bootstrap,
        "stored",
        &[
            ("enable.auto.commit", "true"),
            ("enable.auto.offset.store", "false"),
            ("auto.commit.interval.ms", "100"),
        ],
    );
    stored.subscribe(&["events"]).expect("subscribe");
    let mut seven = None;
    for _ in 0..600 {
        if let Some(message) = stored.poll(Duration::from_millis(100)) {
            let message = message.expect("message");
            if message.offset() == 6 {
                stored.store_offset_from_message(&message).expect("store");
                seven = Some(());
                break;
            }
        }
    }
    assert!(seven.is_some(), "offset 6 was consumed");
    wait_committed(&broker, "stored", "events", 7);

    // Manual commit: nothing is committed until the application commits; commit_message commits
    // that message's offset + 1, a commit of the consumer state commits the position.
    let manual = consumer(&bootstrap, "manual", &[("enable.auto.commit", "false")]);
    manual.subscribe(&["events"]).expect("subscribe");
    let mut kept = None;
    let mut count = 0;
    for _ in 0..600 {
        if count == 10 {
            break;
        }
        if let Some(message) = manual.poll(Duration::from_millis(100)) {
            let message = message.expect("message");
            count += 1;
            if message.offset() == 4 {
                manual
                    .commit_message(&message, CommitMode::Sync)
                    .expect("commit");
                kept = Some(());
            }
        }
    }
    assert_eq!((count, kept), (10, Some(())));
    assert_eq!(
        committed(&broker, "manual", "events"),
        5,
        "a sync commit is visible at once"
    );
    manual
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    assert_eq!(committed(&broker, "manual", "events"), 10);
    drop((auto, stored, manual));

    // The offsets live in __consumer_offsets: a SIGKILLed and restarted broker still has them.
    broker.kill();
    let broker = BrokerProcess::start(&data, CONFIG);
    assert_eq!(committed(&broker, "auto", "events"), 10);
    assert_eq!(committed(&broker, "stored", "events"), 7);
    assert_eq!(committed(&broker, "manual", "events"), 10);
    assert_eq!(committed(&broker, "nobody", "events"), -1);
}

fn join(
    client: &mut RawClient,
    version: i16,
    group: &str,
    member_id: &str,
    session_timeout_ms: i32,
) -> JoinGroupResponse {
    let request = JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(session_timeout_ms)
        .with_rebalance_timeout_ms(if version >= 1 { 3000 } else { -1 })
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"meta"))]);
    let response = client.call(ApiKey::JoinGroup, version, &request);
    response
}

fn sync(
    client: &mut RawClient,
    group: &str,
    member_id: &str,
    generation_id: i32,
    assignments: &[(&str, &'static [u8])],
) -> SyncGroupResponse {
    let request = SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation_id)
        .with_member_id(s(member_id))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(Bytes::from_static(a))
                })
                .collect(),
        );
    let response = client.call(ApiKey::SyncGroup, 3, &request);
    response
}

fn heartbeat(client: &mut RawClient, group: &str, member_id: &str, generation_id: i32) -> i16 {
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation_id)
        .with_member_id(s(member_id));
    let response: HeartbeatResponse = client.call(ApiKey::Heartbeat, 3, &request);
    response.error_code
}

fn commit(
    client: &mut RawClient,
    group: &str,
    member_id: &str,
    generation_id: i32,
    offset: i64,
) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation_id)
        .with_member_id(s(member_id))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name("t"))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(s("meta")))])]);
    let response: OffsetCommitResponse = client.call(ApiKey::OffsetCommit, 8, &request);
    response.topics[0].partitions[0].error_code
}

#[test]
fn classic_protocol_on_the_wire_member_id_required_fencing_and_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), CONFIG);
    let address = broker.bootstrap().parse().expect("address");
    // The first FindCoordinator creates __consumer_offsets; the coordinator then loads it.
    let (code, node) = poll_until(200, Duration::from_millis(50), || {
        let (code, node) = find_coordinator(address, "g");
        (code == 0).then_some((code, node))
    })
    .expect("a coordinator");
    assert_eq!((code, node), (0, 1));
    // Commits go to a partition that exists (Kafka refuses others: UNKNOWN_TOPIC_OR_PARTITION).
    assert_eq!(
        create_topic(&mut RawClient::connect(address), "t", 2, 1, false),
        0
    );
    let metadata = {
        let mut c = RawClient::connect(address);
        c.send(
            ApiKey::Metadata,
            12,
            &kafka_protocol::messages::MetadataRequest::default().with_topics(None),
        );
        decode_response::<kafka_protocol::messages::MetadataResponse>(
            ApiKey::Metadata,
            12,
            c.read_frame().expect("Metadata"),
        )
        .1
    };
    let offsets_topic = metadata
        .topics
        .iter()
        .find(|t| {
            t.name
                .as_ref()
                .is_some_and(|n| n.as_str() == "__consumer_offsets")
        })
        .expect("the offsets topic exists");
    assert!(offsets_topic.is_internal);
    assert_eq!(offsets_topic.partitions.len(), 3);

    let mut client = RawClient::connect(address);
    let first = poll_until(200, Duration::from_millis(50), || {
        let r = join(&mut client, 5, "g", "", 2000);
        (r.error_code != ResponseError::CoordinatorLoadInProgress.code()).then_some(r)
    })
    .expect("loaded");
    // KIP-394: a v4+ member without an id is handed one and must join again with it.
    assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
    assert!(
        first.member_id.as_str().starts_with("kaos-test-"),
        "{:?}",
        first.member_id
    );
    let member = first.member_id.as_str().to_string();
    let joined = join(&mut client, 5, "g", &member, 2000);
    assert_eq!((joined.error_code, joined.generation_id), (0, 1));
    assert_eq!(joined.leader.as_str(), member);
    assert_eq!(joined.members.len(), 1);
    assert_eq!(joined.members[0].metadata, Bytes::from_static(b"meta"));
    assert_eq!(
        joined.protocol_name.as_ref().map(|p| p.as_str()),
        Some("range")
    );
    let synced = sync(&mut client, "g", &member, 1, &[(&member, b"assignment")]);
    assert_eq!(
        (synced.error_code, synced.assignment),
        (0, Bytes::from_static(b"assignment"))
    );
    assert_eq!(heartbeat(&mut client, "g", &member, 1), 0);

    // DescribeGroups and ListGroups show the stable group; an unknown group is Dead.
    {
        use kafka_protocol::messages::{
            DescribeGroupsRequest, DescribeGroupsResponse, ListGroupsRequest, ListGroupsResponse,
        };
        let request = DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(s("g")), GroupId(s("nobody"))]);
        let described: DescribeGroupsResponse = client.call(ApiKey::DescribeGroups, 4, &request);
        let g = &described.groups[0];
        assert_eq!(
            (
                g.error_code,
                g.group_state.as_str(),
                g.protocol_type.as_str(),
                g.protocol_data.as_str()
            ),
            (0, "Stable", "consumer", "range")
        );
        assert_eq!(g.members.len(), 1);
        assert_eq!(g.members[0].member_id.as_str(), member);
        assert_eq!(g.members[0].client_id.as_str(), "kaos-test");
        assert_eq!(
            g.members[0].member_assignment,
            Bytes::from_static(b"assignment")
        );
        assert_eq!(described.groups[1].group_state.as_str(), "Dead");
        let listed: ListGroupsResponse =
            client.call(ApiKey::ListGroups, 4, &ListGroupsRequest::default());
        let listed: Vec<(&str, &str)> = listed
            .groups
            .iter()
            .map(|g| (g.group_id.as_str(), g.group_state.as_str()))
            .collect();
        assert_eq!(listed, vec![("g", "Stable")]);
    }

    // Fencing: a stale generation, an unknown member, an unknown group.
    assert_eq!(
        heartbeat(&mut client, "g", &member, 0),
        ResponseError::IllegalGeneration.code()
    );
    assert_eq!(
        heartbeat(&mut client, "g", "stranger", 1),
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(
        heartbeat(&mut client, "other", &member, 1),
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(
        sync(&mut client, "g", &member, 7, &[]).error_code,
        ResponseError::IllegalGeneration.code()
    );
    assert_eq!(
        commit(&mut client, "g", &member, 0, 5),
        ResponseError::IllegalGeneration.code()
    );
    assert_eq!(
        commit(&mut client, "g", "stranger", 1, 5),
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(commit(&mut client, "g", &member, 1, 5), 0);
    assert_eq!(
        offset_fetch(address, "g", "t", &[0, 1]),
        Ok(BTreeMap::from([(0, 5), (1, -1)]))
    );
    // OffsetFetch v8 (several groups in one request) sees the same.
    {
        let request = OffsetFetchRequest::default().with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s("g")))
                .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                    .with_name(topic_name("t"))
                    .with_partition_indexes(vec![0])])),
            OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s("")))
                .with_topics(None),
        ]);
        let response: OffsetFetchResponse = client.call(ApiKey::OffsetFetch, 8, &request);
        assert_eq!(response.groups[0].error_code, 0);
        assert_eq!(
            response.groups[0].topics[0].partitions[0].committed_offset,
            5
        );
        assert_eq!(
            response.groups[1].error_code,
            ResponseError::InvalidGroupId.code()
        );
    }

    // A second member joins: the first learns of the rebalance from its heartbeat, and a
    // commit during the join phase with the current generation is still accepted.
    let mut other = RawClient::connect(address);
    let second_id = join(&mut other, 5, "g", "", 2000)
        .member_id
        .as_str()
        .to_string();
    let request = JoinGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_session_timeout_ms(2000)
        .with_rebalance_timeout_ms(3000)
        .with_member_id(s(&second_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::new())]);
    other.send(ApiKey::JoinGroup, 5, &request);
    // (The join travels on another connection: wait until the coordinator has it.)
    let rebalancing = poll_until(200, Duration::from_millis(20), || {
        (heartbeat(&mut client, "g", &member, 1) == ResponseError::RebalanceInProgress.code())
            .then_some(())
    });
    assert!(
        rebalancing.is_some(),
        "the heartbeat never reported the rebalance"
    );
    assert_eq!(commit(&mut client, "g", &member, 1, 6), 0);
    assert_eq!(
        sync(&mut client, "g", &member, 1, &[]).error_code,
        ResponseError::RebalanceInProgress.code()
    );
    let rejoined = join(&mut client, 5, "g", &member, 2000);
    let (_, second): (i32, JoinGroupResponse) = decode_response(
        ApiKey::JoinGroup,
        5,
        other.read_frame().expect("second join"),
    );
    assert_eq!((rejoined.generation_id, second.generation_id), (2, 2));
    assert_eq!(
        (rejoined.members.len(), second.members.len()),
        (2, 0),
        "only the leader gets the members"
    );
    // The second member leaves; the leader rejoins alone.
    let request = LeaveGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_member_id(s(&second_id));
    let left: LeaveGroupResponse = other.call(ApiKey::LeaveGroup, 1, &request);
    assert_eq!(left.error_code, 0);
    assert_eq!(
        heartbeat(&mut client, "g", &member, 2),
        ResponseError::RebalanceInProgress.code()
    );
    let alone = join(&mut client, 5, "g", &member, 2000);
    assert_eq!(
        (alone.error_code, alone.generation_id, alone.members.len()),
        (0, 3, 1)
    );
    // The member stops heartbeating: after its 2 s session it is gone. (Probed with a wrong
    // generation, which is refused before it could refresh the session.)
    assert_eq!(
        heartbeat(&mut client, "g", &member, 99),
        ResponseError::IllegalGeneration.code()
    );
    let gone = poll_until(200, Duration::from_millis(50), || {
        let code = heartbeat(&mut RawClient::connect(address), "g", &member, 99);
        (code == ResponseError::UnknownMemberId.code()).then_some(())
    });
    assert!(gone.is_some(), "the silent member was never removed");

    // JoinGroup v0-3 (no MEMBER_ID_REQUIRED) joins at once; bad session timeouts are refused.
    let old = join(&mut client, 3, "old", "", 2000);
    assert_eq!((old.error_code, old.generation_id), (0, 1));
    assert_eq!(
        join(&mut client, 3, "old", "", 10).error_code,
        ResponseError::InvalidSessionTimeout.code()
    );
    assert_eq!(
        join(&mut client, 5, "", "", 2000).error_code,
        ResponseError::InvalidGroupId.code()
    );
    // Another protocol type than the group's is inconsistent.
    let request = JoinGroupRequest::default()
        .with_group_id(GroupId(s("old")))
        .with_session_timeout_ms(2000)
        .with_rebalance_timeout_ms(3000)
        .with_protocol_type(s("connect"))
        .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(s("x"))]);
    let inconsistent: JoinGroupResponse = client.call(ApiKey::JoinGroup, 3, &request);
    assert_eq!(
        inconsistent.error_code,
        ResponseError::InconsistentGroupProtocol.code()
    );

    // A truncated JoinGroup closes the connection (Kafka's answer to a request it cannot parse).
    let mut bad = RawClient::connect(address);
    let mut body = Vec::new();
    body.extend_from_slice(&(ApiKey::JoinGroup as i16).to_be_bytes());
    body.extend_from_slice(&5i16.to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
    body.extend_from_slice(&[0, 5, b'g']); // group id claims 5 bytes, has 1
    bad.send_frame(&body);
    assert!(bad.is_closed_by_broker());
    // The broker is still serving.
    assert_eq!(
        heartbeat(
            &mut RawClient::connect(address),
            "old",
            old.member_id.as_str(),
            1
        ),
        0
    );
    assert!(!broker.log_text().contains("panicked"));
}

/// Kafka writes a generation's assignment to `__consumer_offsets` (the group metadata record,
/// key v2) before it answers the leader's SyncGroup (`GroupMetadataManager.storeGroup`); the
/// members' SyncGroups are answered only then, which gives a follower's SyncGroup the time to
/// arrive before the leader can start the next rebalance (librdkafka's 0113 counts on it).
#[test]
fn the_assignment_is_in_the_offsets_log_when_the_leaders_sync_group_is_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), CONFIG);
    let address = broker.bootstrap().parse().expect("address");
    poll_until(200, Duration::from_millis(50), || {
        (find_coordinator(address, "stored").0 == 0).then_some(())
    })
    .expect("a coordinator");
    let mut client = RawClient::connect(address);
    let first = poll_until(200, Duration::from_millis(50), || {
        let r = join(&mut client, 5, "stored", "", 2000);
        (r.error_code != ResponseError::CoordinatorLoadInProgress.code()).then_some(r)
    })
    .expect("loaded");
    let member = first.member_id.as_str().to_string();
    let joined = join(&mut client, 5, "stored", &member, 2000);
    assert_eq!((joined.error_code, joined.generation_id), (0, 1));
    let synced = sync(&mut client, "stored", &member, 1, &[(&member, b"p0")]);
    assert_eq!(synced.error_code, 0);
    // Read right after the answer: the record is there (and below the HW).
    let partition = broker::group::partition_for("stored", 3);
    let key = broker::group::records::group_metadata_key("stored");
    let stored: Vec<_> = fetch_all_keyed(&mut client, "__consumer_offsets", partition, 0)
        .into_iter()
        .filter(|(_, k, _)| k[..] == key[..])
        .map(|(_, k, v)| {
            broker::group::records::parse_group_metadata(&k, &v)
                .expect("a readable group metadata record")
                .expect("key v2")
                .1
        })
        .collect();
    assert_eq!(stored.len(), 1, "one generation stored: {stored:?}");
    let generation = &stored[0];
    assert_eq!(
        (generation.generation, generation.leader.as_deref()),
        (1, Some(member.as_str()))
    );
    assert_eq!(generation.protocol.as_deref(), Some("range"));
    assert_eq!(generation.members.len(), 1);
    assert_eq!(generation.members[0].assignment, Bytes::from_static(b"p0"));
    assert_eq!(
        generation.members[0].subscription,
        Bytes::from_static(b"meta")
    );
}

#[test]
fn python_confluent_kafka_consumes_in_a_group_and_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), CONFIG);
    let address = broker.bootstrap();
    let mut client = RawClient::connect(address.parse().expect("address"));
    assert_eq!(create_topic(&mut client, "py", 2, 1, false), 0);
    produce_strings(
        &mut client,
        "py",
        0,
        &(0..5).map(|i| format!("p0-{i}")).collect::<Vec<_>>(),
    );
    produce_strings(
        &mut client,
        "py",
        1,
        &(0..7).map(|i| format!("p1-{i}")).collect::<Vec<_>>(),
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/group_consumer.py");
    let mut python = ConsumerProcess::spawn(
        std::process::Command::new("python3").args([script, &address, "pygroup", "py", "12"]),
        dir.path(),
        "python",
    );
    let status = poll_until(1200, Duration::from_millis(50), || python.try_wait());
    let status = status.unwrap_or_else(|| {
        panic!(
            "the Python consumer did not finish; stderr:\n{}",
            python.stderr()
        )
    });
    assert!(
        status.success(),
        "Python consumer failed ({status}):\n{}",
        python.stderr()
    );
    let mut lines: Vec<String> = python.stdout().lines().map(str::to_string).collect();
    lines.sort();
    let mut expected: Vec<String> = (0..5)
        .map(|i| format!("0 {i} p0-{i}"))
        .chain((0..7).map(|i| format!("1 {i} p1-{i}")))
        .collect();
    expected.sort();
    assert_eq!(lines, expected);
    let committed = offset_fetch(address.parse().expect("address"), "pygroup", "py", &[0, 1]);
    assert_eq!(committed, Ok(BTreeMap::from([(0, 5), (1, 7)])));
}
