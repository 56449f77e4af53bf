//! Metadata: this broker, controller = this broker, topics with their partitions.
//! Unknown topics are created with `num.partitions` when auto-create is on and the request allows it.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::state::{Broker, CreateTopicError, Topic};

fn describe(topic: &Topic) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p.index)
                .with_leader_id(BrokerId(p.leader_id()))
                .with_leader_epoch(p.leader_epoch())
                .with_replica_nodes(p.replicas().into_iter().map(BrokerId).collect())
                .with_isr_nodes(p.isr().into_iter().map(BrokerId).collect())
                .with_offline_replicas(Vec::new())
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_partitions(partitions)
}

fn topic_error(name: Option<TopicName>, topic_id: uuid::Uuid, code: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name)
        .with_topic_id(topic_id)
        .with_error_code(code)
}

pub fn handle(broker: &Arc<Broker>, request: &MetadataRequest, version: i16) -> MetadataResponse {
    let brokers = vec![MetadataResponseBroker::default()
        .with_node_id(BrokerId(broker.node_id()))
        .with_host(StrBytes::from_string(broker.advertised_host.clone()))
        .with_port(broker.advertised_port)];
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let all_topics = match &request.topics {
        None => true,
        Some(topics) => version == 0 && topics.is_empty(),
    };
    let topics = if all_topics {
        broker.topics().iter().map(|t| describe(t)).collect()
    } else {
        let allow_auto_create = broker.config.auto_create_topics_enable
            && (version < 4 || request.allow_auto_topic_creation);
        request
            .topics
            .iter()
            .flatten()
            .map(|requested| match &requested.name {
                None => match broker.topic_by_id(requested.topic_id) {
                    Some(topic) => describe(&topic),
                    None => topic_error(None, requested.topic_id, ResponseError::UnknownTopicId.code()),
                },
                Some(name) => {
                    if let Some(topic) = broker.topic(name.as_str()) {
                        return describe(&topic);
                    }
                    if !allow_auto_create {
                        return topic_error(Some(name.clone()), uuid::Uuid::nil(), ResponseError::UnknownTopicOrPartition.code());
                    }
                    match broker.create_topic(name.as_str(), broker.config.num_partitions, false) {
                        Ok(topic) => describe(&topic),
                        Err(CreateTopicError::AlreadyExists) => match broker.topic(name.as_str()) {
                            Some(topic) => describe(&topic),
                            None => topic_error(Some(name.clone()), uuid::Uuid::nil(), ResponseError::LeaderNotAvailable.code()),
                        },
                        Err(CreateTopicError::InvalidName(_)) => {
                            topic_error(Some(name.clone()), uuid::Uuid::nil(), ResponseError::InvalidTopicException.code())
                        }
                        Err(e) => {
                            tracing::warn!(topic = %name.as_str(), error = %e, "auto-create failed");
                            topic_error(Some(name.clone()), uuid::Uuid::nil(), ResponseError::UnknownServerError.code())
                        }
                    }
                }
            })
            .collect()
    };
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_string(broker.cluster_id.clone())))
        .with_controller_id(BrokerId(broker.node_id()))
        .with_topics(topics)
}
