//! Static group membership (KIP-345, issue 17) with librdkafka (the rdkafka crate): a static
//! member (`group.instance.id`) that restarts within its session timeout gets its assignment back
//! without a rebalance (the other member sees no revocation); a second process with the same
//! instance id fences the first, which gets FENCED_INSTANCE_ID as a fatal error. On the wire:
//! LeaveGroup v4 removes a static member by its instance id, and a stale member id of an
//! instance is answered FENCED_INSTANCE_ID.

mod common;
mod group_support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::{
    ApiKey, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientContext;

const CONFIG: &str = "\"group.initial.rebalance.delay.ms\" = 0\n\"group.min.session.timeout.ms\" = 1000\n\"offsets.topic.num.partitions\" = 3\n";

/// Counts the rebalance callbacks a consumer gets.
#[derive(Default, Clone)]
struct Counting {
    revokes: Arc<AtomicUsize>,
    assigns: Arc<AtomicUsize>,
}

impl ClientContext for Counting {}

impl ConsumerContext for Counting {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(_) => self.revokes.fetch_add(1, Ordering::SeqCst),
            Rebalance::Assign(_) => self.assigns.fetch_add(1, Ordering::SeqCst),
            Rebalance::Error(_) => 0,
        };
    }
}

fn static_consumer(
    bootstrap: &str,
    group: &str,
    instance: &str,
) -> (BaseConsumer<Counting>, Counting) {
    let context = Counting::default();
    let consumer: BaseConsumer<Counting> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("group.instance.id", instance)
        .set("client.id", instance)
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "500")
        .set("auto.offset.reset", "earliest")
        .create_with_context(context.clone())
        .expect("consumer");
    consumer.subscribe(&["static"]).expect("subscribe");
    (consumer, context)
}

fn assignment(consumer: &BaseConsumer<Counting>) -> BTreeSet<i32> {
    consumer
        .assignment()
        .map(|list| list.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Polls every consumer (bounded) until `done` holds.
fn poll_until_true(
    consumers: &[&BaseConsumer<Counting>],
    what: &str,
    mut done: impl FnMut() -> bool,
) {
    for _ in 0..300 {
        for consumer in consumers {
            let _ = consumer.poll(Duration::from_millis(50));
        }
        if done() {
            return;
        }
    }
    panic!("{what}: not within the bound");
}

#[test]
fn a_restarted_static_member_keeps_its_assignment_and_a_duplicate_is_fenced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), CONFIG);
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "static", 4, 1, false), 0);
    let bootstrap = broker.bootstrap();

    let (one, one_events) = static_consumer(&bootstrap, "g", "one");
    let (two, _) = static_consumer(&bootstrap, "g", "two");
    poll_until_true(&[&one, &two], "both members assigned", || {
        let (a, b) = (assignment(&one), assignment(&two));
        !a.is_empty() && !b.is_empty() && a.len() + b.len() == 4
    });
    let before_two = assignment(&two);
    let revokes_before = one_events.revokes.load(Ordering::SeqCst);

    // Restart: a static member sends no LeaveGroup on close; its successor joins with the same
    // instance id within the session timeout.
    drop(two);
    let (two_again, _) = static_consumer(&bootstrap, "g", "two");
    poll_until_true(&[&one, &two_again], "the restarted member assigned", || {
        !assignment(&two_again).is_empty()
    });
    assert_eq!(
        assignment(&two_again),
        before_two,
        "the same partitions as before"
    );
    // A few more heartbeats of the other member: still no rebalance.
    for _ in 0..20 {
        let _ = one.poll(Duration::from_millis(100));
        let _ = two_again.poll(Duration::from_millis(10));
    }
    assert_eq!(
        one_events.revokes.load(Ordering::SeqCst),
        revokes_before,
        "the other member saw no rebalance"
    );

    // A duplicate: a second live process with instance id "two" takes over, the older one is
    // fenced.
    let (duplicate, _) = static_consumer(&bootstrap, "g", "two");
    poll_until_true(
        &[&one, &two_again, &duplicate],
        "the older instance fenced",
        || two_again.client().fatal_error().is_some() && !assignment(&duplicate).is_empty(),
    );
    let (code, reason) = two_again.client().fatal_error().expect("fatal error");
    assert_eq!(code, RDKafkaErrorCode::FencedInstanceId, "{reason}");
    assert_eq!(assignment(&duplicate), before_two);
    assert!(one.client().fatal_error().is_none());
}

