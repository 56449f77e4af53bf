//! The end of a transaction: a marker (commit or abort control batch, [`crate::wire::control`])
//! in every partition of the transaction, then the Complete state. Runs after EndTxn, after a
//! fence or timeout abort, and for every Prepare state a newly loaded coordinator finds. A
//! partition this broker leads is written directly; another partition's leader gets
//! WriteTxnMarkers (v1) from the coordinator. Any failure leaves the transaction in its Prepare
//! state, and the next tick writes its markers again (a marker for a transaction the partition
//! already ended ends nothing).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;

use super::{append_and_wait, now_ms, Coordinator, Host, TxnRecord, TxnStatus};
use crate::group::OFFSETS_TOPIC;
use crate::partition::Role;
use crate::wire::control::{build_marker, Marker};

impl Coordinator {
    /// Finishes `transactional_id`'s Prepare state in the background, unless that is under way.
    pub fn spawn_finish<H: Host>(
        self: &Arc<Self>,
        host: &Arc<H>,
        index: i32,
        leader_epoch: i32,
        transactional_id: String,
    ) {
        let coordinator = Arc::clone(self);
        let host = Arc::clone(host);
        tokio::spawn(async move {
            coordinator
                .finish(&*host, index, leader_epoch, &transactional_id)
                .await
        });
    }

    /// Marks `transactional_id` pending if it is in a Prepare state and not pending: the caller
    /// then owns its completion.
    fn claim(&self, index: i32, leader_epoch: i32, transactional_id: &str) -> Option<TxnRecord> {
        self.with_shard(index, leader_epoch, |txns| {
            let m = txns.get_mut(transactional_id)?;
            let preparing = matches!(
                m.record.status,
                TxnStatus::PrepareCommit | TxnStatus::PrepareAbort
            );
            if m.pending || !preparing {
                return None;
            }
            m.pending = true;
            Some(m.record.clone())
        })
        .ok()
        .flatten()
    }

    fn release(
        &self,
        index: i32,
        leader_epoch: i32,
        transactional_id: &str,
        done: Option<TxnRecord>,
    ) {
        let _ = self.with_shard(index, leader_epoch, |txns| {
            if let Some(m) = txns.get_mut(transactional_id) {
                if let Some(record) = done {
                    m.record = record;
                }
                m.pending = false;
            }
        });
    }

    async fn finish(
        &self,
        host: &impl Host,
        index: i32,
        leader_epoch: i32,
        transactional_id: &str,
    ) {
        let Some(record) = self.claim(index, leader_epoch, transactional_id) else {
            return;
        };
        let commit = record.status == TxnStatus::PrepareCommit;
        for (topic, partition) in &record.partitions {
            if let Err(code) =
                write_marker(host, topic, *partition, &record, commit, leader_epoch).await
            {
                tracing::info!(transactional_id, topic = %topic, partition, error_code = code, "cannot write a transaction marker yet; retrying at the next tick");
                self.release(index, leader_epoch, transactional_id, None);
                return;
            }
        }
        let mut complete = record.clone();
        complete.status = if commit {
            TxnStatus::CompleteCommit
        } else {
            TxnStatus::CompleteAbort
        };
        complete.partitions.clear();
        complete.last_update_ms = now_ms();
        match self
            .persist(host, index, leader_epoch, transactional_id, &complete)
            .await
        {
            Ok(()) => {
                tracing::debug!(transactional_id, commit, "transaction complete");
                self.release(index, leader_epoch, transactional_id, Some(complete));
            }
            Err(code) => {
                tracing::info!(
                    transactional_id,
                    error_code = code,
                    "cannot write the Complete state yet"
                );
                self.release(index, leader_epoch, transactional_id, None);
            }
        }
    }
}

/// Writes the marker of `record`'s transaction to one partition (here if this broker leads it,
/// else through its leader) and waits until it is below the HW.
async fn write_marker(
    host: &impl Host,
    topic: &str,
    index: i32,
    record: &TxnRecord,
    commit: bool,
    coordinator_epoch: i32,
) -> Result<(), i16> {
    let local = host
        .data_partition(topic, index)
        .is_some_and(|p| p.role() == Role::Leader);
    let marker = LocalMarker {
        producer_id: record.producer_id,
        producer_epoch: record.producer_epoch,
        commit,
        coordinator_epoch,
    };
    if local {
        return marker.write(host, topic, index).await;
    }
    let leader = host
        .leader_of(topic, index)
        .ok_or(ResponseError::NotLeaderOrFollower.code())?;
    let request =
        WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
            .with_producer_id(ProducerId(record.producer_id))
            .with_producer_epoch(record.producer_epoch)
            .with_transaction_result(commit)
            .with_coordinator_epoch(coordinator_epoch)
            .with_topics(vec![WritableTxnMarkerTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_indexes(vec![index])])]);
    let response = host.send_markers(leader, request).await.map_err(|e| {
        tracing::info!(leader, topic, index, error = %e, "WriteTxnMarkers failed");
        ResponseError::NetworkException.code()
    })?;
    let code = response
        .markers
        .first()
        .and_then(|m| m.topics.first())
        .and_then(|t| t.partitions.first())
        .map_or(ResponseError::UnknownServerError.code(), |p| p.error_code);
    if code == 0 {
        Ok(())
    } else {
        Err(code)
    }
}

/// A marker to write to a partition this broker leads (the coordinator's own, or one a
/// WriteTxnMarkers asks for).
#[derive(Debug, Clone, Copy)]
pub struct LocalMarker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
}

impl LocalMarker {
    /// Appends it as leader and waits until it is below the HW; tells the group coordinator when
    /// the partition is an offsets partition.
    pub async fn write(&self, host: &impl Host, topic: &str, index: i32) -> Result<(), i16> {
        let Some(partition) = host.data_partition(topic, index) else {
            return Err(ResponseError::UnknownTopicOrPartition.code());
        };
        if partition.role() != Role::Leader {
            return Err(ResponseError::NotLeaderOrFollower.code());
        }
        let bytes = build_marker(
            Marker::of_commit(self.commit),
            self.producer_id,
            self.producer_epoch,
            self.coordinator_epoch,
            now_ms(),
        );
        append_and_wait(host, &partition, &bytes, -1).await?;
        if topic == OFFSETS_TOPIC {
            host.offsets_marker_written(index, self.producer_id, self.commit);
        }
        Ok(())
    }
}
