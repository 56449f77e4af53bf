//! The end of a transaction: a marker (commit or abort control batch, [`crate::wire::control`])
//! in every partition of the transaction, then the Complete state. Runs after EndTxn, after a
//! fence or timeout abort, and for every Prepare state a newly loaded coordinator finds. A
//! partition this broker does not lead is not written yet (WriteTxnMarkers to its leader is not
//! implemented): the transaction stays in its Prepare state and the next tick tries again.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::{append_and_wait, now_ms, Coordinator, Host, TxnRecord, TxnStatus};
use crate::group::OFFSETS_TOPIC;
use crate::partition::Role;
use crate::wire::control::{build_marker, Marker};

/// Finishes `transactional_id`'s Prepare state in the background, unless that is under way.
pub fn spawn_finish<H: Host>(
    coordinator: &Arc<Coordinator>,
    host: &Arc<H>,
    index: i32,
    leader_epoch: i32,
    transactional_id: String,
) {
    let coordinator = Arc::clone(coordinator);
    let host = Arc::clone(host);
    tokio::spawn(async move {
        coordinator
            .finish(&*host, index, leader_epoch, &transactional_id)
            .await
    });
}

impl Coordinator {
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

/// Writes the marker of `record`'s transaction to one partition this broker leads and waits
/// until it is below the HW.
async fn write_marker(
    host: &impl Host,
    topic: &str,
    index: i32,
    record: &TxnRecord,
    commit: bool,
    coordinator_epoch: i32,
) -> Result<(), i16> {
    let Some(partition) = host.data_partition(topic, index) else {
        return Err(ResponseError::NotLeaderOrFollower.code());
    };
    if partition.role() != Role::Leader {
        return Err(ResponseError::NotLeaderOrFollower.code());
    }
    let bytes = build_marker(
        Marker::of_commit(commit),
        record.producer_id,
        record.producer_epoch,
        coordinator_epoch,
        now_ms(),
    );
    append_and_wait(host, &partition, &bytes, -1).await?;
    if topic == OFFSETS_TOPIC {
        host.offsets_marker_written(index, record.producer_id, commit);
    }
    Ok(())
}
