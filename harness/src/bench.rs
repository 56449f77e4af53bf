//! `kaos bench broker`: producer throughput and latency against a cluster this command starts
//! (kaos-broker, or another binary with `--broker-bin`) or against any running broker
//! (`--bootstrap`). Figures go to standard output as JSON and as a readable line; BENCHMARKS.md
//! records them. Benchmarks measure; tests never assert on speed.

use crate::platform::LocalPlatform;
use crate::scenario::Cluster;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use workloads::bench::{BenchResult, BenchSpec};

pub struct BrokerBench {
    pub broker_bin: PathBuf,
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
}

/// What `kaos bench broker` measured: the producer's figures and each started broker's peak
/// resident memory (VmHWM of /proc/PID/status, read just before the broker stops).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BrokerBenchResult {
    #[serde(flatten)]
    pub producer: BenchResult,
    pub linger_ms: u32,
    /// Node name → peak resident set size in KiB (empty with `--bootstrap`).
    pub broker_rss_peak_kib: BTreeMap<String, u64>,
}

/// Peak resident set size of a process in KiB (`VmHWM` in /proc/PID/status), if readable.
pub fn rss_peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
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

pub async fn run(b: BrokerBench) -> Result<BrokerBenchResult> {
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
            let mut p = LocalPlatform::new(&b.broker_bin, &tmp, &cluster)?;
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
    workloads::admin::create_topic(&bootstrap, &topic, 1, b.brokers as i32).await.context("creating the bench topic")?;
    let spec = BenchSpec {
        bootstrap,
        topic,
        messages: b.messages,
        message_size_bytes: b.message_size_bytes,
        rate_per_s: b.rate_per_s,
        config: producer_config(&b.acks, b.idempotence, b.linger_ms),
    };
    let result = tokio::task::spawn_blocking(move || workloads::bench::run(&spec)).await?.context("running the producer")?;
    let mut broker_rss_peak_kib = BTreeMap::new();
    if let Some(mut p) = platform {
        for node in p.brokers() {
            if let Some(kib) = node.pid().and_then(rss_peak_kib) {
                broker_rss_peak_kib.insert(node.name.clone(), kib);
            }
        }
        p.stop_all().await;
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(BrokerBenchResult { producer: result, linger_ms: b.linger_ms, broker_rss_peak_kib })
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("kaos-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
