//! A follower: truncates its replica (to its HW, or by leader epoch per KIP-101/279), then fetches
//! from the leader in a loop (Fetch with replica id and current leader epoch, KIP-320), appending
//! what it gets and taking the leader's HW. Stopped (aborted) by the membership task when the
//! role changes.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::config::Truncation;
use crate::invariant::{self, PartitionPlace};
use crate::limits;
use crate::log::epoch::{UNDEFINED_EPOCH, UNDEFINED_OFFSET};
use crate::partition::{Partition, ReplicaError};
use crate::server::client::{PeerConnection, PeerError};
use crate::state::Broker;

const FETCH_VERSION: i16 = 12;
const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 3;
const LIST_OFFSETS_VERSION: i16 = 4;

fn backoff() -> Duration {
    Duration::from_millis(limits::RETRY_BACKOFF_MS)
}

/// Why one fetch session with the leader ended.
#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error("leader answered error {0}")]
    Leader(i16),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
}

pub async fn run(
    broker: Arc<Broker>,
    partition: Arc<Partition>,
    leader_id: i32,
    leader_epoch: i32,
) {
    let mode = broker.config.replication.truncation;
    let mut truncated = false;
    // The highest HW taken from this leader in this epoch (-1: none yet). The truncations that
    // start following may go below the replica's HW (the leader may lack what it had); later
    // ones never go below this.
    let mut acknowledged_high_watermark = -1i64;
    if mode == Truncation::HighWatermark {
        // Pre-KIP-101: whatever is above the own HW may not be on the leader: cut it.
        let high_watermark = partition.high_watermark();
        match partition.truncate_to(high_watermark) {
            Ok(log_end_offset) => {
                tracing::info!(topic = %partition.topic, partition = partition.index, high_watermark, log_end_offset, "follower truncated to its high watermark");
                truncated = true;
            }
            Err(e) => {
                tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "truncation failed");
                return;
            }
        }
    }
    loop {
        let Some(address) = broker.cluster.broker_address(leader_id) else {
            tokio::time::sleep(backoff()).await;
            continue;
        };
        let address = format!("{}:{}", address.host, address.port);
        let mut conn = match PeerConnection::connect(&address, "kaos-follower").await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::debug!(error = %e, "leader unreachable");
                tokio::time::sleep(backoff()).await;
                continue;
            }
        };
        if !truncated {
            match truncate_by_leader_epoch(&broker, &partition, &mut conn, leader_epoch).await {
                Ok(()) => truncated = true,
                Err(e) => {
                    tracing::info!(topic = %partition.topic, partition = partition.index, error = %e, "leader-epoch truncation not done yet");
                    tokio::time::sleep(backoff()).await;
                    continue;
                }
            }
        }
        if let Err(e) = fetch_loop(
            &broker,
            &partition,
            &mut conn,
            leader_epoch,
            &mut acknowledged_high_watermark,
        )
        .await
        {
            tracing::debug!(topic = %partition.topic, partition = partition.index, error = %e, "fetching paused");
            if matches!(e, FollowError::Leader(_)) {
                broker.cluster.refresh.notify_one();
            }
            tokio::time::sleep(backoff()).await;
        }
    }
}

fn topic_name(partition: &Partition) -> TopicName {
    TopicName(StrBytes::from_string(partition.topic.clone()))
}

