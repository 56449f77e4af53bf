//! Produce: validate each record batch (header, CRC, records), append it with broker-assigned offsets,
//! answer per `acks`: 0 = no response, 1 = after the append, -1 = once the HW passes the batch
//! (REQUEST_TIMED_OUT after the request's timeout). Only the leader appends (else
//! NOT_LEADER_OR_FOLLOWER). With acks=-1 an ISR smaller than `min.insync.replicas` refuses the
//! write before appending (NOT_ENOUGH_REPLICAS), and an ISR that shrank below it while waiting
//! answers NOT_ENOUGH_REPLICAS_AFTER_APPEND.
//!
//! Idempotent producers (batches with a producer id): see [`crate::producer`]. A duplicate batch
//! is answered with its original offsets as success (waiting for the HW like any acks=-1 append);
//! a gap gets OUT_OF_ORDER_SEQUENCE_NUMBER and an old epoch INVALID_PRODUCER_EPOCH (what Kafka
//! returns to Produce since KIP-588; PRODUCER_FENCED is for transactional APIs). Transactional
//! batches must carry a sequence (INVALID_RECORD otherwise) and, with
//! `transaction.partition.verification.enable` (KIP-890), belong to the producer's ongoing
//! transaction on this partition when this broker is its coordinator (INVALID_TXN_STATE, or
//! INVALID_PRODUCER_EPOCH for an old epoch). Control batches come only from coordinators:
//! INVALID_RECORD from a client.
//!
//! A batch whose length, magic or CRC is wrong gets CORRUPT_MESSAGE; one whose lastOffsetDelta and
//! recordCount disagree, or whose records are wrong (count, framing, codec, decompression:
//! [`crate::wire::records`]), gets INVALID_RECORD, as Kafka's `LogValidator` answers. Either way nothing of that partition's data is stored. Produce to an
//! internal topic (`__consumer_offsets`) gets INVALID_TOPIC_EXCEPTION.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use crate::group::OFFSETS_TOPIC;
use crate::limits;
use crate::log::log_error_code;
use crate::partition::{HighWatermarkWait, Partition, ReplicaError, Role};
use crate::producer::ProducerError;
use crate::state::Broker;
use crate::wire::batch::{self, BatchError};
use crate::wire::records;

/// What the connection does with a produce request.
pub enum Outcome {
    /// acks=0: no response at all.
    NoResponse,
    Ready(ProduceResponse),
    /// acks=-1: the response once every appended batch is below the HW (or the timeout passes).
    Wait(Pin<Box<dyn Future<Output = ProduceResponse> + Send>>),
}

fn partition_response(index: i32, code: i16) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
}

/// The answer to a batch some of whose records are invalid (KIP-467, Produce v8+): which
/// records, each with Kafka's words, so that the producer fails those with INVALID_RECORD and
/// the others of the batch as not at fault (librdkafka's `_INVALID_DIFFERENT_RECORD`).
fn refused_records(
    index: i32,
    code: i16,
    topic: &str,
    indexes: &[i32],
) -> PartitionProduceResponse {
    let message = format!(
        "Compacted topic cannot accept message without key in topic partition {topic}-{index}."
    );
    let errors = indexes
        .iter()
        .map(|&i| {
            BatchIndexAndErrorMessage::default()
                .with_batch_index(i)
                .with_batch_index_error_message(Some(StrBytes::from_string(message.clone())))
        })
        .collect();
    partition_response(index, code)
        .with_record_errors(errors)
        .with_error_message(Some(StrBytes::from_string(format!(
            "One or more records have been rejected due to {} record errors in total",
            indexes.len()
        ))))
}

/// Checks the transactional batches of a produce (see the module doc).
fn transactional_error(
    broker: &Broker,
    partition: &Partition,
    spans: &[batch::BatchSpan],
    transactional_id: Option<&str>,
) -> Option<i16> {
    if spans.iter().any(|s| s.header.is_control()) {
        return Some(ResponseError::InvalidRecord.code());
    }
    let header = &spans.iter().find(|s| s.header.is_transactional())?.header;
    if !header.has_producer_id() || header.base_sequence < 0 {
        return Some(ResponseError::InvalidRecord.code());
    }
    if !broker.config.txn.partition_verification {
        return None;
    }
    let Some(transactional_id) = transactional_id else {
        return Some(ResponseError::InvalidTxnState.code());
    };
    let verdict = broker.txns.verify(
        broker,
        transactional_id,
        header.producer_id,
        header.producer_epoch,
        &partition.topic,
        partition.index,
    )?;
    verdict.err()
}

