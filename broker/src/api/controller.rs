//! The Kafka APIs only the controller answers, and its side of the APIs both roles serve (see
//! [`crate::api::table`]): Metadata (its image, for brokers and for tools), CreateTopics,
//! BrokerRegistration, BrokerHeartbeat, AlterPartition, and Fetch as the metadata watch. Decoded
//! request in, answer out; no socket I/O.

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
    AlterPartitionRequest, AlterPartitionResponse, BrokerHeartbeatRequest, BrokerHeartbeatResponse,
    BrokerId, BrokerRegistrationRequest, BrokerRegistrationResponse, CreateTopicsRequest,
    CreateTopicsResponse, FetchRequest, FetchResponse, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::api::{metadata, Admitted, Answer, CloseReason, Reply};
use crate::cluster::{BrokerAddress, ClusterImage, PartitionView, TopicView, METADATA_TOPIC};
use crate::controller::Controller;
use crate::limits;

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
                    configs: topic.configs.clone(),
                },
            )
        })
        .collect();
    ClusterImage {
        brokers,
        topics,
        broker_configs: Default::default(),
    }
}

/// Metadata: the controller's image, for brokers and for tools.
pub fn metadata(controller: &Arc<Controller>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: MetadataRequest = r.decode()?;
    let image = image(controller);
    let controller_id = image.brokers.keys().next().copied().unwrap_or(-1);
    let answer = metadata::from_image(
        &image,
        &request,
        r.version,
        controller_id,
        "kaos-cluster",
        false,
    );
    r.reply(Answer::Now(answer.response))
}

pub fn alter_configs(controller: &Arc<Controller>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: kafka_protocol::messages::AlterConfigsRequest = r.decode()?;
    let response = crate::api::alter_configs::handle(&**controller, &request);
    r.reply(Answer::Now(response))
}

pub fn incremental_alter_configs(
    controller: &Arc<Controller>,
    mut r: Admitted,
) -> Result<Reply, CloseReason> {
    let request: kafka_protocol::messages::IncrementalAlterConfigsRequest = r.decode()?;
    let response = crate::api::alter_configs::handle_incremental(&**controller, &request);
    r.reply(Answer::Now(response))
}

pub fn describe_user_scram_credentials(
    controller: &Arc<Controller>,
    mut r: Admitted,
) -> Result<Reply, CloseReason> {
    let request: kafka_protocol::messages::DescribeUserScramCredentialsRequest = r.decode()?;
    let response = crate::scram::describe(&**controller, &request);
    r.reply(Answer::Now(response))
}

pub fn alter_user_scram_credentials(
    controller: &Arc<Controller>,
    mut r: Admitted,
) -> Result<Reply, CloseReason> {
    let request: kafka_protocol::messages::AlterUserScramCredentialsRequest = r.decode()?;
    let response = crate::scram::alter(&**controller, &request);
    r.reply(Answer::Now(response))
}

pub fn create_acls(controller: &Arc<Controller>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: kafka_protocol::messages::CreateAclsRequest = r.decode()?;
    let response = crate::api::acls::create(&**controller, &request);
    r.reply(Answer::Now(response))
}

pub fn describe_acls(controller: &Arc<Controller>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: kafka_protocol::messages::DescribeAclsRequest = r.decode()?;
    let response = crate::api::acls::describe(&**controller, &request);
    r.reply(Answer::Now(response))
}

pub fn delete_acls(controller: &Arc<Controller>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: kafka_protocol::messages::DeleteAclsRequest = r.decode()?;
    let response = crate::api::acls::delete(&**controller, &request);
    r.reply(Answer::Now(response))
}

pub fn delete_topics(controller: &Arc<Controller>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: kafka_protocol::messages::DeleteTopicsRequest = r.decode()?;
    let response = crate::api::delete_topics::handle(&**controller, &request, r.version);
    r.reply(Answer::Now(response))
}

pub fn create_partitions(
    controller: &Arc<Controller>,
    mut r: Admitted,
) -> Result<Reply, CloseReason> {
    let request: kafka_protocol::messages::CreatePartitionsRequest = r.decode()?;
    let response = crate::api::create_partitions::handle(&**controller, &request);
    r.reply(Answer::Now(response))
}

/// DescribeConfigs on the controller: each topic's stored configs (what brokers pull).
pub fn describe_configs(
    controller: &Arc<Controller>,
    mut r: Admitted,
) -> Result<Reply, CloseReason> {
    let request: kafka_protocol::messages::DescribeConfigsRequest = r.decode()?;
    let response =
        crate::api::describe_configs::handle_on_controller(controller, &request, r.version);
    r.reply(Answer::Now(response))
}

pub fn create_topics(controller: &Arc<Controller>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: CreateTopicsRequest = r.decode()?;
    r.reply(Answer::Now(create_topics_response(controller, &request)))
}

pub fn broker_registration(
    controller: &Arc<Controller>,
    mut r: Admitted,
) -> Result<Reply, CloseReason> {
    let request: BrokerRegistrationRequest = r.decode()?;
    let listener = request.listeners.first();
    let host = listener
        .map(|l| l.host.as_str().to_string())
        .unwrap_or_default();
    let port = listener.map_or(0, |l| i32::from(l.port));
    let response =
        match controller.register(request.broker_id.0, request.incarnation_id, host, port) {
            Ok(epoch) => BrokerRegistrationResponse::default().with_broker_epoch(epoch),
            Err(refusal) => BrokerRegistrationResponse::default()
                .with_error_code(refusal.code)
                .with_broker_epoch(-1),
        };
    r.reply(Answer::Now(response))
}

