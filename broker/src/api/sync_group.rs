//! SyncGroup: members wait for the leader's assignment, which the coordinator writes to
//! `__consumer_offsets` (the group metadata record) and then relays.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::api::Answer;
use crate::group::{Pending, SyncOutcome};
use crate::limits;
use crate::state::Broker;

pub fn response(outcome: SyncOutcome, version: i16) -> SyncGroupResponse {
    let response = SyncGroupResponse::default()
        .with_error_code(outcome.error_code)
        .with_assignment(outcome.assignment);
    if version >= 5 {
        response
            .with_protocol_type(outcome.protocol_type.map(StrBytes::from_string))
            .with_protocol_name(outcome.protocol_name.map(StrBytes::from_string))
    } else {
        response
    }
}

fn error(code: i16, version: i16) -> Answer<SyncGroupResponse> {
    Answer::Now(response(SyncOutcome::error(code), version))
}

pub fn handle(
    broker: &Arc<Broker>,
    request: SyncGroupRequest,
    version: i16,
) -> Answer<SyncGroupResponse> {
    let group_id = request.group_id.as_str();
    let (index, leader_epoch) = match broker.groups.route(broker, group_id) {
        Ok(shard) => shard,
        Err(code) => return error(code, version),
    };
    let assignments = request
        .assignments
        .iter()
        .map(|a| (a.member_id.as_str().to_string(), a.assignment.clone()))
        .collect();
    let synced = broker
        .groups
        .with_group(index, leader_epoch, group_id, false, |group| {
            group.sync(
                request.member_id.as_str(),
                request.group_instance_id.as_ref().map(|i| i.as_str()),
                request.generation_id,
                assignments,
                Instant::now(),
            )
        });
    match synced {
        Err(code) => error(code, version),
        Ok((Pending::Now(outcome), _)) => Answer::Now(response(outcome, version)),
        Ok((Pending::Later(receiver), store)) => {
            let broker = Arc::clone(broker);
            let group_id = group_id.to_string();
            Answer::Later(Box::pin(async move {
                // The leader's assignment: written to the log before anyone gets it.
                if let Some(store) = store {
                    let groups = &broker.groups;
                    groups
                        .store_group(&broker, index, leader_epoch, &group_id, store)
                        .await;
                }
                let wait = Duration::from_millis(limits::GROUP_REBALANCE_TIMEOUT_MS_MAX);
                let outcome = match tokio::time::timeout(wait, receiver).await {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(_)) => SyncOutcome::error(ResponseError::NotCoordinator.code()),
                    Err(_) => SyncOutcome::error(ResponseError::RebalanceInProgress.code()),
                };
                response(outcome, version)
            }))
        }
    }
}
