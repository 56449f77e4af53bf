//! Producer throughput and latency benchmark: one librdkafka producer sends `messages` records
//! of `message_size_bytes` as fast as it can (or at `rate_per_s`), and delivery reports give the
//! throughput and the produce latency distribution. No history is written: this measures the
//! broker, not the harness.

use crate::limits::POLL_WAIT_MS;
use crate::WorkloadError;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::ClientContext;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Latency samples kept at most (every message is counted; latency is sampled evenly).
pub const LATENCY_SAMPLES_MAX: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct BenchSpec {
    pub bootstrap: String,
    pub topic: String,
    pub messages: u64,
    pub message_size_bytes: usize,
    /// 0 = as fast as possible.
    pub rate_per_s: u64,
    pub config: BTreeMap<String, String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    pub messages_acked: u64,
    pub messages_failed: u64,
    pub elapsed_s: f64,
    pub messages_per_s: f64,
    pub megabytes_per_s: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
}

struct Counter {
    started: Instant,
    acked: AtomicU64,
    failed: AtomicU64,
    sample_every: u64,
    latencies_us: Mutex<Vec<u32>>,
}

impl ClientContext for Counter {}

impl ProducerContext for Counter {
    /// Microseconds since the start at which the message was handed to librdkafka, and its index.
    type DeliveryOpaque = Box<(u64, u64)>;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Box<(u64, u64)>) {
        let (index, sent_us) = *opaque;
        match result {
            Ok(_) => {
                self.acked.fetch_add(1, Ordering::Relaxed);
                if index % self.sample_every == 0 {
                    let now_us = self.started.elapsed().as_micros() as u64;
                    if let Ok(mut l) = self.latencies_us.lock() {
                        if l.len() < LATENCY_SAMPLES_MAX {
                            l.push(now_us.saturating_sub(sent_us).min(u32::MAX as u64) as u32);
                        }
                    }
                }
            }
            Err(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// How long the warm-up may take: a new topic's replicas learn of it on their next metadata pull.
const WARM_UP_MS_MAX: u64 = 30_000;

/// Delivery of the warm-up messages: how many succeeded.
struct WarmUp(AtomicU64);

impl ClientContext for WarmUp {}

impl ProducerContext for WarmUp {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_ok() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends single messages until one is acknowledged (or `WARM_UP_MS_MAX` passes), so that the
/// measurement starts on a topic whose leader and followers all serve it: a topic created a moment
/// ago is not yet known to every replica, and the wait for that would count as produce latency.
fn warm_up(spec: &BenchSpec) -> Result<(), WorkloadError> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &spec.bootstrap);
    for (k, v) in &spec.config {
        config.set(k, v);
    }
    let producer: BaseProducer<WarmUp> =
        config.create_with_context(WarmUp(AtomicU64::new(0))).map_err(WorkloadError::kafka("creating the warm-up producer"))?;
    let value = vec![b'w'; spec.message_size_bytes];
    let started = Instant::now();
    while producer.context().0.load(Ordering::Relaxed) == 0 && started.elapsed() < Duration::from_millis(WARM_UP_MS_MAX) {
        let record: BaseRecord<'_, (), [u8]> = BaseRecord::to(&spec.topic).payload(&value[..]);
        if producer.send(record).is_err() {
            producer.poll(Duration::from_millis(POLL_WAIT_MS));
            continue;
        }
        let _ = producer.flush(Duration::from_millis(WARM_UP_MS_MAX));
    }
    if producer.context().0.load(Ordering::Relaxed) == 0 {
        return Err(WorkloadError::Incomplete(format!("no warm-up message acknowledged within {WARM_UP_MS_MAX} ms")));
    }
    Ok(())
}

pub fn run(spec: &BenchSpec) -> Result<BenchResult, WorkloadError> {
    warm_up(spec)?;
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &spec.bootstrap);
    for (k, v) in &spec.config {
        config.set(k, v);
    }
    let counter = Counter {
        started: Instant::now(),
        acked: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        sample_every: (spec.messages / LATENCY_SAMPLES_MAX as u64).max(1),
        latencies_us: Mutex::new(Vec::new()),
    };
    let producer: BaseProducer<Counter> = config.create_with_context(counter).map_err(WorkloadError::kafka("creating the producer"))?;
    let value = vec![b'x'; spec.message_size_bytes];
    let interval_ns = if spec.rate_per_s == 0 { 0 } else { 1_000_000_000 / spec.rate_per_s };
    let started = producer.context().started;
    for index in 0..spec.messages {
        if interval_ns > 0 {
            // Wait for the message's time without spinning: on a 2-core machine a spinning sender
            // takes a whole core from the brokers it measures. Sleeps overshoot by tens of µs, so
            // messages go in small bursts, each stamped with its own send time.
            let due = Duration::from_nanos(index * interval_ns);
            loop {
                let now = started.elapsed();
                let Some(ahead) = due.checked_sub(now).filter(|a| !a.is_zero()) else {
                    break;
                };
                if ahead >= Duration::from_millis(1) {
                    producer.poll(Duration::from_millis(ahead.as_millis() as u64));
                } else {
                    std::thread::sleep(ahead);
                }
            }
        }
        loop {
            let sent_us = started.elapsed().as_micros() as u64;
            let record: BaseRecord<'_, (), [u8], Box<(u64, u64)>> =
                BaseRecord::with_opaque_to(&spec.topic, Box::new((index, sent_us))).payload(&value[..]);
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(WorkloadError::kafka("sending")(e)),
            }
        }
        if index % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    let ctx = producer.context();
    while ctx.acked.load(Ordering::Relaxed) + ctx.failed.load(Ordering::Relaxed) < spec.messages {
        producer.poll(Duration::from_millis(POLL_WAIT_MS));
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    let acked = ctx.acked.load(Ordering::Relaxed);
    let mut lat = ctx.latencies_us.lock().map(|l| l.clone()).unwrap_or_default();
    lat.sort_unstable();
    let pct = |q: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 - 1.0) * q).round() as usize;
        lat[i.min(lat.len() - 1)] as f64 / 1000.0
    };
    Ok(BenchResult {
        messages_acked: acked,
        messages_failed: ctx.failed.load(Ordering::Relaxed),
        elapsed_s,
        messages_per_s: acked as f64 / elapsed_s,
        megabytes_per_s: acked as f64 * spec.message_size_bytes as f64 / elapsed_s / 1e6,
        latency_ms_p50: pct(0.5),
        latency_ms_p99: pct(0.99),
        latency_ms_max: pct(1.0),
    })
}
