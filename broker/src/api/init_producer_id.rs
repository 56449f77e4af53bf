//! InitProducerId for idempotent producers (transactional id null): a new producer id from this
//! node's allocator with epoch 0, whatever producer id and epoch the request carries — what Kafka's
//! coordinator does for a null transactional id. librdkafka bumps the epoch of a non-transactional
//! producer itself (KIP-360) and asks again only for a fresh id.
//!
//! With a transactional id the transaction coordinator answers ([`transactional`]).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::api::Answer;
use crate::state::Broker;

fn refused(code: i16) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_error_code(code)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

/// InitProducerId with a transactional id: the coordinator's producer id and epoch for it
/// (see [`crate::txn::Coordinator::init_producer_id`]).
pub fn transactional(
    broker: &Arc<Broker>,
    request: &InitProducerIdRequest,
    transactional_id: String,
) -> Answer<InitProducerIdResponse> {
    let broker = Arc::clone(broker);
    let (timeout_ms, given) = (
        request.transaction_timeout_ms,
        (request.producer_id.0, request.producer_epoch),
    );
    Answer::Later(Box::pin(async move {
        match broker
            .txns
            .init_producer_id(&broker, &transactional_id, timeout_ms, given)
            .await
        {
            Ok((producer_id, epoch)) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(epoch),
            Err(code) => refused(code),
        }
    }))
}

pub fn handle(
    broker: &Arc<Broker>,
    request: &InitProducerIdRequest,
) -> Answer<InitProducerIdResponse> {
    if let Some(transactional_id) = &request.transactional_id {
        return transactional(broker, request, transactional_id.as_str().to_string());
    }
    Answer::Now(idempotent(broker))
}

fn idempotent(broker: &Broker) -> InitProducerIdResponse {
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
