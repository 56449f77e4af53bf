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
    pub settings: toml::Table,
    /// `enable.idempotence=true` (librdkafka then requires acks=all).
    pub idempotence: bool,
}

/// librdkafka settings for throughput: linger 5 ms, large batches, a deep queue.
fn producer_config(acks: &str, idempotence: bool) -> BTreeMap<String, String> {
    let idempotence = if idempotence { "true" } else { "false" };
    [
        ("acks", acks),
        ("linger.ms", "5"),
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

pub async fn run(b: BrokerBench) -> Result<BenchResult> {
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
        config: producer_config(&b.acks, b.idempotence),
    };
    let result = tokio::task::spawn_blocking(move || workloads::bench::run(&spec)).await?.context("running the producer")?;
    if let Some(mut p) = platform {
        p.stop_all().await;
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(result)
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("kaos-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
