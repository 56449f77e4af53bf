//! The Kafka APIs the controller answers: ApiVersions, Metadata (its image, for brokers and for
//! tools), CreateTopics, BrokerRegistration, BrokerHeartbeat, AlterPartition. Decoded request in,
//! response out; no socket I/O.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_response::{
    PartitionData as AlterPartitionData, TopicData as AlterTopicData,
};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{
    AlterPartitionRequest, AlterPartitionResponse, ApiKey, ApiVersionsRequest,
    BrokerHeartbeatRequest, BrokerHeartbeatResponse, BrokerId, BrokerRegistrationRequest,
    BrokerRegistrationResponse, CreateTopicsRequest, CreateTopicsResponse, FetchRequest,
    FetchResponse, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::api::{admit, api_versions, malformed, Admission, Admitted, CloseReason, Reply};
use crate::cluster::{BrokerAddress, ClusterImage, PartitionView, TopicView};
use crate::controller::Controller;
use crate::limits;
use crate::wire::frame;

/// The APIs the controller implements.
pub const CONTROLLER_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::AlterPartition, 2, 3),
    (ApiKey::BrokerRegistration, 0, 4),
    (ApiKey::BrokerHeartbeat, 0, 1),
    // Only for the metadata watch (below); v12 is the last that names topics.
    (ApiKey::Fetch, 4, 12),
];

/// The topic a broker fetches from the controller to watch for metadata changes (KRaft's name
/// for its metadata log).
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// The controller's state as an image: live brokers, and every partition.
pub fn image(controller: &Controller) -> ClusterImage {
    let (durable, live) = controller.snapshot();
    let brokers = durable
        .brokers
        .iter()
        .filter(|(id, _)| live.contains(id))
        .map(|(&id, r)| {
            (
                id,
                BrokerAddress {
                    host: r.host.clone(),
                    port: r.port,
                },
            )
        })
        .collect();
    let topics = durable
        .topics
        .iter()
        .map(|(name, topic)| {
            let partitions: BTreeMap<i32, PartitionView> = topic
                .partitions
                .iter()
                .enumerate()
                .map(|(index, p)| {
                    (
                        index as i32,
                        PartitionView {
                            leader_id: p.leader,
                            leader_epoch: p.leader_epoch,
                            replicas: p.replicas.clone(),
                            isr: p.isr.clone(),
                            offline_replicas: p
                                .replicas
                                .iter()
                                .copied()
                                .filter(|r| !live.contains(r))
                                .collect(),
                        },
                    )
                })
                .collect();
            (
                name.clone(),
                TopicView {
                    id: topic.id,
                    partitions,
                },
            )
        })
        .collect();
    ClusterImage { brokers, topics }
}

/// Handles one request frame.
pub fn handle_frame(
    controller: &Arc<Controller>,
    frame_bytes: Bytes,
) -> Result<Reply, CloseReason> {
    let Admitted {
        api,
        version,
        correlation_id,
        mut body,
        ..
    } = match admit(frame_bytes, CONTROLLER_APIS)? {
        Admission::Request(admitted) => admitted,
        Admission::Answered(reply) => return Ok(reply),
    };
    let malformed = malformed(api, version);
    let bytes = match api {
        ApiKey::ApiVersions => {
            ApiVersionsRequest::decode(&mut body, version).map_err(malformed)?;
            frame::encode_response(
                api,
                version,
                correlation_id,
                &api_versions::response_for(CONTROLLER_APIS),
            )?
        }
        ApiKey::Metadata => {
            let request = MetadataRequest::decode(&mut body, version).map_err(malformed)?;
            let image = image(controller);
            let controller_id = image.brokers.keys().next().copied().unwrap_or(-1);
            let answer = crate::api::metadata::from_image(
                &image,
                &request,
                version,
                controller_id,
                "kaos-cluster",
                false,
            );
            frame::encode_response(api, version, correlation_id, &answer.response)?
        }
        ApiKey::CreateTopics => {
            let request = CreateTopicsRequest::decode(&mut body, version).map_err(malformed)?;
            frame::encode_response(
                api,
                version,
                correlation_id,
                &create_topics(controller, &request),
            )?
        }
        ApiKey::BrokerRegistration => {
            let request =
                BrokerRegistrationRequest::decode(&mut body, version).map_err(malformed)?;
            let listener = request.listeners.first();
            let host = listener
                .map(|l| l.host.as_str().to_string())
                .unwrap_or_default();
            let port = listener.map_or(0, |l| i32::from(l.port));
            let response = match controller.register(
                request.broker_id.0,
                request.incarnation_id,
                host,
                port,
            ) {
                Ok(epoch) => BrokerRegistrationResponse::default().with_broker_epoch(epoch),
                Err(refusal) => BrokerRegistrationResponse::default()
                    .with_error_code(refusal.code)
                    .with_broker_epoch(-1),
            };
            frame::encode_response(api, version, correlation_id, &response)?
        }
        ApiKey::BrokerHeartbeat => {
            let request = BrokerHeartbeatRequest::decode(&mut body, version).map_err(malformed)?;
            let result = if request.want_shut_down {
                controller.controlled_shutdown(request.broker_id.0, request.broker_epoch)
            } else {
                controller.heartbeat(request.broker_id.0, request.broker_epoch)
            };
            let response = match result {
                Ok(()) => BrokerHeartbeatResponse::default()
                    .with_is_caught_up(true)
                    .with_should_shut_down(request.want_shut_down),
                Err(refusal) => BrokerHeartbeatResponse::default()
                    .with_error_code(refusal.code)
                    .with_is_fenced(true),
            };
            frame::encode_response(api, version, correlation_id, &response)?
        }
        ApiKey::AlterPartition => {
            let request = AlterPartitionRequest::decode(&mut body, version).map_err(malformed)?;
            frame::encode_response(
                api,
                version,
                correlation_id,
                &alter_partition(controller, &request, version),
            )?
        }
        ApiKey::Fetch => {
            let request = FetchRequest::decode(&mut body, version).map_err(malformed)?;
            return Ok(metadata_watch(
                controller,
                &request,
                version,
                correlation_id,
            ));
        }
        _ => return Err(CloseReason::UnsupportedApi { api }),
    };
    Ok(Reply::Now(bytes))
}

