//! A partition replica on this broker: its log and leader-epoch cache, its role (leader, follower
//! or none yet), leader epoch, replicas, ISR and HW, and, as leader, each follower's progress.
//!
//! Single node (no controller): this broker leads every partition, the ISR is `{leader}` and the
//! HW moves to the LEO right after each append. In a cluster the controller assigns roles; the
//! leader advances the HW to the minimum LEO of the ISR as followers fetch. The HW lives in a
//! `watch` channel so that `acks=-1` and long-polling fetches wait on it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::invariant::{self, PartitionPlace};
use crate::limits;
use crate::log::epoch::EpochCache;
use crate::log::{AppendInfo, Log, LogError};
use crate::producer::{Check, ProducerAppend, ProducerError, ProducerStates};
use crate::stable::{AbortedTxn, PartitionTxns};
use crate::wire::batch::{self, BatchHeader, BatchSpan};
use crate::wire::control::{marker_of, Marker};

mod retention;

/// Broker-wide signals partitions raise.
#[derive(Debug)]
pub struct Signals {
    /// Bumped whenever any HW or LEO advances: long-polling fetches wait on it.
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

    fn data_changed(&self) {
        self.data_version
            .send_modify(|version| *version = version.wrapping_add(1));
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
    pub last_stable_offset: i64,
    /// With [`ReadUpTo::LastStable`]: the aborted transactions whose records the read may hold.
    pub aborted: Vec<AbortedTxn>,
    pub records: Bytes,
}

/// Where a read stops: the HW (`read_uncommitted` consumers), the last stable offset
/// (`read_committed`), or the LEO (followers, the coordinators' loads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadUpTo {
    HighWatermark,
    LastStable,
    LogEnd,
}

/// This replica's part in the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    /// Not told yet (cluster mode, just started) or no longer a replica: serves nothing.
    None,
}

/// What a leader knows of one follower (Kafka's `Replica` state).
#[derive(Debug, Clone, Copy)]
struct FollowerProgress {
    /// -1 until the follower's first fetch.
    log_end_offset: i64,
    last_caught_up: Instant,
    last_fetch_time: Instant,
    last_fetch_leader_log_end_offset: i64,
    /// A fetch found this follower, outside the ISR, in sync (its LEO at the HW and at the start of
    /// the leader's epoch) since the ISR last changed. As Kafka (`Partition.maybeExpandIsr` runs on
    /// a follower's fetch), only such a fetch brings a replica in: a dead follower whose last
    /// offset still reaches the HW of an idle partition is not re-added after it was shrunk out.
    in_sync_fetch: bool,
}

#[derive(Debug)]
struct ReplicaState {
    role: Role,
    leader_id: i32,
    leader_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    followers: BTreeMap<i32, FollowerProgress>,
    /// An AlterPartition is on its way to the controller: no other ISR change until it answers.
    isr_change_in_flight: bool,
    /// When the controller last accepted our ISR change: an image pulled before it is stale.
    isr_changed_at: Option<Instant>,
    /// The LEO when this replica became leader (the start of its epoch): a follower below it has
    /// not caught up with this epoch and may not join the ISR.
    leader_epoch_start_offset: i64,
}

#[derive(Debug)]
struct Stored {
    log: Log,
    epochs: EpochCache,
    /// Bumped by every truncation: a read planned before one may find other bytes.
    truncations: u64,
    /// Idempotent producers' epochs and last batches, always consistent with `log`.
    producers: ProducerStates,
    /// Open and aborted transactions, always consistent with `log`.
    txns: PartitionTxns,
}

impl Stored {
    /// Records one appended batch in the producer and transaction state.
    fn record_batch(&mut self, header: &BatchHeader, base_offset: i64, marker: Option<Marker>) {
        record_batch(
            &mut self.producers,
            &mut self.txns,
            header,
            base_offset,
            marker,
        );
    }
}

fn record_batch(
    producers: &mut ProducerStates,
    txns: &mut PartitionTxns,
    header: &BatchHeader,
    base_offset: i64,
    marker: Option<Marker>,
) {
    if header.is_control() && header.has_producer_id() {
        producers.record_marker(header.producer_id, header.producer_epoch);
    } else if let Some(append) = ProducerAppend::of(header, base_offset) {
        producers.record(&append);
    }
    txns.record(header, base_offset, marker);
}

/// Rebuilds a partition's producer and transaction state from the batch headers of its newest
/// segments.
fn rebuild_producers(log: &Log) -> Result<(ProducerStates, PartitionTxns), LogError> {
    let mut producers = ProducerStates::new();
    let mut txns = PartitionTxns::new();
    let (batches, scanned_from) =
        log.scan_producer_batches(limits::PRODUCER_STATE_SCAN_BYTES_MAX, |header, marker| {
            record_batch(
                &mut producers,
                &mut txns,
                header,
                header.base_offset,
                marker,
            )
        })?;
    if !producers.is_empty() || scanned_from > log.log_start_offset() {
        tracing::debug!(dir = %log.dir().display(), producers = producers.len(), batches, scanned_from, "rebuilt producer state");
    }
    Ok((producers, txns))
}

