//! librdkafka (the `rdkafka` crate) with acks=all keeps producing across a leader SIGKILL: it
//! follows the failover (new leader, higher epoch) through Metadata, and the new leader serves
//! every message acknowledged in a delivery report.

mod cluster;
mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

#[derive(Default)]
struct Deliveries {
    /// offset → message id, from successful delivery reports only.
    acked: Mutex<BTreeMap<i64, u64>>,
    failed: Mutex<usize>,
}

struct Reports(Arc<Deliveries>);

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                let id = broker::dump::message_id(message.payload().unwrap_or_default())
                    .expect("our message");
                let previous = self
                    .0
                    .acked
                    .lock()
                    .expect("lock")
                    .insert(message.offset(), id);
                assert!(
                    previous.is_none(),
                    "two acks for offset {}",
                    message.offset()
                );
            }
            Err(_) => *self.0.failed.lock().expect("lock") += 1,
        }
    }
}

#[test]
fn librdkafka_acks_all_keeps_producing_across_a_leader_sigkill() {
    let config = "\"broker.session.timeout.ms\" = 3000\n\"broker.heartbeat.interval.ms\" = 200\n\"replica.fetch.wait.max.ms\" = 100\n\"min.insync.replicas\" = 2\n";
    let mut cluster = Cluster::start(3, config);
    assert_eq!(create_topic(cluster.address(1), "rdk", 1, 3), 0);
    let (leader, epoch, _, _) =
        cluster.wait_partition("leader, ISR of 3", "rdk", 0, |l, _, _, isr| {
            l >= 0 && isr.len() == 3
        });
    for id in 1..=3 {
        cluster.wait_topic_on(id, "rdk");
    }
    let deliveries = Arc::new(Deliveries::default());
    let stop = Arc::new(AtomicBool::new(false));
    let producer_thread = {
        let (deliveries, stop, bootstrap) = (
            Arc::clone(&deliveries),
            Arc::clone(&stop),
            cluster.bootstrap(),
        );
        std::thread::spawn(move || {
            let producer: BaseProducer<Reports> = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("acks", "all")
                .set("linger.ms", "2")
                .set("message.timeout.ms", "60000")
                .set("topic.metadata.refresh.interval.ms", "1000")
                .create_with_context(Reports(deliveries))
                .expect("producer");
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let value = format!("kaos:{sent}:payload");
                let mut record: BaseRecord<'_, (), String> =
                    BaseRecord::to("rdk").partition(0).payload(&value);
                loop {
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((
                            KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                            returned,
                        )) => {
                            record = returned;
                            producer.poll(Duration::from_millis(10));
                        }
                        Err((e, _)) => panic!("send failed: {e}"),
                    }
                }
                sent += 1;
                producer.poll(Duration::from_millis(2));
            }
            let started = Instant::now();
            while producer.in_flight_count() > 0 && started.elapsed() < Duration::from_secs(90) {
                producer.poll(Duration::from_millis(100));
            }
            sent
        })
    };
    let acked = |d: &Deliveries| d.acked.lock().expect("lock").len();
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
    let acknowledged = deliveries.acked.lock().expect("lock").clone();
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
