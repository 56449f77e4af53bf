//! The two KIP-101 scenarios with real processes, under both truncation designs.
//!
//! Scenario 1 (a follower restarts and truncates to its stale HW, then the leader dies before the
//! follower refetches): `high-watermark` loses acknowledged acks=all messages; `leader-epoch` keeps
//! them. Scenario 2 (both replicas lose their unflushed tails and come back in the other order):
//! `high-watermark` leaves two different records at one offset across the replicas, visible with
//! `dump`; `leader-epoch` keeps the replicas consistent, also when the replica back first lost its
//! whole log and with it the epochs the other one asks about.

mod cluster;
mod common;

use cluster::*;

fn config(mode: &str, extra: &str) -> String {
    format!(
        "\"replication.truncation\" = \"{mode}\"\n\"broker.heartbeat.interval.ms\" = 200\n\"replica.fetch.wait.max.ms\" = 100\n{extra}"
    )
}

/// Returns (ids the new leader serves, acknowledged ids).
fn scenario_1(mode: &str) -> (Vec<Option<u64>>, Vec<u64>) {
    // The follower's HW checkpoint is written at startup and then not for ten minutes: after a
    // SIGKILL it holds a stale HW, as Kafka's (written every 5 s) may.
    let extra = "\"broker.session.timeout.ms\" = 6000\n\"replica.high.watermark.checkpoint.interval.ms\" = 600000\n";
    let mut cluster = Cluster::start(2, &config(mode, extra));
    let partition = cluster.create_in_sync("kip101a", 2);
    let (leader, epoch, follower) = (partition.leader, partition.epoch, partition.follower());
    let acknowledged: Vec<u64> = (0..10).collect();
    for &id in &acknowledged {
        assert_eq!(
            produce_id(cluster.address(leader), "kip101a", 0, id, -1, 10_000),
            (0, id as i64)
        );
    }
    // The follower restarts while the leader is paused: it becomes a follower again (and, with
    // HW truncation, cuts its log to its checkpointed HW) but cannot refetch.
    cluster.kill_broker(follower);
    cluster.pause_broker(leader);
    cluster.start_broker(follower);
    wait_until("the restarted replica follows", 600, || {
        cluster
            .broker(follower)
            .log_contains("became follower")
            .then_some(())
    });
    if mode == "high-watermark" {
        wait_until("HW truncation", 600, || {
            cluster
                .broker(follower)
                .log_contains("truncated to its high watermark")
                .then_some(())
        });
    }
    // Then the leader dies.
    cluster.kill_broker(leader);
    let (new_leader, new_epoch, _, _) =
        cluster.wait_partition("failover", "kip101a", 0, |l, e, _, _| {
            l == follower && e > epoch
        });
    assert!(new_epoch > epoch);
    cluster.wait_topic_on(new_leader, "kip101a");
    let ids: Vec<Option<u64>> = read_ids(cluster.address(new_leader), "kip101a", 0)
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    // The old leader comes back as a follower and converges on the new leader's log.
    assert_eq!(
        produce_id(cluster.address(new_leader), "kip101a", 0, 100, 1, 10_000).0,
        0
    );
    cluster.start_broker(leader);
    cluster.wait_partition(
        "old leader back in the ISR",
        "kip101a",
        0,
        |_, _, _, isr| isr.contains(&leader),
    );
    let key = ("kip101a".to_string(), 0);
    let records = |id: i32| -> Vec<(i64, Option<u64>)> {
        dump(&cluster.data_dir(id))
            .records
            .get(&key)
            .map(|r| r.iter().map(|(o, (_, id, _))| (*o, *id)).collect())
            .unwrap_or_default()
    };
    wait_until("replicas converge", 600, || {
        (records(leader) == records(new_leader)).then_some(())
    });
    (ids, acknowledged)
}

