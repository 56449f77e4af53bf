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
    crate::server::announce_ready(&format!(
        "kaos-broker ready node_id={} listen={bound}",
        broker.node_id()
    ));
    if let Some(after_ms) = broker.config.debug_crash_after_ms {
        plant_crash(after_ms, &broker.config.data_dir);
    }
    serving.await;
    if broker.in_cluster() {
        server::cluster::controlled_shutdown(&broker).await;
    }
    finish(broker).await
}

/// The marker of a planted crash in the data dir: the crash happens once per data dir.
pub const DEBUG_CRASH_MARKER: &str = "debug-crashed";

/// `debug.crash.after.ms`: unless the data dir holds [`DEBUG_CRASH_MARKER`], writes it and stops
/// the process `after_ms` later as a violated invariant does (its stderr line, exit code 71), on
/// a thread of its own so that nothing the broker does can delay it.
fn plant_crash(after_ms: u64, data_dir: &std::path::Path) {
    let marker = data_dir.join(DEBUG_CRASH_MARKER);
    if marker.exists() {
        return;
    }
    if let Err(e) = std::fs::write(&marker, b"") {
        tracing::error!(error = %e, path = %marker.display(), "cannot write the planted crash's marker; not crashing");
        return;
    }
    tracing::warn!(after_ms, "debug.crash.after.ms: this broker will crash");
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(after_ms));
        let violation = crate::invariant::Violation::new(
            crate::invariant::Invariant::PlantedCrash,
            format!("debug.crash.after.ms={after_ms}"),
        );
        crate::invariant::violated(&violation, &"this broker (a planted crash)")
    });
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
