//! `kaos-broker`: command line, logging, signals. Everything else is in the library.
//!
//! # Layout
//! - `main.rs`: this file (clap, tracing to stderr, SIGTERM/SIGINT → graceful shutdown).
//! - `lib.rs`: the module map of the broker itself.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// A Kafka-wire-compatible broker with a durable segmented log.
#[derive(Debug, Parser)]
#[command(name = "kaos-broker", version)]
struct Cli {
    /// This broker's id (`node.id` in the config file).
    #[arg(long)]
    node_id: Option<i32>,
    /// Address to listen on, ip:port (`listeners`); port 0 picks a free port.
    #[arg(long)]
    listen: Option<String>,
    /// Directory holding the partition logs (`log.dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML config file with Kafka-like dotted keys.
    #[arg(long)]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_env_filter(filter)
        .init();
    let cli = Cli::parse();
    let file = match &cli.config {
        Some(path) => broker::FileConfig::load(path).with_context(|| {
            format!(
                "loading {} (keys are Kafka-style, e.g. \"segment.bytes\")",
                path.display()
            )
        })?,
        None => broker::FileConfig::default(),
    };
    let config = broker::Config::resolve(file, cli.node_id, cli.listen, cli.data_dir)
        .context("invalid configuration (see --help)")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(async move {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("installing the SIGTERM handler")?;
        let shutdown = async move {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("SIGTERM received"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
            }
        };
        broker::run(config, shutdown)
            .await
            .context("kaos-broker stopped with an error")
    })?;
    // Connection tasks may still be parked; leave without waiting for them.
    std::process::exit(0)
}
