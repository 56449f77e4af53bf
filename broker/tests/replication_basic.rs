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
        let response: kafka_protocol::messages::MetadataResponse =
            client.call(kafka_protocol::messages::ApiKey::Metadata, 12, &request);
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

/// A broker process started by hand (on a port chosen here), SIGKILLed on drop.
struct Unready(std::process::Child);

impl Drop for Unready {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A broker that has not yet registered with the controller holds no image: it knows no broker,
/// not even itself. It must not answer Metadata with an empty broker list (librdkafka then
/// decommissions every broker it knew, its transaction and group coordinators too, and a
/// transactional pipeline hangs: eos-pipeline-coordinator-kill). It answers once it has the image;
/// with the bug switch `metadata.before.image = "answer"` it answers at once, with no broker.
#[test]
fn a_broker_without_its_first_image_answers_metadata_once_it_has_it() {
    let brokers = metadata_before_the_first_image("");
    assert_eq!(brokers, vec![1, 2], "the answer lists the live brokers");
    let brokers = metadata_before_the_first_image("\"metadata.before.image\" = \"answer\"\n");
    assert_eq!(
        brokers,
        Vec::<i32>::new(),
        "the switch answers without the image"
    );
}

/// The brokers (sorted) of the Metadata answer of a broker started while the controller of a
/// one-broker cluster is paused, asked before the controller resumes; `switch` is added to the
/// cluster's config.
fn metadata_before_the_first_image(switch: &str) -> Vec<i32> {
    let cluster = Cluster::start(1, &format!("{CONFIG}{switch}"));
    let controller = cluster.controller.as_ref().expect("controller");
    controller.pause();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let _broker = Unready(
        std::process::Command::new(env!("CARGO_BIN_EXE_kaos-broker"))
            .args([
                "--node-id",
                "2",
                "--listen",
                &address.to_string(),
                "--data-dir",
            ])
            .arg(cluster.data_dir(2))
            .arg("--controller")
            .arg(cluster.controller_address.to_string())
            .arg("--config")
            .arg(&cluster.config_path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn kaos-broker"),
    );
    wait_until("the unregistered broker accepts connections", 400, || {
        std::net::TcpStream::connect(address).ok().map(|_| ())
    });
    // Asked while the controller is paused: it cannot have an image yet.
    let asked = std::thread::spawn(move || metadata(address));
    std::thread::sleep(std::time::Duration::from_millis(500));
    controller.signal(nix::sys::signal::Signal::SIGCONT);
    let response = asked.join().expect("the Metadata call");
    let mut brokers: Vec<i32> = response.brokers.iter().map(|b| b.node_id.0).collect();
    brokers.sort_unstable();
    brokers
}

/// ListOffsets latest from a follower: a client's (replica id -1) is refused with
/// NOT_LEADER_OR_FOLLOWER (6); one with Kafka's debugging replica id (-2) is answered from the
/// follower's own log with its log end offset, as a leader answers it with its own — what
/// kaos's `trigger_follower_lag_min` measures a follower's lag with.
#[test]
fn a_follower_answers_list_offsets_with_the_debugging_replica_id_with_its_log_end_offset() {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{ApiKey, BrokerId, ListOffsetsRequest, ListOffsetsResponse};
    let cluster = Cluster::start(
        2,
        CONFIG.replace("\"min.insync.replicas\" = 2\n", "").as_str(),
    );
    let partition = cluster.create_in_sync("lag", 2);
    let follower = partition.follower();
    cluster.wait_topic_on(follower, "lag");
    cluster.produce_ids(partition.leader, "lag", 0..5, 0);
    let latest = |broker: i32, replica_id: i32| {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(replica_id))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(kafka_protocol::messages::TopicName(
                    kafka_protocol::protocol::StrBytes::from_static_str("lag"),
                ))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1)])]);
        let response: ListOffsetsResponse =
            common::call(cluster.address(broker), ApiKey::ListOffsets, 4, &request);
        let p = &response.topics[0].partitions[0];
        (p.error_code, p.offset)
    };
    assert_eq!(
        latest(follower, -1).0,
        6,
        "a client reads offsets from the leader only"
    );
    assert_eq!(latest(partition.leader, -2), (0, 5));
    // acks=all: the follower holds all five once the produce returned.
    assert_eq!(latest(follower, -2), (0, 5));
    // A paused follower lags: three acks=1 writes reach the leader's log only.
    cluster.pause_broker(follower);
    for id in 5..8u64 {
        let written = produce_id(cluster.address(partition.leader), "lag", 0, id, 1, 10_000);
        assert_eq!(written, (0, id as i64), "acks=1 produce {id}");
    }
    assert_eq!(
        latest(partition.leader, -2),
        (0, 8),
        "the leader's log end offset"
    );
    assert_eq!(
        latest(partition.leader, -1),
        (0, 5),
        "a client's latest is the HW"
    );
    cluster.resume_broker(follower);
    wait_until("the follower fetched the three", 600, || {
        (latest(follower, -2) == (0, 8)).then_some(())
    });
}
