//! The controller process: binds, loads its state, serves its Kafka APIs and checks broker
//! sessions until `shutdown` completes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::controller::{Controller, ControllerConfig};
use crate::limits;
use crate::server::connection::FrameHandler;
use crate::server::RunError;

pub async fn run(
    config: ControllerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let (listener, bound) = crate::server::bind(config.listen).await?;
    let connections = config.connections.clone();
    let controller = tokio::task::spawn_blocking(move || Controller::open(config))
        .await?
        .map_err(RunError::Controller)?;
    let controller = Arc::new(controller);
    let ticking = Arc::clone(&controller);
    let ticker = tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(limits::CONTROLLER_TICK_MS));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            ticking.tick();
        }
    });
    crate::server::announce_ready(&format!("kaos-controller ready listen={bound}"));
    let serving = Arc::clone(&controller);
    let handler: FrameHandler =
        Arc::new(move |frame| crate::api::table::handle_on_controller(&serving, frame));
    crate::server::serve_with(handler, None, connections, listener, shutdown).await;
    ticker.abort();
    tracing::info!("controller stopped");
    Ok(())
}
