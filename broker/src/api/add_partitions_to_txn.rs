//! AddPartitionsToTxn v0–v3 (a client's request for one transaction): the transaction is Ongoing
//! with these partitions (see [`crate::txn::Coordinator::add_partitions`]). An unknown partition
//! gets UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED, as Kafka answers;
//! otherwise every partition gets the coordinator's code. (v4+ is KIP-890's broker-to-coordinator
//! verification, not served: this broker verifies against its own coordinator only.)

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use crate::api::Answer;
use crate::state::Broker;

fn response(
    request: &AddPartitionsToTxnRequest,
    code_of: impl Fn(&str, i32) -> i16,
) -> AddPartitionsToTxnResponse {
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(
        request
            .v3_and_below_topics
            .iter()
            .map(|topic| {
                AddPartitionsToTxnTopicResult::default()
                    .with_name(topic.name.clone())
                    .with_results_by_partition(
                        topic
                            .partitions
                            .iter()
                            .map(|&p| {
                                AddPartitionsToTxnPartitionResult::default()
                                    .with_partition_index(p)
                                    .with_partition_error_code(code_of(topic.name.as_str(), p))
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

pub fn handle(
    broker: &Arc<Broker>,
    request: AddPartitionsToTxnRequest,
) -> Answer<AddPartitionsToTxnResponse> {
    let partitions: Vec<(String, i32)> = request
        .v3_and_below_topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|&p| (t.name.as_str().to_string(), p))
        })
        .collect();
    let unknown: Vec<(String, i32)> = partitions
        .iter()
        .filter(|(t, p)| {
            !broker.partition_exists(t, *p) || crate::api::produce::is_internal_topic(t)
        })
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Answer::Now(response(&request, |t, p| {
            if unknown.iter().any(|(ut, up)| ut == t && *up == p) {
                ResponseError::UnknownTopicOrPartition.code()
            } else {
                ResponseError::OperationNotAttempted.code()
            }
        }));
    }
    let id = request.v3_and_below_transactional_id.as_str().to_string();
    let producer = (
        request.v3_and_below_producer_id.0,
        request.v3_and_below_producer_epoch,
    );
    add_then(broker, id, producer, partitions, move |code| {
        response(&request, |_, _| code)
    })
}

/// Adds `partitions` to the ongoing transaction of `transactional_id` (AddPartitionsToTxn,
/// AddOffsetsToTxn) and answers `respond(error code)` once the coordinator has written it.
pub(crate) fn add_then<R: Send + 'static>(
    broker: &Arc<Broker>,
    transactional_id: String,
    producer: (i64, i16),
    partitions: Vec<(String, i32)>,
    respond: impl FnOnce(i16) -> R + Send + 'static,
) -> Answer<R> {
    let broker = Arc::clone(broker);
    Answer::Later(Box::pin(async move {
        let added = broker
            .txns
            .add_partitions(&*broker, &transactional_id, producer, partitions)
            .await;
        respond(added.err().unwrap_or(0))
    }))
}
