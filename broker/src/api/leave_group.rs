//! LeaveGroup: v0-2 name one member by its id; v3+ (KIP-345) a list of members, each by its id
//! and/or its `group.instance.id` (a static member may be removed by its instance id alone), each
//! answered with its own error code. Those that leave go at once and the group rebalances
//! without them.

use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::state::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: &LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    // (member id, instance id) of each member that leaves.
    let leaving: Vec<(&str, Option<&str>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.as_str(),
                    m.group_instance_id.as_ref().map(|i| i.as_str()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.as_str(), None)]
    };
    let codes = broker
        .groups
        .with_routed_group(broker, request.group_id.as_str(), |group| {
            let now = Instant::now();
            leaving
                .iter()
                .map(|(member, instance)| group.leave(member, *instance, now))
                .collect::<Vec<i16>>()
        });
    match codes {
        Err(code) => LeaveGroupResponse::default().with_error_code(code),
        Ok(codes) if version < 3 => {
            LeaveGroupResponse::default().with_error_code(codes.first().copied().unwrap_or(0))
        }
        Ok(codes) => LeaveGroupResponse::default().with_members(
            leaving
                .iter()
                .zip(codes)
                .map(|((member, instance), code)| {
                    MemberResponse::default()
                        .with_member_id(StrBytes::from_string((*member).to_string()))
                        .with_group_instance_id(
                            instance.map(|i| StrBytes::from_string(i.to_string())),
                        )
                        .with_error_code(code)
                })
                .collect(),
        ),
    }
}