/// KIP-101 + KIP-279: ask the leader where our latest epoch ends; truncate there; repeat while
/// the leader answers with an older epoch than ours.
async fn truncate_by_leader_epoch(
    broker: &Broker,
    partition: &Partition,
    conn: &mut PeerConnection,
    leader_epoch: i32,
) -> Result<(), FollowError> {
    for _ in 0..limits::EPOCH_QUERY_ROUNDS_MAX {
        let Some(epoch) = partition.latest_epoch() else {
            return Ok(()); // an empty replica has nothing to cut
        };
        let request = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(broker.node_id()))
            .with_topics(vec![OffsetForLeaderTopic::default()
                .with_topic(topic_name(partition))
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(partition.index)
                    .with_current_leader_epoch(leader_epoch)
                    .with_leader_epoch(epoch)])]);
        let response: OffsetForLeaderEpochResponse = conn
            .request(
                ApiKey::OffsetForLeaderEpoch,
                OFFSET_FOR_LEADER_EPOCH_VERSION,
                &request,
                Duration::ZERO,
            )
            .await?;
        let answer = only_answer(
            response.topics.first().and_then(|t| t.partitions.first()),
            |a| a.error_code,
        )?;
        let log_end_offset = partition.log_end_offset();
        if answer.leader_epoch == UNDEFINED_EPOCH || answer.end_offset == UNDEFINED_OFFSET {
            // The leader knows no epoch this old: fall back to the HW (as Kafka does).
            let high_watermark = partition.high_watermark();
            let cut = partition.truncate_to(high_watermark)?;
            tracing::info!(topic = %partition.topic, partition = partition.index, epoch, high_watermark, log_end_offset = cut, "leader has no such epoch: truncated to the HW");
            return Ok(());
        }
        if answer.leader_epoch == epoch {
            let cut = partition.truncate_to(answer.end_offset.min(log_end_offset))?;
            tracing::info!(topic = %partition.topic, partition = partition.index, epoch, leader_end_offset = answer.end_offset, log_end_offset = cut, "truncated by leader epoch");
            return Ok(());
        }
        // The leader's answer is an older epoch: our end of that epoch bounds the cut too; then
        // ask again with our (now older) latest epoch (KIP-279).
        let (_, own_end) = partition.end_offset_for_epoch(answer.leader_epoch);
        let bound = if own_end < 0 {
            answer.end_offset
        } else {
            answer.end_offset.min(own_end)
        };
        let cut = partition.truncate_to(bound.min(log_end_offset))?;
        tracing::info!(topic = %partition.topic, partition = partition.index, asked_epoch = epoch, leader_epoch = answer.leader_epoch, leader_end_offset = answer.end_offset, log_end_offset = cut, "truncated by leader epoch; asking again");
        if partition.latest_epoch().is_some_and(|e| e >= epoch) {
            // Nothing moved (our cache still holds the epoch): avoid looping on it.
            return Ok(());
        }
    }
    Ok(())
}

async fn fetch_loop(
    broker: &Broker,
    partition: &Partition,
    conn: &mut PeerConnection,
    leader_epoch: i32,
    acknowledged_high_watermark: &mut i64,
) -> Result<(), FollowError> {
    let wait_ms = broker.config.replication.replica_fetch_wait_max_ms;
    loop {
        let fetch_offset = partition.log_end_offset();
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(broker.node_id()))
            .with_max_wait_ms(i32::try_from(wait_ms).unwrap_or(i32::MAX))
            .with_min_bytes(broker.config.replication.replica_fetch_min_bytes)
            .with_max_bytes(limits::REPLICA_FETCH_BYTES_MAX)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic_name(partition))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition.index)
                    .with_current_leader_epoch(leader_epoch)
                    .with_fetch_offset(fetch_offset)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(limits::REPLICA_FETCH_BYTES_MAX)])]);
        let sent = std::time::Instant::now();
        let response: FetchResponse = conn
            .request(
                ApiKey::Fetch,
                FETCH_VERSION,
                &request,
                Duration::from_millis(wait_ms),
            )
            .await?;
        let metrics = &broker.metrics.replica_fetch;
        metrics.round_trip.record(sent.elapsed());
        if response.error_code != 0 {
            return Err(FollowError::Leader(response.error_code));
        }
        let Some(data) = response
            .responses
            .first()
            .and_then(|t| t.partitions.first())
        else {
            return Err(FollowError::Leader(
                ResponseError::UnknownServerError.code(),
            ));
        };
        if data.error_code == ResponseError::OffsetOutOfRange.code() {
            let at = (fetch_offset, data.log_start_offset);
            out_of_range(
                broker,
                partition,
                conn,
                leader_epoch,
                at,
                acknowledged_high_watermark,
            )
            .await?;
            continue;
        }
        if data.error_code != 0 {
            return Err(FollowError::Leader(data.error_code));
        }
        if let Some(records) = &data.records {
            if !records.is_empty() {
                let appending = std::time::Instant::now();
                partition.append_as_follower(records, limits::STORED_BATCH_BYTES_MAX)?;
                metrics.append.record(appending.elapsed());
            }
        }
        let high_watermark = partition.set_follower_high_watermark(data.high_watermark);
        *acknowledged_high_watermark = (*acknowledged_high_watermark).max(high_watermark);
        partition.follow_log_start_offset(data.log_start_offset)?;
    }
}

