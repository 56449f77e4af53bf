//! AddOffsetsToTxn: adds the group's `__consumer_offsets` partition to the transaction, so that
//! its TxnOffsetCommits become visible (or are dropped) with the transaction's marker (KIP-98).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use crate::api::add_partitions_to_txn::add_then;
use crate::api::Answer;
use crate::group::{partition_for, Coordinator, OFFSETS_TOPIC};
use crate::state::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: AddOffsetsToTxnRequest,
) -> Answer<AddOffsetsToTxnResponse> {
    let group = request.group_id.as_str();
    if let Some(code) = crate::group::group_id_error(group) {
        return Answer::Now(AddOffsetsToTxnResponse::default().with_error_code(code));
    }
    let Some(count) = Coordinator::offsets_partition_count(broker) else {
        return Answer::Now(
            AddOffsetsToTxnResponse::default()
                .with_error_code(ResponseError::CoordinatorNotAvailable.code()),
        );
    };
    let partition = (OFFSETS_TOPIC.to_string(), partition_for(group, count));
    let id = request.transactional_id.as_str().to_string();
    let producer = (request.producer_id.0, request.producer_epoch);
    add_then(broker, id, producer, vec![partition], |code| {
        AddOffsetsToTxnResponse::default().with_error_code(code)
    })
}
