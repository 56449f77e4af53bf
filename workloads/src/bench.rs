//! Producer throughput and latency benchmark: one librdkafka producer sends `messages` records
//! of `message_size_bytes` as fast as it can (or at `rate_per_s`), and delivery reports give the
//! throughput and the send→ack latency distribution. No history is written: this measures the
//! broker, not the harness.
//!
//! Two latencies, defined apart:
//! - **send→ack** (`latency_ms_*`): from `send()` to the delivery report, per message (sampled
//!   evenly). It includes the time the message waits in librdkafka's accumulator (up to
//!   `linger.ms`), the request's time in librdkafka's output queue, and the request round trip.
//! - **produce request round trip** (`request_rtt`): librdkafka's own `rtt` statistic of the
//!   partition leader's connection (request written to the socket → response read), what Kafka's
//!   Java producer calls request latency. librdkafka keeps it in windows of
//!   `statistics.interval.ms`; the figures here are the largest of the windows' percentiles, so
//!   an upper bound of the run's own percentile (no window has more than 1 % of its requests above
//!   its p99, so no more than 1 % of all requests are above the largest p99).

use crate::limits::POLL_WAIT_MS;
use crate::WorkloadError;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::{Statistics, Window};
use rdkafka::ClientContext;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Latency samples kept at most (every message is counted; latency is sampled evenly).
pub const LATENCY_SAMPLES_MAX: usize = 1 << 20;
/// librdkafka's statistics interval: the window of its rtt and queue-latency percentiles.
pub const STATISTICS_INTERVAL_MS: u64 = 1_000;
/// A paced message due within this many µs is sent at once (see `run`).
pub const PACING_SLACK_US: u64 = 200;
/// Statistics windows kept at most.
pub const STATISTICS_WINDOWS_MAX: usize = 4_096;

#[derive(Debug, Clone)]
pub struct BenchSpec {
    pub bootstrap: String,
    pub topic: String,
    pub messages: u64,
    pub message_size_bytes: usize,
    /// 0 = as fast as possible.
    pub rate_per_s: u64,
    pub config: BTreeMap<String, String>,
    /// Where to write the latency samples as CSV (`sent_ms,latency_ms`, in send order), if anywhere.
    pub samples_csv: Option<PathBuf>,
    /// Messages per transaction (a transactional producer, `transactional.id` of its own, each
    /// transaction committed before the next begins); 0: no transactions.
    pub transaction_messages: u64,
}

/// Percentiles of one librdkafka statistics figure over the run, in milliseconds: the largest of
/// the per-window values (see the module comment), and the number of values in all windows.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WindowedLatency {
    pub count: i64,
    pub windows: usize,
    pub ms_p50_max: f64,
    pub ms_p99_max: f64,
    pub ms_max: f64,
}

