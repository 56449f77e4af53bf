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
use kafka_protocol::protocol::StrBytes;

use crate::api::Answer;
use crate::group::{self, CommitPlan, Committed};
use crate::state::Broker;

/// One partition's commit as a request gives it, stamped `now_ms`; OFFSET_METADATA_TOO_LARGE
/// when its metadata is longer than `metadata_max`.
pub(crate) fn committed(
    offset: i64,
    leader_epoch: i32,
    metadata: Option<&StrBytes>,
    metadata_max: usize,
    now_ms: i64,
) -> Result<Committed, i16> {
    let metadata = metadata.map(|m| m.as_str().to_string()).unwrap_or_default();
    if metadata.len() > metadata_max {
        return Err(ResponseError::OffsetMetadataTooLarge.code());
    }
    Ok(Committed {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms: now_ms,
    })
}

/// The response with one code of `codes` for every requested partition, in the request's order.
fn response(
    request: &OffsetCommitRequest,
    codes: impl IntoIterator<Item = i16>,
) -> OffsetCommitResponse {
    let mut codes = codes.into_iter();
    OffsetCommitResponse::default().with_topics(crate::api::per_partition(
        &request.topics,
        |topic| &topic.partitions,
        |_, p| {
            OffsetCommitResponsePartition::default()
                .with_partition_index(p.partition_index)
                .with_error_code(codes.next().unwrap_or_default())
        },
        |topic, partitions| {
            OffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        },
    ))
}

pub fn handle(
    broker: &Arc<Broker>,
    request: OffsetCommitRequest,
    version: i16,
) -> Answer<OffsetCommitResponse> {
    let group_id = request.group_id.as_str().to_string();
    let refused = |code: i16| Answer::Now(response(&request, std::iter::repeat(code)));
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
            let instance = request.group_instance_id.as_ref().map(|i| i.as_str());
            group.check_commit(member_id, instance, generation_id, Instant::now())
        });
    match check {
        Ok(0) => {}
        Ok(code) | Err(code) => return refused(code),
    }
    let metadata_max = group::config(broker).offset_metadata_max_bytes;
    let now_ms = crate::internal_topic::now_ms();
    // Per partition, in the request's order: Some(code) decided now, None = part of the write.
    let mut codes: Vec<Option<i16>> = Vec::new();
    let mut entries = Vec::new();
    for topic in &request.topics {
        for partition in &topic.partitions {
            let leader_epoch = if version >= 6 {
                partition.committed_leader_epoch
            } else {
                -1
            };
            let committed = match committed(
                partition.committed_offset,
                leader_epoch,
                partition.committed_metadata.as_ref(),
                metadata_max,
                now_ms,
            ) {
                Ok(committed) => committed,
                Err(code) => {
                    codes.push(Some(code));
                    continue;
                }
            };
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
                committed,
            ));
        }
    }
    if entries.is_empty() {
        return Answer::Now(response(&request, codes.iter().map(|c| c.unwrap_or(0))));
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
        response(&request, codes.iter().map(|c| c.unwrap_or(code)))
    }))
}
