//! A librdkafka producer for the broker's tests: delivery reports collected as the only source of
//! acknowledgements (`flush()` can return Ok although every message timed out), sends that wait
//! out a full local queue, and a bounded drain. `KAOS_RDKAFKA_DEBUG=broker,topic,msg` turns on
//! librdkafka's debug log for a failing run.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::ClientContext;

/// How long a send waits for room in a full local queue before it gives up.
const QUEUE_FULL_WAIT: Duration = Duration::from_secs(120);

/// Successful delivery reports, (partition, offset) → message id, and the failed ones' errors.
#[derive(Default)]
pub struct Deliveries {
    pub acked: Mutex<BTreeMap<(i32, i64), u64>>,
    pub failed: Mutex<Vec<String>>,
}

impl Deliveries {
    pub fn acked_count(&self) -> usize {
        self.acked.lock().expect("lock").len()
    }

    /// Acknowledged messages per partition, for `partitions` partitions.
    pub fn per_partition(&self, partitions: usize) -> Vec<usize> {
        let mut counts = vec![0; partitions];
        for (partition, _) in self.acked.lock().expect("lock").keys() {
            counts[*partition as usize] += 1;
        }
        counts
    }

    /// The acknowledged messages of one partition: offset → message id.
    pub fn acked_on(&self, partition: i32) -> BTreeMap<i64, u64> {
        self.acked
            .lock()
            .expect("lock")
            .range((partition, i64::MIN)..=(partition, i64::MAX))
            .map(|((_, offset), id)| (*offset, *id))
            .collect()
    }

    pub fn failed(&self) -> Vec<String> {
        self.failed.lock().expect("lock").clone()
    }
}

pub struct Reports(pub Arc<Deliveries>);

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
                    .insert((message.partition(), message.offset()), id);
                assert!(
                    previous.is_none(),
                    "two acks for partition {} offset {}",
                    message.partition(),
                    message.offset()
                );
            }
            Err((e, _)) => self.0.failed.lock().expect("lock").push(e.to_string()),
        }
    }
}

/// A producer on `bootstrap` with `settings`, reporting into `deliveries`.
pub fn producer(
    bootstrap: &str,
    settings: &[(&str, &str)],
    deliveries: &Arc<Deliveries>,
) -> BaseProducer<Reports> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (key, value) in settings {
        config.set(*key, *value);
    }
    if let Ok(debug) = std::env::var("KAOS_RDKAFKA_DEBUG") {
        config.set("debug", &debug);
    }
    config
        .create_with_context(Reports(Arc::clone(deliveries)))
        .expect("producer")
}

/// Sends message `id` (a payload `broker::dump::message_id` reads) to `topic`/`partition`,
/// serving delivery reports while the local queue is full; any other error is returned.
pub fn send(
    producer: &BaseProducer<Reports>,
    topic: &str,
    partition: i32,
    id: u64,
) -> Result<(), KafkaError> {
    let value = format!("kaos:{id}:payload");
    let mut record: BaseRecord<'_, (), String> =
        BaseRecord::to(topic).partition(partition).payload(&value);
    let started = Instant::now();
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned))
                if started.elapsed() < QUEUE_FULL_WAIT =>
            {
                record = returned;
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Serves delivery reports until nothing is in flight or `limit` has passed.
pub fn drain(producer: &BaseProducer<Reports>, limit: Duration) {
    let started = Instant::now();
    while producer.in_flight_count() > 0 && started.elapsed() < limit {
        producer.poll(Duration::from_millis(100));
    }
}
