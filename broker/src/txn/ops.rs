//! The coordinator's state changes, one per client request (InitProducerId, AddPartitionsToTxn
//! and AddOffsetsToTxn, EndTxn) and the abort of a timed-out transaction, with Kafka's error codes
//! (`TransactionCoordinator` / `TransactionMetadata` since KIP-360 and KIP-588).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::{now_ms, Coordinator, Host, TxnMetadata, TxnRecord, TxnStatus};
use crate::limits;

/// What a request makes of a transactional id's state: nothing to write (answer with the
/// current state), or a new state to write.
type Decision = Result<Option<TxnRecord>, i16>;

fn code(error: ResponseError) -> i16 {
    error.code()
}

/// The producer's epoch after a bump, or `None` when the epoch is exhausted (a new producer id
/// then, as Kafka does).
fn bumped(epoch: i16) -> Option<i16> {
    (epoch < i16::MAX - 1).then_some(epoch + 1)
}

impl Coordinator {
    /// Applies `decide` to `transactional_id`'s state (`None`: unknown); a new state is written
    /// and takes effect once below the HW (other requests get CONCURRENT_TRANSACTIONS meanwhile;
    /// a failed write leaves the previous state). Returns the state in effect.
    pub(crate) async fn transition(
        &self,
        host: &impl Host,
        (index, leader_epoch): (i32, i32),
        transactional_id: &str,
        decide: impl FnOnce(Option<&TxnMetadata>) -> Decision,
    ) -> Result<TxnRecord, i16> {
        let (record, previous) = self
            .with_shard(index, leader_epoch, |txns| {
                let meta = txns.get(transactional_id);
                if meta.is_some_and(|m| m.pending) {
                    return Err(code(ResponseError::ConcurrentTransactions));
                }
                let Some(record) = decide(meta)? else {
                    let current = meta.map(|m| m.record.clone());
                    return current
                        .map(|r| (r, None))
                        .ok_or(code(ResponseError::UnknownServerError));
                };
                let previous = meta.cloned();
                if previous.is_none() && txns.len() >= limits::TRANSACTIONAL_IDS_PER_PARTITION_MAX {
                    return Err(code(ResponseError::CoordinatorNotAvailable));
                }
                let last_producer_epoch = match &previous {
                    Some(m) if m.record.producer_epoch != record.producer_epoch => {
                        m.record.producer_epoch
                    }
                    Some(m) => m.last_producer_epoch,
                    None => record.producer_epoch,
                };
                txns.insert(
                    transactional_id.to_string(),
                    TxnMetadata {
                        record: record.clone(),
                        last_producer_epoch,
                        pending: true,
                    },
                );
                Ok((record, Some(previous)))
            })
            .and_then(|r| r)?;
        let Some(previous) = previous else {
            return Ok(record);
        };
        let written = self
            .persist(host, index, leader_epoch, transactional_id, &record)
            .await;
        self.with_shard(index, leader_epoch, |txns| match (&written, previous) {
            (Ok(()), _) => {
                if let Some(m) = txns.get_mut(transactional_id) {
                    m.pending = false;
                }
            }
            (Err(_), Some(previous)) => {
                txns.insert(transactional_id.to_string(), previous);
            }
            (Err(_), None) => {
                txns.remove(transactional_id);
            }
        })?;
        written.map(|()| record)
    }