fn append_one(
    broker: &Broker,
    partition: &Partition,
    records: Option<&bytes::Bytes>,
    acks: i16,
    transactional_id: Option<&str>,
    compacted: bool,
    record_errors: &mut Vec<i32>,
) -> Result<(i64, i64, i64, i32), i16> {
    let Some(records) = records else {
        return Err(ResponseError::CorruptMessage.code());
    };
    let spans = batch::validate_produced_records(records, broker.config.message_max_bytes as usize).map_err(|e| {
        tracing::debug!(topic = %partition.topic, partition = partition.index, error = %e, "rejected produce batch");
        match e {
            BatchError::TooLarge { .. } => ResponseError::MessageTooLarge.code(),
            // LogValidator: "Inconsistent batch offset range ... and count of records".
            BatchError::BadCount { .. } => ResponseError::InvalidRecord.code(),
            _ => ResponseError::CorruptMessage.code(),
        }
    })?;
    for span in &spans {
        let batch = &records[span.position..span.position + span.header.total_bytes];
        if let Err(e) = records::validate_batch_records_for(batch, &span.header, compacted) {
            tracing::info!(topic = %partition.topic, partition = partition.index, error = %e, "refused a produced batch: invalid records");
            if let records::RecordError::NullKey { indexes } = e {
                *record_errors = indexes;
            }
            return Err(ResponseError::InvalidRecord.code());
        }
    }
    if let Some(code) = transactional_error(broker, partition, &spans, transactional_id) {
        tracing::info!(topic = %partition.topic, partition = partition.index, error_code = code, "refused a transactional or control batch");
        return Err(code);
    }
    if partition.role() != Role::Leader {
        return Err(ResponseError::NotLeaderOrFollower.code());
    }
    let min_insync = usize::try_from(broker.config.replication.min_insync_replicas).unwrap_or(1);
    if acks == -1 && partition.isr().len() < min_insync {
        return Err(ResponseError::NotEnoughReplicas.code());
    }
    let appended = partition
        .append_as_leader(records, &spans)
        .map_err(|e| match e {
            ReplicaError::Log(e) => log_error_code(&e, "produce append"),
            ReplicaError::Producer(e) => {
                tracing::info!(topic = %partition.topic, partition = partition.index, error = %e, "refused an idempotent batch");
                match e {
                    ProducerError::FencedEpoch { .. } => ResponseError::InvalidProducerEpoch.code(),
                    ProducerError::OutOfOrder { .. } | ProducerError::NewEpochNotAtZero { .. } => {
                        ResponseError::OutOfOrderSequenceNumber.code()
                    }
                    ProducerError::Invalid { .. } => ResponseError::InvalidRecord.code(),
                }
            }
            _ => ResponseError::NotLeaderOrFollower.code(),
        })?;
    Ok((
        appended.info.base_offset,
        appended.info.last_offset,
        appended.log_start_offset,
        appended.leader_epoch,
    ))
}

/// Kafka's internal topics (`Topic.INTERNAL_TOPICS`): clients may not produce to them
/// (ReplicaManager answers INVALID_TOPIC_EXCEPTION, "Cannot append to internal topic"); the group
/// coordinator appends to `__consumer_offsets` itself, not through this API.
pub const INTERNAL_TOPICS: &[&str] = &[OFFSETS_TOPIC, "__transaction_state"];

