//! FindCoordinator: for key type 0 (group) the broker leading the group's `__consumer_offsets`
//! partition, for key type 1 (transaction, KIP-98) the broker leading the transactional id's
//! `__transaction_state` partition. The first request creates that topic (single node: at once;
//! cluster: through the controller, COORDINATOR_NOT_AVAILABLE meanwhile).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use crate::group::{self, Coordinator, OFFSETS_TOPIC};
use crate::internal_topic;
use crate::state::{Broker, CreateTopicError};
use crate::txn::{self, TRANSACTION_STATE_TOPIC};

/// The internal topic a key type's coordinators are found by.
struct Internal {
    topic: &'static str,
    partitions: i32,
    replication_factor: i16,
}

impl Internal {
    fn of(broker: &Broker, key_type: i8) -> Option<Internal> {
        match key_type {
            0 => Some(Internal {
                topic: OFFSETS_TOPIC,
                partitions: broker.config.group.offsets_topic_num_partitions,
                replication_factor: broker.config.group.offsets_topic_replication_factor,
            }),
            1 => Some(Internal {
                topic: TRANSACTION_STATE_TOPIC,
                partitions: broker.config.txn.state_log_num_partitions,
                replication_factor: broker.config.txn.state_log_replication_factor,
            }),
            _ => None,
        }
    }

    /// Its partition count as this broker knows it.
    fn partition_count(&self, broker: &Broker) -> Option<i32> {
        if self.topic == OFFSETS_TOPIC {
            Coordinator::offsets_partition_count(broker)
        } else {
            txn::Host::txn_partition_count(broker)
        }
    }

    /// Whether this broker may ask for its creation now (rate-limited).
    fn may_create(&self, broker: &Broker) -> bool {
        if self.topic == OFFSETS_TOPIC {
            broker.groups.may_create_topic()
        } else {
            broker.txns.may_create_topic()
        }
    }
}

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

/// Creates the internal topic if it does not exist.
fn ensure_internal_topic(broker: &Arc<Broker>, internal: &Internal) {
    if !internal.may_create(broker) {
        return;
    }
    if broker.in_cluster() {
        // As Kafka: the offsets topic is created with its full replication factor or not at all
        // (the controller refuses while fewer brokers live, FindCoordinator answers
        // COORDINATOR_NOT_AVAILABLE and the next one tries again), so committed offsets never
        // silently live on fewer replicas than `offsets.topic.replication.factor` says.
        let broker = Arc::clone(broker);
        let (topic, partitions, factor) = (
            internal.topic,
            internal.partitions,
            internal.replication_factor,
        );
        tokio::spawn(async move {
            create_internal_topic(&broker, topic, partitions, factor).await;
        });
    } else {
        match broker.create_topic(internal.topic, internal.partitions, false) {
            Ok(_) | Err(CreateTopicError::AlreadyExists) => {}
            Err(e) => {
                tracing::error!(error = %e, topic = internal.topic, "cannot create an internal topic")
            }
        }
    }
}

/// Asks the controller to create an internal topic; returns its error code.
async fn create_internal_topic(
    broker: &Arc<Broker>,
    topic: &'static str,
    partitions: i32,
    replication_factor: i16,
) -> i16 {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, TopicName};
    tracing::info!(
        topic,
        partitions,
        replication_factor,
        "asking the controller to create an internal topic"
    );
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(topic)))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)]);
    let response = broker.cluster.forward_create_topics(request).await;
    let code = response.topics.first().map_or(-1, |t| t.error_code);
    if code != 0 && code != ResponseError::TopicAlreadyExists.code() {
        tracing::warn!(
            error_code = code,
            topic,
            replication_factor,
            "creating an internal topic failed"
        );
    }
    code
}

pub fn handle(
    broker: &Arc<Broker>,
    request: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let Some(internal) = Internal::of(broker, request.key_type) else {
        return refused(
            ResponseError::InvalidRequest.code(),
            "only group (0) and transaction (1) coordinators are served",
            version,
        );
    };
    let key = request.key.as_str();
    let invalid = if request.key_type == 0 {
        group::group_id_error(key)
    } else {
        txn::transactional_id_error(key)
    };
    if let Some(code) = invalid {
        return refused(code, "invalid coordinator key", version);
    }
    if internal.partition_count(broker).is_none() {
        ensure_internal_topic(broker, &internal);
    }
    let Some(count) = internal.partition_count(broker) else {
        return refused(
            ResponseError::CoordinatorNotAvailable.code(),
            "the coordinator's internal topic is being created",
            version,
        );
    };
    let index = internal_topic::partition_for(key, count);
    let (node_id, host, port) = if broker.in_cluster() {
        let image = broker.cluster.image();
        let leader = image
            .topics
            .get(internal.topic)
            .and_then(|t| t.partitions.get(&index))
            .map_or(-1, |p| p.leader_id);
        match image.brokers.get(&leader) {
            Some(address) if leader >= 0 => (leader, address.host.clone(), address.port),
            _ => {
                return refused(
                    ResponseError::CoordinatorNotAvailable.code(),
                    "the coordinator's partition has no leader",
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
    tracing::debug!(
        key,
        key_type = request.key_type,
        partition = index,
        node_id,
        "coordinator"
    );
    FindCoordinatorResponse::default()
        .with_error_code(0)
        .with_node_id(BrokerId(node_id))
        .with_host(StrBytes::from_string(host))
        .with_port(port)
}