/// The metadata watch, KRaft's metadata-log fetch without the records: a broker fetches
/// `__cluster_metadata` partition 0 at the metadata version it last saw; the answer, whose high
/// watermark is the current version, comes at once when the versions differ, else at the next
/// change or after `max_wait_ms`. The broker then pulls the image with Metadata. So brokers learn
/// of an election within a round trip, not at their next heartbeat.
fn metadata_watch(
    controller: &Arc<Controller>,
    request: &FetchRequest,
    version: i16,
    correlation_id: i32,
) -> Reply {
    let seen = request
        .topics
        .iter()
        .filter(|t| t.topic.as_str() == METADATA_TOPIC)
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition == 0)
        .map(|p| p.fetch_offset);
    let encode = move |current: Option<i64>| {
        let partition = match current {
            Some(v) => PartitionData::default()
                .with_high_watermark(v)
                .with_last_stable_offset(v)
                .with_log_start_offset(0)
                .with_records(Some(Bytes::new())),
            None => PartitionData::default()
                .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1),
        };
        let response =
            FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
                .with_partitions(vec![partition])]);
        crate::api::encode_logged(ApiKey::Fetch, version, correlation_id, &response)
    };
    let (current, mut changes) = controller.watch_version();
    let Some(seen) = seen else {
        return encode_reply(encode(None));
    };
    if current != seen {
        return encode_reply(encode(Some(current)));
    }
    let wait = Duration::from_millis(
        u64::try_from(request.max_wait_ms)
            .unwrap_or(0)
            .min(limits::FETCH_WAIT_MS_MAX),
    );
    Reply::Later(Box::pin(async move {
        // A closed channel (the controller going away) answers with what there is.
        let _ = tokio::time::timeout(wait, changes.changed()).await;
        let current = *changes.borrow();
        encode(Some(current))
    }))
}

fn encode_reply(bytes: Option<Bytes>) -> Reply {
    bytes.map_or(Reply::Nothing, Reply::Now)
}

fn create_topics(controller: &Controller, request: &CreateTopicsRequest) -> CreateTopicsResponse {
    let results = request
        .topics
        .iter()
        .map(|topic| {
            let assignments: Vec<Vec<i32>> = topic
                .assignments
                .iter()
                .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                .collect();
            let result = CreatableTopicResult::default().with_name(topic.name.clone());
            match controller.create_topic(
                topic.name.as_str(),
                topic.num_partitions,
                topic.replication_factor,
                assignments,
                request.validate_only,
            ) {
                Ok((id, partitions, factor)) => result
                    .with_topic_id(id)
                    .with_num_partitions(partitions)
                    .with_replication_factor(factor),
                Err(refusal) => result
                    .with_error_code(refusal.code)
                    .with_error_message(Some(StrBytes::from_string(refusal.message))),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(results)
}

fn alter_partition(
    controller: &Controller,
    request: &AlterPartitionRequest,
    version: i16,
) -> AlterPartitionResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let new_isr: Vec<i32> = if version >= 3 {
                        p.new_isr_with_epochs
                            .iter()
                            .map(|b| b.broker_id.0)
                            .collect()
                    } else {
                        p.new_isr.iter().map(|b| b.0).collect()
                    };
                    let answer =
                        AlterPartitionData::default().with_partition_index(p.partition_index);
                    match controller.alter_partition(
                        request.broker_id.0,
                        request.broker_epoch,
                        topic.topic_id,
                        p.partition_index,
                        p.leader_epoch,
                        new_isr,
                    ) {
                        Ok(state) => answer
                            .with_leader_id(BrokerId(state.leader))
                            .with_leader_epoch(state.leader_epoch)
                            .with_isr(state.isr.into_iter().map(BrokerId).collect())
                            .with_partition_epoch(state.partition_epoch),
                        Err(refusal) => answer
                            .with_error_code(refusal.code)
                            .with_leader_id(BrokerId(-1)),
                    }
                })
                .collect();
            AlterTopicData::default()
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    AlterPartitionResponse::default().with_topics(topics)
}