impl WindowedLatency {
    fn of(windows: &[Window]) -> WindowedLatency {
        let ms = |us: i64| us as f64 / 1000.0;
        let used: Vec<&Window> = windows.iter().filter(|w| w.cnt > 0).collect();
        WindowedLatency {
            count: used.iter().map(|w| w.cnt).sum(),
            windows: used.len(),
            ms_p50_max: ms(used.iter().map(|w| w.p50).max().unwrap_or(0)),
            ms_p99_max: ms(used.iter().map(|w| w.p99).max().unwrap_or(0)),
            ms_max: ms(used.iter().map(|w| w.max).max().unwrap_or(0)),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    /// Transactions committed (0 without `transaction_messages`), and per second.
    pub transactions: u64,
    pub transactions_per_s: f64,
    pub messages_acked: u64,
    pub messages_failed: u64,
    pub elapsed_s: f64,
    pub messages_per_s: f64,
    pub megabytes_per_s: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
    /// Produce request round trip to the partition leader (librdkafka's `rtt`).
    pub request_rtt: WindowedLatency,
    /// Time messages waited in librdkafka's partition queue before their request was made
    /// (`int_latency`: linger and batching).
    pub queue_wait: WindowedLatency,
    /// Time requests waited in librdkafka's output buffer before being written (`outbuf_latency`).
    pub send_wait: WindowedLatency,
}

/// librdkafka's per-window statistics of the partition leader's connection.
#[derive(Default)]
struct LeaderWindows {
    rtt: Vec<Window>,
    int_latency: Vec<Window>,
    outbuf_latency: Vec<Window>,
}

struct Counter {
    started: Instant,
    acked: AtomicU64,
    failed: AtomicU64,
    sample_every: u64,
    /// Send time (µs since the start) of every `sample_every`th message, by index / sample_every:
    /// kept here rather than boxed into each message, so that sending allocates nothing per
    /// message and delivery frees nothing (a free on the delivery thread of a block allocated on
    /// the sending thread is among the dearest things the producer process did).
    sent_us: Box<[AtomicU64]>,
    /// (sent µs since the start, latency µs) in delivery order.
    latencies_us: Mutex<Vec<(u64, u32)>>,
    /// `topic-partition` key of librdkafka's per-broker `toppars`: the leader's connection holds it.
    toppar: String,
    windows: Mutex<LeaderWindows>,
}

impl ClientContext for Counter {
    fn stats(&self, statistics: Statistics) {
        let Some(leader) = statistics
            .brokers
            .values()
            .find(|b| b.nodeid >= 0 && b.toppars.contains_key(&self.toppar))
        else {
            return;
        };
        if let Ok(mut w) = self.windows.lock() {
            if w.rtt.len() < STATISTICS_WINDOWS_MAX {
                w.rtt.extend(leader.rtt.clone());
                w.int_latency.extend(leader.int_latency.clone());
                w.outbuf_latency.extend(leader.outbuf_latency.clone());
            }
        }
    }
}

impl ProducerContext for Counter {
    /// The message's index.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let index = index as u64;
        match result {
            Ok(_) => {
                self.acked.fetch_add(1, Ordering::Relaxed);
                let sent = index
                    .is_multiple_of(self.sample_every)
                    .then(|| self.sent_us.get((index / self.sample_every) as usize))
                    .flatten();
                if let Some(sent) = sent {
                    let sent_us = sent.load(Ordering::Relaxed);
                    let now_us = self.started.elapsed().as_micros() as u64;
                    if let Ok(mut l) = self.latencies_us.lock() {
                        if l.len() < LATENCY_SAMPLES_MAX {
                            l.push((
                                sent_us,
                                now_us.saturating_sub(sent_us).min(u32::MAX as u64) as u32,
                            ));
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
    let producer: BaseProducer<WarmUp> = config
        .create_with_context(WarmUp(AtomicU64::new(0)))
        .map_err(WorkloadError::kafka("creating the warm-up producer"))?;
    let value = vec![b'w'; spec.message_size_bytes];
    let started = Instant::now();
    while producer.context().0.load(Ordering::Relaxed) == 0
        && started.elapsed() < Duration::from_millis(WARM_UP_MS_MAX)
    {
        let record: BaseRecord<'_, (), [u8]> = BaseRecord::to(&spec.topic).payload(&value[..]);
        if producer.send(record).is_err() {
            producer.poll(Duration::from_millis(POLL_WAIT_MS));
            continue;
        }
        let _ = producer.flush(Duration::from_millis(WARM_UP_MS_MAX));
    }
    if producer.context().0.load(Ordering::Relaxed) == 0 {
        return Err(WorkloadError::Incomplete(format!(
            "no warm-up message acknowledged within {WARM_UP_MS_MAX} ms"
        )));
    }
    Ok(())
}

pub fn run(spec: &BenchSpec) -> Result<BenchResult, WorkloadError> {
    warm_up(spec)?;
    let producer = bench_producer(spec)?;
    let value = vec![b'x'; spec.message_size_bytes];
    let interval_ns = if spec.rate_per_s == 0 {
        0
    } else {
        1_000_000_000 / spec.rate_per_s
    };
    let started = producer.context().started;
    let per_txn = spec.transaction_messages;
    let txn_timeout = Duration::from_millis(crate::limits::TXN_TIMEOUT_MS);
    if per_txn > 0 {
        producer
            .init_transactions(txn_timeout)
            .map_err(WorkloadError::kafka("init_transactions"))?;
    }
    let mut transactions = 0u64;
    // Messages below this index are due (read the clock once per burst, not once per message).
    let mut due_below = 0u64;
    for index in 0..spec.messages {
        if interval_ns > 0 && index >= due_below {
            due_below = wait_until_due(index, interval_ns, started);
        }
        if per_txn > 0 && index % per_txn == 0 {
            producer
                .begin_transaction()
                .map_err(WorkloadError::kafka("begin_transaction"))?;
        }
        send_one(&producer, spec, index, &value)?;
        if per_txn > 0 && ((index + 1) % per_txn == 0 || index + 1 == spec.messages) {
            producer
                .commit_transaction(txn_timeout)
                .map_err(WorkloadError::kafka("commit_transaction"))?;
            transactions += 1;
        }
    }
    let ctx = producer.context();
    while ctx.acked.load(Ordering::Relaxed) + ctx.failed.load(Ordering::Relaxed) < spec.messages {
        std::thread::sleep(Duration::from_millis(1));
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    let acked = ctx.acked.load(Ordering::Relaxed);
    // One last statistics window for the end of the run.
    let waited = Instant::now();
    let windows_before = ctx.windows.lock().map(|w| w.rtt.len()).unwrap_or(0);
    while ctx.windows.lock().map(|w| w.rtt.len()).unwrap_or(0) == windows_before
        && waited.elapsed() < Duration::from_millis(2 * STATISTICS_INTERVAL_MS)
    {
        std::thread::sleep(Duration::from_millis(POLL_WAIT_MS));
    }
    let mut result = bench_result(spec, ctx, acked, elapsed_s)?;
    result.transactions = transactions;
    result.transactions_per_s = transactions as f64 / elapsed_s;
    Ok(result)
}

/// The measured producer: the spec's config, statistics every `STATISTICS_INTERVAL_MS`, and a
/// context that stamps a sample of sends and their delivery reports.
fn bench_producer(spec: &BenchSpec) -> Result<ThreadedProducer<Counter>, WorkloadError> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &spec.bootstrap);
    for (k, v) in &spec.config {
        config.set(k, v);
    }
    config.set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string());
    if spec.transaction_messages > 0 {
        config.set(
            "transactional.id",
            format!("kaos-bench-{}", std::process::id()),
        );
        config.set("enable.idempotence", "true");
    }
    let sample_every = (spec.messages / LATENCY_SAMPLES_MAX as u64).max(1);
    let counter = Counter {
        started: Instant::now(),
        acked: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        sample_every,
        sent_us: (0..spec.messages.div_ceil(sample_every))
            .map(|_| AtomicU64::new(0))
            .collect(),
        latencies_us: Mutex::new(Vec::new()),
        toppar: format!("{}-0", spec.topic),
        windows: Mutex::new(LeaderWindows::default()),
    };
    // A ThreadedProducer: its own thread serves delivery reports as they come, so that a report is
    // stamped when librdkafka has it, not when this loop next polls (polling here served one
    // event per call: with small batches the reports queued behind the sends and counted as
    // hundreds of ms of latency).
    config
        .create_with_context(counter)
        .map_err(WorkloadError::kafka("creating the producer"))
}

/// Waits until message `index` is due; returns the index below which messages are due now.
fn wait_until_due(index: u64, interval_ns: u64, started: Instant) -> u64 {
    // Wait for the message's time without spinning: on a 2-core machine a spinning sender
    // takes a whole core from the brokers it measures. A message due within
    // PACING_SLACK_US goes now, so that messages go in small bursts (each stamped with its
    // own send time) rather than one sleep per message, which costs as much as spinning
    // where sleeps are exact (no timer slack, as under a real-time policy).
    let due = Duration::from_nanos(index * interval_ns);
    loop {
        let now = started.elapsed();
        let Some(ahead) = due
            .checked_sub(now)
            .filter(|a| *a > Duration::from_micros(PACING_SLACK_US))
        else {
            let horizon_ns = (now + Duration::from_micros(PACING_SLACK_US)).as_nanos() as u64;
            return horizon_ns / interval_ns + 1;
        };
        std::thread::sleep(ahead);
    }
}

/// Sends message `index` (stamping its send time when it is sampled), waiting while
/// librdkafka's queue is full.
fn send_one(
    producer: &ThreadedProducer<Counter>,
    spec: &BenchSpec,
    index: u64,
    value: &[u8],
) -> Result<(), WorkloadError> {
    let ctx = producer.context();
    loop {
        if index.is_multiple_of(ctx.sample_every) {
            let sent_us = ctx.started.elapsed().as_micros() as u64;
            if let Some(sent) = ctx.sent_us.get((index / ctx.sample_every) as usize) {
                sent.store(sent_us, Ordering::Relaxed);
            }
        }
        let record: BaseRecord<'_, (), [u8], usize> =
            BaseRecord::with_opaque_to(&spec.topic, index as usize).payload(value);
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(WorkloadError::kafka("sending")(e)),
        }
    }
}

/// The figures of a finished run: throughput, latency percentiles of the samples (written to
/// `samples_csv` when asked), and the statistics windows.
fn bench_result(
    spec: &BenchSpec,
    ctx: &Counter,
    acked: u64,
    elapsed_s: f64,
) -> Result<BenchResult, WorkloadError> {
    let samples = ctx
        .latencies_us
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    if let Some(path) = &spec.samples_csv {
        write_samples(path, &samples)?;
    }
    let mut lat: Vec<u32> = samples.iter().map(|&(_, latency_us)| latency_us).collect();
    lat.sort_unstable();
    let pct = |q: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 - 1.0) * q).round() as usize;
        lat[i.min(lat.len() - 1)] as f64 / 1000.0
    };
    let windowed = |of: fn(&LeaderWindows) -> &[Window]| {
        ctx.windows
            .lock()
            .map(|w| WindowedLatency::of(of(&w)))
            .unwrap_or_default()
    };
    Ok(BenchResult {
        transactions: 0,
        transactions_per_s: 0.0,
        messages_acked: acked,
        messages_failed: ctx.failed.load(Ordering::Relaxed),
        elapsed_s,
        messages_per_s: acked as f64 / elapsed_s,
        megabytes_per_s: acked as f64 * spec.message_size_bytes as f64 / elapsed_s / 1e6,
        latency_ms_p50: pct(0.5),
        latency_ms_p99: pct(0.99),
        latency_ms_max: pct(1.0),
        request_rtt: windowed(|w| &w.rtt),
        queue_wait: windowed(|w| &w.int_latency),
        send_wait: windowed(|w| &w.outbuf_latency),
    })
}

/// The latency samples as CSV, `sent_ms,latency_ms`, in send order.
fn write_samples(path: &std::path::Path, samples: &[(u64, u32)]) -> Result<(), WorkloadError> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let write = || -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(out, "sent_ms,latency_ms")?;
        for (sent_us, latency_us) in sorted {
            writeln!(
                out,
                "{:.3},{:.3}",
                sent_us as f64 / 1000.0,
                f64::from(latency_us) / 1000.0
            )?;
        }
        out.flush()
    };
    write().map_err(|e| {
        WorkloadError::Incomplete(format!(
            "writing the latency samples to {}: {e}",
            path.display()
        ))
    })
}
