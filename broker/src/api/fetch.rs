//! Fetch (consumer): whole stored batches from the fetch offset up to the HW (`read_uncommitted`)
//! or the last stable offset (`read_committed`, with the aborted transactions among them, KIP-98),
//! bounded by `partition_max_bytes` and `max_bytes` but at least one batch (KIP-74). Followers
//! read to the LEO (consumers too with the bug switch `consumer.fetch.bound = "log-end"`). Long poll: waits for `min_bytes` or `max_wait_ms`, woken by HW changes (no
//! busy loop). No fetch sessions.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId};

use crate::api::leader_epoch_error;
use crate::config::FetchBound;
use crate::limits;
use crate::log::log_error_code;
use crate::partition::{ReadUpTo, Role};
use crate::state::Broker;

fn partition_error(index: i32, code: i16) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(code)
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_records(Some(bytes::Bytes::new()))
}

/// Fetch's `isolation_level` of a `read_committed` consumer.
const READ_COMMITTED: i8 = 1;

/// Followers read to the log end; consumers too with the bug switch
/// `consumer.fetch.bound = "log-end"`.
fn reads_to_log_end(broker: &Broker, request: &FetchRequest) -> bool {
    request.replica_id.0 >= 0
        || broker.config.replication.consumer_fetch_bound == FetchBound::LogEnd
}

/// Whether any requested partition has data to return (or an error to report), cheaply.
fn anything_ready(broker: &Broker, request: &FetchRequest) -> bool {
    request.topics.iter().any(|topic| {
        let found = broker.topic(topic.topic.as_str());
        topic.partitions.iter().any(|p| {
            let Some(partition) = found.as_ref().and_then(|t| t.partition(p.partition)) else {
                return true;
            };
            if partition.role() != Role::Leader {
                return true;
            }
            if reads_to_log_end(broker, request) {
                p.fetch_offset != partition.log_end_offset()
            } else if request.isolation_level == READ_COMMITTED {
                p.fetch_offset != partition.last_stable_offset()
            } else {
                p.fetch_offset != partition.high_watermark()
            }
        })
    })
}

/// Reads every requested partition once: (response, record bytes, whether any partition errored).
fn read_once(
    broker: &Broker,
    request: &FetchRequest,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let response_bytes_max = usize::try_from(request.max_bytes)
        .unwrap_or(0)
        .min(limits::FETCH_RESPONSE_BYTES_MAX);
    let mut total_bytes = 0usize;
    let mut any_error = false;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let found = broker.topic(topic.topic.as_str());
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let Some(partition) = found.as_ref().and_then(|t| t.partition(p.partition)) else {
                any_error = true;
                partitions.push(partition_error(
                    p.partition,
                    ResponseError::UnknownTopicOrPartition.code(),
                ));
                continue;
            };
            if let Some(code) = leader_epoch_error(p.current_leader_epoch, partition.leader_epoch())
            {
                any_error = true;
                partitions.push(partition_error(p.partition, code));
                continue;
            }
            if partition.role() != Role::Leader {
                any_error = true;
                partitions.push(partition_error(
                    p.partition,
                    ResponseError::NotLeaderOrFollower.code(),
                ));
                continue;
            }
            let partition_bytes_max = usize::try_from(p.partition_max_bytes).unwrap_or(0);
            let budget = partition_bytes_max.min(response_bytes_max.saturating_sub(total_bytes));
            let up_to = if reads_to_log_end(broker, request) {
                ReadUpTo::LogEnd
            } else if request.isolation_level == READ_COMMITTED {
                ReadUpTo::LastStable
            } else {
                ReadUpTo::HighWatermark
            };
            match partition.read(p.fetch_offset, budget, total_bytes == 0, up_to) {
                Ok(read) => {
                    total_bytes += read.records.len();
                    let aborted = read
                        .aborted
                        .iter()
                        .map(|a| {
                            AbortedTransaction::default()
                                .with_producer_id(ProducerId(a.producer_id))
                                .with_first_offset(a.first_offset)
                        })
                        .collect();
                    partitions.push(
                        PartitionData::default()
                            .with_partition_index(p.partition)
                            .with_high_watermark(read.offsets.high_watermark)
                            .with_last_stable_offset(read.last_stable_offset)
                            .with_log_start_offset(read.offsets.log_start_offset)
                            .with_aborted_transactions(Some(aborted))
                            .with_records(Some(read.records)),
                    );
                }
                Err(e) => {
                    any_error = true;
                    let code = log_error_code(&e, "fetch read");
                    let offsets = partition.offsets();
                    partitions.push(
                        partition_error(p.partition, code)
                            .with_high_watermark(offsets.high_watermark)
                            .with_last_stable_offset(partition.last_stable_offset())
                            .with_log_start_offset(offsets.log_start_offset),
                    );
                }
            }
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_partitions(partitions),
        );
    }
    (topics, total_bytes, any_error)
}

pub async fn handle(broker: &Arc<Broker>, request: FetchRequest, _version: i16) -> FetchResponse {
    if request.session_id != 0 {
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code());
    }
    let wait_ms = u64::try_from(request.max_wait_ms)
        .unwrap_or(0)
        .min(limits::FETCH_WAIT_MS_MAX);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    if request.replica_id.0 >= 0 {
        // A follower's fetch offset is its LEO: the leader's view of its progress (and the HW).
        for topic in &request.topics {
            for p in &topic.partitions {
                if let Some(partition) = broker.partition(topic.topic.as_str(), p.partition) {
                    if partition.check_epoch(p.current_leader_epoch).is_ok() {
                        partition.follower_fetched(request.replica_id.0, p.fetch_offset);
                    }
                }
            }
        }
    }
    let mut data_version = broker.signals.data_version.subscribe();
    loop {
        // Mark the version seen before looking, never after: a change made while we look then
        // wakes the wait below at once. (Marking it after the look lost such a change, and the
        // fetch slept its whole max_wait_ms with data there: a follower's 500 ms stall held
        // every acks=all produce behind the HW for that long.)
        data_version.borrow_and_update();
        let timed_out = tokio::time::Instant::now() >= deadline;
        if timed_out || min_bytes == 0 || anything_ready(broker, &request) {
            let (topics, total_bytes, any_error) = read_once(broker, &request);
            if timed_out || any_error || total_bytes >= min_bytes.max(1) || min_bytes == 0 {
                return FetchResponse::default()
                    .with_session_id(0)
                    .with_responses(topics);
            }
        }
        tokio::select! {
            changed = data_version.changed() => {
                if changed.is_err() {
                    // The broker is going away: answer with what there is.
                    let (topics, _, _) = read_once(broker, &request);
                    return FetchResponse::default().with_responses(topics);
                }
            }
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}
