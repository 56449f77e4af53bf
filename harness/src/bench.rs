//! `kaos bench broker`: producer throughput and latency against a cluster this command starts
//! (on a broker profile: kaos-broker by default, `--broker tansu`, several in turn for a side by
//! side comparison; `--broker-bin` replaces the program) or against any running broker
//! (`--bootstrap`). Figures go to standard output as JSON and as readable lines; BENCHMARKS.md
//! records them. Benchmarks measure; tests never assert on speed.
//!
//! Latency is given as send→ack and as produce request latency (see `workloads::bench`); with
//! started kaos-brokers also as the brokers' own request metrics (`request-metrics.json`, written
//! at their graceful stop: Produce and Fetch time per stage, a follower's fetch round trips), and
//! each broker's CPU time, which is the figure to compare on a machine that other work loads.

use crate::platform::LocalPlatform;
use crate::profile::{Broker, Needs};
use crate::scenario::Cluster;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use workloads::bench::{BenchResult, BenchSpec};

pub struct BrokerBench {
    /// The broker profile to start (unused with `bootstrap`).
    pub broker: Broker,
    pub bootstrap: Option<String>,
    pub brokers: u32,
    pub acks: String,
    pub messages: u64,
    pub message_size_bytes: usize,
    pub rate_per_s: u64,
    /// librdkafka's `linger.ms`: 5 for throughput (Kafka 4's default); a latency run may lower it,
    /// since every message otherwise waits up to this long in the client before it is sent.
    pub linger_ms: u32,
    pub settings: toml::Table,
    /// `enable.idempotence=true` (librdkafka then requires acks=all).
    pub idempotence: bool,
    /// Where to write every latency sample (`sent_ms,latency_ms`), to see when the slow ones were.
    pub latency_csv: Option<PathBuf>,
    /// Messages per transaction of a transactional producer (needs `--acks all`); 0: none.
    pub transaction_messages: u64,
}

/// What `kaos bench broker` measured: the producer's figures and each started broker's peak
/// resident memory (VmHWM of /proc/PID/status, read just before the broker stops).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BrokerBenchResult {
    /// The broker profile measured (or `bootstrap` for a running broker).
    pub broker: String,
    #[serde(flatten)]
    pub producer: BenchResult,
    pub linger_ms: u32,
    /// Node name → peak resident set size in KiB (empty with `--bootstrap`).
    pub broker_rss_peak_kib: BTreeMap<String, u64>,
    /// Node name → CPU time (user + system, all threads) the broker used from its start to its
    /// stop, in seconds: a cost that other load on the machine changes far less than latency.
    pub broker_cpu_s: BTreeMap<String, f64>,
    /// CPU time of this process (the producer and librdkafka) while producing, in seconds.
    pub producer_cpu_s: f64,
    /// Node name → the request metrics kaos-broker wrote at its graceful stop
    /// (`request-metrics.json`: per-stage time percentiles of Produce and Fetch, and of a
    /// follower's fetches); absent for other brokers.
    pub broker_request_metrics: BTreeMap<String, serde_json::Value>,
}

/// File kaos-broker writes its request metrics to, in its data dir, at a graceful stop.
const REQUEST_METRICS_FILE_NAME: &str = "request-metrics.json";

/// Peak resident set size of a process in KiB (`VmHWM` in /proc/PID/status), if readable.
pub fn rss_peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user + system) a process has used, in seconds (`/proc/PID/stat` fields 14 and 15).
pub fn cpu_s(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // In USER_HZ, which Linux fixes at 100 for everything it reports to user space.
    Some((utime + stime) as f64 / 100.0)
}

