//! Sockets: the accept loop, connections, the client for broker-to-broker and broker-to-controller
//! requests, and the background tasks (flush interval, checkpoint writers, cluster membership,
//! followers, the controller's own server).

pub mod broker;
pub mod client;
pub mod cluster;
pub mod connection;
pub mod connections;
pub mod controller;
pub mod fetcher;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::ConnectionConfig;
use crate::limits;
use crate::metrics::RequestMetrics;
use crate::state::Broker;

/// Errors that stop the broker or the controller from starting or shutting down cleanly.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot listen on {address}")]
    Bind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the data dir")]
    Startup(#[source] crate::state::StateError),
    #[error("graceful shutdown failed")]
    Shutdown(#[source] crate::state::StateError),
    #[error("startup task failed")]
    Join(#[from] tokio::task::JoinError),
    #[error("cannot open the controller state")]
    Controller(#[source] crate::controller::ControllerError),
}

/// Writes the ready line `line` to stderr in one write, not piece by piece as `eprintln!` formats
/// it (stderr is unbuffered): scripts that read the log while the process runs
/// (`broker/compat/run.sh`) must never see half of the address.
pub fn announce_ready(line: &str) {
    use std::io::Write;
    let whole = format!("{line}\n");
    let _ = std::io::stderr().lock().write_all(whole.as_bytes());
}

/// Binds the listener of a broker or controller: the listener and the address it got.
pub async fn bind(
    address: std::net::SocketAddr,
) -> Result<(TcpListener, std::net::SocketAddr), RunError> {
    let bind_error = |source| RunError::Bind { address, source };
    let listener = TcpListener::bind(address).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

/// Accepts broker connections until `shutdown` completes; then stops accepting and returns.
pub async fn serve(broker: Arc<Broker>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let metrics = Arc::clone(&broker.metrics);
    let connections = broker.config.connections.clone();
    let handler: connection::FrameHandler =
        Arc::new(move |frame| crate::api::table::handle_on_broker(&broker, frame));
    serve_with(handler, Some(metrics), connections, listener, shutdown).await;
}

/// Accepts connections, each served by `handler`, until `shutdown` completes; request times go
/// to `metrics` when given. Admission and expiry follow `connections` ([`connections::Registry`]).
pub async fn serve_with(
    handler: connection::FrameHandler,
    metrics: Option<Arc<RequestMetrics>>,
    connections: ConnectionConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let registry = connections::Registry::new(connections);
    let request_bytes = connections::Budget::new(limits::IN_FLIGHT_REQUEST_BYTES_MAX);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Typically EMFILE: back off a little instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // As Kafka's acceptor: accepted first, then admitted (waiting for a slot) or closed.
        let admitted = tokio::select! {
            () = &mut shutdown => return,
            admitted = registry.admit(peer) => admitted,
        };
        match admitted {
            Ok(admitted) => {
                let handler = Arc::clone(&handler);
                let request_bytes = Arc::clone(&request_bytes);
                let metrics = metrics.clone();
                tokio::spawn(connection::run(
                    handler,
                    stream,
                    peer,
                    request_bytes,
                    metrics,
                    admitted,
                ));
            }
            Err(refused) => {
                tracing::info!(%peer, "rejected connection: {refused}");
                drop(stream);
            }
        }
    }
}

/// Starts the group coordinator's periodic task.
fn spawn_group_ticks(broker: &Arc<Broker>) {
    let broker = Arc::clone(broker);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(limits::GROUP_TICK_MS));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            broker.groups.tick(&*broker);
            broker.txns.tick(&broker);
        }
    });
}

/// Starts the retention task: every `log.retention.check.interval.ms`, each partition deletes
/// the segments its retention settings and log start offset let go.
fn spawn_retention(broker: &Arc<Broker>) {
    let period = broker.config.retention_check_interval_ms;
    spawn_passes(broker, period, "retention task", |b, now| {
        b.delete_retained(now);
    });
}

/// Starts the log cleaner: every `log.cleaner.backoff.ms`, each partition of a compacted topic
/// cleans what its settings let it (Kafka's cleaner threads back off as long between passes
/// that found nothing to clean).
fn spawn_cleaner(broker: &Arc<Broker>) {
    let period = broker.config.cleaner_backoff_ms;
    spawn_passes(broker, period, "log cleaner task", |b, now| {
        b.clean_logs(now);
    });
}

/// Runs `pass(broker, now_ms)` on a blocking thread every `period_ms`, the first one a period
/// after the start (as Kafka schedules retention); `what` names it in the log if a pass fails.
fn spawn_passes(broker: &Arc<Broker>, period_ms: u64, what: &'static str, pass: fn(&Broker, i64)) {
    let broker = Arc::clone(broker);
    tokio::spawn(async move {
        let period = Duration::from_millis(period_ms);
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let passing = Arc::clone(&broker);
            if let Err(e) = tokio::task::spawn_blocking(move || pass(&passing, now_ms())).await {
                tracing::error!(error = %e, "{what} failed");
            }
        }
    });
}

/// Wall-clock milliseconds since the epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Spawns the `flush.ms` task (if configured), the checkpoint writers, the retention task, the
/// log cleaner and the group coordinator's periodic task.
pub fn spawn_background_tasks(broker: &Arc<Broker>) {
    spawn_group_ticks(broker);
    spawn_retention(broker);
    spawn_cleaner(broker);
    if broker.config.flush_interval_ms > 0 {
        let broker = Arc::clone(broker);
        tokio::spawn(async move {
            let mut interval =
                tokio::time::interval(Duration::from_millis(broker.config.flush_interval_ms));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let flushing = Arc::clone(&broker);
                match tokio::task::spawn_blocking(move || flushing.flush_all()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "periodic flush failed"),
                    Err(e) => tracing::error!(error = %e, "periodic flush task failed"),
                }
            }
        });
    }
    {
        let broker = Arc::clone(broker);
        let period = Duration::from_millis(
            broker
                .config
                .replication
                .high_watermark_checkpoint_interval_ms,
        );
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let writing = Arc::clone(&broker);
                match tokio::task::spawn_blocking(move || writing.write_high_watermark_checkpoint())
                    .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "writing the HW checkpoint failed"),
                    Err(e) => tracing::error!(error = %e, "HW checkpoint task failed"),
                }
            }
        });
    }
    let broker = Arc::clone(broker);
    tokio::spawn(async move {
        loop {
            broker.signals.checkpoint_needed.notified().await;
            let writing = Arc::clone(&broker);
            // Rolled segments first (their fsync moved off the append path), then the checkpoint.
            let flushing = move || {
                for partition in writing.partitions() {
                    if let Err(e) = partition.flush_rolled() {
                        tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "fsyncing rolled segments failed");
                    }
                }
                writing.write_checkpoint()
            };
            match tokio::task::spawn_blocking(flushing).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "writing the recovery-point checkpoint failed")
                }
                Err(e) => tracing::error!(error = %e, "checkpoint task failed"),
            }
        }
    });
}
