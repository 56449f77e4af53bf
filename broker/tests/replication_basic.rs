//! Replication basics with real processes: a controller and three brokers; topics created through
//! any broker (forwarded to the controller); acks=all through the ISR; a leader SIGKILL elects a
//! new leader with a higher epoch that serves everything acknowledged; the controller survives
//! its own SIGKILL with its state intact.

mod cluster;
mod common;

use cluster::*;

const CONFIG: &str = "\"broker.session.timeout.ms\" = 3000\n\"broker.heartbeat.interval.ms\" = 200\n\"replica.fetch.wait.max.ms\" = 100\n\"min.insync.replicas\" = 2\n";

#[test]
fn leader_sigkill_elects_from_the_isr_and_keeps_acknowledged_messages() {
    let mut cluster = Cluster::start(3, CONFIG);
    assert_eq!(create_topic(cluster.address(2), "basic", 1, 3), 0);
    let (leader, epoch, replicas, _) =
        cluster.wait_partition("leader elected", "basic", 0, |l, _, _, isr| {
            l >= 0 && isr.len() == 3
        });
    assert_eq!(replicas.len(), 3);
    cluster.wait_topic_on(leader, "basic");
    for id in 0..20u64 {
        let (code, offset) = produce_id(cluster.address(leader), "basic", 0, id, -1, 10_000);
        assert_eq!((code, offset), (0, id as i64), "acks=all produce {id}");
    }
    // A follower refuses produce with NOT_LEADER_OR_FOLLOWER (6).
    let follower = *replicas.iter().find(|&&r| r != leader).expect("a follower");
    assert_eq!(
        produce_id(cluster.address(follower), "basic", 0, 99, -1, 1000).0,
        6
    );

    cluster.kill_broker(leader);
    let (new_leader, new_epoch, _, isr) =
        cluster.wait_partition("failover", "basic", 0, |l, e, _, _| {
            l >= 0 && l != leader && e > epoch
        });
    assert!(new_epoch > epoch);
    assert!(
        !isr.contains(&leader),
        "the dead leader left the ISR: {isr:?}"
    );
    cluster.wait_topic_on(new_leader, "basic");
    let ids = wait_until("the new leader serves all 20", 600, || {
        let ids = read_ids(cluster.address(new_leader), "basic", 0);
        (ids.len() >= 20).then_some(ids)
    });
    for id in 0..20u64 {
        assert_eq!(ids[id as usize], (id as i64, Some(id)));
    }
    // The cluster keeps accepting acks=all with 2 of 3 in sync (min.insync.replicas = 2).
    let (code, offset) = produce_id(cluster.address(new_leader), "basic", 0, 20, -1, 10_000);
    assert_eq!((code, offset), (0, 20));

    // The old leader returns as a follower and rejoins the ISR.
    cluster.start_broker(leader);
    cluster.wait_partition("old leader back in the ISR", "basic", 0, |_, _, _, isr| {
        isr.contains(&leader)
    });
}

#[test]
fn controller_survives_its_own_sigkill_with_state_intact() {
    let mut cluster = Cluster::start(3, CONFIG);
    assert_eq!(create_topic(cluster.address(1), "durable", 3, 3), 0);
    for p in 0..3 {
        cluster.wait_partition("leader elected", "durable", p, |l, _, _, _| l >= 0);
    }
    let before: Vec<_> = (0..3)
        .map(|p| cluster.partition_state("durable", p).expect("state"))
        .collect();
    let topic_id = |c: &Cluster| {
        c.controller_metadata()
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "durable"))
            .map(|t| t.topic_id)
    };
    let id_before = topic_id(&cluster);
    cluster.kill_controller();
    cluster.restart_controller();
    cluster.wait_brokers_live(3);
    assert_eq!(topic_id(&cluster), id_before);
    for (p, state) in before.iter().enumerate() {
        let after = cluster
            .partition_state("durable", p as i32)
            .expect("state after restart");
        assert_eq!(after.0, state.0, "leader of partition {p}");
        assert_eq!(after.1, state.1, "leader epoch of partition {p}");
        assert_eq!(after.2, state.2, "replicas of partition {p}");
    }
    // Brokers keep working with the restarted controller.
    let (leader, _, _, _) = cluster.partition_state("durable", 0).expect("state");
    cluster.wait_topic_on(leader, "durable");
    assert_eq!(
        produce_id(cluster.address(leader), "durable", 0, 1, -1, 10_000).0,
        0
    );
    // Creating a topic through a broker still works.
    assert_eq!(create_topic(cluster.address(3), "after-restart", 1, 2), 0);
    cluster.wait_partition("new topic leader", "after-restart", 0, |l, _, _, _| l >= 0);
}

#[test]
fn metadata_auto_creates_through_the_controller_with_the_default_replication_factor() {
    let config = format!("{CONFIG}\"default.replication.factor\" = 3\n\"num.partitions\" = 2\n");
    let cluster = Cluster::start(3, &config);
    let address = cluster.address(2);
    let request = kafka_protocol::messages::MetadataRequest::default()
        .with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(common::topic_name("auto"))),
        ]))
        .with_allow_auto_topic_creation(true);
    let topic = wait_until("auto-created topic with leaders", 600, || {
        let mut client = common::RawClient::connect(address);
        let correlation_id = client.send(kafka_protocol::messages::ApiKey::Metadata, 12, &request);
        let (got, response): (i32, kafka_protocol::messages::MetadataResponse) =
            common::decode_response(
                kafka_protocol::messages::ApiKey::Metadata,
                12,
                client.read_frame().expect("Metadata response"),
            );
        assert_eq!(got, correlation_id);
        let topic = response.topics.into_iter().next()?;
        (topic.error_code == 0 && topic.partitions.iter().all(|p| p.leader_id.0 >= 0))
            .then_some(topic)
    });
    assert_eq!(topic.partitions.len(), 2);
    for p in &topic.partitions {
        assert_eq!(p.replica_nodes.len(), 3, "default.replication.factor");
    }
    // Every broker describes all live brokers and names itself the controller (it forwards).
    let response = metadata(cluster.address(3));
    assert_eq!(response.brokers.len(), 3);
    assert_eq!(response.controller_id.0, 3);
}