/// A fetch answered OFFSET_OUT_OF_RANGE at `fetch_offset`, with the leader's log start offset:
/// `Ok` when this replica repaired its log and fetches again.
async fn out_of_range(
    broker: &Broker,
    partition: &Partition,
    conn: &mut PeerConnection,
    leader_epoch: i32,
    (fetch_offset, leader_log_start_offset): (i64, i64),
    acknowledged_high_watermark: &mut i64,
) -> Result<(), FollowError> {
    if fetch_offset < leader_log_start_offset {
        // The leader deleted (retention, DeleteRecords) what this replica would fetch next:
        // start again at its log start offset (Kafka's `truncateFullyAndStartAt`).
        partition.truncate_fully_and_start_at(leader_log_start_offset)?;
        return Ok(());
    }
    // Our log is longer than the leader's (with HW truncation, or a leader that lost its
    // tail). Pre-KIP-101 (high-watermark) cuts to the leader's LEO and keeps whatever
    // lies below it, even where it differs from the leader's. With leader epochs, what
    // lies below the leader's LEO may differ too: find where the logs part by epoch first
    // (KIP-101), then never keep more than the leader has.
    let leader_end = leader_log_end_offset(broker, partition, conn, leader_epoch).await?;
    if leader_end >= fetch_offset {
        return Err(FollowError::Leader(ResponseError::OffsetOutOfRange.code()));
    }
    // Within one epoch the leader's log only grows: it still has everything below the
    // HW it gave us (asserted before and after the cut).
    let place = PartitionPlace {
        topic: &partition.topic,
        index: partition.index,
    };
    invariant::enforce(
        invariant::truncation_not_below_acknowledged(leader_end, *acknowledged_high_watermark),
        place,
    );
    if broker.config.replication.truncation == Truncation::LeaderEpoch {
        truncate_by_leader_epoch(broker, partition, conn, leader_epoch).await?;
    }
    let cut = partition.truncate_to(leader_end.min(partition.log_end_offset()))?;
    invariant::enforce(
        invariant::truncation_not_below_acknowledged(cut, *acknowledged_high_watermark),
        place,
    );
    tracing::warn!(topic = %partition.topic, partition = partition.index, leader_log_end_offset = leader_end, log_end_offset = cut, "follower ahead of the leader: truncated to its LEO");
    Ok(())
}

async fn leader_log_end_offset(
    broker: &Broker,
    partition: &Partition,
    conn: &mut PeerConnection,
    leader_epoch: i32,
) -> Result<i64, FollowError> {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(broker.node_id()))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(partition))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition.index)
                .with_current_leader_epoch(leader_epoch)
                .with_timestamp(-1)])]);
    let response: ListOffsetsResponse = conn
        .request(
            ApiKey::ListOffsets,
            LIST_OFFSETS_VERSION,
            &request,
            Duration::ZERO,
        )
        .await?;
    let answer = only_answer(
        response.topics.first().and_then(|t| t.partitions.first()),
        |a| a.error_code,
    )?;
    Ok(answer.offset)
}

/// The one partition answer of a follower's request to the leader: a missing answer is an
/// unknown server error, an answer with an error code is that error.
fn only_answer<T>(answer: Option<&T>, error_code: impl Fn(&T) -> i16) -> Result<&T, FollowError> {
    let answer =
        answer.ok_or_else(|| FollowError::Leader(ResponseError::UnknownServerError.code()))?;
    match error_code(answer) {
        0 => Ok(answer),
        code => Err(FollowError::Leader(code)),
    }
}
