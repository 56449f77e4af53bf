//! librdkafka (the `rdkafka` crate) with acks=all keeps producing across a leader SIGKILL: it
//! follows the failover (new leader, higher epoch) through Metadata, and the new leader serves
//! every message acknowledged in a delivery report.

mod cluster;
mod common;
mod rdk;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cluster::*;
use rdkafka::message::Message;

#[test]
fn librdkafka_acks_all_keeps_producing_across_a_leader_sigkill() {
    let config = "\"broker.session.timeout.ms\" = 3000\n\"broker.heartbeat.interval.ms\" = 200\n\"replica.fetch.wait.max.ms\" = 100\n\"min.insync.replicas\" = 2\n";
    let mut cluster = Cluster::start(3, config);
    let partition = cluster.create_in_sync("rdk", 3);
    let (leader, epoch) = (partition.leader, partition.epoch);
    for id in 1..=3 {
        cluster.wait_topic_on(id, "rdk");
    }
    let producer = rdk::AcksAll::start(
        cluster.bootstrap(),
        &[],
        ("rdk", 1),
        Duration::from_millis(2),
    );
    let deliveries = std::sync::Arc::clone(&producer.deliveries);
    wait_until("acks before the kill", 1200, || {
        (deliveries.acked_count() >= 200).then_some(())
    });
    cluster.kill_broker(leader);
    let (new_leader, _, _, _) = cluster.wait_partition("failover", "rdk", 0, |l, e, _, _| {
        l >= 0 && l != leader && e > epoch
    });
    let after_kill = deliveries.acked_count();
    wait_until("acks after the failover", 1200, || {
        (deliveries.acked_count() >= after_kill + 200).then_some(())
    });
    let sent = producer.stop();
    let acknowledged = deliveries.acked_on(0);
    assert!(
        acknowledged.len() >= 400,
        "{} acked of {sent}",
        acknowledged.len()
    );
    cluster.wait_topic_on(new_leader, "rdk");
    let last_acked = *acknowledged.keys().last().expect("acks");
    assert_serves_acked(cluster.address(new_leader), "rdk", 0, &acknowledged);
    // A librdkafka consumer bootstrapped on the surviving brokers reads it all back too.
    let consumer = rdk::from_beginning(&cluster.bootstrap(), "rdk", 1);
    let mut read: BTreeMap<i64, Option<u64>> = BTreeMap::new();
    let started = Instant::now();
    while read.keys().last().is_none_or(|o| *o < last_acked)
        && started.elapsed() < Duration::from_secs(90)
    {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            read.insert(
                message.offset(),
                message.payload().and_then(broker::dump::message_id),
            );
        }
    }
    for (offset, id) in &acknowledged {
        assert_eq!(
            read.get(offset),
            Some(&Some(*id)),
            "the consumer reads acknowledged id {id}"
        );
    }
}
