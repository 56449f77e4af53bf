//! Heartbeat: keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to join again.

use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::state::Broker;

pub fn handle(broker: &Arc<Broker>, request: &HeartbeatRequest) -> HeartbeatResponse {
    let code = broker
        .groups
        .with_routed_group(broker, request.group_id.as_str(), |group| {
            group.heartbeat(
                request.member_id.as_str(),
                request.group_instance_id.as_ref().map(|i| i.as_str()),
                request.generation_id,
                Instant::now(),
            )
        })
        .unwrap_or_else(|code| code);
    HeartbeatResponse::default().with_error_code(code)
}
