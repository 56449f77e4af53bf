//! JoinGroup: the first step of a rebalance. v4+ members without an id get one with
//! MEMBER_ID_REQUIRED and join again (KIP-394). The answer waits until every member has joined
//! (or the rebalance timeout passed); the leader's answer lists the members and their metadata.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::api::Answer;
use crate::group::{self, JoinOutcome, JoinRequest, Pending};
use crate::limits;
use crate::state::Broker;

fn s(text: String) -> StrBytes {
    StrBytes::from_string(text)
}

/// Encodes an outcome for `version` (fields the version lacks left at their defaults).
pub fn response(outcome: JoinOutcome, version: i16) -> JoinGroupResponse {
    let protocol_name = match outcome.protocol_name {
        Some(name) => Some(s(name)),
        None if version < 7 => Some(StrBytes::from_static_str("")),
        None => None,
    };
    let mut response = JoinGroupResponse::default()
        .with_error_code(outcome.error_code)
        .with_generation_id(outcome.generation_id)
        .with_protocol_name(protocol_name)
        .with_leader(s(outcome.leader))
        .with_member_id(s(outcome.member_id))
        .with_members(
            outcome
                .members
                .into_iter()
                .map(|(id, instance, metadata)| {
                    let member = JoinGroupResponseMember::default()
                        .with_member_id(s(id))
                        .with_metadata(metadata);
                    if version >= 5 {
                        member.with_group_instance_id(instance.map(s))
                    } else {
                        member
                    }
                })
                .collect(),
        );
    if version >= 7 {
        response = response.with_protocol_type(outcome.protocol_type.map(s));
    }
    response
}

fn error(code: i16, member_id: &str, version: i16) -> Answer<JoinGroupResponse> {
    Answer::Now(response(JoinOutcome::error(code, member_id), version))
}

pub fn handle(
    broker: &Arc<Broker>,
    request: JoinGroupRequest,
    version: i16,
    client_id: &str,
) -> Answer<JoinGroupResponse> {
    let group_id = request.group_id.as_str().to_string();
    let member_id = request.member_id.as_str().to_string();
    if let Some(code) = group::group_id_error(&group_id) {
        return error(code, &member_id, version);
    }
    let config = group::config(broker);
    if request.session_timeout_ms < config.min_session_timeout_ms
        || request.session_timeout_ms > config.max_session_timeout_ms
    {
        return error(
            ResponseError::InvalidSessionTimeout.code(),
            &member_id,
            version,
        );
    }
    if member_id.len() > limits::GROUP_STRING_BYTES_MAX {
        return error(ResponseError::UnknownMemberId.code(), "", version);
    }
    if request.protocols.len() > limits::GROUP_PROTOCOLS_MAX
        || request.protocol_type.len() > limits::GROUP_STRING_BYTES_MAX
        || request
            .protocols
            .iter()
            .any(|p| p.name.len() > limits::GROUP_STRING_BYTES_MAX)
    {
        return error(ResponseError::InvalidRequest.code(), &member_id, version);
    }
    let (index, leader_epoch) = match broker.groups.route(broker, &group_id) {
        Ok(shard) => shard,
        Err(code) => return error(code, &member_id, version),
    };
    let join = JoinRequest {
        member_id: member_id.clone(),
        group_instance_id: request
            .group_instance_id
            .as_ref()
            .map(|i| i.as_str().to_string()),
        client_id: client_id
            .chars()
            .take(limits::GROUP_STRING_BYTES_MAX)
            .collect(),
        client_host: String::new(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.as_str().to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.as_str().to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let wait_ms = u64::try_from(join.rebalance_timeout_ms.max(join.session_timeout_ms))
        .unwrap_or(0)
        .min(limits::GROUP_REBALANCE_TIMEOUT_MS_MAX)
        + limits::GROUP_REBALANCE_TIMEOUT_MS_MAX / 60;
    let delay = Duration::from_millis(config.initial_rebalance_delay_ms);
    let new_id = {
        let client_id = join.client_id.clone();
        move || format!("{client_id}-{}", uuid::Uuid::new_v4())
    };
    let create = member_id.is_empty();
    let pending = broker
        .groups
        .with_group(index, leader_epoch, &group_id, create, |group| {
            group.join(join, new_id, delay, Instant::now())
        });
    match pending {
        Err(code) => error(code, &member_id, version),
        Ok(Pending::Now(outcome)) => Answer::Now(response(outcome, version)),
        Ok(Pending::Later(receiver)) => Answer::Later(Box::pin(async move {
            let outcome = match tokio::time::timeout(Duration::from_millis(wait_ms), receiver).await
            {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => JoinOutcome::error(ResponseError::NotCoordinator.code(), &member_id),
                Err(_) => JoinOutcome::error(ResponseError::RebalanceInProgress.code(), &member_id),
            };
            response(outcome, version)
        })),
    }
}