#[test]
fn kip101_scenario_1_high_watermark_truncation_loses_acknowledged_messages() {
    let (ids, acknowledged) = scenario_1("high-watermark");
    let lost: Vec<u64> = acknowledged
        .iter()
        .copied()
        .filter(|id| !ids.contains(&Some(*id)))
        .collect();
    assert!(
        !lost.is_empty(),
        "expected acknowledged acks=all messages lost, the leader serves {ids:?}"
    );
}

#[test]
fn kip101_scenario_1_leader_epoch_truncation_keeps_acknowledged_messages() {
    let (ids, acknowledged) = scenario_1("leader-epoch");
    let expected: Vec<Option<u64>> = acknowledged.iter().map(|&id| Some(id)).collect();
    assert_eq!(ids, expected);
}

/// Returns the dumps of both replicas once the second one has caught up: (first back, second back).
fn scenario_2(mode: &str) -> (Dump, Dump) {
    let extra = "\"broker.session.timeout.ms\" = 3000\n\"replica.high.watermark.checkpoint.interval.ms\" = 100\n";
    let mut cluster = Cluster::start(2, &config(mode, extra));
    let partition = cluster.create_in_sync("kip101b", 2);
    let (a, epoch0, b) = (partition.leader, partition.epoch, partition.follower());
    // m1 and m2 acknowledged by both; A's HW (checkpointed) is 2.
    acknowledge_two_on_both(&cluster, "kip101b", a, b);
    let key = ("kip101b".to_string(), 0);
    // A dies first (B takes over), then B; B lost its unflushed tail (m2).
    cluster.kill_broker(a);
    let (_, epoch1, _, _) =
        cluster.wait_partition("B leads", "kip101b", 0, |l, e, _, _| l == b && e > epoch0);
    cluster.kill_broker(b);
    let segment = common::segment_files(&cluster.data_dir(b).join("kip101b-0"))
        .into_iter()
        .next()
        .expect("segment");
    let (_, first_batch_bytes) = common::batch_positions(&segment)[0];
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open segment");
    file.set_len(first_batch_bytes as u64)
        .expect("cut the unflushed tail");
    drop(file);
    assert!(!cluster
        .data_dir(b)
        .join(broker::CLEAN_SHUTDOWN_FILE_NAME)
        .exists());
    cluster.wait_partition("offline", "kip101b", 0, |l, _, _, _| l == -1);
    // B comes back first, leads, and takes m3 at offset 1.
    cluster.start_broker(b);
    cluster.wait_partition("B leads again", "kip101b", 0, |l, e, _, _| {
        l == b && e > epoch1
    });
    cluster.wait_topic_on(b, "kip101b");
    assert_eq!(
        wait_until("B accepts m3", 600, || {
            let (code, offset) = produce_id(cluster.address(b), "kip101b", 0, 3, 1, 10_000);
            (code == 0).then_some(offset)
        }),
        1
    );
    // A comes back and follows B.
    cluster.start_broker(a);
    cluster.wait_partition("A back in the ISR", "kip101b", 0, |_, _, _, isr| {
        isr.contains(&a)
    });
    wait_until("A has two records", 600, || {
        let da = dump(&cluster.data_dir(a));
        (da.summaries.get(&key)?["log_end_offset"].as_i64() == Some(2)).then_some(())
    });
    cluster.kill_broker(a);
    cluster.kill_broker(b);
    (dump(&cluster.data_dir(b)), dump(&cluster.data_dir(a)))
}

#[test]
fn kip101_scenario_2_high_watermark_truncation_forks_the_replicas() {
    let (b, a) = scenario_2("high-watermark");
    let key = ("kip101b".to_string(), 0);
    let (rb, ra) = (&b.records[&key], &a.records[&key]);
    assert_eq!(rb[&0].1, Some(1));
    assert_eq!(ra[&0].1, Some(1));
    assert_eq!(rb[&1].1, Some(3), "B has m3 at offset 1");
    assert_eq!(
        ra[&1].1,
        Some(2),
        "A kept m2 at offset 1: the replicas diverge"
    );
}

