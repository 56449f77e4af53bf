//! DeleteRecords: the leader of each named partition moves its log start offset to the offset
//! asked (-1: its high watermark) and deletes the segments wholly below it; the answer's low
//! watermark is the new log start offset, made durable (the log-start-offset checkpoint) before
//! the answer. As from Kafka: an offset above the HW gets OFFSET_OUT_OF_RANGE, a partition the
//! cluster does not have UNKNOWN_TOPIC_OR_PARTITION, a replica that does not lead it
//! NOT_LEADER_OR_FOLLOWER. Followers take the new log start offset from their next fetch.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::log::log_error_code;
use crate::partition::ReplicaError;
use crate::state::Broker;

pub fn handle(broker: &Arc<Broker>, request: &DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut moved = false;
    let topics = crate::api::per_partition(
        &request.topics,
        |topic| &topic.partitions[..],
        |topic, p| {
            let answer = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            match delete_one(broker, topic.name.as_str(), p.partition_index, p.offset) {
                Ok(low_watermark) => {
                    moved = true;
                    answer.with_low_watermark(low_watermark)
                }
                Err(code) => answer.with_error_code(code),
            }
        },
        |topic, partitions| {
            DeleteRecordsTopicResult::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        },
    );
    if moved {
        if let Err(e) = broker.write_checkpoint() {
            tracing::error!(error = %e, "DeleteRecords: cannot write the log-start-offset checkpoint");
            return DeleteRecordsResponse::default().with_topics(failed(topics));
        }
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

fn delete_one(broker: &Broker, topic: &str, index: i32, offset: i64) -> Result<i64, i16> {
    let Some(partition) = broker.partition(topic, index) else {
        return Err(if broker.partition_exists(topic, index) {
            ResponseError::NotLeaderOrFollower.code()
        } else {
            ResponseError::UnknownTopicOrPartition.code()
        });
    };
    partition.delete_records(offset).map_err(|e| match e {
        ReplicaError::Log(e) => log_error_code(&e, "DeleteRecords"),
        ReplicaError::NotLeader => ResponseError::NotLeaderOrFollower.code(),
        other => {
            tracing::warn!(topic, partition = index, error = %other, "DeleteRecords refused");
            ResponseError::UnknownServerError.code()
        }
    })
}

/// Every moved partition answered KAFKA_STORAGE_ERROR: the new log start is not durable.
fn failed(topics: Vec<DeleteRecordsTopicResult>) -> Vec<DeleteRecordsTopicResult> {
    topics
        .into_iter()
        .map(|mut topic| {
            for p in &mut topic.partitions {
                if p.error_code == 0 {
                    p.error_code = ResponseError::KafkaStorageError.code();
                    p.low_watermark = -1;
                }
            }
            topic
        })
        .collect()
}