/// Whether `name` is one of Kafka's [`INTERNAL_TOPICS`].
pub fn is_internal_topic(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

pub fn handle(broker: &Arc<Broker>, request: ProduceRequest) -> Outcome {
    let acks = request.acks;
    let acks_valid = matches!(acks, -1..=1);
    // (position in response, partition, offset the HW must reach, leader epoch of the append)
    let mut waits: Vec<(usize, usize, Arc<Partition>, i64, i32)> = Vec::new();
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for (topic_position, topic_data) in request.topic_data.iter().enumerate() {
        let topic = broker.topic(topic_data.name.as_str());
        let compacted = topic.as_ref().is_some_and(|t| {
            crate::topic_config::is_compacted(&broker.config.log, &t.name, &t.configs)
        });
        let mut responses = Vec::with_capacity(topic_data.partition_data.len());
        for (partition_position, data) in topic_data.partition_data.iter().enumerate() {
            let partition = topic.as_ref().and_then(|t| t.partition(data.index));
            let response = match (acks_valid, partition) {
                (false, _) => {
                    partition_response(data.index, ResponseError::InvalidRequiredAcks.code())
                }
                (true, _) if is_internal_topic(topic_data.name.as_str()) => {
                    tracing::info!(topic = %topic_data.name.as_str(), partition = data.index, "refused a client's produce to an internal topic");
                    partition_response(data.index, ResponseError::InvalidTopicException.code())
                }
                (true, None) => {
                    partition_response(data.index, ResponseError::UnknownTopicOrPartition.code())
                }
                (true, Some(partition)) => {
                    let transactional_id = request.transactional_id.as_ref().map(|t| t.as_str());
                    let mut record_errors = Vec::new();
                    match append_one(
                        broker,
                        partition,
                        data.records.as_ref(),
                        acks,
                        transactional_id,
                        compacted,
                        &mut record_errors,
                    ) {
                        Ok((base_offset, last_offset, log_start_offset, leader_epoch)) => {
                            if acks == -1 {
                                waits.push((
                                    topic_position,
                                    partition_position,
                                    Arc::clone(partition),
                                    last_offset + 1,
                                    leader_epoch,
                                ));
                            }
                            partition_response(data.index, 0)
                                .with_base_offset(base_offset)
                                .with_log_start_offset(log_start_offset)
                        }
                        Err(code) if !record_errors.is_empty() => {
                            refused_records(data.index, code, &partition.topic, &record_errors)
                        }
                        Err(code) => partition_response(data.index, code),
                    }
                }
            };
            responses.push(response);
        }
        topics.push(
            TopicProduceResponse::default()
                .with_name(topic_data.name.clone())
                .with_partition_responses(responses),
        );
    }
    if acks == 0 {
        return Outcome::NoResponse;
    }
    let response = ProduceResponse::default().with_responses(topics);
    if waits.is_empty() {
        return Outcome::Ready(response);
    }
    wait_for_acks(broker, response, waits, request.timeout_ms)
}

/// The answer to an acks=all request once every append in `waits` (position in the response,
/// partition, offset the HW must reach, leader epoch of the append) is replicated, or failed
/// with the reason (not enough in-sync replicas, timed out, leadership lost).
fn wait_for_acks(
    broker: &Arc<Broker>,
    response: ProduceResponse,
    waits: Vec<(usize, usize, Arc<Partition>, i64, i32)>,
    request_timeout_ms: i32,
) -> Outcome {
    let min_insync = usize::try_from(broker.config.replication.min_insync_replicas).unwrap_or(1);
    let timeout_ms = u64::try_from(request_timeout_ms)
        .unwrap_or(0)
        .min(limits::PRODUCE_TIMEOUT_MS_MAX);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    Outcome::Wait(Box::pin(async move {
        let mut response = response;
        for (topic_position, partition_position, partition, offset, leader_epoch) in waits {
            let code = match partition
                .wait_for_high_watermark(offset, leader_epoch, deadline)
                .await
            {
                HighWatermarkWait::Reached if partition.isr().len() < min_insync => {
                    ResponseError::NotEnoughReplicasAfterAppend.code()
                }
                HighWatermarkWait::Reached => continue,
                HighWatermarkWait::TimedOut => ResponseError::RequestTimedOut.code(),
                HighWatermarkWait::NotLeader => ResponseError::NotLeaderOrFollower.code(),
            };
            if let Some(p) = response
                .responses
                .get_mut(topic_position)
                .and_then(|t| t.partition_responses.get_mut(partition_position))
            {
                p.error_code = code;
                p.base_offset = -1;
            }
        }
        response
    }))
}