    /// InitProducerId with a transactional id: its producer id and next epoch (a new id with
    /// epoch 0 the first time). An open transaction is aborted first with the epoch bumped
    /// (fencing its producer): CONCURRENT_TRANSACTIONS until that is done, and the client asks
    /// again. `given`: the producer id and epoch a KIP-360 client already has (-1 if none).
    pub async fn init_producer_id<H: Host>(
        self: &Arc<Self>,
        host: &Arc<H>,
        transactional_id: &str,
        timeout_ms: i32,
        given: (i64, i16),
    ) -> Result<(i64, i16), i16> {
        if timeout_ms <= 0 || timeout_ms > host.txn_config().max_timeout_ms {
            return Err(code(ResponseError::InvalidTransactionTimeout));
        }
        let route = self.route(&**host, transactional_id)?;
        let exhausted = self.with_shard(route.0, route.1, |txns| {
            txns.get(transactional_id)
                .is_none_or(|m| bumped(m.record.producer_epoch).is_none())
        })?;
        let fresh_id = if exhausted {
            Some(host.next_producer_id().map_err(|e| {
                tracing::error!(error = %e, "cannot allocate a producer id");
                code(ResponseError::KafkaStorageError)
            })?)
        } else {
            None
        };
        let now = now_ms();
        let record = self
            .transition(&**host, route, transactional_id, |meta| {
                decide_init(meta, fresh_id, timeout_ms, given, now)
            })
            .await?;
        if record.status == TxnStatus::PrepareAbort {
            tracing::info!(
                transactional_id,
                producer_id = record.producer_id,
                epoch = record.producer_epoch,
                "fenced the previous producer; aborting its transaction"
            );
            self.spawn_finish(host, route.0, route.1, transactional_id.to_string());
            return Err(code(ResponseError::ConcurrentTransactions));
        }
        Ok((record.producer_id, record.producer_epoch))
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's offsets partition): the
    /// transaction is Ongoing with these partitions.
    pub async fn add_partitions(
        &self,
        host: &impl Host,
        transactional_id: &str,
        (producer_id, producer_epoch): (i64, i16),
        partitions: Vec<(String, i32)>,
    ) -> Result<(), i16> {
        let route = self.route(host, transactional_id)?;
        let now = now_ms();
        self.transition(host, route, transactional_id, |meta| {
            let m = check_producer(meta, producer_id, producer_epoch)?;
            let mut record = m.record.clone();
            match record.status {
                TxnStatus::Ongoing if partitions.iter().all(|p| record.partitions.contains(p)) => {
                    return Ok(None)
                }
                TxnStatus::Ongoing => {}
                TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort => {
                    record.partitions.clear();
                    record.start_ms = now;
                    record.status = TxnStatus::Ongoing;
                }
                TxnStatus::PrepareCommit | TxnStatus::PrepareAbort => {
                    return Err(code(ResponseError::ConcurrentTransactions))
                }
                TxnStatus::Dead | TxnStatus::PrepareEpochFence => {
                    return Err(code(ResponseError::InvalidTxnState))
                }
            }
            record.partitions.extend(partitions);
            if record.partitions.len() > limits::TXN_PARTITIONS_MAX {
                return Err(code(ResponseError::InvalidRequest));
            }
            record.last_update_ms = now;
            Ok(Some(record))
        })
        .await
        .map(|_| ())
    }

    /// EndTxn: PrepareCommit or PrepareAbort, answered once written; the markers and the
    /// Complete state follow in the background.
    pub async fn end_txn<H: Host>(
        self: &Arc<Self>,
        host: &Arc<H>,
        transactional_id: &str,
        (producer_id, producer_epoch): (i64, i16),
        commit: bool,
    ) -> Result<(), i16> {
        let route = self.route(&**host, transactional_id)?;
        let now = now_ms();
        let record = self
            .transition(&**host, route, transactional_id, |meta| {
                let m = check_producer(meta, producer_id, producer_epoch)?;
                let mut record = m.record.clone();
                record.status = match (record.status, commit) {
                    (TxnStatus::Ongoing, true) => TxnStatus::PrepareCommit,
                    (TxnStatus::Ongoing, false) => TxnStatus::PrepareAbort,
                    (TxnStatus::PrepareCommit, true) | (TxnStatus::PrepareAbort, false) => {
                        return Err(code(ResponseError::ConcurrentTransactions))
                    }
                    (TxnStatus::CompleteCommit, true) | (TxnStatus::CompleteAbort, false) => {
                        return Ok(None)
                    }
                    _ => return Err(code(ResponseError::InvalidTxnState)),
                };
                record.last_update_ms = now;
                Ok(Some(record))
            })
            .await?;
        if matches!(
            record.status,
            TxnStatus::PrepareCommit | TxnStatus::PrepareAbort
        ) {
            self.spawn_finish(host, route.0, route.1, transactional_id.to_string());
        }
        Ok(())
    }

    /// Aborts a transaction open longer than its timeout, bumping the producer's epoch so that
    /// the producer is fenced (Kafka's `abortTimedOutTransactions`).
    pub async fn abort_expired<H: Host>(
        self: &Arc<Self>,
        host: &Arc<H>,
        index: i32,
        leader_epoch: i32,
        transactional_id: &str,
    ) {
        let now = now_ms();
        let result = self
            .transition(&**host, (index, leader_epoch), transactional_id, |meta| {
                let Some(m) = meta else { return Ok(None) };
                let mut record = m.record.clone();
                let expired = now.saturating_sub(record.start_ms) > i64::from(record.timeout_ms);
                if record.status != TxnStatus::Ongoing || !expired {
                    return Ok(None);
                }
                record.producer_epoch =
                    bumped(record.producer_epoch).unwrap_or(record.producer_epoch);
                record.status = TxnStatus::PrepareAbort;
                record.last_update_ms = now;
                Ok(Some(record))
            })
            .await;
        match result {
            Ok(record) if record.status == TxnStatus::PrepareAbort => {
                tracing::info!(
                    transactional_id,
                    producer_id = record.producer_id,
                    epoch = record.producer_epoch,
                    "aborting a transaction past its timeout"
                );
                self.spawn_finish(host, index, leader_epoch, transactional_id.to_string());
            }
            Ok(_) => {}
            Err(code) => tracing::info!(
                transactional_id,
                error_code = code,
                "cannot abort a timed-out transaction yet"
            ),
        }
    }
}

/// The state of a producer's transactional id if `producer_id` in `producer_epoch` owns it.
fn check_producer(
    meta: Option<&TxnMetadata>,
    producer_id: i64,
    producer_epoch: i16,
) -> Result<&TxnMetadata, i16> {
    let m = meta.ok_or(code(ResponseError::InvalidProducerIdMapping))?;
    if m.record.producer_id != producer_id {
        return Err(code(ResponseError::InvalidProducerIdMapping));
    }
    if m.record.producer_epoch != producer_epoch {
        return Err(code(ResponseError::ProducerFenced));
    }
    Ok(m)
}

/// InitProducerId's decision (see [`Coordinator::init_producer_id`]).
fn decide_init(
    meta: Option<&TxnMetadata>,
    fresh_id: Option<i64>,
    timeout_ms: i32,
    (given_id, given_epoch): (i64, i16),
    now: i64,
) -> Decision {
    let Some(m) = meta else {
        let producer_id = fresh_id.ok_or(code(ResponseError::UnknownServerError))?;
        return Ok(Some(TxnRecord {
            producer_id,
            producer_epoch: 0,
            timeout_ms,
            status: TxnStatus::Empty,
            partitions: Default::default(),
            last_update_ms: now,
            start_ms: -1,
        }));
    };
    let current = &m.record;
    let settled = matches!(
        current.status,
        TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort
    );
    if given_id >= 0 {
        let known_epoch =
            given_epoch == current.producer_epoch || given_epoch == m.last_producer_epoch;
        if given_id != current.producer_id || !known_epoch {
            return Err(code(ResponseError::ProducerFenced));
        }
        // A retry of the InitProducerId that made the current epoch: answer it again.
        if settled && given_epoch == m.last_producer_epoch && given_epoch != current.producer_epoch
        {
            return Ok(None);
        }
    }
    let mut record = current.clone();
    record.last_update_ms = now;
    match current.status {
        TxnStatus::Ongoing => {
            // Fence the producer of the open transaction and abort it.
            record.producer_epoch =
                bumped(current.producer_epoch).unwrap_or(current.producer_epoch);
            record.status = TxnStatus::PrepareAbort;
            Ok(Some(record))
        }
        TxnStatus::PrepareCommit | TxnStatus::PrepareAbort | TxnStatus::PrepareEpochFence => {
            Err(code(ResponseError::ConcurrentTransactions))
        }
        TxnStatus::Empty
        | TxnStatus::CompleteCommit
        | TxnStatus::CompleteAbort
        | TxnStatus::Dead => {
            match (bumped(current.producer_epoch), fresh_id) {
                (Some(epoch), _) => record.producer_epoch = epoch,
                (None, Some(id)) => {
                    record.producer_id = id;
                    record.producer_epoch = 0;
                }
                (None, None) => return Err(code(ResponseError::ConcurrentTransactions)),
            }
            record.status = TxnStatus::Empty;
            record.partitions.clear();
            record.timeout_ms = timeout_ms;
            record.start_ms = -1;
            Ok(Some(record))
        }
    }
}
