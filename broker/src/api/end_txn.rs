//! EndTxn: commit or abort the producer's transaction (see
//! [`crate::txn::Coordinator::end_txn`]); answered once PrepareCommit or PrepareAbort is written.

use std::sync::Arc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use crate::api::Answer;
use crate::state::Broker;

pub fn handle(broker: &Arc<Broker>, request: EndTxnRequest) -> Answer<EndTxnResponse> {
    let broker = Arc::clone(broker);
    Answer::Later(Box::pin(async move {
        let code = broker
            .txns
            .end_txn(
                &broker,
                request.transactional_id.as_str(),
                (request.producer_id.0, request.producer_epoch),
                request.committed,
            )
            .await
            .err()
            .unwrap_or(0);
        EndTxnResponse::default().with_error_code(code)
    }))
}
