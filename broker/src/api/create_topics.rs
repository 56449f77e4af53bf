//! CreateTopics on a single node: replication factor 1 (or -1 = default) only; configs are
//! validated (INVALID_CONFIG) and stored with the topic.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::state::{Broker, CreateTopicError};

pub fn handle(
    broker: &Arc<Broker>,
    request: &CreateTopicsRequest,
    _version: i16,
) -> CreateTopicsResponse {
    let repeated = crate::api::repeated_names(request.topics.iter().map(|t| t.name.as_str()));
    let results = request
        .topics
        .iter()
        .map(|topic| {
            let result = CreatableTopicResult::default().with_name(topic.name.clone());
            let fail = |code: ResponseError, message: String| {
                CreatableTopicResult::default()
                    .with_name(topic.name.clone())
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message)))
            };
            if repeated.contains(topic.name.as_str()) {
                return fail(ResponseError::InvalidRequest, "topic appears more than once in the request".into());
            }
            let configs = topic.configs.iter().map(|c| (c.name.as_str(), c.value.as_ref().map(|v| v.as_str())));
            let configs = match crate::topic_config::stored(configs) {
                Ok(configs) => configs,
                Err(e) => return fail(ResponseError::InvalidConfig, e.to_string()),
            };
            if topic.replication_factor != 1 && topic.replication_factor != -1 {
                return fail(
                    ResponseError::InvalidReplicationFactor,
                    format!("replication factor {} is not supported: this broker has 1 node", topic.replication_factor),
                );
            }
            let mut partition_count =
                if topic.num_partitions == -1 { broker.config.num_partitions } else { topic.num_partitions };
            if !topic.assignments.is_empty() {
                if topic.num_partitions != -1 || topic.replication_factor != -1 {
                    return fail(
                        ResponseError::InvalidRequest,
                        "give either assignments or num_partitions/replication_factor".into(),
                    );
                }
                let node_id = broker.node_id();
                let valid = topic.assignments.iter().enumerate().all(|(i, a)| {
                    a.partition_index == i as i32 && a.broker_ids.len() == 1 && a.broker_ids[0].0 == node_id
                });
                if !valid {
                    return fail(ResponseError::InvalidReplicaAssignment, "assignments must place partition i on this node".into());
                }
                partition_count = topic.assignments.len() as i32;
            }
            match broker.create_topic_with(topic.name.as_str(), partition_count, request.validate_only, configs) {
                Ok(created) => result
                    .with_topic_id(created.id)
                    .with_num_partitions(partition_count)
                    .with_replication_factor(1),
                Err(CreateTopicError::AlreadyExists) => {
                    fail(ResponseError::TopicAlreadyExists, format!("topic '{}' already exists", topic.name.as_str()))
                }
                Err(e @ CreateTopicError::InvalidName(_)) => fail(ResponseError::InvalidTopicException, e.to_string()),
                Err(e @ CreateTopicError::InvalidPartitions(_)) => fail(ResponseError::InvalidPartitions, e.to_string()),
                Err(e @ CreateTopicError::TooManyTopics) => fail(ResponseError::PolicyViolation, e.to_string()),
                Err(e @ CreateTopicError::State(_)) => {
                    tracing::error!(topic = %topic.name.as_str(), error = %e, "create topic failed");
                    fail(ResponseError::KafkaStorageError, e.to_string())
                }
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(results)
}
