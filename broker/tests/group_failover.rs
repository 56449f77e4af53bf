//! Two kcat -G consumers (librdkafka subscribe, separate processes) in one group on a 3-broker
//! cluster: the partitions are split between them; one is SIGKILLed and the other takes its
//! partitions after the session timeout, resuming from the committed offsets; then the broker
//! coordinating the group is SIGKILLed and the group recovers on the new coordinator with its
//! committed offsets intact.

mod cluster;
mod common;
mod group_support;

use std::collections::{BTreeMap, BTreeSet};

use cluster::*;
use group_support::*;

const TOPIC: &str = "orders";
const GROUP: &str = "billing";
const PARTITIONS: i32 = 4;

/// Produces ids `ids` round-robin over the partitions, acks=-1, retrying (bounded) while the
/// partition's leader moves.
fn produce(cluster: &Cluster, ids: std::ops::Range<u64>) {
    for id in ids {
        let partition = (id % PARTITIONS as u64) as i32;
        wait_until("the message is acknowledged", 400, || {
            let (leader, _, _, _) = cluster.partition_state(TOPIC, partition)?;
            let address = cluster.brokers.get(&leader)?.as_ref()?.address;
            let (code, _) = produce_id(address, TOPIC, partition, id, -1, 5_000);
            (code == 0).then_some(())
        });
    }
}

fn end_offsets(cluster: &Cluster) -> BTreeMap<i32, i64> {
    (0..PARTITIONS)
        .map(|p| {
            let (leader, _, _, _) = cluster.partition_state(TOPIC, p).expect("partition");
            let records = read_ids(cluster.address(leader), TOPIC, p);
            (p, records.last().map_or(0, |(offset, _)| offset + 1))
        })
        .collect()
}

/// Waits until the group's coordinator (asked through `via`) shows `expected` as committed.
fn wait_committed(cluster: &Cluster, via: i32, expected: &BTreeMap<i32, i64>) -> i32 {
    let partitions: Vec<i32> = (0..PARTITIONS).collect();
    wait_until("the committed offsets reach the end offsets", 1200, || {
        let (code, coordinator) = find_coordinator(cluster.address(via), GROUP);
        if code != 0 {
            return None;
        }
        let address = cluster.brokers.get(&coordinator)?.as_ref()?.address;
        let committed = offset_fetch(address, GROUP, TOPIC, &partitions).ok()?;
        (committed == *expected).then_some(coordinator)
    })
}

#[test]
fn group_survives_a_consumer_sigkill_and_a_coordinator_sigkill() {
    let config = "\"broker.session.timeout.ms\" = 3000\n\"broker.heartbeat.interval.ms\" = 200\n\"replica.fetch.wait.max.ms\" = 100\n\"min.insync.replicas\" = 2\n\"offsets.topic.num.partitions\" = 4\n\"group.min.session.timeout.ms\" = 1000\n\"group.initial.rebalance.delay.ms\" = 500\n";
    let mut cluster = Cluster::start(3, config);
    assert_eq!(create_topic(cluster.address(1), TOPIC, PARTITIONS, 3), 0);
    for id in 1..=3 {
        cluster.wait_topic_on(id, TOPIC);
    }
    produce(&cluster, 0..40);
    let end1 = end_offsets(&cluster);
    let dir = tempfile::tempdir().expect("tempdir");
    let bootstrap = cluster.bootstrap();
    let mut a = ConsumerProcess::kcat(&bootstrap, GROUP, TOPIC, dir.path(), "consumer-a");
    let b = ConsumerProcess::kcat(&bootstrap, GROUP, TOPIC, dir.path(), "consumer-b");
    let all: BTreeSet<i32> = (0..PARTITIONS).collect();

    // The partitions are split: each consumer owns some, together all, none twice.
    let (owned_a, owned_b) =
        wait_until("both consumers own a share of the partitions", 1200, || {
            let (pa, pb) = (a.kcat_assignment()?, b.kcat_assignment()?);
            let union: BTreeSet<i32> = pa.union(&pb).copied().collect();
            (!pa.is_empty() && !pb.is_empty() && pa.is_disjoint(&pb) && union == all)
                .then_some((pa, pb))
        });
    // Everything consumed and committed (auto commit) before the kill.
    let coordinator = wait_committed(&cluster, 1, &end1);
    let reads_a = a.reads();
    let reads_b = b.reads();
    let consumed: BTreeSet<(i32, i64)> = reads_a
        .iter()
        .chain(&reads_b)
        .map(|(p, o, _)| (*p, *o))
        .collect();
    for (&p, &end) in &end1 {
        for offset in 0..end {
            assert!(
                consumed.contains(&(p, offset)),
                "partition {p} offset {offset} never consumed"
            );
        }
    }
    assert!(!owned_a.is_empty() && !owned_b.is_empty());

    // SIGKILL consumer A: B takes all partitions after A's session timeout.
    a.sigkill();
    let b_lines_at_kill = b.reads().len();
    wait_until("B owns every partition", 1200, || {
        (b.kcat_assignment()? == all).then_some(())
    });
    produce(&cluster, 40..80);
    let end2 = end_offsets(&cluster);
    wait_until("B reads the new messages on every partition", 1200, || {
        let seen: BTreeSet<(i32, i64)> = b.reads().iter().map(|(p, o, _)| (*p, *o)).collect();
        end2.iter()
            .all(|(&p, &end)| (end1[&p]..end).all(|o| seen.contains(&(p, o))))
            .then_some(())
    });
    // B resumed A's partitions from their committed offsets: nothing committed is read again.
    for (p, offset, value) in &b.reads()[b_lines_at_kill..] {
        assert!(
            *offset >= end1[p],
            "after the takeover B read partition {p} offset {offset} ({value}) again, below the committed {}",
            end1[p]
        );
    }
    // The coordinator did not move (no broker died): the same one shows the new commits.
    assert_eq!(wait_committed(&cluster, 1, &end2), coordinator);

    // SIGKILL the coordinator's broker: a new leader of the group's offsets partition loads the
    // committed offsets from its replica, and the group continues from them.
    cluster.kill_broker(coordinator);
    let survivor = (1..=3).find(|&id| id != coordinator).expect("a survivor");
    let new_coordinator = wait_until(
        "a new coordinator serves the committed offsets",
        1200,
        || {
            let (code, node) = find_coordinator(cluster.address(survivor), GROUP);
            if code != 0 || node == coordinator {
                return None;
            }
            let address = cluster.brokers.get(&node)?.as_ref()?.address;
            let committed =
                offset_fetch(address, GROUP, TOPIC, &(0..PARTITIONS).collect::<Vec<_>>()).ok()?;
            Some((node, committed))
        },
    );
    assert_eq!(
        new_coordinator.1, end2,
        "the offsets committed before the coordinator's SIGKILL survive it"
    );
    let b_lines_at_coordinator_kill = b.reads().len();
    produce(&cluster, 80..120);
    let end3: BTreeMap<i32, i64> = end2.keys().map(|&p| (p, end2[&p] + 10)).collect();
    wait_until(
        "B reads the messages produced after the coordinator's SIGKILL",
        1200,
        || {
            let seen: BTreeSet<(i32, i64)> = b.reads().iter().map(|(p, o, _)| (*p, *o)).collect();
            end3.iter()
                .all(|(&p, &end)| (end2[&p]..end).all(|o| seen.contains(&(p, o))))
                .then_some(())
        },
    );
    for (p, offset, value) in &b.reads()[b_lines_at_coordinator_kill..] {
        assert!(
            *offset >= end2[p],
            "after the coordinator moved B read partition {p} offset {offset} ({value}) again, below the committed {}",
            end2[p]
        );
    }
    wait_committed(&cluster, survivor, &end3);
}

