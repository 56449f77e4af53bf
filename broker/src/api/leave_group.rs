//! LeaveGroup (v0-2: one member): the member leaves at once and the group rebalances without it.

use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use crate::state::Broker;

pub fn handle(broker: &Arc<Broker>, request: &LeaveGroupRequest) -> LeaveGroupResponse {
    let group_id = request.group_id.as_str();
    let code = broker
        .groups
        .route(broker, group_id)
        .and_then(|(index, leader_epoch)| {
            broker
                .groups
                .with_group(index, leader_epoch, group_id, false, |group| {
                    group.leave(request.member_id.as_str(), Instant::now())
                })
        })
        .unwrap_or_else(|code| code);
    LeaveGroupResponse::default().with_error_code(code)
}
