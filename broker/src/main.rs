//! `kaos-broker`: command line, logging, signals. Everything else is in the library.
//!
//! # Layout
//! - `main.rs`: this file (clap, tracing to stderr, SIGTERM/SIGINT → graceful shutdown).
//!   `kaos-broker [--node-id N --listen ADDR --data-dir DIR [--controller ADDR] [--config FILE]]`
//!   runs a broker; `kaos-broker controller --listen ADDR --data-dir DIR [--config FILE]` runs the
//!   controller; `kaos-broker dump --data-dir DIR` prints every record of a data dir as JSON lines;
//!   `kaos-broker check-config --config FILE [--controller]` validates a config file and exits
//!   (0 valid, 2 with the reason on stderr) without starting anything.
//! - `lib.rs`: the module map of the broker itself.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// A Kafka-wire-compatible broker with a durable segmented log and Kafka-style replication.
#[derive(Debug, Parser)]
#[command(name = "kaos-broker", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// This broker's id (`node.id` in the config file).
    #[arg(long)]
    node_id: Option<i32>,
    /// Address to listen on, ip:port (`listeners`); port 0 picks a free port.
    #[arg(long)]
    listen: Option<String>,
    /// Directory holding the partition logs (`log.dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The controller's address, host:port: run as a member of a replicated cluster.
    #[arg(long)]
    controller: Option<String>,
    /// TOML config file with Kafka-like dotted keys.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the controller (registrations, elections, ISR changes; durable state in --data-dir).
    Controller {
        /// Address to listen on, ip:port; port 0 picks a free port.
        #[arg(long)]
        listen: String,
        /// Directory holding the controller state.
        #[arg(long)]
        data_dir: PathBuf,
        /// TOML config file (same keys as the broker's; unknown keys are an error).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print every record of every partition replica in a data dir as JSON lines (read-only).
    Dump {
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Validate a config file as a broker (or, with --controller, the controller) would at start,
    /// without starting: exit 0 when valid, 2 with the reason on standard error.
    CheckConfig {
        #[arg(long)]
        config: PathBuf,
        /// Check it as the controller's config.
        #[arg(long)]
        controller: bool,
    },
}

/// `check-config`: the file parsed and resolved as at start; what the command line gives at start
/// (node id, listen address, data dir) gets a placeholder when the file does not have it.
fn check_config(path: PathBuf, controller: bool) -> i32 {
    let checked = load_file(Some(&path)).and_then(|file| {
        let data_dir = file.data_dir.clone().unwrap_or_else(|| PathBuf::from("."));
        let listen = file.listen.clone().unwrap_or_else(|| "127.0.0.1:0".into());
        if controller {
            broker::controller::ControllerConfig::resolve(file, listen, data_dir)
                .map(drop)
                .context("invalid controller configuration")
        } else {
            let node_id = file.node_id.unwrap_or(0);
            broker::Config::resolve(file, Some(node_id), Some(listen), Some(data_dir))
                .map(drop)
                .context("invalid broker configuration")
        }
    });
    match checked {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("kaos-broker: {e:#}");
            2
        }
    }
}

fn load_file(path: Option<&PathBuf>) -> anyhow::Result<broker::FileConfig> {
    match path {
        Some(path) => broker::FileConfig::load(path).with_context(|| {
            format!(
                "loading {} (keys are Kafka-style, e.g. \"segment.bytes\")",
                path.display()
            )
        }),
        None => Ok(broker::FileConfig::default()),
    }
}

fn resolve_address(text: &str) -> anyhow::Result<SocketAddr> {
    text.to_socket_addrs()
        .with_context(|| format!("--controller {text:?} is not host:port"))?
        .next()
        .with_context(|| format!("--controller {text:?} resolves to no address"))
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
    match cli.command {
        Some(Command::CheckConfig { config, controller }) => {
            std::process::exit(check_config(config, controller))
        }
        Some(Command::Dump { data_dir }) => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            broker::dump::dump(&data_dir, &mut out, &mut std::io::stderr())
                .with_context(|| format!("dumping {}", data_dir.display()))?;
            return Ok(());
        }
        Some(Command::Controller {
            listen,
            data_dir,
            config,
        }) => {
            let file = load_file(config.as_ref())?;
            let config = broker::controller::ControllerConfig::resolve(file, listen, data_dir)
                .context("invalid configuration (see --help)")?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting tokio")?;
            runtime.block_on(async move {
                let shutdown = shutdown_signal()?;
                broker::server::controller::run(config, shutdown)
                    .await
                    .context("kaos-controller stopped with an error")
            })?;
            std::process::exit(0)
        }
        None => {}
    }
    let file = load_file(cli.config.as_ref())?;
    let mut config = broker::Config::resolve(file, cli.node_id, cli.listen, cli.data_dir)
        .context("invalid configuration (see --help)")?;
    if let Some(controller) = &cli.controller {
        config.controller = Some(resolve_address(controller)?);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    let stopped = runtime.block_on(async move {
        let shutdown = shutdown_signal()?;
        anyhow::Ok(broker::run(config, shutdown).await)
    })?;
    // Connection tasks may still be parked; leave without waiting for them.
    match stopped {
        Ok(()) => std::process::exit(0),
        Err(e @ broker::RunError::Shutdown(_)) => {
            eprintln!(
                "kaos-broker: {e}; stopped without the clean-shutdown marker (exit code {}): the next start recovers every log",
                broker::UNCLEAN_SHUTDOWN_EXIT_CODE
            );
            std::process::exit(broker::UNCLEAN_SHUTDOWN_EXIT_CODE)
        }
        Err(e) => Err(anyhow::Error::new(e).context("kaos-broker stopped with an error")),
    }
}

/// Completes on SIGTERM or SIGINT.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        }
    })
}
