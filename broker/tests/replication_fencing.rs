//! Fencing by leader epoch (KIP-320). Fetch with a stale current_leader_epoch gets
//! FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH. A leader paused (SIGSTOP) until a new
//! one is elected, then resumed, completes no acks=all write (its followers fetch from the new
//! leader) and, once it learns the new epoch, truncates what it wrote alone: every replica ends
//! identical, without the stale write.

mod cluster;
mod common;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse};

use cluster::*;

const FENCED_LEADER_EPOCH: i16 = 74;
const UNKNOWN_LEADER_EPOCH: i16 = 75;

fn fetch_with_epoch(address: std::net::SocketAddr, topic: &str, epoch: i32) -> i16 {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(common::topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(epoch)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let mut client = common::RawClient::connect(address);
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &request);
    response.responses[0].partitions[0].error_code
}

#[test]
fn a_resumed_stale_leader_is_fenced_and_its_write_never_survives() {
    let config = "\"broker.session.timeout.ms\" = 3000\n\"broker.heartbeat.interval.ms\" = 200\n\"replica.fetch.wait.max.ms\" = 100\n\"min.insync.replicas\" = 2\n";
    let cluster = Cluster::start(3, config);
    let partition = cluster.create_in_sync("fence", 3);
    let (old, epoch0) = (partition.leader, partition.epoch);
    cluster.produce_ids(old, "fence", 0..5, 0);
    cluster.pause_broker(old);
    let (new, epoch1, _, _) = cluster.wait_partition("new leader", "fence", 0, |l, e, _, _| {
        l >= 0 && l != old && e > epoch0
    });
    cluster.wait_topic_on(new, "fence");
    for id in 5..10u64 {
        assert_eq!(
            produce_id(cluster.address(new), "fence", 0, id, -1, 10_000),
            (0, id as i64)
        );
    }
    assert_eq!(
        fetch_with_epoch(cluster.address(new), "fence", epoch0),
        FENCED_LEADER_EPOCH
    );
    assert_eq!(
        fetch_with_epoch(cluster.address(new), "fence", epoch1 + 1),
        UNKNOWN_LEADER_EPOCH
    );
    assert_eq!(fetch_with_epoch(cluster.address(new), "fence", epoch1), 0);

    // The old leader resumes and is asked for an acks=all write at once.
    cluster.resume_broker(old);
    let (code, _) = produce_id(cluster.address(old), "fence", 0, 999, -1, 3000);
    assert_ne!(code, 0, "a stale leader must not acknowledge acks=all");
    cluster.wait_partition(
        "the old leader rejoins the ISR",
        "fence",
        0,
        |_, _, _, isr| isr.contains(&old),
    );
    let key = ("fence".to_string(), 0);
    let dumps: Vec<Dump> = (1..=3)
        .map(|id| {
            wait_until("replica caught up", 600, || {
                let d = dump(&cluster.data_dir(id));
                (d.summaries.get(&key)?["log_end_offset"].as_i64() == Some(10)).then_some(d)
            })
        })
        .collect();
    let ids = |d: &Dump| {
        d.records[&key]
            .values()
            .map(|(_, id, _)| *id)
            .collect::<Vec<_>>()
    };
    for d in &dumps {
        assert_eq!(
            ids(d),
            (0..10).map(Some).collect::<Vec<_>>(),
            "no replica keeps the stale write"
        );
    }
    assert!(cluster.broker(old).log_contains("became follower"));
}
