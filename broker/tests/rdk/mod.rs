//! A librdkafka producer for the broker's tests: delivery reports collected as the only source of
//! acknowledgements (`flush()` can return Ok although every message timed out), sends that wait
//! out a full local queue, and a bounded drain; and a consumer that reads partitions to their end
//! with an isolation level. `KAOS_RDKAFKA_DEBUG=broker,topic,msg` turns on librdkafka's debug log
//! for a failing run.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

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

/// Successful delivery reports with the values they acknowledged, (partition, offset) → value,
/// and the failed ones' errors: for producers whose payloads are not kaos message ids.
#[derive(Default)]
pub struct ValueDeliveries {
    pub acked: Mutex<BTreeMap<(i32, i64), Vec<u8>>>,
    pub failed: Mutex<Vec<String>>,
}

/// Records into [`ValueDeliveries`]; with `one_ack_per_offset`, a second ack for an offset fails
/// the test (a broker that lost data after a crash may hand an offset out again: there it is
/// left to the test to judge).
pub struct ValueReports {
    pub deliveries: Arc<ValueDeliveries>,
    pub one_ack_per_offset: bool,
}

impl ClientContext for ValueReports {}

impl ProducerContext for ValueReports {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                let value = message.payload().unwrap_or_default().to_vec();
                let previous = self
                    .deliveries
                    .acked
                    .lock()
                    .expect("lock")
                    .insert((message.partition(), message.offset()), value);
                assert!(
                    previous.is_none() || !self.one_ack_per_offset,
                    "two acks for one offset"
                );
            }
            Err((error, _)) => self
                .deliveries
                .failed
                .lock()
                .expect("lock")
                .push(error.to_string()),
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

/// A thread that produces message ids 0, 1, … to `topic` until `stop`, partition by partition in
/// turn (a partition the producer cannot reach shows up as one without new acknowledgements),
/// serving reports for `poll` after each send; then drains for up to 90 s and returns how many
/// it sent. A send error other than a full queue fails the test.
pub fn produce_until_stopped(
    bootstrap: String,
    settings: &[(&'static str, &'static str)],
    (topic, partitions): (&'static str, i32),
    poll: Duration,
    deliveries: &Arc<Deliveries>,
    stop: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    let (deliveries, stop) = (Arc::clone(deliveries), Arc::clone(stop));
    let settings = settings.to_vec();
    std::thread::spawn(move || {
        let producer = producer(&bootstrap, &settings, &deliveries);
        let mut sent = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let partition = (sent % partitions as u64) as i32;
            if let Err(e) = send(&producer, topic, partition, sent) {
                panic!("send failed: {e}");
            }
            sent += 1;
            producer.poll(poll);
        }
        drain(&producer, Duration::from_secs(90));
        sent
    })
}

/// A [`produce_until_stopped`] thread with an acks=all producer that follows a failover
/// (`linger.ms` 2, a 60 s message timeout, metadata refreshed every second), `extra` settings on
/// top, and the reports it collects.
pub struct AcksAll {
    pub deliveries: Arc<Deliveries>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl AcksAll {
    pub fn start(
        bootstrap: String,
        extra: &[(&'static str, &'static str)],
        target: (&'static str, i32),
        poll: Duration,
    ) -> AcksAll {
        let mut settings = vec![
            ("acks", "all"),
            ("linger.ms", "2"),
            ("message.timeout.ms", "60000"),
            ("topic.metadata.refresh.interval.ms", "1000"),
        ];
        settings.extend_from_slice(extra);
        let deliveries = Arc::new(Deliveries::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = produce_until_stopped(bootstrap, &settings, target, poll, &deliveries, &stop);
        AcksAll {
            deliveries,
            stop,
            thread,
        }
    }

    /// Stops the producer and waits for its drain: how many messages it sent.
    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("producer thread")
    }
}

/// Serves delivery reports until nothing is in flight or `limit` has passed.
pub fn drain(producer: &BaseProducer<Reports>, limit: Duration) {
    let started = Instant::now();
    while producer.in_flight_count() > 0 && started.elapsed() < limit {
        producer.poll(Duration::from_millis(100));
    }
}

/// A consumer of partitions `0..partitions` of `topic` assigned from the beginning, with no
/// group membership (rd_kafka_assign() needs a group handle, else "Unknown group"; the group is
/// never joined or committed to) and no automatic commits.
pub fn from_beginning(bootstrap: &str, topic: &str, partitions: i32) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kaos-test-assign-only")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    assigned(&mut config, topic, partitions)
}

/// A consumer made with `config` (automatic commits off) of partitions `0..partitions` of
/// `topic`, assigned from their beginning.
fn assigned(config: &mut ClientConfig, topic: &str, partitions: i32) -> BaseConsumer {
    let consumer: BaseConsumer = config
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("assign");
    }
    consumer.assign(&assignment).expect("assign");
    consumer
}

/// How a reader takes a consumer error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// The test fails.
    Fail,
    /// It is printed and the read goes on (a cluster answers errors while a killed broker's
    /// partitions move).
    Print,
}

/// Every message id a consumer with `isolation` (`read_committed`, `read_uncommitted`) reads from
/// the start of partitions `0..partitions` of `topic` until each reports its end: id → times
/// seen. The test fails if that takes longer than `limit` (a hanging last stable offset).
pub fn read_to_end(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    isolation: &str,
    limit: Duration,
    on_error: OnError,
) -> BTreeMap<u64, usize> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{isolation}"))
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation);
    let consumer = assigned(&mut config, topic, partitions);
    let mut seen = BTreeMap::new();
    let mut at_end = BTreeSet::new();
    let started = Instant::now();
    while at_end.len() < partitions as usize {
        assert!(
            started.elapsed() < limit,
            "{isolation} stuck (a hanging LSO?): partitions at their end {at_end:?}, seen {seen:?}"
        );
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(message)) => {
                let id = broker::dump::message_id(message.payload().unwrap_or_default())
                    .expect("our message");
                *seen.entry(id).or_insert(0) += 1;
                at_end.remove(&message.partition());
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) if on_error == OnError::Fail => panic!("{isolation} consumer: {e}"),
            Some(Err(e)) => eprintln!("{isolation} consumer: {e}"),
        }
    }
    seen
}
