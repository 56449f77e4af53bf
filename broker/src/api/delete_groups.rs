//! DeleteGroups (API 42) and OffsetDelete (API 47, KIP-496), answered by the group's coordinator
//! ([`crate::group::Coordinator::delete_group`], [`crate::group::Coordinator::delete_offsets`]):
//! tombstones in `__consumer_offsets`, written below the HW before the answer, so a deletion
//! survives a restart and a coordinator move.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, OffsetDeleteRequest, OffsetDeleteResponse,
};

use crate::api::Answer;
use crate::state::Broker;

/// Each group of the request deleted in turn, one result per group in the request's order.
pub fn handle(broker: &Arc<Broker>, request: DeleteGroupsRequest) -> Answer<DeleteGroupsResponse> {
    let broker = Arc::clone(broker);
    Answer::Later(Box::pin(async move {
        let mut results = Vec::with_capacity(request.groups_names.len());
        for group in &request.groups_names {
            let code = broker.groups.delete_group(&broker, group.as_str()).await;
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(group.clone())
                    .with_error_code(code),
            );
        }
        DeleteGroupsResponse::default().with_results(results)
    }))
}

/// The request's partitions' committed offsets deleted; the group's error code at the top, a code
/// per partition below it (none when the group's code is an error, as Kafka answers).
pub fn handle_offset_delete(
    broker: &Arc<Broker>,
    request: OffsetDeleteRequest,
) -> Answer<OffsetDeleteResponse> {
    let broker = Arc::clone(broker);
    Answer::Later(Box::pin(async move {
        let partitions: Vec<(String, i32)> = request
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.as_str().to_string(), p.partition_index))
            })
            .collect();
        let (code, codes) = broker
            .groups
            .delete_offsets(&broker, request.group_id.as_str(), &partitions)
            .await;
        if code != 0 {
            return OffsetDeleteResponse::default().with_error_code(code);
        }
        let mut codes = codes.into_iter();
        let topics = request
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        OffsetDeleteResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(codes.next().unwrap_or(0))
                    })
                    .collect();
                OffsetDeleteResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions)
            })
            .collect();
        OffsetDeleteResponse::default().with_topics(topics)
    }))
}