#[test]
fn controller_answers_api_versions_v0_and_exits_0_on_sigterm() {
    let mut cluster = Cluster::start(1, CONFIG);
    let mut client = common::RawClient::connect(cluster.controller_address);
    let correlation_id = client.send(
        kafka_protocol::messages::ApiKey::ApiVersions,
        0,
        &kafka_protocol::messages::ApiVersionsRequest::default(),
    );
    let (got, response): (i32, kafka_protocol::messages::ApiVersionsResponse) =
        common::decode_response(
            kafka_protocol::messages::ApiKey::ApiVersions,
            0,
            client.read_frame().expect("ApiVersions response"),
        );
    assert_eq!((got, response.error_code), (correlation_id, 0));
    assert!(response
        .api_keys
        .iter()
        .any(|k| k.api_key == kafka_protocol::messages::ApiKey::Metadata as i16));
    let controller = cluster.controller.take().expect("controller");
    assert_eq!(controller.terminate(), Some(0));
}

#[test]
fn sigterm_on_a_leader_moves_leadership_at_once_by_controlled_shutdown() {
    // A session far longer than the wait below: only a controlled shutdown can move leadership
    // in time.
    let config = "\"broker.session.timeout.ms\" = 120000\n\"broker.heartbeat.interval.ms\" = 200\n\"replica.fetch.wait.max.ms\" = 100\n\"min.insync.replicas\" = 2\n";
    let mut cluster = Cluster::start(3, config);
    let partition = cluster.create_in_sync("graceful", 3);
    let leader = partition.leader;
    let (new_leader, isr) = terminate_the_leader(&mut cluster, "graceful", &partition);
    assert!(!isr.contains(&leader));
    cluster.wait_topic_on(new_leader, "graceful");
    cluster.produce_ids(new_leader, "graceful", 2..3, 1);
    // It comes back clean and rejoins as a follower.
    cluster.start_broker(leader);
    cluster.wait_partition("back in the ISR", "graceful", 0, |_, _, _, isr| {
        isr.contains(&leader)
    });
}

#[test]
fn brokers_learn_of_new_topics_and_elections_from_the_metadata_watch_not_the_heartbeat() {
    // Heartbeats (and the metadata pulls that go with them) every 120 s: everything below is
    // waited for at most 30 s, so the brokers can only know in time through the controller's
    // metadata watch.
    let config = "\"broker.session.timeout.ms\" = 360000\n\"broker.heartbeat.interval.ms\" = 120000\n\"replica.fetch.wait.max.ms\" = 100\n\"min.insync.replicas\" = 2\n";
    let mut cluster = Cluster::start(3, config);
    let partition = cluster.create_in_sync("watched", 3);
    let leader = partition.leader;
    for id in 1..=3 {
        cluster.wait_topic_on(id, "watched");
    }
    let (new_leader, _) = terminate_the_leader(&mut cluster, "watched", &partition);
    for id in (1..=3).filter(|&id| id != leader) {
        cluster.wait_topic_on(id, "watched");
    }
    cluster.produce_ids(new_leader, "watched", 2..3, 1);
}

/// Message 1 acknowledged (acks=-1) at offset 0, then the leader stopped with SIGTERM (it must
/// exit 0) and a new leader elected at a higher epoch: (new leader, its ISR).
fn terminate_the_leader(cluster: &mut Cluster, topic: &str, partition: &InSync) -> (i32, Vec<i32>) {
    let (leader, epoch) = (partition.leader, partition.epoch);
    cluster.produce_ids(leader, topic, 1..2, 0);
    let proc = cluster
        .brokers
        .get_mut(&leader)
        .and_then(|b| b.take())
        .expect("leader process");
    assert_eq!(proc.terminate(), Some(0));
    let (new_leader, _, _, isr) =
        cluster.wait_partition("leadership moved", topic, 0, |l, e, _, _| {
            l >= 0 && l != leader && e > epoch
        });
    (new_leader, isr)
}

#[test]
fn a_paused_controller_does_not_fence_every_broker_when_it_resumes() {
    let cluster = Cluster::start(3, CONFIG);
    assert_eq!(create_topic(cluster.address(1), "pause", 1, 3), 0);
    let before = cluster.wait_partition("leader, ISR of 3", "pause", 0, |l, _, _, isr| {
        l >= 0 && isr.len() == 3
    });
    let controller = cluster.controller.as_ref().expect("controller");
    controller.pause();
    // Longer than broker.session.timeout.ms (3000): every session would have expired.
    std::thread::sleep(std::time::Duration::from_millis(4500));
    controller.signal(nix::sys::signal::Signal::SIGCONT);
    cluster.wait_brokers_live(3);
    let after = cluster.partition_state("pause", 0).expect("state");
    assert_eq!(after, before, "no election, no ISR change");
}
