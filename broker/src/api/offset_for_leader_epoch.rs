//! OffsetForLeaderEpoch (KIP-101/279, fenced per KIP-320): for each partition the largest leader
//! epoch at most the requested one and the offset where it ends on this leader: the start of the
//! next epoch, or the LEO for the latest. Followers truncate to it.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::partition::{ReplicaError, Role};
use crate::state::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: &OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = crate::api::per_partition(
        &request.topics,
        |topic| &topic.partitions[..],
        |topic, p| {
            let answer = EpochEndOffset::default()
                .with_partition(p.partition)
                .with_leader_epoch(-1)
                .with_end_offset(-1);
            let Some(partition) = broker.partition(topic.topic.as_str(), p.partition) else {
                return answer.with_error_code(ResponseError::UnknownTopicOrPartition.code());
            };
            if let Err(e) = partition.check_epoch(p.current_leader_epoch) {
                let code = match e {
                    ReplicaError::UnknownLeaderEpoch { .. } => ResponseError::UnknownLeaderEpoch,
                    _ => ResponseError::FencedLeaderEpoch,
                };
                return answer.with_error_code(code.code());
            }
            if partition.role() != Role::Leader {
                return answer.with_error_code(ResponseError::NotLeaderOrFollower.code());
            }
            let (epoch, end_offset) = partition.end_offset_for_epoch(p.leader_epoch);
            answer.with_leader_epoch(epoch).with_end_offset(end_offset)
        },
        |topic, partitions| {
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic.clone())
                .with_partitions(partitions)
        },
    );
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
