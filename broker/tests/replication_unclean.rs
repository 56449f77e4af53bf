//! Unclean leader election. With it on, an out-of-sync replica becomes leader when the only ISR
//! member dies, and messages acknowledged meanwhile are lost; with it off, the partition stays
//! offline (leader -1) until an ISR member returns, and nothing is lost.

mod cluster;
mod common;

use cluster::*;

fn config(unclean: bool) -> String {
    format!(
        "\"unclean.leader.election.enable\" = {unclean}\n\"broker.session.timeout.ms\" = 3000\n\"broker.heartbeat.interval.ms\" = 200\n\"replica.fetch.wait.max.ms\" = 100\n\"replica.lag.time.max.ms\" = 1000\n"
    )
}

/// Leaves the ISR = {leader}, with ids 0..3 on both replicas and 3..6 on the leader only (all
/// acknowledged with acks=all), then kills the leader and resumes the out-of-sync follower.
fn out_of_sync_follower_survives(cluster: &mut Cluster) -> (i32, i32, i32) {
    let partition = cluster.create_in_sync("unclean", 2);
    let (leader, follower) = (partition.leader, partition.follower());
    cluster.produce_ids(leader, "unclean", 0..3, 0);
    cluster.pause_broker(follower);
    cluster.wait_partition("ISR = {leader}", "unclean", 0, |_, _, _, isr| {
        isr == [leader]
    });
    for id in 3..6u64 {
        assert_eq!(
            produce_id(cluster.address(leader), "unclean", 0, id, -1, 10_000),
            (0, id as i64)
        );
    }
    let (_, epoch, _, _) = cluster.partition_state("unclean", 0).expect("state");
    cluster.kill_broker(leader);
    cluster.resume_broker(follower);
    (leader, follower, epoch)
}

#[test]
fn unclean_election_on_elects_an_out_of_sync_replica_and_loses_acknowledged_messages() {
    let mut cluster = Cluster::start(2, &config(true));
    let (_, follower, epoch) = out_of_sync_follower_survives(&mut cluster);
    cluster.wait_partition("unclean leader", "unclean", 0, |l, e, _, _| {
        l == follower && e > epoch
    });
    cluster.wait_topic_on(follower, "unclean");
    let ids: Vec<Option<u64>> = read_ids(cluster.address(follower), "unclean", 0)
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(
        ids,
        vec![Some(0), Some(1), Some(2)],
        "acknowledged ids 3..6 are lost"
    );
}

#[test]
fn unclean_election_off_keeps_the_partition_offline_until_an_isr_member_returns() {
    let mut cluster = Cluster::start(2, &config(false));
    let (leader, follower, _) = out_of_sync_follower_survives(&mut cluster);
    cluster.wait_partition("offline", "unclean", 0, |l, _, _, _| l == -1);
    // The out-of-sync replica is alive again and still not elected.
    wait_until("the follower is alive", 600, || {
        cluster
            .controller_metadata()
            .brokers
            .iter()
            .any(|b| b.node_id.0 == follower)
            .then_some(())
    });
    for _ in 0..10 {
        let (l, _, _, _) = cluster.partition_state("unclean", 0).expect("state");
        assert_eq!(l, -1, "no unclean election");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    cluster.start_broker(leader);
    cluster.wait_partition("the ISR member leads again", "unclean", 0, |l, _, _, _| {
        l == leader
    });
    cluster.wait_topic_on(leader, "unclean");
    let ids: Vec<Option<u64>> = read_ids(cluster.address(leader), "unclean", 0)
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(ids, (0..6).map(Some).collect::<Vec<_>>(), "nothing lost");
}
