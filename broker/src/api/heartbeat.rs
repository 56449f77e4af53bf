//! Heartbeat: keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to join again.

use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::state::Broker;

pub fn handle(broker: &Arc<Broker>, request: &HeartbeatRequest) -> HeartbeatResponse {
    let group_id = request.group_id.as_str();
    let code = broker
        .groups
        .route(broker, group_id)
        .and_then(|(index, leader_epoch)| {
            broker
                .groups
                .with_group(index, leader_epoch, group_id, false, |group| {
                    group.heartbeat(
                        request.member_id.as_str(),
                        request.group_instance_id.as_ref().map(|i| i.as_str()),
                        request.generation_id,
                        Instant::now(),
                    )
                })
        })
        .unwrap_or_else(|code| code);
    HeartbeatResponse::default().with_error_code(code)
}