pub fn broker_heartbeat(
    controller: &Arc<Controller>,
    mut r: Admitted,
) -> Result<Reply, CloseReason> {
    let request: BrokerHeartbeatRequest = r.decode()?;
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
    r.reply(Answer::Now(response))
}

pub fn alter_partition(
    controller: &Arc<Controller>,
    mut r: Admitted,
) -> Result<Reply, CloseReason> {
    let request: AlterPartitionRequest = r.decode()?;
    r.reply(Answer::Now(alter_partition_response(
        controller, &request, r.version,
    )))
}

/// Fetch on the controller: only the metadata watch.
pub fn fetch(controller: &Arc<Controller>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: FetchRequest = r.decode()?;
    r.reply(metadata_watch(controller, &request))
}

/// The metadata watch, KRaft's metadata-log fetch without the records: a broker fetches
/// `__cluster_metadata` partition 0 at the metadata version it last saw; the answer, whose high
/// watermark is the current version, comes at once when the versions differ, else at the next
/// change or after `max_wait_ms`. The broker then pulls the image with Metadata. So brokers learn
/// of an election within a round trip, not at their next heartbeat.
fn metadata_watch(controller: &Arc<Controller>, request: &FetchRequest) -> Answer<FetchResponse> {
    let seen = request
        .topics
        .iter()
        .filter(|t| t.topic.as_str() == METADATA_TOPIC)
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition == 0)
        .map(|p| p.fetch_offset);
    let (current, mut changes) = controller.watch_version();
    let Some(seen) = seen else {
        return Answer::Now(watch_response(None));
    };
    if current != seen {
        return Answer::Now(watch_response(Some(current)));
    }
    let wait = Duration::from_millis(
        u64::try_from(request.max_wait_ms)
            .unwrap_or(0)
            .min(limits::FETCH_WAIT_MS_MAX),
    );
    Answer::Later(Box::pin(async move {
        // A closed channel (the controller going away) answers with what there is.
        let _ = tokio::time::timeout(wait, changes.changed()).await;
        let current = *changes.borrow();
        watch_response(Some(current))
    }))
}

/// The metadata watch's answer: the current metadata version as the high watermark, or
/// UNKNOWN_TOPIC_OR_PARTITION when the request did not ask for the metadata partition.
fn watch_response(current: Option<i64>) -> FetchResponse {
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
    FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_partitions(vec![partition])])
}

fn create_topics_response(
    controller: &Controller,
    request: &CreateTopicsRequest,
) -> CreateTopicsResponse {
    let results = request
        .topics
        .iter()
        .map(|topic| {
            let result = CreatableTopicResult::default().with_name(topic.name.clone());
            let assignments = match manual_assignments(topic) {
                Ok(assignments) => assignments,
                Err((code, message)) => {
                    return result
                        .with_error_code(code.code())
                        .with_error_message(Some(StrBytes::from_string(message)))
                }
            };
            let configs = topic
                .configs
                .iter()
                .map(|c| (c.name.as_str(), c.value.as_ref().map(|v| v.as_str())));
            let configs = match crate::topic_config::stored(configs) {
                Ok(configs) => configs,
                Err(e) => {
                    return result
                        .with_error_code(ResponseError::InvalidConfig.code())
                        .with_error_message(Some(StrBytes::from_string(e.to_string())))
                }
            };
            let placement = (topic.num_partitions, topic.replication_factor, assignments);
            match controller.create_topic_with(
                topic.name.as_str(),
                placement,
                request.validate_only,
                configs,
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

/// A CreateTopics manual assignment as Kafka's controller takes it: the partition count and the
/// replication factor both -1, no partition twice, the partitions `0..n` (in any order); the
/// replica lists in partition order (their brokers and sizes are checked by the controller).
fn manual_assignments(
    topic: &kafka_protocol::messages::create_topics_request::CreatableTopic,
) -> Result<Vec<Vec<i32>>, (ResponseError, String)> {
    if topic.assignments.is_empty() {
        return Ok(Vec::new());
    }
    if topic.replication_factor != -1 {
        return Err((
            ResponseError::InvalidRequest,
            "A manual partition assignment was specified, but replication factor was not set to -1."
                .into(),
        ));
    }
    if topic.num_partitions != -1 {
        return Err((
            ResponseError::InvalidRequest,
            "A manual partition assignment was specified, but numPartitions was not set to -1."
                .into(),
        ));
    }
    let mut by_partition: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for a in &topic.assignments {
        let replicas = a.broker_ids.iter().map(|b| b.0).collect();
        if by_partition.insert(a.partition_index, replicas).is_some() {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "Found multiple manual partition assignments for partition {}",
                    a.partition_index
                ),
            ));
        }
    }
    if !by_partition
        .keys()
        .copied()
        .eq(0..by_partition.len() as i32)
    {
        return Err((
            ResponseError::InvalidReplicaAssignment,
            "partitions should be a consecutive 0-based integer sequence".into(),
        ));
    }
    Ok(by_partition.into_values().collect())
}

fn alter_partition_response(
    controller: &Controller,
    request: &AlterPartitionRequest,
    version: i16,
) -> AlterPartitionResponse {
    let topics = crate::api::per_partition(
        &request.topics,
        |topic| &topic.partitions[..],
        |topic, p| {
            let new_isr: Vec<i32> = if version >= 3 {
                p.new_isr_with_epochs
                    .iter()
                    .map(|b| b.broker_id.0)
                    .collect()
            } else {
                p.new_isr.iter().map(|b| b.0).collect()
            };
            let answer = AlterPartitionData::default().with_partition_index(p.partition_index);
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
        },
        |topic, partitions| {
            AlterTopicData::default()
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions)
        },
    );
    AlterPartitionResponse::default().with_topics(topics)
}
