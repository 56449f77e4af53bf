//! kaos-broker: a Kafka-wire-compatible broker with a durable segmented log.
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | [`config`] | TOML config with Kafka-like dotted keys, merged with the command line |
//! | [`limits`] | every limit (frame size, in-flight requests, fetch bytes, …) as named constants |
//! | [`wire`] | bytes only: record batch v2 validation and patching ([`wire::batch`]), response framing ([`wire::frame`]) |
//! | [`server`] | sockets: accept loop ([`server`]), one connection ([`server::connection`]), background tasks |
//! | [`api`] | one module per Kafka API; decoded request in, response out, no socket I/O |
//! | [`state`] | the broker's topics and partitions, startup recovery, checkpoints, graceful shutdown |
//! | [`partition`] | one partition replica: log, leader epoch, HW (a watch), ISR |
//! | [`log`] | storage: segments, sparse offset index, flush policy, recovery, checkpoint files |
//!
//! Data flow: connection → `api::handle_frame` → handler → `Partition` → `Log` → segment files;
//! replies go back through the connection writer in request order.

pub mod api;
pub mod config;
pub mod limits;
pub mod log;
pub mod partition;
pub mod server;
pub mod state;
pub mod wire;

use std::sync::Arc;

pub use config::{Config, FileConfig};
pub use state::{Broker, CLEAN_SHUTDOWN_FILE_NAME};

/// Exit code when the broker stops because its own log is inconsistent.
pub const FATAL_EXIT_CODE: i32 = 70;

/// Stops the broker at once: used when the log contradicts itself while serving, so that no
/// wrong offset is ever served. Not a panic: the process exits with [`FATAL_EXIT_CODE`].
pub fn fatal(message: &str) -> ! {
    tracing::error!(message, "fatal: stopping the broker");
    eprintln!("kaos-broker fatal: {message}");
    std::process::exit(FATAL_EXIT_CODE)
}

/// Errors that stop the broker from starting or shutting down cleanly.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the data dir: {0}")]
    Startup(#[source] state::StateError),
    #[error("graceful shutdown failed: {0}")]
    Shutdown(#[source] state::StateError),
    #[error("startup task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Binds, recovers, serves until `shutdown` completes, then shuts down gracefully.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), RunError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| RunError::Bind {
            address: config.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| RunError::Bind {
        address: config.listen,
        source,
    })?;
    let (advertised_host, advertised_port) = match &config.advertised_listener {
        Some((host, port)) => (host.clone(), *port),
        None => (bound.ip().to_string(), i32::from(bound.port())),
    };
    let opening = config.clone();
    let (broker, report) = tokio::task::spawn_blocking(move || {
        Broker::open(opening, advertised_host, advertised_port)
    })
    .await?
    .map_err(RunError::Startup)?;
    tracing::info!(
        clean_shutdown = report.clean_shutdown,
        partitions = report.partitions_loaded,
        partitions_truncated = report.partitions_truncated,
        "recovery done"
    );
    let broker = Arc::new(broker);
    server::spawn_background_tasks(&broker);
    eprintln!(
        "kaos-broker ready node_id={} listen={bound}",
        broker.node_id()
    );
    server::serve(Arc::clone(&broker), listener, shutdown).await;
    tracing::info!("shutting down: flushing partitions");
    let closing = Arc::clone(&broker);
    tokio::task::spawn_blocking(move || closing.shutdown())
        .await?
        .map_err(RunError::Shutdown)?;
    tracing::info!("clean shutdown complete");
    Ok(())
}
