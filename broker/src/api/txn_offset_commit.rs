//! TxnOffsetCommit (KIP-98, KIP-447): the group coordinator writes the offsets as a
//! transactional batch of the producer to the group's `__consumer_offsets` partition; they take
//! effect when the transaction's commit marker reaches that partition and are dropped with an
//! abort marker. The group's partition must be in the transaction (AddOffsetsToTxn first) when
//! this broker coordinates the transaction too; the member and generation are checked as
//! OffsetCommit does when given (v3+).

use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use crate::api::offset_commit::committed;
use crate::api::Answer;
use crate::group::{CommitPlan, OFFSETS_TOPIC};
use crate::state::Broker;

fn response(request: &TxnOffsetCommitRequest, code: i16) -> TxnOffsetCommitResponse {
    TxnOffsetCommitResponse::default().with_topics(crate::api::per_partition(
        &request.topics,
        |topic| &topic.partitions,
        |_, p| {
            TxnOffsetCommitResponsePartition::default()
                .with_partition_index(p.partition_index)
                .with_error_code(code)
        },
        |topic, partitions| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        },
    ))
}

/// The producer's check at its own coordinator: the offsets partition must be in its ongoing
/// transaction in this epoch (`None`: another broker coordinates it).
fn transaction_error(broker: &Broker, request: &TxnOffsetCommitRequest, index: i32) -> Option<i16> {
    let verdict = broker.txns.verify(
        broker,
        request.transactional_id.as_str(),
        request.producer_id.0,
        request.producer_epoch,
        OFFSETS_TOPIC,
        index,
    )?;
    match verdict {
        Ok(()) => None,
        Err(code) if code == ResponseError::InvalidProducerEpoch.code() => {
            Some(ResponseError::ProducerFenced.code())
        }
        Err(code) => Some(code),
    }
}

pub fn handle(
    broker: &Arc<Broker>,
    request: TxnOffsetCommitRequest,
    version: i16,
) -> Answer<TxnOffsetCommitResponse> {
    let group_id = request.group_id.as_str().to_string();
    let (index, leader_epoch) = match broker.groups.route(broker, &group_id) {
        Ok(shard) => shard,
        Err(code) => return Answer::Now(response(&request, code)),
    };
    if let Some(code) = transaction_error(broker, &request, index) {
        return Answer::Now(response(&request, code));
    }
    if version >= 3 && request.generation_id >= 0 {
        let check = broker
            .groups
            .with_group(index, leader_epoch, &group_id, false, |group| {
                group.check_commit(
                    request.member_id.as_str(),
                    request.group_instance_id.as_ref().map(|i| i.as_str()),
                    request.generation_id,
                    Instant::now(),
                )
            });
        match check {
            Ok(0) => {}
            Ok(code) | Err(code) => return Answer::Now(response(&request, code)),
        }
    }
    let now_ms = crate::internal_topic::now_ms();
    let metadata_max = broker.config.group.offset_metadata_max_bytes;
    let mut entries = Vec::new();
    for topic in &request.topics {
        for p in &topic.partitions {
            let leader_epoch = if version >= 2 {
                p.committed_leader_epoch
            } else {
                -1
            };
            match committed(
                p.committed_offset,
                leader_epoch,
                p.committed_metadata.as_ref(),
                metadata_max,
                now_ms,
            ) {
                Ok(c) => entries.push((topic.name.as_str().to_string(), p.partition_index, c)),
                Err(code) => return Answer::Now(response(&request, code)),
            }
        }
    }
    if entries.is_empty() {
        return Answer::Now(response(&request, 0));
    }
    let plan = CommitPlan {
        group: group_id,
        index,
        leader_epoch,
        entries,
        producer: Some((request.producer_id.0, request.producer_epoch)),
    };
    let broker = Arc::clone(broker);
    Answer::Later(Box::pin(async move {
        let code = broker.groups.commit(&broker, plan).await;
        response(&request, code)
    }))
}
