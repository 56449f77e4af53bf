//! The transaction coordinator (KIP-98, KIP-360, KIP-588, partition verification of KIP-890).
//!
//! A transactional id belongs to partition `abs(hash(id)) % N` of `__transaction_state`, and the
//! broker leading that partition coordinates it. As the group coordinator does with
//! `__consumer_offsets` (both through [`crate::internal_topic`]), it loads the partition's log
//! when it becomes leader (COORDINATOR_LOAD_IN_PROGRESS meanwhile) and forgets it when it stops
//! leading (NOT_COORDINATOR). Each state change is written to the log ([`records`], Kafka's
//! format) and takes effect once the record is below the HW.
//!
//! A transaction: InitProducerId (a producer id, or the next epoch of it: that fences the previous
//! producer and aborts its open transaction) → AddPartitionsToTxn / AddOffsetsToTxn (state
//! Ongoing) → EndTxn (PrepareCommit or PrepareAbort, answered once written) → markers written to
//! every partition of the transaction ([`markers`]) → CompleteCommit or CompleteAbort. A new
//! coordinator finds Prepare* states when it loads and finishes them; a transaction open longer
//! than its timeout is aborted with the producer's epoch bumped (fencing it).
//!
//! Partition verification (KIP-890 part 1, `transaction.partition.verification.enable`): a
//! transactional Produce is accepted only if the coordinator has that partition in the producer's
//! ongoing transaction in that epoch ([`Coordinator::verify`]); this broker verifies when it is
//! the coordinator itself (a coordinator on another broker is not asked yet).

pub mod markers;
pub mod ops;
pub mod records;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;

use crate::config::TxnConfig;
use crate::internal_topic::Shards;
pub use crate::internal_topic::{now_ms, Route};
use crate::limits;
use crate::partition::{HighWatermarkWait, Partition};
use crate::wire::batch;
pub use records::{TxnRecord, TxnStatus, TRANSACTION_STATE_TOPIC};

/// What the coordinator needs of the broker that holds it (implemented by `state::Broker`).
pub trait Host: Send + Sync + 'static {
    /// Partition count of `__transaction_state`, `None` if it does not exist yet.
    fn txn_partition_count(&self) -> Option<i32>;
    /// The local replica of `__transaction_state` partition `index`.
    fn txn_partition(&self, index: i32) -> Option<Arc<Partition>>;
    /// Every local replica of `__transaction_state`.
    fn txn_partitions(&self) -> Vec<(i32, Arc<Partition>)>;
    /// A local replica of a partition a transaction writes to.
    fn data_partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>>;
    /// The leader of a partition as the cluster's image says (`None` on a single node or when
    /// it has none).
    fn leader_of(&self, topic: &str, index: i32) -> Option<i32>;
    /// Sends WriteTxnMarkers to broker `node_id`.
    fn send_markers(
        &self,
        node_id: i32,
        request: kafka_protocol::messages::WriteTxnMarkersRequest,
    ) -> crate::cluster::MarkersFuture;
    /// Whether the cluster has this partition (AddPartitionsToTxn refuses unknown ones).
    fn partition_exists(&self, topic: &str, index: i32) -> bool;
    /// A producer id never handed out before.
    fn next_producer_id(&self) -> Result<i64, String>;
    fn min_insync_replicas(&self) -> i32;
    fn txn_config(&self) -> &TxnConfig;
    /// A marker was written to `__consumer_offsets` partition `index` for `producer_id`: the
    /// group coordinator makes its pending transactional offsets visible or drops them.
    fn offsets_marker_written(&self, index: i32, producer_id: i64, commit: bool);
}

/// One transactional id's state in memory.
#[derive(Debug, Clone)]
pub struct TxnMetadata {
    pub record: TxnRecord,
    /// The epoch before the last bump (a retried InitProducerId or EndTxn of it is answered).
    pub last_producer_epoch: i16,
    /// A state change or the markers are on their way: other requests get
    /// CONCURRENT_TRANSACTIONS.
    pub pending: bool,
}

/// The transactional ids of one `__transaction_state` partition this broker leads.
type Txns = HashMap<String, TxnMetadata>;

/// The coordinator of the transactional ids whose partitions this broker leads.
#[derive(Debug)]
pub struct Coordinator {
    shards: Shards<Txns>,
}

impl Default for Coordinator {
    fn default() -> Self {
        Coordinator {
            shards: Shards::new(TRANSACTION_STATE_TOPIC),
        }
    }
}

