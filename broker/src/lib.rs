//! kaos-broker: a Kafka-wire-compatible broker with a durable segmented log and Kafka-style
//! replication (controller, leaders and followers, ISR, HW, leader epochs).
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | [`config`] | TOML config with Kafka-like dotted keys, merged with the command line |
//! | [`limits`] | every limit (frame size, in-flight requests, fetch bytes, …) as named constants |
//! | [`wire`] | bytes only: record batch v2 validation and patching ([`wire::batch`]), the records inside a produced batch: framing, codecs, decompression bound ([`wire::records`]), response framing ([`wire::frame`]) |
//! | [`server`] | sockets: accept loop, one connection ([`server::connection`]), admission, expiry and the request memory budget ([`server::connections`]), peer client ([`server::client`]), background tasks, cluster membership ([`server::cluster`]), followers ([`server::fetcher`]), the controller's server ([`server::controller`]) |
//! | [`api`] | one module per Kafka API; decoded request in, response out, no socket I/O |
//! | [`state`] | the broker's topics and partitions, startup recovery, checkpoints (recovery point, HW), graceful shutdown |
//! | [`partition`] | one partition replica: log, leader-epoch cache, role, leader epoch, HW (a watch), ISR, follower progress |
//! | [`producer`] | idempotent producers: producer ids (InitProducerId), per-partition epochs and last batches for deduplication and sequence checks, rebuilt from the log |
//! | [`cluster`] | the broker's view of the cluster from the controller, and the role changes it implies |
//! | [`controller`] | the controller: registrations, liveness, elections, ISR changes, durable state; its APIs in [`controller::api`] |
//! | [`log`] | storage: segments, sparse offset index, flush policy, recovery, truncation, checkpoint files, leader-epoch cache ([`log::epoch`]) |
//! | [`group`] | the group coordinator: the classic rebalance protocol per group ([`group::state`]), committed offsets in `__consumer_offsets` ([`group::records`]), loading and dropping offsets partitions as their leadership moves |
//! | [`invariant`] | run-time invariants (HW ≤ LEO, offsets increasing, epochs non-decreasing, ISR ⊆ replicas, …): pure checks, and a stop with exit code 71 when one fails |
//! | [`metrics`] | request metrics (Kafka's `RequestMetrics`): per-stage time histograms of Produce and Fetch, and of a follower's fetches; summarised to `request-metrics.json` at shutdown |
//! | [`dump`] | `kaos-broker dump`: every record of every replica in a data dir as JSON lines, read-only |
//!
//! Data flow: connection → `api::handle_frame` → handler → `Partition` → `Log` → segment files;
//! replies go back through the connection writer in request order. In a cluster the membership
//! task pulls the controller's image (Metadata) every heartbeat and applies it
//! (`cluster::apply_image`); followers fetch from leaders; leaders send AlterPartition.

pub mod api;
pub mod cluster;
pub mod config;
pub mod controller;
pub mod dump;
pub mod group;
pub mod invariant;
pub mod limits;
pub mod log;
pub mod metrics;
pub mod partition;
pub mod producer;
pub mod server;
pub mod state;
pub mod wire;

use std::sync::Arc;

pub use config::{Config, FileConfig};
pub use state::{Broker, CLEAN_SHUTDOWN_FILE_NAME};

/// Exit code when the broker stops because its own log is inconsistent.
pub const FATAL_EXIT_CODE: i32 = 70;

/// Exit code of a graceful stop that could not finish cleanly: a partition's log failed while
/// serving (a full disk, an I/O error) or a checkpoint could not be written. Everything flushed
/// stays; no clean-shutdown marker is written, so the next start recovers every log as after a
/// crash (sysexits' EX_IOERR).
pub const UNCLEAN_SHUTDOWN_EXIT_CODE: i32 = 74;

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
    #[error("cannot listen on {address}")]
    Bind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the data dir")]
    Startup(#[source] state::StateError),
    #[error("graceful shutdown failed")]
    Shutdown(#[source] state::StateError),
    #[error("startup task failed")]
    Join(#[from] tokio::task::JoinError),
    #[error("cannot open the controller state")]
    Controller(#[source] controller::ControllerError),
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
    group::spawn(&broker);
    let serving = server::serve(Arc::clone(&broker), listener, shutdown);
    tokio::pin!(serving);
    if let Some(controller) = broker.config.controller {
        // In a cluster, ready means registered with the controller and holding its first image
        // (connections are accepted meanwhile: peers may already fetch from us).
        server::cluster::spawn(&broker, controller);
        let mut ready = broker.cluster.ready.subscribe();
        let mut waited_ms = 0u64;
        loop {
            tokio::select! {
                () = &mut serving => {
                    tracing::info!("stopped before registering with the controller");
                    return finish(broker).await;
                }
                changed = ready.wait_for(|r| *r) => {
                    if changed.is_ok() { break; }
                }
                () = tokio::time::sleep(std::time::Duration::from_millis(limits::READY_WAIT_LOG_MS)) => {
                    waited_ms += limits::READY_WAIT_LOG_MS;
                    tracing::warn!(%controller, waited_ms, "still waiting to register with the controller");
                }
            }
        }
    }
    eprintln!(
        "kaos-broker ready node_id={} listen={bound}",
        broker.node_id()
    );
    serving.await;
    if broker.in_cluster() {
        server::cluster::controlled_shutdown(&broker).await;
    }
    finish(broker).await
}

/// Graceful shutdown after serving stopped.
async fn finish(broker: Arc<Broker>) -> Result<(), RunError> {
    tracing::info!("shutting down: flushing partitions");
    let closing = Arc::clone(&broker);
    tokio::task::spawn_blocking(move || closing.shutdown())
        .await?
        .map_err(RunError::Shutdown)?;
    tracing::info!("clean shutdown complete");
    Ok(())
}
