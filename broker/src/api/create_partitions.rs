//! CreatePartitions: grows a topic to `count` partitions (the new ones start empty,
//! `validate_only` creates nothing). An unknown topic gets UNKNOWN_TOPIC_OR_PARTITION, a count
//! not above the current one INVALID_PARTITIONS, a bad placement INVALID_REPLICA_ASSIGNMENT, a
//! topic named twice INVALID_REQUEST, as from Kafka. A single node grows its own topic
//! ([`Broker::add_partitions`], every new partition on this node alone); in a cluster brokers
//! forward the request to the controller ([`Controller::create_partitions`]: the new partitions
//! get the topic's replication factor), and the replicas follow its image.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::controller::Controller;
use crate::state::{AddPartitionsError, Broker};

/// Who grows topics: a single broker, or the controller of a cluster.
pub trait Topics {
    /// Grows `topic` to its `count`; an error code and message.
    fn grow(&self, topic: &CreatePartitionsTopic, validate_only: bool)
        -> Result<(), (i16, String)>;
}

/// The replica lists a request gives for the new partitions, if it gives any.
fn assignments_of(topic: &CreatePartitionsTopic) -> Option<Vec<Vec<i32>>> {
    topic.assignments.as_ref().map(|assignments| {
        assignments
            .iter()
            .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
            .collect()
    })
}

impl Topics for Broker {
    fn grow(
        &self,
        topic: &CreatePartitionsTopic,
        validate_only: bool,
    ) -> Result<(), (i16, String)> {
        if let Some(assignments) = assignments_of(topic) {
            let node_id = self.node_id();
            if !assignments.iter().all(|a| a == &[node_id]) {
                return Err((
                    ResponseError::InvalidReplicaAssignment.code(),
                    format!("every new partition must be placed on this node ({node_id}) alone"),
                ));
            }
        }
        self.add_partitions(topic.name.as_str(), topic.count, validate_only)
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
                (code.code(), e.to_string())
            })
    }
}

impl Topics for Controller {
    fn grow(
        &self,
        topic: &CreatePartitionsTopic,
        validate_only: bool,
    ) -> Result<(), (i16, String)> {
        self.create_partitions(
            topic.name.as_str(),
            topic.count,
            assignments_of(topic),
            validate_only,
        )
        .map_err(|r| (r.code, r.message))
    }
}

pub fn handle(topics: &impl Topics, request: &CreatePartitionsRequest) -> CreatePartitionsResponse {
    let repeated = crate::api::repeated_names(request.topics.iter().map(|t| t.name.as_str()));
    let results = request
        .topics
        .iter()
        .map(|topic| {
            let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
            let outcome = if repeated.contains(topic.name.as_str()) {
                Err((
                    ResponseError::InvalidRequest.code(),
                    "topic appears more than once in the request".to_string(),
                ))
            } else {
                topics.grow(topic, request.validate_only)
            };
            match outcome {
                Ok(()) => result,
                Err((code, message)) => result
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

/// Every topic of `request` refused with REQUEST_TIMED_OUT (the controller could not be asked).
pub fn refused(request: &CreatePartitionsRequest, message: String) -> CreatePartitionsResponse {
    CreatePartitionsResponse::default().with_results(
        request
            .topics
            .iter()
            .map(|t| {
                CreatePartitionsTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(ResponseError::RequestTimedOut.code())
                    .with_error_message(Some(StrBytes::from_string(message.clone())))
            })
            .collect(),
    )
}