/// An OffsetCommit is answered only once its record is below the HW: with both followers of the
/// group's offsets partition stopped, the commit times out and OffsetFetch does not show it;
/// once they run again, a commit succeeds.
#[test]
fn offset_commit_waits_for_the_high_watermark() {
    let config = "\"broker.session.timeout.ms\" = 8000\n\"broker.heartbeat.interval.ms\" = 200\n\"replica.fetch.wait.max.ms\" = 100\n\"min.insync.replicas\" = 2\n\"offsets.topic.num.partitions\" = 4\n\"offsets.commit.timeout.ms\" = 1000\n";
    let cluster = Cluster::start(3, config);
    let group = "hw-gated";
    let (leader, followers) = wait_until(
        "the offsets topic exists with a leader and 2 followers",
        1200,
        || {
            let (code, node) = find_coordinator(cluster.address(1), group);
            if code != 0 {
                return None;
            }
            let index = broker::group::partition_for(group, 4);
            let (leader, _, replicas, isr) =
                cluster.partition_state("__consumer_offsets", index)?;
            let followers: Vec<i32> = replicas.iter().copied().filter(|&r| r != leader).collect();
            (leader == node && isr.len() == 3 && followers.len() == 2)
                .then_some((leader, followers))
        },
    );
    let address = cluster.address(leader);
    // Commits go to a partition that exists (Kafka refuses others: UNKNOWN_TOPIC_OR_PARTITION).
    assert_eq!(create_topic(cluster.address(1), "t", 1, 3), 0);
    wait_until("the coordinator commits", 600, || {
        (simple_commit(address, group, "t", 0, 1) == 0).then_some(())
    });
    assert_eq!(
        offset_fetch(address, group, "t", &[0]),
        Ok(BTreeMap::from([(0, 1)]))
    );

    for &f in &followers {
        cluster.pause_broker(f);
    }
    let code = simple_commit(address, group, "t", 0, 2);
    assert_eq!(
        code,
        kafka_protocol::error::ResponseError::RequestTimedOut.code(),
        "a commit the followers cannot replicate is not acknowledged"
    );
    assert_eq!(
        offset_fetch(address, group, "t", &[0]),
        Ok(BTreeMap::from([(0, 1)])),
        "an unreplicated commit is not visible"
    );
    for &f in &followers {
        cluster.resume_broker(f);
    }
    wait_until(
        "a commit succeeds once the followers fetch again",
        600,
        || (simple_commit(address, group, "t", 0, 3) == 0).then_some(()),
    );
    assert_eq!(
        offset_fetch(address, group, "t", &[0]),
        Ok(BTreeMap::from([(0, 3)]))
    );
}