/// The marker of the control batch `span` of `records`, if it is one.
fn span_marker(records: &[u8], span: &BatchSpan) -> Option<Marker> {
    if !span.header.is_control() {
        return None;
    }
    records
        .get(span.position..span.position + span.header.total_bytes)
        .and_then(marker_of)
}

/// How an `acks=-1` wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HighWatermarkWait {
    Reached,
    TimedOut,
    /// This replica is no longer the leader of the epoch the batch was written in.
    NotLeader,
}

/// Why a leader-only operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("this broker is not the leader")]
    NotLeader,
    #[error("stale leader epoch {given} (current {current})")]
    FencedLeaderEpoch { given: i32, current: i32 },
    #[error("leader epoch {given} is newer than ours ({current})")]
    UnknownLeaderEpoch { given: i32, current: i32 },
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Producer(#[from] ProducerError),
}

/// What a leader append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderAppend {
    /// The offsets of the batches: new ones, or the original ones of a duplicate.
    pub info: AppendInfo,
    pub log_start_offset: i64,
    /// The leader epoch the batches were (or, for a duplicate, are being) served in.
    pub leader_epoch: i32,
    /// An idempotent producer's retry of a batch already in the log: nothing was appended.
    pub duplicate: bool,
}

/// One partition replica.
#[derive(Debug)]
pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    node_id: i32,
    stored: Mutex<Stored>,
    state: Mutex<ReplicaState>,
    high_watermark: watch::Sender<i64>,
    /// Bumped on every role or epoch change: waiters re-check their leadership.
    state_version: watch::Sender<u64>,
    signals: Arc<Signals>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic while holding it; the log itself is still consistent on disk
    // (each append is one write), so keep serving.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Partition {
    /// A replica with a loaded log. `single_node`: lead at once with ISR `{self}` and HW = LEO;
    /// otherwise wait for the controller, with the HW from the checkpoint (at most the LEO).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        topic: String,
        topic_id: Uuid,
        index: i32,
        log: Log,
        epochs: EpochCache,
        node_id: i32,
        signals: Arc<Signals>,
        single_node: bool,
        checkpointed_high_watermark: i64,
    ) -> Partition {
        let (producers, txns) = rebuild_producers(&log).unwrap_or_else(|e| {
            // The log was just recovered and validated: a header it cannot read again is a
            // storage failure; the producers start unknown (KIP-360: any sequence accepted).
            tracing::error!(topic = %topic, partition = index, error = %e, "cannot rebuild the producer state");
            (ProducerStates::new(), PartitionTxns::new())
        });
        let log_end_offset = log.log_end_offset();
        if !single_node && checkpointed_high_watermark > log_end_offset {
            // Recovery cut the log below the HW it had (a lost unflushed tail): repair as Kafka
            // does, by lowering the HW to the LEO.
            tracing::warn!(topic = %topic, partition = index, checkpointed_high_watermark, log_end_offset, "HW checkpoint above the recovered log end: HW lowered to the LEO");
        }
        let (role, leader_id, high_watermark) = if single_node {
            (Role::Leader, node_id, log_end_offset)
        } else {
            (
                Role::None,
                -1,
                checkpointed_high_watermark.clamp(0, log_end_offset),
            )
        };
        let mut epochs = epochs;
        let leader_epoch = if single_node {
            let epoch = epochs.latest_epoch().unwrap_or(0).max(0);
            if let Err(e) = epochs.assign(epoch, log_end_offset) {
                tracing::warn!(topic = %topic, partition = index, error = %e, "cannot write the leader-epoch checkpoint");
            }
            epoch
        } else {
            -1
        };
        invariant::enforce(
            invariant::high_watermark_within_log(high_watermark, log_end_offset),
            PartitionPlace {
                topic: &topic,
                index,
            },
        );
        Partition {
            topic,
            topic_id,
            index,
            node_id,
            stored: Mutex::new(Stored {
                log,
                epochs,
                truncations: 0,
                producers,
                txns,
            }),
            state: Mutex::new(ReplicaState {
                role,
                leader_id,
                leader_epoch,
                replicas: vec![node_id],
                isr: vec![node_id],
                followers: BTreeMap::new(),
                isr_change_in_flight: false,
                isr_changed_at: None,
                leader_epoch_start_offset: 0,
            }),
            high_watermark: watch::Sender::new(high_watermark),
            state_version: watch::Sender::new(0),
            signals,
        }
    }

    /// This partition, as a place for [`invariant::enforce`].
    fn place(&self) -> PartitionPlace<'_> {
        PartitionPlace {
            topic: &self.topic,
            index: self.index,
        }
    }

    fn stored(&self) -> MutexGuard<'_, Stored> {
        lock(&self.stored)
    }

    fn state(&self) -> MutexGuard<'_, ReplicaState> {
        lock(&self.state)
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn leader_epoch(&self) -> i32 {
        self.state().leader_epoch
    }

    pub fn leader_id(&self) -> i32 {
        self.state().leader_id
    }

    pub fn role(&self) -> Role {
        self.state().role
    }

    pub fn replicas(&self) -> Vec<i32> {
        self.state().replicas.clone()
    }

    pub fn isr(&self) -> Vec<i32> {
        self.state().isr.clone()
    }

    /// (role, leader id, leader epoch) at one instant.
    pub fn leadership(&self) -> (Role, i32, i32) {
        let state = self.state();
        (state.role, state.leader_id, state.leader_epoch)
    }

    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    pub fn log_end_offset(&self) -> i64 {
        self.stored().log.log_end_offset()
    }

    pub fn offsets(&self) -> PartitionOffsets {
        let stored = self.stored();
        let offsets = PartitionOffsets {
            log_start_offset: stored.log.log_start_offset(),
            high_watermark: self.high_watermark(),
            log_end_offset: stored.log.log_end_offset(),
        };
        // Every HW change happens under the log lock: with it held, HW <= LEO.
        invariant::enforce(
            invariant::high_watermark_within_log(offsets.high_watermark, offsets.log_end_offset),
            self.place(),
        );
        offsets
    }

    pub fn recovery_point(&self) -> i64 {
        self.stored().log.recovery_point()
    }

    pub fn epoch_entries(&self) -> Vec<(i32, i64)> {
        self.stored().epochs.entries().to_vec()
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.stored().epochs.latest_epoch()
    }

    /// Checks a request's `current_leader_epoch` (-1 = not given) against ours (KIP-320).
    pub fn check_epoch(&self, current_leader_epoch: i32) -> Result<(), ReplicaError> {
        let current = self.leader_epoch();
        if current_leader_epoch < 0 || current_leader_epoch == current {
            Ok(())
        } else if current_leader_epoch > current {
            Err(ReplicaError::UnknownLeaderEpoch {
                given: current_leader_epoch,
                current,
            })
        } else {
            Err(ReplicaError::FencedLeaderEpoch {
                given: current_leader_epoch,
                current,
            })
        }
    }

    /// Appends validated batches as leader, after the idempotent-producer checks: a retried
    /// batch already in the log is answered with its original offsets and not appended again.
    pub fn append_as_leader(
        &self,
        records: &[u8],
        spans: &[BatchSpan],
    ) -> Result<LeaderAppend, ReplicaError> {
        // The state lock is held across the append so that a role change cannot slip in between.
        let state = self.state();
        if state.role != Role::Leader {
            return Err(ReplicaError::NotLeader);
        }
        let leader_epoch = state.leader_epoch;
        let mut stored = self.stored();
        let log_start_offset = stored.log.log_start_offset();
        let mut next_offset = stored.log.log_end_offset();
        // Producer fields of the batches, in order, with the offsets they will get.
        let mut pending: Vec<ProducerAppend> = Vec::new();
        for span in spans {
            let header = &span.header;
            if let Some(append) = ProducerAppend::of(header, next_offset) {
                let window = stored.log.config().producer_batches_retained;
                match stored.producers.check(header, &pending, window)? {
                    Check::Append => pending.push(append),
                    Check::Duplicate(original) => {
                        // Kafka answers a request holding a duplicate with the duplicate alone.
                        // One line per retry recognised: `kaos run` counts them in the node's
                        // log (DUPLICATE_BATCH_LOG_LINE), so a scenario can require the
                        // idempotence window to have been exercised.
                        tracing::info!(topic = %self.topic, partition = self.index, producer_id = header.producer_id, sequence = header.base_sequence, offset = original.first_offset, "{}", crate::producer::DUPLICATE_BATCH_LOG_LINE);
                        return Ok(LeaderAppend {
                            info: AppendInfo {
                                base_offset: original.first_offset,
                                last_offset: original.last_offset,
                                recovery_point_advanced: false,
                                rolled: false,
                            },
                            log_start_offset,
                            leader_epoch,
                            duplicate: true,
                        });
                    }
                }
            }
            next_offset = header.next_offset_from(next_offset);
        }
        let info = stored.log.append(records, spans, leader_epoch)?;
        for append in &pending {
            invariant::enforce(stored.producers.continues(append), self.place());
            stored.producers.record(append);
        }
        let mut base_offset = info.base_offset;
        for span in spans {
            let header = &span.header;
            if header.is_control() && header.has_producer_id() {
                stored
                    .producers
                    .record_marker(header.producer_id, header.producer_epoch);
            }
            stored
                .txns
                .record(header, base_offset, span_marker(records, span));
            base_offset = header.next_offset_from(base_offset);
        }
        drop(stored);
        if info.recovery_point_advanced || info.rolled {
            self.signals.checkpoint_needed.notify_one();
        }
        self.maybe_advance_high_watermark(&state);
        drop(state);
        self.signals.data_changed();
        Ok(LeaderAppend {
            info,
            log_start_offset,
            leader_epoch,
            duplicate: false,
        })
    }

    /// Appends batches fetched from the leader (offsets and epochs kept); returns the new LEO.
    pub fn append_as_follower(
        &self,
        records: &[u8],
        max_batch_bytes: usize,
    ) -> Result<i64, ReplicaError> {
        let spans = batch::validate_records(records, max_batch_bytes).map_err(|e| {
            ReplicaError::Log(LogError::Inconsistent(format!(
                "leader sent an invalid batch: {e}"
            )))
        })?;
        let mut stored = self.stored();
        let info = stored.log.append_replicated(records, &spans)?;
        for span in &spans {
            let epoch = span.header.partition_leader_epoch;
            stored.epochs.assign(epoch, span.header.base_offset)?;
            stored.record_batch(
                &span.header,
                span.header.base_offset,
                span_marker(records, span),
            );
        }
        let log_end_offset = stored.log.log_end_offset();
        drop(stored);
        if info.recovery_point_advanced || info.rolled {
            self.signals.checkpoint_needed.notify_one();
        }
        Ok(log_end_offset)
    }

    /// Sets a follower's HW from the leader's: `min(leader HW, own LEO)`; returns it.
    pub fn set_follower_high_watermark(&self, leader_high_watermark: i64) -> i64 {
        let mut stored = self.stored();
        let log_end_offset = stored.log.log_end_offset();
        let new = leader_high_watermark.min(log_end_offset).max(0);
        let changed = self.move_high_watermark(new, log_end_offset, |hw| hw != new);
        if changed {
            stored.txns.high_watermark_moved(new);
        }
        drop(stored);
        if changed {
            self.signals.data_changed();
        }
        new
    }

    /// Truncates the log to at most `offset` (follower); the HW and the epoch cache follow.
    /// Returns the new LEO.
    pub fn truncate_to(&self, offset: i64) -> Result<i64, LogError> {
        let mut stored = self.stored();
        let before = stored.log.log_end_offset();
        let log_end_offset = stored.log.truncate_to(offset.max(0))?;
        stored.truncations += 1;
        // The HW follows under the log lock, so that no reader sees HW > LEO.
        let high_watermark = self.high_watermark();
        self.move_high_watermark(log_end_offset, log_end_offset, |hw| hw > log_end_offset);
        stored.epochs.truncate_from_end(log_end_offset)?;
        if log_end_offset < before {
            // The producers' last batches may have been cut: rebuild from what the log keeps.
            (stored.producers, stored.txns) = rebuild_producers(&stored.log)?;
        }
        drop(stored);
        if log_end_offset < high_watermark {
            // Kafka's warning: legitimate when the leader lacks what this replica had committed
            // (an unclean election, a leader that lost its unflushed tail, HW truncation).
            tracing::warn!(topic = %self.topic, partition = self.index, from = before, to = log_end_offset, high_watermark, "truncated the log below the high watermark");
        } else if log_end_offset < before {
            tracing::warn!(topic = %self.topic, partition = self.index, from = before, to = log_end_offset, "truncated the log");
        }
        if log_end_offset < before {
            self.signals.checkpoint_needed.notify_one();
        }
        Ok(log_end_offset)
    }

    /// The answer to OffsetForLeaderEpoch for `epoch`: (largest epoch <= it, its end offset).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let stored = self.stored();
        stored
            .epochs
            .end_offset_for(epoch, stored.log.log_end_offset())
    }

    /// Becomes leader of `leader_epoch` (controller's decision). Returns false if nothing changed.
    /// Already leading that epoch, it takes the controller's ISR (which drops dead brokers) unless
    /// the image was asked for before our last accepted ISR change or one is in flight.
    pub fn become_leader(
        &self,
        leader_epoch: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        image_requested_at: Instant,
    ) -> Result<bool, LogError> {
        let mut state = self.state();
        invariant::enforce(
            invariant::leader_epoch_not_older(state.leader_epoch, leader_epoch),
            self.place(),
        );
        if state.role == Role::Leader && state.leader_epoch == leader_epoch {
            let stale = state
                .isr_changed_at
                .is_some_and(|at| image_requested_at <= at);
            if !state.isr_change_in_flight
                && !stale
                && state.isr != isr
                && isr.contains(&self.node_id)
            {
                state.isr = isr;
                self.maybe_advance_high_watermark(&state);
            }
            state.replicas = replicas;
            invariant::enforce(
                invariant::isr_within_replicas(&state.isr, &state.replicas),
                self.place(),
            );
            return Ok(false);
        }
        let log_end_offset = {
            let mut stored = self.stored();
            let log_end_offset = stored.log.log_end_offset();
            stored.epochs.assign(leader_epoch, log_end_offset)?;
            log_end_offset
        };
        let now = Instant::now();
        state.followers = replicas
            .iter()
            .filter(|&&r| r != self.node_id)
            .map(|&r| {
                (
                    r,
                    FollowerProgress {
                        log_end_offset: -1,
                        last_caught_up: now,
                        last_fetch_time: now,
                        last_fetch_leader_log_end_offset: -1,
                        in_sync_fetch: false,
                    },
                )
            })
            .collect();
        state.role = Role::Leader;
        state.leader_id = self.node_id;
        state.leader_epoch = leader_epoch;
        state.replicas = replicas;
        state.isr = isr;
        state.isr_change_in_flight = false;
        state.isr_changed_at = None;
        state.leader_epoch_start_offset = log_end_offset;
        invariant::enforce(
            invariant::isr_within_replicas(&state.isr, &state.replicas),
            self.place(),
        );
        tracing::info!(topic = %self.topic, partition = self.index, leader_epoch, log_end_offset, isr = ?state.isr, "became leader");
        self.maybe_advance_high_watermark(&state);
        drop(state);
        self.state_version.send_modify(|v| *v = v.wrapping_add(1));
        self.signals.data_changed();
        Ok(true)
    }

    /// Becomes a follower of `leader_id` in `leader_epoch`. Returns false if nothing changed.
    /// The caller then truncates (by HW or by leader epoch) before fetching.
    pub fn become_follower(
        &self,
        leader_id: i32,
        leader_epoch: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
    ) -> bool {
        let mut state = self.state();
        invariant::enforce(
            invariant::leader_epoch_not_older(state.leader_epoch, leader_epoch),
            self.place(),
        );
        let changed = !(state.role == Role::Follower
            && state.leader_id == leader_id
            && state.leader_epoch == leader_epoch);
        state.replicas = replicas;
        state.isr = isr;
        invariant::enforce(
            invariant::isr_within_replicas(&state.isr, &state.replicas),
            self.place(),
        );
        if !changed {
            return false;
        }
        state.role = if leader_id >= 0 {
            Role::Follower
        } else {
            Role::None
        };
        state.leader_id = leader_id;
        state.leader_epoch = leader_epoch;
        state.followers.clear();
        state.isr_change_in_flight = false;
        tracing::info!(topic = %self.topic, partition = self.index, leader_id, leader_epoch, log_end_offset = self.log_end_offset(), high_watermark = self.high_watermark(), "became follower");
        drop(state);
        self.state_version.send_modify(|v| *v = v.wrapping_add(1));
        self.signals.data_changed();
        true
    }

    /// Leader: a follower fetched from `fetch_offset`. Updates its progress and maybe the HW,
    /// unless the offset is beyond this log's end.
    pub fn follower_fetched(&self, replica_id: i32, fetch_offset: i64) {
        let log_end_offset = self.log_end_offset();
        let mut state = self.state();
        if state.role != Role::Leader {
            return;
        }
        let now = Instant::now();
        let Some(progress) = state.followers.get_mut(&replica_id) else {
            return;
        };
        if fetch_offset > log_end_offset {
            // The follower's log is longer than ours: its tail is not ours (it may differ below
            // our LEO too), and the read answers OFFSET_OUT_OF_RANGE. As Kafka, only a fetch that
            // reads counts: it neither moves the HW nor keeps or brings the follower in the ISR.
            return;
        }
        progress.log_end_offset = fetch_offset;
        if fetch_offset >= log_end_offset {
            progress.last_caught_up = now;
        } else if fetch_offset >= progress.last_fetch_leader_log_end_offset
            && progress.last_fetch_leader_log_end_offset >= 0
        {
            progress.last_caught_up = progress.last_caught_up.max(progress.last_fetch_time);
        }
        progress.last_fetch_time = now;
        progress.last_fetch_leader_log_end_offset = log_end_offset;
        let in_sync = fetch_offset >= self.high_watermark()
            && fetch_offset >= state.leader_epoch_start_offset;
        if !state.isr.contains(&replica_id) && in_sync {
            if let Some(progress) = state.followers.get_mut(&replica_id) {
                progress.in_sync_fetch = true;
            }
        }
        self.maybe_advance_high_watermark(&state);
    }

    /// Leader: the ISR this partition should have now (laggards out, caught-up replicas in), if it
    /// differs from the current one and no change is in flight. Marks a change in flight.
    pub fn wanted_isr(&self, lag_time_max: Duration) -> Option<(i32, Vec<i32>)> {
        let high_watermark = self.high_watermark();
        let mut state = self.state();
        if state.role != Role::Leader || state.isr_change_in_flight {
            return None;
        }
        let now = Instant::now();
        let mut wanted: Vec<i32> = Vec::with_capacity(state.replicas.len());
        for &replica in &state.replicas {
            if replica == self.node_id {
                wanted.push(replica);
                continue;
            }
            let Some(progress) = state.followers.get(&replica) else {
                continue;
            };
            // Kafka's rules: a member stays while it caught up within the lag time; another
            // joins once a fetch of its own found its LEO at the HW and the start of this
            // leader's epoch.
            let keep = if state.isr.contains(&replica) {
                now.duration_since(progress.last_caught_up) <= lag_time_max
            } else {
                progress.in_sync_fetch
                    && progress.log_end_offset >= high_watermark
                    && progress.log_end_offset >= state.leader_epoch_start_offset
            };
            if keep {
                wanted.push(replica);
            }
        }
        let mut current = state.isr.clone();
        current.sort_unstable();
        let mut sorted = wanted.clone();
        sorted.sort_unstable();
        if sorted == current {
            return None;
        }
        invariant::enforce(
            invariant::isr_within_replicas(&wanted, &state.replicas),
            self.place(),
        );
        state.isr_change_in_flight = true;
        Some((state.leader_epoch, wanted))
    }

    /// Leader: the controller answered an ISR change (`Some(isr)` accepted, `None` refused).
    pub fn isr_change_done(&self, leader_epoch: i32, accepted: Option<Vec<i32>>) {
        let mut state = self.state();
        if state.leader_epoch != leader_epoch {
            return;
        }
        state.isr_change_in_flight = false;
        if let Some(isr) = accepted {
            tracing::info!(topic = %self.topic, partition = self.index, from = ?state.isr, to = ?isr, "ISR changed");
            state.isr = isr;
            // A replica joins again only after a fetch that finds it in sync under the new ISR.
            for progress in state.followers.values_mut() {
                progress.in_sync_fetch = false;
            }
            invariant::enforce(
                invariant::isr_within_replicas(&state.isr, &state.replicas),
                self.place(),
            );
            state.isr_changed_at = Some(Instant::now());
            self.maybe_advance_high_watermark(&state);
        }
    }

    /// Sets the HW to `new` if `moves(HW)`, then asserts HW ≤ LEO (`log_end_offset`: the caller
    /// holds the log lock); returns whether the HW changed.
    fn move_high_watermark(
        &self,
        new: i64,
        log_end_offset: i64,
        moves: impl FnOnce(i64) -> bool,
    ) -> bool {
        let moved = self.high_watermark.send_if_modified(|hw| {
            if moves(*hw) {
                *hw = new;
                true
            } else {
                false
            }
        });
        invariant::enforce(
            invariant::high_watermark_within_log(self.high_watermark(), log_end_offset),
            self.place(),
        );
        moved
    }

    /// Moves the HW forward (never back) to the minimum LEO of the ISR.
    fn maybe_advance_high_watermark(&self, state: &ReplicaState) {
        if state.role != Role::Leader {
            return;
        }
        // Under the log lock, so that a truncation cannot slip in between.
        let mut stored = self.stored();
        let log_end_offset = stored.log.log_end_offset();
        let mut candidate = log_end_offset;
        for member in &state.isr {
            if *member == self.node_id {
                continue;
            }
            let follower_leo = state.followers.get(member).map_or(-1, |p| p.log_end_offset);
            candidate = candidate.min(follower_leo);
        }
        let advanced = self.move_high_watermark(candidate, log_end_offset, |high_watermark| {
            candidate > high_watermark
        });
        if advanced {
            stored.txns.high_watermark_moved(candidate);
        }
        drop(stored);
        if advanced {
            self.signals.data_changed();
        }
    }

    /// Waits until the HW reaches `offset` while this replica leads `leader_epoch`.
    pub async fn wait_for_high_watermark(
        &self,
        offset: i64,
        leader_epoch: i32,
        deadline: tokio::time::Instant,
    ) -> HighWatermarkWait {
        let mut high_watermark = self.high_watermark.subscribe();
        let mut state_version = self.state_version.subscribe();
        loop {
            let (role, _, epoch) = self.leadership();
            if role != Role::Leader || epoch != leader_epoch {
                return HighWatermarkWait::NotLeader;
            }
            if *high_watermark.borrow_and_update() >= offset {
                return HighWatermarkWait::Reached;
            }
            tokio::select! {
                changed = high_watermark.changed() => if changed.is_err() { return HighWatermarkWait::NotLeader },
                changed = state_version.changed() => if changed.is_err() { return HighWatermarkWait::NotLeader },
                () = tokio::time::sleep_until(deadline) => return HighWatermarkWait::TimedOut,
            }
        }
    }

    /// Reads whole batches from `fetch_offset` up to the HW (or the LEO when `to_log_end`, for
    /// followers), at most `max_bytes` unless the first batch alone is larger and
    /// `at_least_one_batch` (KIP-74).
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        at_least_one_batch: bool,
        up_to: ReadUpTo,
    ) -> Result<PartitionRead, LogError> {
        let (plan, offsets, truncations, last_stable_offset) = {
            let stored = self.stored();
            let high_watermark = self.high_watermark();
            let last_stable_offset = stored.txns.last_stable_offset(high_watermark);
            let upper = match up_to {
                ReadUpTo::LogEnd => stored.log.log_end_offset(),
                ReadUpTo::HighWatermark => high_watermark,
                ReadUpTo::LastStable => last_stable_offset,
            };
            // A consumer is served from the first record at or after its offset: batches the
            // log cleaner emptied are skipped (a fetch of only empty batches makes librdkafka
            // double its fetch size and, after ten, report MSG_SIZE_TOO_LARGE). A follower
            // gets every batch, contiguous.
            let start = if up_to != ReadUpTo::LogEnd && stored.log.config().compact {
                stored.log.first_record_offset(fetch_offset, upper)?
            } else {
                fetch_offset
            };
            let plan = stored.log.read_plan(start, max_bytes, upper)?;
            let offsets = PartitionOffsets {
                log_start_offset: stored.log.log_start_offset(),
                high_watermark,
                log_end_offset: stored.log.log_end_offset(),
            };
            invariant::enforce(
                invariant::high_watermark_within_log(high_watermark, offsets.log_end_offset),
                self.place(),
            );
            (plan, offsets, stored.truncations, last_stable_offset)
        };
        let mut read = PartitionRead {
            offsets,
            last_stable_offset,
            aborted: Vec::new(),
            records: Bytes::new(),
        };
        if !at_least_one_batch && plan.len_bytes() > max_bytes {
            return Ok(read);
        }
        // Read outside the lock. A truncation (this replica just became a follower) may have cut
        // the planned bytes: the read then fails its plan check, and the reader is told to go to
        // the leader rather than the broker stopping over an inconsistency that is not one.
        let raced = || self.stored().truncations != truncations;
        let records = match plan.read_unchecked() {
            Ok(records) => records,
            Err(e) if raced() => {
                tracing::info!(topic = %self.topic, partition = self.index, error = %e, "read raced a truncation");
                return Err(LogError::Closed);
            }
            Err(e) => return Err(e),
        };
        match plan.check(&records) {
            Ok(()) => {
                if up_to == ReadUpTo::LastStable && !records.is_empty() {
                    read.aborted = self
                        .stored()
                        .txns
                        .aborted_between(fetch_offset, last_stable_offset);
                }
                read.records = records;
                Ok(read)
            }
            Err(violation) if raced() => {
                tracing::info!(topic = %self.topic, partition = self.index, %violation, "read raced a truncation");
                Err(LogError::Closed)
            }
            Err(violation) => invariant::violated(&violation, &self.place()),
        }
    }

    /// Offset (and timestamp) of the first batch with a timestamp at or above `timestamp_ms`.
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<(i64, i64)>, LogError> {
        let high_watermark = self.high_watermark();
        self.stored()
            .log
            .offset_for_timestamp(timestamp_ms, high_watermark)
    }

    /// The batch with the largest timestamp, as (base offset, timestamp).
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        let high_watermark = self.high_watermark();
        self.stored().log.max_timestamp_offset(high_watermark)
    }

    /// fsyncs rolled segments not yet flushed, without holding the log lock while fsyncing (so
    /// appends go on); returns true when the recovery point advanced. Called by the checkpoint
    /// writer after a roll.
    pub fn flush_rolled(&self) -> Result<bool, LogError> {
        let (plan, truncations) = {
            let stored = self.stored();
            match stored.log.rolled_flush_plan() {
                Some(plan) => (plan, stored.truncations),
                None => return Ok(false),
            }
        };
        if let Err(e) = plan.run() {
            self.stored().log.fail();
            return Err(e);
        }
        let mut stored = self.stored();
        if stored.truncations != truncations {
            // The log was cut meanwhile: what was fsynced may not be what is there now.
            return Ok(false);
        }
        Ok(stored.log.rolled_flushed(plan.up_to))
    }

    /// fsyncs the log; notifies the checkpoint writer when the recovery point advanced.
    pub fn flush(&self) -> Result<(), LogError> {
        let advanced = self.stored().log.flush()?;
        if advanced {
            self.signals.checkpoint_needed.notify_one();
        }
        Ok(())
    }

    /// The epoch and kept batches (first/last sequence and offset) of `producer_id`, if known.
    pub fn producer_state(
        &self,
        producer_id: i64,
    ) -> Option<(i16, Vec<crate::producer::ProducerBatch>)> {
        self.stored().producers.entry(producer_id)
    }

    /// The last stable offset: below it every transaction has ended (KIP-98).
    pub fn last_stable_offset(&self) -> i64 {
        let stored = self.stored();
        stored.txns.last_stable_offset(self.high_watermark())
    }

    /// The first offset of `producer_id`'s open transaction in this partition, and the epoch
    /// the partition knows for it.
    pub fn open_transaction(&self, producer_id: i64) -> (Option<i64>, Option<i16>) {
        let stored = self.stored();
        (
            stored.txns.open_transaction(producer_id),
            stored.producers.epoch(producer_id),
        )
    }

    /// Flushes and closes the log (graceful shutdown): later appends fail.
    pub fn close(&self) -> Result<(), LogError> {
        self.stored().log.close()
    }

    /// Whether the log failed (a write or fsync error, e.g. a full disk): every produce to this
    /// replica gets KAFKA_STORAGE_ERROR until the broker restarts, as with Kafka's offline log dir.
    pub fn is_failed(&self) -> bool {
        self.stored().log.is_failed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogConfig;
    use crate::wire::batch::{build_producer_batch, validate_records};

    fn open(dir: &std::path::Path) -> Partition {
        let config = LogConfig {
            segment_bytes: 1024,
            index_interval_bytes: 100,
            flush_messages: 0,
            ..LogConfig::default()
        };
        let (log, _) = Log::open(dir, config, 0, false).expect("open");
        let epochs = EpochCache::rebuilt(dir, log.scan_epochs().expect("epochs")).expect("epochs");
        Partition::new(
            "t".into(),
            Uuid::nil(),
            0,
            log,
            epochs,
            1,
            Signals::new(),
            true,
            0,
        )
    }

    /// Appends `count` records from `sequence` as producer 9: (base offset, duplicate).
    fn append(
        partition: &Partition,
        sequence: i32,
        count: usize,
    ) -> Result<(i64, bool), ReplicaError> {
        let values: Vec<&[u8]> = vec![b"0123456789012345678901234567890123456789"; count];
        let records = build_producer_batch(0, 1, &values, 9, 0, sequence);
        let spans = validate_records(&records, 1 << 20).expect("valid");
        let appended = partition.append_as_leader(&records, &spans)?;
        Ok((appended.info.base_offset, appended.duplicate))
    }

    #[test]
    fn a_follower_fetching_beyond_the_leaders_end_neither_moves_the_hw_nor_joins_the_isr() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = open(dir.path());
        partition
            .become_leader(3, vec![1, 2], vec![1], Instant::now())
            .expect("lead");
        append(&partition, 0, 4).expect("append");
        assert_eq!(partition.high_watermark(), 4, "alone in the ISR");
        // Replica 2 has a longer, divergent log (e.g. kept after HW truncation): fetch offset 9.
        partition.follower_fetched(2, 9);
        assert_eq!(
            partition.wanted_isr(Duration::from_secs(30)),
            None,
            "not caught up"
        );
        partition
            .become_leader(3, vec![1, 2], vec![1, 2], Instant::now())
            .expect("ISR grows by the controller");
        append(&partition, 4, 4).expect("append");
        partition.follower_fetched(2, 12);
        assert_eq!(
            partition.high_watermark(),
            4,
            "a fetch past the end does not count"
        );
        partition.follower_fetched(2, 8);
        assert_eq!(partition.high_watermark(), 8, "a fetch that reads does");
    }

    /// Issue 19: on a partition without new writes, a killed follower's last end offset still
    /// reaches the HW; the ISR check re-added it every period until its session expired. Kafka
    /// expands the ISR only when the follower itself fetches up to the HW.
    #[test]
    fn a_follower_that_stopped_fetching_is_not_re_added_to_the_isr() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = open(dir.path());
        partition
            .become_leader(3, vec![1, 2], vec![1, 2], Instant::now())
            .expect("lead");
        append(&partition, 0, 4).expect("append");
        partition.follower_fetched(2, 4);
        assert_eq!(partition.high_watermark(), 4, "the follower caught up");
        // The follower dies. With no lag allowed it is shrunk out at the next check.
        let (epoch, shrunk) = partition.wanted_isr(Duration::ZERO).expect("shrink");
        assert_eq!(shrunk, vec![1]);
        partition.isr_change_done(epoch, Some(shrunk));
        assert_eq!(
            partition.wanted_isr(Duration::from_secs(30)),
            None,
            "no fetch since it was shrunk out: it stays out although its last offset is the HW"
        );
        // It comes back and fetches at the HW: now it joins.
        partition.follower_fetched(2, 4);
        assert_eq!(
            partition.wanted_isr(Duration::from_secs(30)),
            Some((epoch, vec![1, 2]))
        );
    }

    #[test]
    #[should_panic(
        expected = "invariant leader_epoch_non_decreasing violated: current_leader_epoch=4 new_leader_epoch=3 at partition t-0"
    )]
    fn a_leader_epoch_going_back_stops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = open(dir.path());
        partition.become_follower(2, 4, vec![1, 2], vec![1, 2]);
        partition.become_follower(2, 3, vec![1, 2], vec![1, 2]);
    }

    #[test]
    #[should_panic(expected = "invariant isr_within_replicas violated: isr=[1, 3] replicas=[1, 2]")]
    fn an_isr_outside_the_replicas_stops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = open(dir.path());
        let _ = partition.become_leader(1, vec![1, 2], vec![1, 3], Instant::now());
    }

    #[test]
    fn the_high_watermark_follows_a_truncation_under_the_log_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = open(dir.path());
        append(&partition, 0, 6).expect("append");
        assert_eq!(partition.high_watermark(), 6);
        partition.become_follower(2, 1, vec![1, 2], vec![1, 2]);
        assert_eq!(
            partition.truncate_to(2).expect("truncate"),
            0,
            "whole batches"
        );
        let offsets = partition.offsets();
        assert_eq!((offsets.high_watermark, offsets.log_end_offset), (0, 0));
        assert_eq!(
            partition.set_follower_high_watermark(9),
            0,
            "at most the LEO"
        );
    }

    #[test]
    fn producer_state_follows_truncation_and_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = open(dir.path());
        for i in 0..10 {
            assert_eq!(
                append(&partition, i * 2, 2).expect("append"),
                (i64::from(i) * 2, false)
            );
        }
        assert_eq!(append(&partition, 16, 2).expect("retry"), (16, true));
        // Cut the last four batches (across segment boundaries): their retries are new again,
        // the batches kept are still duplicates, and the state never claims a cut sequence.
        assert_eq!(partition.truncate_to(12).expect("truncate"), 12);
        let (_, kept) = partition.producer_state(9).expect("known");
        assert_eq!(
            kept.last().map(|b| (b.last_sequence, b.last_offset)),
            Some((11, 11))
        );
        assert_eq!(append(&partition, 10, 2).expect("retry"), (10, true));
        assert!(matches!(
            append(&partition, 16, 2),
            Err(ReplicaError::Producer(ProducerError::OutOfOrder { .. }))
        ));
        assert_eq!(append(&partition, 12, 2).expect("append"), (12, false));
        drop(partition);
        // Rebuilt from the log on open.
        let partition = open(dir.path());
        assert_eq!(partition.producer_state(9).expect("rebuilt").1.len(), 5);
        assert_eq!(append(&partition, 12, 2).expect("retry"), (12, true));
        assert_eq!(append(&partition, 4, 2).expect("retry"), (4, true));
        assert!(matches!(
            append(&partition, 2, 2),
            Err(ReplicaError::Producer(ProducerError::OutOfOrder { .. }))
        ));
        assert_eq!(append(&partition, 14, 1).expect("append"), (14, false));
    }
}
