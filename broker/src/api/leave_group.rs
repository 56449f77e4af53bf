//! LeaveGroup (v0-2: one member): the member leaves at once and the group rebalances without it.

use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use crate::state::Broker;

pub fn handle(broker: &Arc<Broker>, request: &LeaveGroupRequest) -> LeaveGroupResponse {
    let code = broker
        .groups
        .with_routed_group(broker, request.group_id.as_str(), |group| {
            group.leave(request.member_id.as_str(), Instant::now())
        })
        .unwrap_or_else(|code| code);
    LeaveGroupResponse::default().with_error_code(code)
}
