//! Several partitions under repeated leader SIGKILL with a librdkafka acks=all producer: after
//! every failover (and the killed broker's restart), every partition keeps receiving
//! acknowledged writes, and at the end every replica holds every acknowledged message of every
//! partition. A regression test for a partition that stopped receiving data for good after a
//! failover (LEO 0 on every replica, its leader with the full ISR). The producer writes to each
//! partition in turn, so a partition it cannot reach shows as one without new acknowledgements.
//! `KAOS_RDKAFKA_DEBUG=broker,topic,msg` turns on librdkafka's debug log for a failing run.

mod cluster;
mod common;
mod rdk;

use std::time::Duration;

use cluster::*;

const TOPIC: &str = "chaos";
const PARTITIONS: i32 = 3;
const ROUNDS: i32 = 6;

#[test]
fn every_partition_keeps_receiving_acks_all_writes_across_repeated_leader_sigkills() {
    let config = "\"broker.session.timeout.ms\" = 3000\n\"broker.heartbeat.interval.ms\" = 200\n\"replica.fetch.wait.max.ms\" = 100\n\"min.insync.replicas\" = 2\n";
    let mut cluster = Cluster::start(3, config);
    assert_eq!(create_topic(cluster.address(1), TOPIC, PARTITIONS, 3), 0);
    // The first kill comes right after the topic's creation, while the brokers create their
    // replicas (a broker killed there once came back with another topic id for them).
    let (leader, _, _, _) = cluster.wait_partition("a first leader", TOPIC, 0, |l, _, _, _| l >= 0);
    cluster.kill_broker(leader);
    cluster.start_broker(leader);
    for partition in 0..PARTITIONS {
        cluster.wait_partition("leader, ISR of 3", TOPIC, partition, |l, _, _, isr| {
            l >= 0 && isr.len() == 3
        });
    }
    for id in 1..=3 {
        cluster.wait_topic_on(id, TOPIC);
    }
    let producer = rdk::AcksAll::start(
        cluster.bootstrap(),
        &[("reconnect.backoff.max.ms", "1000")],
        (TOPIC, PARTITIONS),
        Duration::from_millis(1),
    );
    let deliveries = std::sync::Arc::clone(&producer.deliveries);
    let every_partition_gains = |what: &str, before: Vec<usize>| {
        wait_until(what, 1200, || {
            let now = deliveries.per_partition(PARTITIONS as usize);
            (0..PARTITIONS as usize)
                .all(|p| now[p] >= before[p] + 50)
                .then_some(())
        });
    };
    every_partition_gains(
        "acks on every partition before the first kill",
        vec![0; PARTITIONS as usize],
    );
    for round in 0..ROUNDS {
        let partition = round % PARTITIONS;
        let (leader, epoch, _, _) = cluster.wait_partition(
            "a leader with a full ISR",
            TOPIC,
            partition,
            |l, _, _, isr| l >= 0 && isr.len() == 3,
        );
        cluster.kill_broker(leader);
        cluster.wait_partition("failover", TOPIC, partition, |l, e, _, _| {
            l >= 0 && l != leader && e > epoch
        });
        let before = deliveries.per_partition(PARTITIONS as usize);
        every_partition_gains(
            &format!("round {round}: acks on every partition after the failover"),
            before,
        );
        cluster.start_broker(leader);
        let before = deliveries.per_partition(PARTITIONS as usize);
        every_partition_gains(
            &format!("round {round}: acks on every partition after the restart"),
            before,
        );
    }
    let sent = producer.stop();
    assert!(
        deliveries.acked_count() > 0,
        "nothing acknowledged of {sent}"
    );
    // Every acknowledged message is served by the current leader of its partition.
    for partition in 0..PARTITIONS {
        let (leader, _, _, _) =
            cluster.wait_partition("a leader", TOPIC, partition, |l, _, _, _| {
                cluster.brokers.get(&l).is_some_and(|b| b.is_some())
            });
        let acked = deliveries.acked_on(partition);
        assert!(!acked.is_empty(), "acks on partition {partition}");
        assert_serves_acked(cluster.address(leader), TOPIC, partition, &acked);
    }
}
