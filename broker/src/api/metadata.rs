//! Metadata. Single node: this broker, controller = this broker, topics with their partitions;
//! unknown topics are created with `num.partitions` when auto-create is on and the request allows it.
//! Cluster: the live brokers, leaders, epochs, replicas and ISRs from the controller's image
//! ([`from_image`], which the controller uses too); controller id = this broker (KRaft-style: it
//! forwards CreateTopics); an unknown topic is created through the controller ([`Answer::create`])
//! and reported LEADER_NOT_AVAILABLE until it exists.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::{ClusterImage, TopicView};
use crate::state::{Broker, CreateTopicError, Topic};

fn describe(topic: &Topic) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .values()
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

/// A Metadata answer plus the topics to create through the controller (cluster mode).
pub struct Answer {
    pub response: MetadataResponse,
    pub create: Vec<String>,
}

fn describe_view(name: &str, topic: &TopicView) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|(&index, p)| {
            let code = if p.leader_id < 0 {
                ResponseError::LeaderNotAvailable.code()
            } else {
                0
            };
            MetadataResponsePartition::default()
                .with_error_code(code)
                .with_partition_index(index)
                .with_leader_id(BrokerId(p.leader_id))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(p.isr.iter().copied().map(BrokerId).collect())
                .with_offline_replicas(p.offline_replicas.iter().copied().map(BrokerId).collect())
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
        .with_topic_id(topic.id)
        .with_partitions(partitions)
}

/// Answers from a cluster image. Unknown topics that may be auto-created are listed in
/// `create` and answered LEADER_NOT_AVAILABLE; others UNKNOWN_TOPIC_OR_PARTITION.
pub fn from_image(
    image: &ClusterImage,
    request: &MetadataRequest,
    version: i16,
    controller_id: i32,
    cluster_id: &str,
    allow_auto_create: bool,
) -> Answer {
    let brokers = image
        .brokers
        .iter()
        .map(|(&id, address)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(StrBytes::from_string(address.host.clone()))
                .with_port(address.port)
        })
        .collect();
    let all_topics = match &request.topics {
        None => true,
        Some(topics) => version == 0 && topics.is_empty(),
    };
    let allow_auto_create = allow_auto_create && (version < 4 || request.allow_auto_topic_creation);
    let mut create = Vec::new();
    let topics = if all_topics {
        image
            .topics
            .iter()
            .map(|(name, t)| describe_view(name, t))
            .collect()
    } else {
        request
            .topics
            .iter()
            .flatten()
            .map(|requested| match &requested.name {
                None => match image
                    .topics
                    .iter()
                    .find(|(_, t)| t.id == requested.topic_id)
                {
                    Some((name, topic)) => describe_view(name, topic),
                    None => topic_error(
                        None,
                        requested.topic_id,
                        ResponseError::UnknownTopicId.code(),
                    ),
                },
                Some(name) => match image.topics.get(name.as_str()) {
                    Some(topic) => describe_view(name.as_str(), topic),
                    None if allow_auto_create
                        && crate::state::validate_topic_name(name.as_str()).is_ok() =>
                    {
                        create.push(name.as_str().to_string());
                        topic_error(
                            Some(name.clone()),
                            uuid::Uuid::nil(),
                            ResponseError::LeaderNotAvailable.code(),
                        )
                    }
                    None => topic_error(
                        Some(name.clone()),
                        uuid::Uuid::nil(),
                        ResponseError::UnknownTopicOrPartition.code(),
                    ),
                },
            })
            .collect()
    };
    Answer {
        response: MetadataResponse::default()
            .with_brokers(brokers)
            .with_cluster_id(Some(StrBytes::from_string(cluster_id.to_string())))
            .with_controller_id(BrokerId(controller_id))
            .with_topics(topics),
        create,
    }
}

/// Answers a Metadata request on a broker (single node or cluster).
pub fn answer(broker: &Arc<Broker>, request: &MetadataRequest, version: i16) -> Answer {
    let mut answer = if broker.in_cluster() {
        let image = broker.cluster.image();
        from_image(
            &image,
            request,
            version,
            broker.node_id(),
            &broker.cluster_id,
            broker.config.auto_create_topics_enable,
        )
    } else {
        Answer {
            response: handle(broker, request, version),
            create: Vec::new(),
        }
    };
    // The offsets topic is internal: marked so (v1+), and never auto-created by Metadata (the
    // group coordinator creates it with its own partition count and replication factor).
    answer
        .create
        .retain(|name| name != crate::group::OFFSETS_TOPIC);
    // Authorized operations (v8+): every operation on a described topic (no authorizer), the
    // cluster's too in v8-10, when asked; else Kafka's "omitted".
    use crate::acl::authorized;
    for topic in &mut answer.response.topics {
        let asked = version >= 8 && request.include_topic_authorized_operations;
        topic.topic_authorized_operations =
            authorized::if_asked(asked && topic.error_code == 0, authorized::TOPIC);
    }
    answer.response.cluster_authorized_operations = authorized::if_asked(
        (8..=10).contains(&version) && request.include_cluster_authorized_operations,
        authorized::CLUSTER,
    );
    if version >= 1 {
        for topic in &mut answer.response.topics {
            if topic
                .name
                .as_ref()
                .is_some_and(|n| n.as_str() == crate::group::OFFSETS_TOPIC)
            {
                topic.is_internal = true;
            }
        }
    }
    answer
}

/// Single node.
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
                    if !allow_auto_create || name.as_str() == crate::group::OFFSETS_TOPIC {
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
