//! InitProducerId for idempotent producers (transactional id null): a new producer id from this
//! node's allocator with epoch 0, whatever producer id and epoch the request carries — what Kafka's
//! coordinator does for a null transactional id. librdkafka bumps the epoch of a non-transactional
//! producer itself (KIP-360) and asks again only for a fresh id.
//!
//! A transactional id is refused with INVALID_REQUEST: this broker has no transaction coordinator.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::state::Broker;

pub fn handle(broker: &Broker, request: &InitProducerIdRequest) -> InitProducerIdResponse {
    let refused = |code: i16| {
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if let Some(transactional_id) = &request.transactional_id {
        tracing::warn!(transactional_id = %transactional_id.as_str(), "InitProducerId with a transactional id refused: transactions are not supported");
        return refused(ResponseError::InvalidRequest.code());
    }
    let allocated = broker
        .producer_ids
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .next_id();
    match allocated {
        Ok(id) => {
            tracing::debug!(producer_id = id, "allocated a producer id");
            InitProducerIdResponse::default()
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(0)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot allocate a producer id");
            refused(ResponseError::KafkaStorageError.code())
        }
    }
}
