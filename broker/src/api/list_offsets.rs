//! ListOffsets: -2 = earliest (log start), -1 = latest (the HW, or the last stable offset for
//! `isolation_level` read_committed),
//! -3 = the batch with the largest timestamp, otherwise the first batch at or after a timestamp.
//! As Kafka's `KafkaApis.handleListOffsetRequest`: only the leader answers, except a request with
//! replica id -2 (`DEBUGGING_REPLICA_ID`), which any replica answers from its own log; a request
//! with a replica id (a follower's or -2) gets the log end offset for latest, a client's (-1)
//! the HW or the last stable offset.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::api::leader_epoch_error;
use crate::log::log_error_code;
use crate::state::Broker;

const EARLIEST_TIMESTAMP: i64 = -2;
const LATEST_TIMESTAMP: i64 = -1;
const MAX_TIMESTAMP: i64 = -3;
/// Kafka's `ListOffsetsRequest.DEBUGGING_REPLICA_ID`: read from any replica, not only the leader.
const DEBUGGING_REPLICA_ID: i32 = -2;
/// Kafka's `ListOffsetsRequest.CONSUMER_REPLICA_ID`: a client, answered with the HW or the LSO.
const CONSUMER_REPLICA_ID: i32 = -1;

pub fn handle(
    broker: &Arc<Broker>,
    request: &ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let found = broker.topic(topic.name.as_str());
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let Some(partition) =
                        found.as_ref().and_then(|t| t.partition(p.partition_index))
                    else {
                        return response
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let serves = match partition.role() {
                        crate::partition::Role::Leader => true,
                        crate::partition::Role::Follower => {
                            request.replica_id.0 == DEBUGGING_REPLICA_ID
                        }
                        crate::partition::Role::None => false,
                    };
                    if !serves {
                        return response.with_error_code(ResponseError::NotLeaderOrFollower.code());
                    }
                    if let Some(code) =
                        leader_epoch_error(p.current_leader_epoch, partition.leader_epoch())
                    {
                        return response.with_error_code(code);
                    }
                    // leader_epoch exists from v4 on; setting it for older versions fails encoding.
                    let response = if version >= 4 {
                        response.with_leader_epoch(partition.leader_epoch())
                    } else {
                        response
                    };
                    let offsets = partition.offsets();
                    match p.timestamp {
                        EARLIEST_TIMESTAMP => response
                            .with_offset(offsets.log_start_offset)
                            .with_timestamp(-1),
                        // A follower (replica id set) learns the leader's LEO (pre-KIP-101
                        // truncation after OFFSET_OUT_OF_RANGE), -2 this replica's; clients get
                        // the HW.
                        LATEST_TIMESTAMP if request.replica_id.0 != CONSUMER_REPLICA_ID => response
                            .with_offset(offsets.log_end_offset)
                            .with_timestamp(-1),
                        LATEST_TIMESTAMP if request.isolation_level == 1 => response
                            .with_offset(partition.last_stable_offset())
                            .with_timestamp(-1),
                        LATEST_TIMESTAMP => response
                            .with_offset(offsets.high_watermark)
                            .with_timestamp(-1),
                        timestamp if timestamp >= 0 || timestamp == MAX_TIMESTAMP => {
                            let lookup = if timestamp == MAX_TIMESTAMP {
                                partition.max_timestamp_offset()
                            } else {
                                partition.offset_for_timestamp(timestamp)
                            };
                            match lookup {
                                Ok(Some((offset, found_timestamp))) => {
                                    response.with_offset(offset).with_timestamp(found_timestamp)
                                }
                                Ok(None) => response.with_offset(-1).with_timestamp(-1),
                                Err(e) => {
                                    response.with_error_code(log_error_code(&e, "list offsets"))
                                }
                            }
                        }
                        _ => response.with_error_code(ResponseError::InvalidRequest.code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