/// Validates a transactional id (non-empty, bounded).
pub fn transactional_id_error(id: &str) -> Option<i16> {
    if id.is_empty() || id.len() > limits::GROUP_STRING_BYTES_MAX {
        Some(ResponseError::InvalidRequest.code())
    } else {
        None
    }
}

impl Coordinator {
    /// Whether this broker may try to create `__transaction_state` now (rate-limited).
    pub fn may_create_topic(&self) -> bool {
        self.shards.may_create_topic()
    }

    /// Where `transactional_id` is served from this broker's point of view.
    pub fn route(&self, host: &impl Host, transactional_id: &str) -> Route {
        if let Some(code) = transactional_id_error(transactional_id) {
            return Err(code);
        }
        self.shards
            .route(transactional_id, host.txn_partition_count(), |index| {
                host.txn_partition(index)
            })
    }

    /// Runs `f` on the loaded shard `index` in `leader_epoch` (NOT_COORDINATOR otherwise).
    fn with_shard<T>(
        &self,
        index: i32,
        leader_epoch: i32,
        f: impl FnOnce(&mut Txns) -> T,
    ) -> Result<T, i16> {
        self.shards.with_loaded(index, leader_epoch, f)
    }

    /// The state of `transactional_id` (tests, DescribeTransactions-like reads).
    pub fn describe(&self, host: &impl Host, transactional_id: &str) -> Option<TxnMetadata> {
        let (index, epoch) = self.route(host, transactional_id).ok()?;
        self.with_shard(index, epoch, |txns| txns.get(transactional_id).cloned())
            .ok()
            .flatten()
    }

