//! CreatePartitions on a single node: grows a topic to `count` partitions ([`Broker::add_partitions`];
//! the new ones start empty, `validate_only` creates nothing). An unknown topic gets
//! UNKNOWN_TOPIC_OR_PARTITION, a count not above the current one INVALID_PARTITIONS, replicas
//! other than this node INVALID_REPLICA_ASSIGNMENT, a topic named twice INVALID_REQUEST, as from
//! Kafka. In a cluster the API is not served yet (not advertised).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::state::{AddPartitionsError, Broker};

pub fn handle(broker: &Arc<Broker>, request: &CreatePartitionsRequest) -> CreatePartitionsResponse {
    let repeated = crate::api::repeated_names(request.topics.iter().map(|t| t.name.as_str()));
    let results = request
        .topics
        .iter()
        .map(|topic| {
            let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
            let code = if repeated.contains(topic.name.as_str()) {
                Err((ResponseError::InvalidRequest, "topic appears more than once in the request".to_string()))
            } else {
                grow(broker, topic, request.validate_only)
            };
            match code {
                Ok(()) => result,
                Err((code, message)) => result
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

fn grow(
    broker: &Broker,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    if let Some(assignments) = &topic.assignments {
        let node_id = broker.node_id();
        let valid = assignments
            .iter()
            .all(|a| a.broker_ids.len() == 1 && a.broker_ids[0].0 == node_id);
        if !valid {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!("every new partition must be placed on this node ({node_id}) alone"),
            ));
        }
    }
    broker
        .add_partitions(topic.name.as_str(), topic.count, validate_only)
        .map_err(|e| {
            let code = match &e {
                AddPartitionsError::Unknown => ResponseError::UnknownTopicOrPartition,
                AddPartitionsError::NotMore { .. } | AddPartitionsError::TooMany(_) => {
                    ResponseError::InvalidPartitions
                }
                AddPartitionsError::State(_) => {
                    tracing::error!(topic = %topic.name.as_str(), error = %e, "create partitions failed");
                    ResponseError::KafkaStorageError
                }
            };
            (code, e.to_string())
        })
}