#[test]
fn kip101_scenario_2_leader_epoch_truncation_keeps_the_replicas_consistent() {
    let (b, a) = scenario_2("leader-epoch");
    let key = ("kip101b".to_string(), 0);
    let ids = |d: &Dump| {
        d.records[&key]
            .iter()
            .map(|(o, (_, id, _))| (*o, *id))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&b), vec![(0, Some(1)), (1, Some(3))]);
    assert_eq!(ids(&a), ids(&b), "A truncated m2 and fetched m3");
    assert_eq!(
        b.summaries[&key]["leader_epochs"],
        a.summaries[&key]["leader_epochs"]
    );
}

/// Pre-KIP-101, a replica whose HW is above the new leader's LEO fetches past the leader's end,
/// gets OFFSET_OUT_OF_RANGE, truncates to the leader's LEO (ListOffsets) and keeps a different
/// record below it: the replicas diverge. (The old leader checkpoints its HW often, the
/// follower rarely.)
#[test]
fn high_watermark_truncation_follower_ahead_of_the_leader_truncates_to_its_leo_and_diverges() {
    let extra = "\"broker.session.timeout.ms\" = 6000\n";
    let mut cluster = Cluster::start_with(
        2,
        &config("high-watermark", extra),
        &[
            (
                1,
                "\"replica.high.watermark.checkpoint.interval.ms\" = 100\n",
            ),
            (
                2,
                "\"replica.high.watermark.checkpoint.interval.ms\" = 600000\n",
            ),
        ],
    );
    assert_eq!(create_topic(cluster.address(1), "ahead", 1, 2), 0);
    let (a, epoch, _, _) =
        cluster.wait_partition("leader, ISR of 2", "ahead", 0, |l, _, _, isr| {
            l >= 0 && isr.len() == 2
        });
    assert_eq!(
        a, 1,
        "round-robin assignment puts partition 0's leader on broker 1"
    );
    let b = 2;
    cluster.wait_topic_on(a, "ahead");
    for id in 0..10u64 {
        assert_eq!(
            produce_id(cluster.address(a), "ahead", 0, id, -1, 10_000),
            (0, id as i64)
        );
    }
    let key = ("ahead".to_string(), 0);
    wait_until("A checkpointed HW 10", 600, || {
        (dump(&cluster.data_dir(a)).summaries.get(&key)?["high_watermark"].as_i64() == Some(10))
            .then_some(())
    });
    // As in scenario 1: B restarts (stale HW 0) while A is paused, then A dies; B leads, empty.
    cluster.kill_broker(b);
    cluster.pause_broker(a);
    cluster.start_broker(b);
    wait_until("HW truncation on B", 600, || {
        cluster
            .broker(b)
            .log_contains("truncated to its high watermark")
            .then_some(())
    });
    cluster.kill_broker(a);
    cluster.wait_partition("B leads", "ahead", 0, |l, e, _, _| l == b && e > epoch);
    cluster.wait_topic_on(b, "ahead");
    assert_eq!(
        produce_id(cluster.address(b), "ahead", 0, 100, 1, 10_000),
        (0, 0)
    );
    // A returns with HW 10 > B's LEO 1.
    cluster.start_broker(a);
    cluster.wait_partition("A back in the ISR", "ahead", 0, |_, _, _, isr| {
        isr.contains(&a)
    });
    wait_until("A truncated to the leader's LEO", 600, || {
        cluster
            .broker(a)
            .log_contains("follower ahead of the leader")
            .then_some(())
    });
    let da = dump(&cluster.data_dir(a));
    let db = dump(&cluster.data_dir(b));
    assert_eq!(da.summaries[&key]["log_end_offset"], 1);
    assert_eq!(da.records[&key][&0].1, Some(0), "A kept m0 at offset 0");
    assert_eq!(
        db.records[&key][&0].1,
        Some(100),
        "B has m100 at offset 0: divergence"
    );
}