    /// Partition verification (KIP-890): whether `producer_id` in `producer_epoch` may write a
    /// transactional batch to `(topic, partition)`. `None`: this broker does not coordinate
    /// `transactional_id` and cannot tell.
    pub fn verify(
        &self,
        host: &impl Host,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Option<Result<(), i16>> {
        let (index, epoch) = self.route(host, transactional_id).ok()?;
        let verdict = self.with_shard(index, epoch, |txns| {
            let Some(meta) = txns.get(transactional_id) else {
                return Err(ResponseError::InvalidTxnState.code());
            };
            let r = &meta.record;
            if r.producer_id != producer_id {
                return Err(ResponseError::InvalidProducerIdMapping.code());
            }
            if r.producer_epoch != producer_epoch {
                return Err(ResponseError::InvalidProducerEpoch.code());
            }
            if r.status != TxnStatus::Ongoing
                || !r.partitions.contains(&(topic.to_string(), partition))
            {
                return Err(ResponseError::InvalidTxnState.code());
            }
            Ok(())
        });
        Some(verdict.unwrap_or_else(Err))
    }

    /// Writes `transactional_id`'s new state to its partition as leader in `leader_epoch` and
    /// waits until it is below the HW.
    async fn persist(
        &self,
        host: &impl Host,
        index: i32,
        leader_epoch: i32,
        transactional_id: &str,
        record: &TxnRecord,
    ) -> Result<(), i16> {
        let partition = host
            .txn_partition(index)
            .ok_or(ResponseError::NotCoordinator.code())?;
        let entries = [(records::key(transactional_id), Some(records::value(record)))];
        let bytes = crate::group::records::build_batch(&entries, now_ms()).map_err(|e| {
            tracing::error!(error = %e, "cannot build a transaction state batch");
            ResponseError::UnknownServerError.code()
        })?;
        append_and_wait(host, &partition, &bytes, leader_epoch).await
    }

    /// The periodic task: follow `__transaction_state` leadership (load / forget), abort the
    /// transactions past their timeout, finish the ones left in a Prepare state.
    pub fn tick<H: Host>(self: &Arc<Self>, host: &Arc<H>) {
        let mut to_finish = Vec::new();
        let mut to_expire = Vec::new();
        let now = now_ms();
        let to_load = self.shards.follow(host.txn_partitions(), |index, _| {
            tracing::info!(
                partition = index,
                "no longer transaction coordinator for this partition"
            );
        });
        for (&index, shard) in self.shards.lock().iter().filter(|(_, s)| s.loaded) {
            for (id, meta) in shard.state.iter().filter(|(_, m)| !m.pending) {
                let r = &meta.record;
                match r.status {
                    TxnStatus::PrepareCommit | TxnStatus::PrepareAbort => {
                        to_finish.push((index, shard.leader_epoch, id.clone()))
                    }
                    TxnStatus::Ongoing
                        if now.saturating_sub(r.start_ms) > i64::from(r.timeout_ms) =>
                    {
                        to_expire.push((index, shard.leader_epoch, id.clone()))
                    }
                    _ => {}
                }
            }
        }
        for (index, partition, epoch) in to_load {
            let coordinator = Arc::clone(self);
            tokio::task::spawn_blocking(move || coordinator.load(index, &partition, epoch));
        }
        for (index, epoch, id) in to_finish {
            self.spawn_finish(host, index, epoch, id);
        }
        for (index, epoch, id) in to_expire {
            let coordinator = Arc::clone(self);
            let host = Arc::clone(host);
            tokio::spawn(async move { coordinator.abort_expired(&host, index, epoch, &id).await });
        }
    }

    /// Reads a `__transaction_state` partition from its log start to its LEO into a new shard
    /// (the last record of each transactional id wins).
    fn load(&self, index: i32, partition: &Partition, leader_epoch: i32) {
        let mut loaded = Txns::new();
        let complete = self.shards.read_log(index, partition, |_, bytes| {
            load_batch(index, bytes, &mut loaded)
        });
        if !complete {
            return;
        }
        self.shards.install(index, leader_epoch, loaded, |txns| {
            tracing::info!(
                partition = index,
                leader_epoch,
                transactional_ids = txns.len(),
                "transaction state partition loaded"
            );
        });
    }
}

/// Applies the records of one `__transaction_state` batch to `loaded`.
fn load_batch(index: i32, bytes: &[u8], loaded: &mut Txns) {
    let mut owned = bytes::Bytes::copy_from_slice(bytes);
    let sets = match kafka_protocol::records::RecordBatchDecoder::decode_all(&mut owned) {
        Ok(sets) => sets,
        Err(e) => {
            tracing::warn!(partition = index, error = %e, "skipping an unreadable transaction state batch");
            return;
        }
    };
    for record in sets.into_iter().flat_map(|s| s.records) {
        match records::parse(record.key.as_deref(), record.value.as_deref()) {
            Ok(Some((id, Some(r)))) => {
                if loaded.len() < limits::TRANSACTIONAL_IDS_PER_PARTITION_MAX
                    || loaded.contains_key(&id)
                {
                    let last_producer_epoch = r.producer_epoch;
                    loaded.insert(
                        id,
                        TxnMetadata {
                            record: r,
                            last_producer_epoch,
                            pending: false,
                        },
                    );
                }
            }
            Ok(Some((id, None))) => {
                loaded.remove(&id);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(partition = index, offset = record.offset, error = %e, "skipping an unreadable transaction state record");
            }
        }
    }
}

/// Appends `bytes` to `partition` as leader in `leader_epoch` (with at least
/// `min.insync.replicas` in the ISR) and waits until they are below the HW.
pub async fn append_and_wait(
    host: &impl Host,
    partition: &Partition,
    bytes: &[u8],
    leader_epoch: i32,
) -> Result<(), i16> {
    let spans = batch::validate_records(bytes, usize::MAX).map_err(|e| {
        tracing::error!(error = %e, "built an invalid batch");
        ResponseError::UnknownServerError.code()
    })?;
    let min_insync = usize::try_from(host.min_insync_replicas()).unwrap_or(1);
    if partition.isr().len() < min_insync {
        return Err(ResponseError::NotEnoughReplicas.code());
    }
    let appended = partition.append_as_leader(bytes, &spans).map_err(|e| {
        tracing::info!(topic = %partition.topic, partition = partition.index, error = %e, "transaction coordinator append failed");
        ResponseError::NotCoordinator.code()
    })?;
    if leader_epoch >= 0 && appended.leader_epoch != leader_epoch {
        return Err(ResponseError::NotCoordinator.code());
    }
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(limits::TXN_APPEND_TIMEOUT_MS);
    match partition
        .wait_for_high_watermark(
            appended.info.last_offset + 1,
            appended.leader_epoch,
            deadline,
        )
        .await
    {
        HighWatermarkWait::Reached if partition.isr().len() < min_insync => {
            Err(ResponseError::NotEnoughReplicas.code())
        }
        HighWatermarkWait::Reached => Ok(()),
        HighWatermarkWait::TimedOut => Err(ResponseError::RequestTimedOut.code()),
        HighWatermarkWait::NotLeader => Err(ResponseError::NotCoordinator.code()),
    }
}

/// The partitions of a record as a set (for AddPartitionsToTxn).
pub fn partition_set(
    partitions: impl IntoIterator<Item = (String, i32)>,
) -> BTreeSet<(String, i32)> {
    partitions.into_iter().collect()
}
