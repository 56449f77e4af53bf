//! acks and the ISR with real processes. acks=1 acknowledges after the leader's append alone, so
//! a leader killed before its followers fetched loses the message at failover; acks=all with
//! `min.insync.replicas = 2` never acknowledges it. The ISR shrinks while a follower is paused
//! (SIGSTOP) past `replica.lag.time.max.ms` and grows again once it catches up after SIGCONT; below
//! `min.insync.replicas`, acks=all is refused with NOT_ENOUGH_REPLICAS and nothing is appended.

mod cluster;
mod common;

use std::time::Duration;

use cluster::*;

const NOT_ENOUGH_REPLICAS: i16 = 19;
const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
const REQUEST_TIMED_OUT: i16 = 7;

fn setup(config: &str, topic: &str) -> (Cluster, i32, Vec<i32>) {
    let cluster = Cluster::start(3, config);
    assert_eq!(create_topic(cluster.address(1), topic, 1, 3), 0);
    let (leader, _, replicas, _) =
        cluster.wait_partition("leader and full ISR", topic, 0, |l, _, _, isr| {
            l >= 0 && isr.len() == 3
        });
    cluster.wait_topic_on(leader, topic);
    let followers = replicas.into_iter().filter(|&r| r != leader).collect();
    (cluster, leader, followers)
}

/// Pauses the followers and waits out their pending long-poll fetches, so that nothing the
/// leader appends from now on can reach them.
fn pause_followers(cluster: &Cluster, followers: &[i32]) {
    for &f in followers {
        cluster.pause_broker(f);
    }
    // replica.fetch.wait.max.ms is 100: a fetch parked at the leader is answered (empty) well
    // within this pause; the paused followers send no new fetch.
    std::thread::sleep(Duration::from_millis(1500));
}

#[test]
fn acks_1_loses_an_acknowledged_message_at_failover_and_acks_all_never_acknowledges_it() {
    // Long session: the paused followers stay alive for the controller; the ISR lag is long too.
    let config = "\"broker.session.timeout.ms\" = 10000\n\"broker.heartbeat.interval.ms\" = 200\n\"replica.fetch.wait.max.ms\" = 100\n\"min.insync.replicas\" = 2\n";
    let (mut cluster, leader, followers) = setup(config, "acks");
    for id in 0..5u64 {
        assert_eq!(
            produce_id(cluster.address(leader), "acks", 0, id, -1, 10_000).0,
            0
        );
    }
    pause_followers(&cluster, &followers);
    // acks=1: acknowledged by the leader alone.
    let (code, offset) = produce_id(cluster.address(leader), "acks", 0, 100, 1, 10_000);
    assert_eq!((code, offset), (0, 5), "acks=1 is acknowledged");
    // acks=all: never acknowledged while the followers cannot fetch.
    let (code, _) = produce_id(cluster.address(leader), "acks", 0, 200, -1, 1500);
    assert_eq!(
        code, REQUEST_TIMED_OUT,
        "acks=all times out, unacknowledged"
    );
    cluster.kill_broker(leader);
    for &f in &followers {
        cluster.resume_broker(f);
    }
    let (new_leader, _, _, _) =
        cluster.wait_partition("failover", "acks", 0, |l, _, _, _| l >= 0 && l != leader);
    cluster.wait_topic_on(new_leader, "acks");
    let ids: Vec<Option<u64>> = read_ids(cluster.address(new_leader), "acks", 0)
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(&ids[..5], &[Some(0), Some(1), Some(2), Some(3), Some(4)]);
    assert!(
        !ids.contains(&Some(100)),
        "the acks=1 message is lost: {ids:?}"
    );
    assert!(
        !ids.contains(&Some(200)),
        "the unacknowledged acks=all message is gone too: {ids:?}"
    );
}

#[test]
fn isr_shrinks_on_a_paused_follower_and_grows_back_and_min_insync_refuses_writes() {
    // The session outlives the pause (the controller keeps the follower alive): the ISR shrinks
    // by lag alone (replica.lag.time.max.ms = 1000).
    let config = "\"broker.session.timeout.ms\" = 60000\n\"broker.heartbeat.interval.ms\" = 200\n\"replica.fetch.wait.max.ms\" = 100\n\"replica.lag.time.max.ms\" = 1000\n\"min.insync.replicas\" = 3\n";
    let (cluster, leader, followers) = setup(config, "isr");
    assert_eq!(
        produce_id(cluster.address(leader), "isr", 0, 1, -1, 10_000),
        (0, 0)
    );
    let paused = followers[0];
    cluster.pause_broker(paused);
    // Written while the ISR is still 3 but one member cannot fetch: the ISR shrinks while the
    // produce waits, then the HW passes it with 2 in sync: NOT_ENOUGH_REPLICAS_AFTER_APPEND. On a
    // loaded machine the shrink may come first: then it is refused (NOT_ENOUGH_REPLICAS).
    let (code, _) = produce_id(cluster.address(leader), "isr", 0, 2, -1, 30_000);
    assert!(
        code == NOT_ENOUGH_REPLICAS_AFTER_APPEND || code == NOT_ENOUGH_REPLICAS,
        "error {code}"
    );
    let appended_2 = code == NOT_ENOUGH_REPLICAS_AFTER_APPEND;
    let (_, _, _, isr) = cluster.wait_partition("ISR shrank", "isr", 0, |_, _, _, isr| {
        !isr.contains(&paused)
    });
    assert_eq!(isr.len(), 2);
    cluster.wait_leader_isr("the leader applied the shrink", leader, "isr", 0, |l| {
        l.len() == 2
    });
    // Below min.insync.replicas: refused before the append; nothing is appended.
    let end_before = common::list_offset(
        &mut common::RawClient::connect(cluster.address(leader)),
        "isr",
        0,
        -1,
    );
    let (code, _) = produce_id(cluster.address(leader), "isr", 0, 3, -1, 10_000);
    assert_eq!(code, NOT_ENOUGH_REPLICAS);
    // acks=1 is still accepted.
    assert_eq!(
        produce_id(cluster.address(leader), "isr", 0, 4, 1, 10_000).0,
        0
    );
    let mut expected = vec![Some(1)];
    if appended_2 {
        expected.push(Some(2));
    }
    expected.push(Some(4));
    let ids = wait_until("HW covers the acks=1 write", 600, || {
        let ids = try_read_ids(cluster.address(leader), "isr", 0)?;
        (ids.len() == expected.len()).then_some(ids)
    });
    assert_eq!(end_before, (0, expected.len() as i64 - 1));
    assert_eq!(
        ids.iter().map(|(_, id)| *id).collect::<Vec<_>>(),
        expected,
        "id 3 was never appended"
    );
    // SIGCONT: the follower catches up and rejoins the ISR; acks=all works again.
    cluster.resume_broker(paused);
    cluster.wait_partition("ISR grew back", "isr", 0, |_, _, _, isr| isr.len() == 3);
    cluster.wait_leader_isr("the leader applied the growth", leader, "isr", 0, |l| {
        l.len() == 3
    });
    let next = expected.len() as i64;
    assert_eq!(
        produce_id(cluster.address(leader), "isr", 0, 5, -1, 10_000),
        (0, next)
    );
    let dumped_leo = |id: i32| {
        wait_until("the follower has everything", 600, || {
            let d = dump(&cluster.data_dir(id));
            let summary = d.summaries.get(&("isr".to_string(), 0))?;
            (summary["log_end_offset"].as_i64() == Some(next + 1)).then_some(())
        })
    };
    dumped_leo(paused);
}