/// KIP-101 scenario 2 where B lost its whole replica, as a power loss does before anything
/// fsynced the partition's directory: B comes back empty and leads in a new epoch, so its epoch
/// cache starts there. A asks where its epoch 0 ends; B answers where its first known epoch
/// starts (0), as Kafka does, and A cuts everything and fetches B's log. (B answered UNDEFINED
/// before: A fell back to its HW, kept m1 and m2, was OFFSET_OUT_OF_RANGE, cut to B's LEO and kept
/// m1 where B has m3.)
#[test]
fn leader_epoch_truncation_against_a_leader_that_lost_its_early_epochs_keeps_the_replicas_consistent(
) {
    let extra = "\"broker.session.timeout.ms\" = 3000\n\"replica.high.watermark.checkpoint.interval.ms\" = 100\n";
    let mut cluster = Cluster::start(2, &config("leader-epoch", extra));
    let partition = cluster.create_in_sync("kip101c", 2);
    let (a, epoch0, b) = (partition.leader, partition.epoch, partition.follower());
    acknowledge_two_on_both(&cluster, "kip101c", a, b);
    let key = ("kip101c".to_string(), 0);
    cluster.kill_broker(a);
    let (_, epoch1, _, _) =
        cluster.wait_partition("B leads", "kip101c", 0, |l, e, _, _| l == b && e > epoch0);
    cluster.kill_broker(b);
    std::fs::remove_dir_all(cluster.data_dir(b).join("kip101c-0")).expect("B loses its replica");
    cluster.wait_partition("offline", "kip101c", 0, |l, _, _, _| l == -1);
    cluster.start_broker(b);
    cluster.wait_partition("B leads again", "kip101c", 0, |l, e, _, _| {
        l == b && e > epoch1
    });
    cluster.wait_topic_on(b, "kip101c");
    assert_eq!(
        wait_until("B accepts m3", 600, || {
            let (code, offset) = produce_id(cluster.address(b), "kip101c", 0, 3, 1, 10_000);
            (code == 0).then_some(offset)
        }),
        0,
        "B starts over at offset 0"
    );
    cluster.start_broker(a);
    cluster.wait_partition("A back in the ISR", "kip101c", 0, |_, _, _, isr| {
        isr.contains(&a)
    });
    wait_until("A has one record", 600, || {
        let da = dump(&cluster.data_dir(a));
        (da.summaries.get(&key)?["log_end_offset"].as_i64() == Some(1)).then_some(())
    });
    cluster.kill_broker(a);
    cluster.kill_broker(b);
    let ids = |d: &Dump| {
        d.records[&key]
            .iter()
            .map(|(o, (_, id, _))| (*o, *id))
            .collect::<Vec<_>>()
    };
    let (da, db) = (dump(&cluster.data_dir(a)), dump(&cluster.data_dir(b)));
    assert_eq!(ids(&db), vec![(0, Some(3))]);
    assert_eq!(ids(&da), ids(&db), "A cut m1 and m2 and fetched m3");
}

/// Messages 1 and 2 acknowledged (acks=-1) by leader `a` at offsets 0 and 1, then waits until
/// `a` has checkpointed HW 2 and follower `b` holds both.
fn acknowledge_two_on_both(cluster: &Cluster, topic: &str, a: i32, b: i32) {
    cluster.produce_ids(a, topic, 1..3, 0);
    let key = (topic.to_string(), 0);
    wait_until("A checkpointed HW 2 and B has both", 600, || {
        let da = dump(&cluster.data_dir(a));
        let db = dump(&cluster.data_dir(b));
        (da.summaries.get(&key)?["high_watermark"].as_i64() == Some(2)
            && db.summaries.get(&key)?["log_end_offset"].as_i64() == Some(2))
        .then_some(())
    });
}
