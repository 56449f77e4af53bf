//! The broker process: binds, recovers its data dir, serves until `shutdown` completes (in a
//! cluster: after registering with the controller), then shuts down gracefully.

use std::sync::Arc;

use crate::config::Config;
use crate::limits;
use crate::server::{self, RunError};
use crate::state::Broker;

/// Binds, recovers, serves until `shutdown` completes, then shuts down gracefully.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), RunError> {
    let (listener, bound) = server::bind(config.listen).await?;
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
    if broker.in_cluster() {
        server::cluster::link(&broker);
    }
    server::spawn_background_tasks(&broker);
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
