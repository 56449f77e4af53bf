//! FindCoordinator (key type group): the broker leading the group's `__consumer_offsets`
//! partition. The first request creates that topic (single node: at once; cluster: through the
//! controller, COORDINATOR_NOT_AVAILABLE meanwhile).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use crate::group::{self, Coordinator, OFFSETS_TOPIC};
use crate::state::{Broker, CreateTopicError};

fn refused(code: i16, message: &str, version: i16) -> FindCoordinatorResponse {
    let response = FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_node_id(BrokerId(-1))
        .with_host(StrBytes::from_static_str(""))
        .with_port(-1);
    if version >= 1 {
        response.with_error_message(Some(StrBytes::from_string(message.to_string())))
    } else {
        response
    }
}

/// Creates `__consumer_offsets` if it does not exist.
fn ensure_offsets_topic(broker: &Arc<Broker>) {
    let config = group::config(broker);
    if !broker.groups.may_create_offsets_topic() {
        return;
    }
    if broker.in_cluster() {
        // As Kafka: the offsets topic is created with its full replication factor or not at all
        // (the controller refuses while fewer brokers live, FindCoordinator answers
        // COORDINATOR_NOT_AVAILABLE and the next one tries again), so committed offsets never
        // silently live on fewer replicas than `offsets.topic.replication.factor` says.
        let broker = Arc::clone(broker);
        let (partitions, factor) = (
            config.offsets_topic_num_partitions,
            config.offsets_topic_replication_factor,
        );
        tokio::spawn(async move {
            create_offsets_topic(&broker, partitions, factor).await;
        });
    } else {
        match broker.create_topic(OFFSETS_TOPIC, config.offsets_topic_num_partitions, false) {
            Ok(_) | Err(CreateTopicError::AlreadyExists) => {}
            Err(e) => tracing::error!(error = %e, "cannot create {OFFSETS_TOPIC}"),
        }
    }
}

/// Asks the controller to create the offsets topic; returns its error code.
async fn create_offsets_topic(
    broker: &Arc<Broker>,
    partitions: i32,
    replication_factor: i16,
) -> i16 {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, TopicName};
    tracing::info!(
        partitions,
        replication_factor,
        "asking the controller to create {OFFSETS_TOPIC}"
    );
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(OFFSETS_TOPIC)))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)]);
    let response = broker.cluster.forward_create_topics(request).await;
    let code = response.topics.first().map_or(-1, |t| t.error_code);
    if code != 0 && code != ResponseError::TopicAlreadyExists.code() {
        tracing::warn!(
            error_code = code,
            replication_factor,
            "creating {OFFSETS_TOPIC} failed"
        );
    }
    code
}

pub fn handle(
    broker: &Arc<Broker>,
    request: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    if request.key_type != 0 {
        return refused(
            ResponseError::InvalidRequest.code(),
            "only group coordinators (key type 0) are served",
            version,
        );
    }
    let key = request.key.as_str();
    if let Some(code) = group::group_id_error(key) {
        return refused(code, "invalid group id", version);
    }
    if Coordinator::offsets_partition_count(broker).is_none() {
        ensure_offsets_topic(broker);
    }
    let Some(count) = Coordinator::offsets_partition_count(broker) else {
        return refused(
            ResponseError::CoordinatorNotAvailable.code(),
            "the offsets topic is being created",
            version,
        );
    };
    let index = group::partition_for(key, count);
    let (node_id, host, port) = if broker.in_cluster() {
        let image = broker.cluster.image();
        let leader = image
            .topics
            .get(OFFSETS_TOPIC)
            .and_then(|t| t.partitions.get(&index))
            .map_or(-1, |p| p.leader_id);
        match image.brokers.get(&leader) {
            Some(address) if leader >= 0 => (leader, address.host.clone(), address.port),
            _ => {
                return refused(
                    ResponseError::CoordinatorNotAvailable.code(),
                    "the group's offsets partition has no leader",
                    version,
                )
            }
        }
    } else {
        (
            broker.node_id(),
            broker.advertised_host.clone(),
            broker.advertised_port,
        )
    };
    tracing::debug!(group = key, partition = index, node_id, "coordinator");
    FindCoordinatorResponse::default()
        .with_error_code(0)
        .with_node_id(BrokerId(node_id))
        .with_host(StrBytes::from_string(host))
        .with_port(port)
}
