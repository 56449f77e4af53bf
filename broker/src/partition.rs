//! A partition replica on this broker: its log, leader epoch, HW and the ISR.
//!
//! Single node for now: this broker leads every partition, the ISR is `{leader}` and the HW moves
//! to the LEO right after each append. The HW lives in a `watch` channel so that `acks=-1` and
//! long-polling fetches wait on it; replication will advance it from follower fetches instead.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::log::{AppendInfo, Log, LogError};
use crate::wire::batch::BatchSpan;

/// Broker-wide signals partitions raise.
#[derive(Debug)]
pub struct Signals {
    /// Bumped whenever any HW advances: long-polling fetches wait on it.
    pub data_version: watch::Sender<u64>,
    /// Notified when a recovery point advanced: the checkpoint writer rewrites the checkpoint.
    pub checkpoint_needed: Notify,
}

impl Signals {
    pub fn new() -> Arc<Signals> {
        Arc::new(Signals {
            data_version: watch::Sender::new(0),
            checkpoint_needed: Notify::new(),
        })
    }
}

/// Offsets of a partition at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub log_start_offset: i64,
    pub high_watermark: i64,
    pub log_end_offset: i64,
}

/// What a fetch read returned.
#[derive(Debug, Clone)]
pub struct PartitionRead {
    pub offsets: PartitionOffsets,
    pub records: Bytes,
}

/// One partition replica.
#[derive(Debug)]
pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    log: Mutex<Log>,
    leader_epoch: i32,
    leader_id: i32,
    replicas: Vec<i32>,
    isr: Mutex<Vec<i32>>,
    high_watermark: watch::Sender<i64>,
    signals: Arc<Signals>,
}

impl Partition {
    pub fn new(
        topic: String,
        topic_id: Uuid,
        index: i32,
        log: Log,
        node_id: i32,
        signals: Arc<Signals>,
    ) -> Partition {
        // Single replica: everything in the log is committed.
        let high_watermark = log.log_end_offset();
        Partition {
            topic,
            topic_id,
            index,
            log: Mutex::new(log),
            leader_epoch: 0,
            leader_id: node_id,
            replicas: vec![node_id],
            isr: Mutex::new(vec![node_id]),
            high_watermark: watch::Sender::new(high_watermark),
            signals,
        }
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        // A poisoned lock means a panic while holding it; the log itself is still consistent
        // on disk (each append is one write), so keep serving.
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    pub fn leader_id(&self) -> i32 {
        self.leader_id
    }

    pub fn replicas(&self) -> Vec<i32> {
        self.replicas.clone()
    }

    pub fn isr(&self) -> Vec<i32> {
        self.isr
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    pub fn offsets(&self) -> PartitionOffsets {
        let log = self.log();
        PartitionOffsets {
            log_start_offset: log.log_start_offset(),
            high_watermark: self.high_watermark(),
            log_end_offset: log.log_end_offset(),
        }
    }

    pub fn recovery_point(&self) -> i64 {
        self.log().recovery_point()
    }

    /// Appends validated batches as leader. Returns the offsets and the log start offset.
    pub fn append_as_leader(
        &self,
        records: &[u8],
        spans: &[BatchSpan],
    ) -> Result<(AppendInfo, i64), LogError> {
        let (info, log_start_offset, log_end_offset) = {
            let mut log = self.log();
            let info = log.append(records, spans, self.leader_epoch)?;
            (info, log.log_start_offset(), log.log_end_offset())
        };
        if info.recovery_point_advanced {
            self.signals.checkpoint_needed.notify_one();
        }
        self.maybe_advance_high_watermark(log_end_offset);
        Ok((info, log_start_offset))
    }

    /// Moves the HW forward (never back). With the ISR = {leader}, the candidate is the LEO;
    /// replication will pass the minimum LEO of the ISR.
    fn maybe_advance_high_watermark(&self, candidate: i64) {
        let advanced = self.high_watermark.send_if_modified(|high_watermark| {
            if candidate > *high_watermark {
                *high_watermark = candidate;
                true
            } else {
                false
            }
        });
        if advanced {
            self.signals
                .data_version
                .send_modify(|version| *version = version.wrapping_add(1));
        }
    }

    /// Waits until the HW reaches `offset`; false on timeout.
    pub async fn wait_for_high_watermark(
        &self,
        offset: i64,
        deadline: tokio::time::Instant,
    ) -> bool {
        let mut receiver = self.high_watermark.subscribe();
        let reached =
            tokio::time::timeout_at(deadline, receiver.wait_for(|hw| *hw >= offset)).await;
        matches!(reached, Ok(Ok(_)))
    }

    /// Reads whole batches from `fetch_offset` up to the HW, at most `max_bytes` unless the first
    /// batch alone is larger and `at_least_one_batch` (KIP-74).
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        at_least_one_batch: bool,
    ) -> Result<PartitionRead, LogError> {
        let (plan, offsets) = {
            let log = self.log();
            let high_watermark = self.high_watermark();
            let plan = log.read_plan(fetch_offset, max_bytes, high_watermark)?;
            let offsets = PartitionOffsets {
                log_start_offset: log.log_start_offset(),
                high_watermark,
                log_end_offset: log.log_end_offset(),
            };
            (plan, offsets)
        };
        if !at_least_one_batch && plan.len_bytes() > max_bytes {
            return Ok(PartitionRead {
                offsets,
                records: Bytes::new(),
            });
        }
        // Read outside the lock: the planned bytes are below the HW and never rewritten.
        let records = plan.read()?;
        Ok(PartitionRead { offsets, records })
    }

    /// Offset (and timestamp) of the first batch with a timestamp at or above `timestamp_ms`.
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<(i64, i64)>, LogError> {
        let high_watermark = self.high_watermark();
        self.log()
            .offset_for_timestamp(timestamp_ms, high_watermark)
    }

    /// The batch with the largest timestamp, as (base offset, timestamp).
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        let high_watermark = self.high_watermark();
        self.log().max_timestamp_offset(high_watermark)
    }

    /// fsyncs the log; notifies the checkpoint writer when the recovery point advanced.
    pub fn flush(&self) -> Result<(), LogError> {
        let advanced = self.log().flush()?;
        if advanced {
            self.signals.checkpoint_needed.notify_one();
        }
        Ok(())
    }

    /// Flushes and closes the log (graceful shutdown): later appends fail.
    pub fn close(&self) -> Result<(), LogError> {
        self.log().close()
    }
}