/// librdkafka settings for throughput: large batches, a deep queue.
fn producer_config(acks: &str, idempotence: bool, linger_ms: u32) -> BTreeMap<String, String> {
    let idempotence = if idempotence { "true" } else { "false" };
    let linger_ms = linger_ms.to_string();
    [
        ("acks", acks),
        ("linger.ms", linger_ms.as_str()),
        ("batch.size", "1000000"),
        ("batch.num.messages", "100000"),
        ("queue.buffering.max.messages", "2000000"),
        ("queue.buffering.max.kbytes", "2097151"),
        ("compression.type", "none"),
        ("enable.idempotence", idempotence),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The arguments checked before anything starts: what librdkafka would refuse (`--acks banana`,
/// idempotence without acks=all) and numbers out of range.
fn validate(b: &BrokerBench) -> Result<()> {
    if !matches!(b.acks.as_str(), "0" | "1" | "-1" | "all") {
        anyhow::bail!(
            "--acks {:?}: expected 0, 1, -1 or all (Kafka's acks)",
            b.acks
        );
    }
    if b.bootstrap.is_none() && !(1..=crate::limits::BROKERS_MAX).contains(&b.brokers) {
        anyhow::bail!(
            "--brokers {}: expected 1 to {}",
            b.brokers,
            crate::limits::BROKERS_MAX
        );
    }
    if b.messages == 0 {
        anyhow::bail!("--messages must be at least 1");
    }
    if b.transaction_messages > 0 && !matches!(b.acks.as_str(), "-1" | "all") {
        anyhow::bail!(
            "--transactional {} needs --acks all (a transactional producer is idempotent)",
            b.transaction_messages
        );
    }
    let sizes =
        workloads::limits::MESSAGE_SIZE_MIN_BYTES..=workloads::limits::MESSAGE_SIZE_MAX_BYTES;
    if !sizes.contains(&b.message_size_bytes) {
        anyhow::bail!(
            "--message-size {} is outside {sizes:?}",
            b.message_size_bytes
        );
    }
    workloads::check_client_config(&producer_config(&b.acks, b.idempotence, b.linger_ms), false)
        .map_err(|e| anyhow::anyhow!("librdkafka refuses the producer's settings: {e}"))
}

pub async fn run(b: BrokerBench) -> Result<BrokerBenchResult> {
    validate(&b)?;
    let tmp = tempfile_dir()?;
    let mut platform = None;
    let bootstrap = match &b.bootstrap {
        Some(addr) => addr.clone(),
        None => {
            let cluster = Cluster {
                brokers: b.brokers,
                controller: None,
                settings: b.settings.clone(),
                node_settings: BTreeMap::new(),
                controller_settings: toml::Table::new(),
                replica_dumps: false,
            };
            let needs = Needs {
                brokers: b.brokers,
                controller: cluster.has_controller(),
                replication_factor: b.brokers as i32,
                idempotence: b.idempotence,
                settings: b.settings.keys().cloned().collect(),
                ..Needs::default()
            };
            if let Err(why) = b.broker.profile.admits(&needs) {
                anyhow::bail!(
                    "broker profile {} cannot run this bench: {why}",
                    b.broker.profile.name
                );
            }
            let mut p = LocalPlatform::new(&b.broker, &tmp, &cluster)?;
            for i in 0..p.nodes.len() {
                p.check_config(i).await?;
            }
            let mut order: Vec<usize> = (0..p.nodes.len()).collect();
            order.rotate_right(usize::from(cluster.has_controller()));
            for i in order {
                p.start(i).await?;
            }
            let bootstrap = p.bootstrap();
            platform = Some(p);
            bootstrap
        }
    };
    let topic = format!("bench-{}", std::process::id());
    workloads::admin::create_topic(&bootstrap, &topic, 1, b.brokers as i32)
        .await
        .context("creating the bench topic")?;
    let spec = BenchSpec {
        bootstrap,
        topic,
        messages: b.messages,
        message_size_bytes: b.message_size_bytes,
        rate_per_s: b.rate_per_s,
        config: producer_config(&b.acks, b.idempotence, b.linger_ms),
        samples_csv: b.latency_csv.clone(),
        transaction_messages: b.transaction_messages,
    };
    let producer_cpu_before_s = cpu_s("self").unwrap_or(0.0);
    let result = tokio::task::spawn_blocking(move || workloads::bench::run(&spec))
        .await?
        .context("running the producer")?;
    let producer_cpu_s = cpu_s("self").unwrap_or(0.0) - producer_cpu_before_s;
    let mut broker_rss_peak_kib = BTreeMap::new();
    let mut broker_cpu_s = BTreeMap::new();
    let mut broker_request_metrics = BTreeMap::new();
    if let Some(mut p) = platform {
        for node in p.brokers() {
            if let Some(kib) = node.pid().and_then(rss_peak_kib) {
                broker_rss_peak_kib.insert(node.name.clone(), kib);
            }
            if let Some(s) = node.pid().and_then(|pid| cpu_s(&pid.to_string())) {
                broker_cpu_s.insert(node.name.clone(), s);
            }
        }
        p.stop_all().await;
        for node in p.brokers() {
            let path = node.data_dir().join(REQUEST_METRICS_FILE_NAME);
            if let Some(metrics) = std::fs::read(&path)
                .ok()
                .and_then(|json| serde_json::from_slice(&json).ok())
            {
                broker_request_metrics.insert(node.name.clone(), metrics);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(BrokerBenchResult {
        broker: match &b.bootstrap {
            Some(_) => "bootstrap".into(),
            None => b.broker.profile.name.clone(),
        },
        producer: result,
        linger_ms: b.linger_ms,
        broker_rss_peak_kib,
        broker_cpu_s,
        producer_cpu_s,
        broker_request_metrics,
    })
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("kaos-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
