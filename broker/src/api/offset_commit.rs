//! OffsetCommit: checks the member and generation, writes one record per partition to the
//! group's `__consumer_offsets` partition, and answers once the records are below the HW. A
//! partition the cluster does not have gets UNKNOWN_TOPIC_OR_PARTITION, as from Kafka.

use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use crate::api::Answer;
use crate::group::{self, CommitPlan, Committed};
use crate::state::Broker;

/// The response with `code_of(topic, partition)` for every requested partition.
fn response(
    request: &OffsetCommitRequest,
    code_of: impl Fn(usize, usize) -> i16,
) -> OffsetCommitResponse {
    OffsetCommitResponse::default().with_topics(
        request
            .topics
            .iter()
            .enumerate()
            .map(|(t, topic)| {
                OffsetCommitResponseTopic::default()
                    .with_name(topic.name.clone())
                    .with_partitions(
                        topic
                            .partitions
                            .iter()
                            .enumerate()
                            .map(|(p, partition)| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(partition.partition_index)
                                    .with_error_code(code_of(t, p))
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

pub fn handle(
    broker: &Arc<Broker>,
    request: OffsetCommitRequest,
    version: i16,
) -> Answer<OffsetCommitResponse> {
    let group_id = request.group_id.as_str().to_string();
    let refused = |code: i16| Answer::Now(response(&request, |_, _| code));
    let (index, leader_epoch) = match broker.groups.route(broker, &group_id) {
        Ok(shard) => shard,
        Err(code) => return refused(code),
    };
    // v0 has no generation or member: a simple commit.
    let (member_id, generation_id) = if version >= 1 {
        (
            request.member_id.as_str(),
            request.generation_id_or_member_epoch,
        )
    } else {
        ("", -1)
    };
    let check = broker
        .groups
        .with_group(index, leader_epoch, &group_id, true, |group| {
            group.check_commit(member_id, generation_id, Instant::now())
        });
    match check {
        Ok(0) => {}
        Ok(code) | Err(code) => return refused(code),
    }
    let metadata_max = group::config(broker).offset_metadata_max_bytes;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    // Per partition: Some(code) decided now, None = part of the write.
    let mut decided: Vec<Vec<Option<i16>>> = Vec::with_capacity(request.topics.len());
    let mut entries = Vec::new();
    for topic in &request.topics {
        let mut codes = Vec::with_capacity(topic.partitions.len());
        for partition in &topic.partitions {
            let metadata = partition
                .committed_metadata
                .as_ref()
                .map(|m| m.as_str().to_string())
                .unwrap_or_default();
            if metadata.len() > metadata_max {
                codes.push(Some(ResponseError::OffsetMetadataTooLarge.code()));
                continue;
            }
            if crate::state::validate_topic_name(topic.name.as_str()).is_err() {
                codes.push(Some(ResponseError::InvalidTopicException.code()));
                continue;
            }
            // As Kafka: a partition the cluster does not have takes no commit.
            if !broker.partition_exists(topic.name.as_str(), partition.partition_index) {
                codes.push(Some(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            }
            codes.push(None);
            entries.push((
                topic.name.as_str().to_string(),
                partition.partition_index,
                Committed {
                    offset: partition.committed_offset,
                    leader_epoch: if version >= 6 {
                        partition.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata,
                    commit_timestamp_ms: now_ms,
                },
            ));
        }
        decided.push(codes);
    }
    if entries.is_empty() {
        return Answer::Now(response(&request, |t, p| decided[t][p].unwrap_or(0)));
    }
    let plan = CommitPlan {
        group: group_id,
        index,
        leader_epoch,
        entries,
        producer: None,
    };
    let broker = Arc::clone(broker);
    Answer::Later(Box::pin(async move {
        let code = broker.groups.commit(&broker, plan).await;
        response(&request, |t, p| decided[t][p].unwrap_or(code))
    }))
}
