//! WriteTxnMarkers v1 (between brokers): a transaction coordinator asks this broker, the leader
//! of the named partitions, to write each transaction's marker to them; each partition is
//! answered once its marker is below the HW (NOT_LEADER_OR_FOLLOWER where this broker does not
//! lead, and the coordinator retries).

use std::sync::Arc;

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use crate::api::Answer;
use crate::state::Broker;
use crate::txn::markers::LocalMarker;

pub fn handle(
    broker: &Arc<Broker>,
    request: WriteTxnMarkersRequest,
) -> Answer<WriteTxnMarkersResponse> {
    let broker = Arc::clone(broker);
    Answer::Later(Box::pin(async move {
        let mut results = Vec::with_capacity(request.markers.len());
        for m in &request.markers {
            let marker = LocalMarker {
                producer_id: m.producer_id.0,
                producer_epoch: m.producer_epoch,
                commit: m.transaction_result,
                coordinator_epoch: m.coordinator_epoch,
            };
            let mut topics = Vec::with_capacity(m.topics.len());
            for t in &m.topics {
                let mut partitions = Vec::with_capacity(t.partition_indexes.len());
                for &p in &t.partition_indexes {
                    let code = marker
                        .write(&*broker, t.name.as_str(), p)
                        .await
                        .err()
                        .unwrap_or(0);
                    partitions.push(
                        WritableTxnMarkerPartitionResult::default()
                            .with_partition_index(p)
                            .with_error_code(code),
                    );
                }
                topics.push(
                    WritableTxnMarkerTopicResult::default()
                        .with_name(t.name.clone())
                        .with_partitions(partitions),
                );
            }
            results.push(
                WritableTxnMarkerResult::default()
                    .with_producer_id(m.producer_id)
                    .with_topics(topics),
            );
        }
        WriteTxnMarkersResponse::default().with_markers(results)
    }))
}
