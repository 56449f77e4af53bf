//! librdkafka (the `rdkafka` crate) with acks=all keeps producing across a leader SIGKILL: it
//! follows the failover (new leader, higher epoch) through Metadata, and the new leader serves
//! every message acknowledged in a delivery report.

mod cluster;
mod common;
mod rdk;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::*;
use rdk::Deliveries;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

#[test]
fn librdkafka_acks_all_keeps_producing_across_a_leader_sigkill() {
    let config = "\"broker.session.timeout.ms\" = 3000\n\"broker.heartbeat.interval.ms\" = 200\n\"replica.fetch.wait.max.ms\" = 100\n\"min.insync.replicas\" = 2\n";
    let mut cluster = Cluster::start(3, config);
    let partition = cluster.create_in_sync("rdk", 3);
    let (leader, epoch) = (partition.leader, partition.epoch);
    for id in 1..=3 {
        cluster.wait_topic_on(id, "rdk");
    }
    let deliveries = Arc::new(Deliveries::default());
    let stop = Arc::new(AtomicBool::new(false));
    let producer_thread = rdk::produce_until_stopped(
        cluster.bootstrap(),
        &[
            ("acks", "all"),
            ("linger.ms", "2"),
            ("message.timeout.ms", "60000"),
            ("topic.metadata.refresh.interval.ms", "1000"),
        ],
        ("rdk", 1),
        Duration::from_millis(2),
        &deliveries,
        &stop,
    );
    let acked = |d: &Deliveries| d.acked_count();
    wait_until("acks before the kill", 1200, || {
        (acked(&deliveries) >= 200).then_some(())
    });
    cluster.kill_broker(leader);
    let (new_leader, _, _, _) = cluster.wait_partition("failover", "rdk", 0, |l, e, _, _| {
        l >= 0 && l != leader && e > epoch
    });
    let after_kill = acked(&deliveries);
    wait_until("acks after the failover", 1200, || {
        (acked(&deliveries) >= after_kill + 200).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    let sent = producer_thread.join().expect("producer thread");
    let acknowledged = deliveries.acked_on(0);
    assert!(
        acknowledged.len() >= 400,
        "{} acked of {sent}",
        acknowledged.len()
    );
    cluster.wait_topic_on(new_leader, "rdk");
    let last_acked = *acknowledged.keys().last().expect("acks");
    let served: BTreeMap<i64, Option<u64>> =
        wait_until("the new leader's HW covers every ack", 1200, || {
            let ids = try_read_ids(cluster.address(new_leader), "rdk", 0)?;
            (ids.last().is_some_and(|(o, _)| *o >= last_acked)).then_some(ids.into_iter().collect())
        });
    for (offset, id) in &acknowledged {
        assert_eq!(
            served.get(offset),
            Some(&Some(*id)),
            "acknowledged id {id} at offset {offset}"
        );
    }
    // A librdkafka consumer bootstrapped on the surviving brokers reads it all back too.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap())
        .set("group.id", "kaos-test-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("rdk", 0, Offset::Beginning)
        .expect("assign");
    consumer.assign(&assignment).expect("assign");
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