fn join(client: &mut RawClient, member_id: &str, instance: &str) -> JoinGroupResponse {
    let request = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("wire")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(StrBytes::from_string(member_id.to_string()))
        .with_group_instance_id(Some(StrBytes::from_string(instance.to_string())))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(bytes::Bytes::from_static(b"m"))]);
    client.call(ApiKey::JoinGroup, 5, &request)
}

fn heartbeat(client: &mut RawClient, member_id: &str, generation: i32, instance: &str) -> i16 {
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("wire")))
        .with_generation_id(generation)
        .with_member_id(StrBytes::from_string(member_id.to_string()))
        .with_group_instance_id(Some(StrBytes::from_string(instance.to_string())));
    let response: HeartbeatResponse = client.call(ApiKey::Heartbeat, 3, &request);
    response.error_code
}

#[test]
fn on_the_wire_a_stale_instance_is_fenced_and_leave_group_v4_removes_by_instance_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), CONFIG);
    let address = broker.address;
    poll_until(200, Duration::from_millis(50), || {
        (group_support::find_coordinator(address, "wire").0 == 0).then_some(())
    })
    .expect("a coordinator");
    let mut client = RawClient::connect(address);
    // A static member joins without the MEMBER_ID_REQUIRED round (once the coordinator loaded).
    let first = poll_until(200, Duration::from_millis(50), || {
        let joined = join(&mut client, "", "i");
        (joined.error_code != ResponseError::CoordinatorLoadInProgress.code()).then_some(joined)
    })
    .expect("the coordinator loads");
    assert_eq!(first.error_code, 0, "{first:?}");
    let (old_id, generation) = (first.member_id.to_string(), first.generation_id);
    // Its restart: the same instance, a new member id, the old id fenced.
    let second = join(&mut client, "", "i");
    assert_eq!(second.error_code, 0, "{second:?}");
    assert_ne!(second.member_id.to_string(), old_id);
    assert_eq!(
        heartbeat(&mut client, &old_id, generation, "i"),
        ResponseError::FencedInstanceId.code()
    );
    let stale = join(&mut client, &old_id, "i");
    assert_eq!(stale.error_code, ResponseError::FencedInstanceId.code());

    // LeaveGroup v4: by instance id alone, a stale member id of an instance, an unknown instance.
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("wire")))
        .with_members(vec![
            MemberIdentity::default()
                .with_member_id(StrBytes::from_string(old_id.clone()))
                .with_group_instance_id(Some(StrBytes::from_static_str("i"))),
            MemberIdentity::default()
                .with_member_id(StrBytes::from_static_str(""))
                .with_group_instance_id(Some(StrBytes::from_static_str("nobody"))),
            MemberIdentity::default()
                .with_member_id(StrBytes::from_static_str(""))
                .with_group_instance_id(Some(StrBytes::from_static_str("i"))),
        ]);
    let response: LeaveGroupResponse = client.call(ApiKey::LeaveGroup, 4, &leave);
    let codes: Vec<i16> = response.members.iter().map(|m| m.error_code).collect();
    assert_eq!(
        codes,
        [
            ResponseError::FencedInstanceId.code(),
            ResponseError::UnknownMemberId.code(),
            0
        ]
    );
    assert_eq!(
        heartbeat(
            &mut client,
            &second.member_id.to_string(),
            second.generation_id,
            "i"
        ),
        ResponseError::UnknownMemberId.code(),
        "the member left"
    );
}
