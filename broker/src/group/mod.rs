//! The group coordinator: consumer groups (classic protocol, [`state`]) and their committed
//! offsets, kept in the internal topic `__consumer_offsets` ([`records`]).
//!
//! A group belongs to partition `abs(hash(group)) % N` of `__consumer_offsets` (Kafka's choice),
//! and the broker leading that partition is its coordinator. When this broker becomes leader of
//! an offsets partition (in a new leader epoch) it loads the partition's log into memory and
//! answers COORDINATOR_LOAD_IN_PROGRESS meanwhile; when it stops leading, it forgets the
//! partition's groups and answers NOT_COORDINATOR. A generation's assignment is written to the
//! log (the group metadata record, as Kafka's `storeGroup`) before the members get it, but it is
//! not read back: after a coordinator move, members find the new coordinator, are told
//! UNKNOWN_MEMBER_ID and join again, while their committed offsets survive in the log. An OffsetCommit is answered only once its
//! record is below the HW (Kafka's `offsets.commit.required.acks = -1`; `1`, a bug switch,
//! answers it once the coordinator's own log has it).

pub mod records;
pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;

use crate::config::GroupConfig;
use crate::internal_topic::{now_ms, Shards};
pub use crate::internal_topic::{partition_for, Route};
use crate::limits;
use crate::partition::{HighWatermarkWait, Partition, ReplicaError};
use crate::wire::batch;
pub use records::{Committed, OFFSETS_TOPIC};
pub use state::{
    Group, GroupState, JoinOutcome, JoinRequest, Pending, StoreAssignment, SyncOutcome,
};

/// group → (topic, partition) → (committed offset, offset of its record in the log).
type OffsetsByGroup = HashMap<String, BTreeMap<(String, i32), (Committed, i64)>>;

/// Transactional offset commits (TxnOffsetCommit) waiting for their transaction's marker, by
/// producer id: (group, topic, partition, offset, offset of its record).
type PendingTxnOffsets = HashMap<i64, Vec<(String, String, i32, Committed, i64)>>;

/// The state of one offsets partition this broker leads.
#[derive(Debug, Default)]
struct Offsets {
    groups: HashMap<String, Group>,
    offsets: OffsetsByGroup,
    pending_txn: PendingTxnOffsets,
}

/// What the coordinator needs of the broker that holds it (implemented by `state::Broker`), so
/// that the coordinator does not depend on the broker's state module.
pub trait Host {
    /// Partition count of `__consumer_offsets` as this broker knows it, `None` if it does not
    /// exist yet.
    fn offsets_partition_count(&self) -> Option<i32>;
    /// The local replica of `__consumer_offsets` partition `index`.
    fn offsets_partition(&self, index: i32) -> Option<Arc<Partition>>;
    /// Every local replica of `__consumer_offsets`, by index.
    fn offsets_partitions(&self) -> Vec<(i32, Arc<Partition>)>;
    fn min_insync_replicas(&self) -> i32;
    fn group_config(&self) -> &GroupConfig;
}

impl<H: Host + ?Sized> Host for Arc<H> {
    fn offsets_partition_count(&self) -> Option<i32> {
        (**self).offsets_partition_count()
    }
    fn offsets_partition(&self, index: i32) -> Option<Arc<Partition>> {
        (**self).offsets_partition(index)
    }
    fn offsets_partitions(&self) -> Vec<(i32, Arc<Partition>)> {
        (**self).offsets_partitions()
    }
    fn min_insync_replicas(&self) -> i32 {
        (**self).min_insync_replicas()
    }
    fn group_config(&self) -> &GroupConfig {
        (**self).group_config()
    }
}

/// The coordinator of the groups whose offsets partitions this broker leads.
#[derive(Debug)]
pub struct Coordinator {
    shards: Shards<Offsets>,
}

impl Default for Coordinator {
    fn default() -> Self {
        Coordinator {
            shards: Shards::new(OFFSETS_TOPIC),
        }
    }
}

/// Why a commit failed, as OffsetCommit's error code (Kafka's `GroupMetadataManager` mapping).
fn commit_error_code(error: &ReplicaError) -> i16 {
    match error {
        ReplicaError::Log(e) => match e {
            crate::log::LogError::Io { .. }
            | crate::log::LogError::Failed
            | crate::log::LogError::Closed => ResponseError::NotCoordinator.code(),
            other => crate::log::log_error_code(other, "offset commit append"),
        },
        _ => ResponseError::NotCoordinator.code(),
    }
}

/// A validated OffsetCommit, ready to be written.
pub struct CommitPlan {
    pub group: String,
    pub index: i32,
    pub leader_epoch: i32,
    pub entries: Vec<(String, i32, Committed)>,
    /// A transactional commit (TxnOffsetCommit): the producer id and epoch whose transaction
    /// it belongs to; its offsets take effect when the commit marker is written.
    pub producer: Option<(i64, i16)>,
}

/// Applies committed offsets whose records start at `base_offset` to a group's offsets.
fn apply_offsets(
    group: &str,
    group_offsets: &mut BTreeMap<(String, i32), (Committed, i64)>,
    entries: impl IntoIterator<Item = (String, i32, Committed, i64)>,
) {
    for (topic, p, committed, log_offset) in entries {
        let key = (topic, p);
        if group_offsets.len() >= limits::OFFSETS_PER_GROUP_MAX && !group_offsets.contains_key(&key)
        {
            tracing::warn!(
                group,
                "too many committed offsets for one group; not cached"
            );
            continue;
        }
        match group_offsets.get(&key) {
            Some((_, existing)) if *existing > log_offset => {}
            _ => {
                group_offsets.insert(key, (committed, log_offset));
            }
        }
    }
}

impl Coordinator {
    /// Partition count of `__consumer_offsets` as this broker knows it (the controller's image in
    /// a cluster), or `None` if it does not exist yet.
    pub fn offsets_partition_count(host: &impl Host) -> Option<i32> {
        host.offsets_partition_count()
    }

    /// Whether this broker may try to create the offsets topic now (rate-limited).
    pub fn may_create_topic(&self) -> bool {
        self.shards.may_create_topic()
    }

    /// Where `group` is served, from this broker's point of view: `(index, leader_epoch)` when
    /// this broker coordinates it, else INVALID_GROUP_ID, NOT_COORDINATOR,
    /// COORDINATOR_LOAD_IN_PROGRESS or COORDINATOR_NOT_AVAILABLE. Every group API starts here.
    pub fn route(&self, host: &impl Host, group: &str) -> Route {
        if let Some(code) = group_id_error(group) {
            return Err(code);
        }
        self.shards
            .route(group, host.offsets_partition_count(), |index| {
                host.offsets_partition(index)
            })
    }

    /// [`Self::route`], then `f` on the group if it exists ([`Self::with_group`]): what a request
    /// of one of its members (Heartbeat, LeaveGroup) does.
    pub fn with_routed_group<T>(
        &self,
        host: &impl Host,
        group: &str,
        f: impl FnOnce(&mut Group) -> T,
    ) -> Result<T, i16> {
        let (index, leader_epoch) = self.route(host, group)?;
        self.with_group(index, leader_epoch, group, false, f)
    }

    /// Runs `f` on the group (created if `create`) of a loaded shard in `leader_epoch`.
    pub fn with_group<T>(
        &self,
        index: i32,
        leader_epoch: i32,
        group: &str,
        create: bool,
        f: impl FnOnce(&mut Group) -> T,
    ) -> Result<T, i16> {
        self.shards.with_loaded(index, leader_epoch, |shard| {
            if !shard.groups.contains_key(group) {
                if !create {
                    return Err(ResponseError::UnknownMemberId.code());
                }
                if shard.groups.len() >= limits::GROUPS_PER_OFFSETS_PARTITION_MAX {
                    return Err(ResponseError::CoordinatorNotAvailable.code());
                }
                shard.groups.insert(group.to_string(), Group::new(group));
            }
            let entry = shard
                .groups
                .get_mut(group)
                .ok_or(ResponseError::NotCoordinator.code())?;
            Ok(f(entry))
        })?
    }

    /// Committed offsets of `group` (all of them when `wanted` is `None`).
    pub fn committed(
        &self,
        index: i32,
        leader_epoch: i32,
        group: &str,
    ) -> Result<BTreeMap<(String, i32), Committed>, i16> {
        self.shards.with_loaded(index, leader_epoch, |shard| {
            shard
                .offsets
                .get(group)
                .map(|o| o.iter().map(|(k, (c, _))| (k.clone(), c.clone())).collect())
                .unwrap_or_default()
        })
    }

    /// Groups of every loaded shard: (group id, protocol type, state name); a group known only by
    /// its committed offsets (a simple consumer's, or one loaded from the log) is `Empty` with no
    /// protocol type.
    pub fn list_groups(&self) -> Vec<(String, String, &'static str)> {
        let shards = self.shards.lock();
        shards
            .values()
            .filter(|s| s.loaded)
            .flat_map(|s| {
                let groups = s.state.groups.values().map(|g| {
                    (
                        g.id.clone(),
                        g.protocol_type.clone().unwrap_or_default(),
                        g.state.name(),
                    )
                });
                let offsets_only = s
                    .state
                    .offsets
                    .iter()
                    .filter(|(id, o)| !o.is_empty() && !s.state.groups.contains_key(*id))
                    .map(|(id, _)| (id.clone(), String::new(), GroupState::Empty.name()));
                groups.chain(offsets_only)
            })
            .collect()
    }

    /// Writes a commit's records to the offsets partition as leader and, once they are below the
    /// HW, applies them. Returns the error code for every entry (0 = committed).
    pub async fn commit(&self, host: &impl Host, plan: CommitPlan) -> i16 {
        let entries: Vec<(bytes::Bytes, Option<bytes::Bytes>)> = plan
            .entries
            .iter()
            .map(|(topic, p, c)| {
                (
                    records::commit_key(&plan.group, topic, *p),
                    Some(records::commit_value(c)),
                )
            })
            .collect();
        let base_offset = match self
            .append(host, plan.index, plan.leader_epoch, &entries, plan.producer)
            .await
        {
            Ok(base_offset) => base_offset,
            Err(code) => return code,
        };
        let immediately = host.group_config().txn_offsets_immediately;
        let applied = self
            .shards
            .with_loaded(plan.index, plan.leader_epoch, |shard| {
                apply_commit(shard, plan, base_offset, immediately)
            });
        applied.err().unwrap_or(0)
    }

    /// DeleteGroups of one group (Kafka's `GroupCoordinator.handleDeleteGroups`): a group with
    /// members or a rebalance going on is NON_EMPTY_GROUP, a group this coordinator knows neither
    /// as a group nor by committed offsets GROUP_ID_NOT_FOUND; else a tombstone for each of its
    /// committed offsets and for its group metadata is written (below the HW, as a commit), then
    /// the group and its offsets are forgotten. Returns the error code (0: deleted).
    pub async fn delete_group(&self, host: &impl Host, group: &str) -> i16 {
        let (index, leader_epoch) = match self.route(host, group) {
            Ok(routed) => routed,
            Err(code) => return code,
        };
        let found = self.shards.with_loaded(index, leader_epoch, |shard| {
            if let Some(g) = shard.groups.get_mut(group) {
                // Sessions that ended since the last periodic tick end now: Kafka expires a
                // member at its deadline exactly, not up to a tick later.
                g.tick(Instant::now());
                if !g.members.is_empty() || g.state != GroupState::Empty {
                    return Err(ResponseError::NonEmptyGroup.code());
                }
            }
            let offsets = shard.offsets.get(group);
            if !shard.groups.contains_key(group) && offsets.is_none_or(|o| o.is_empty()) {
                return Err(ResponseError::GroupIdNotFound.code());
            }
            Ok(offsets
                .map(|o| o.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default())
        });
        let keys = match found {
            Ok(Ok(keys)) => keys,
            Ok(Err(code)) | Err(code) => return code,
        };
        let mut entries: Vec<(bytes::Bytes, Option<bytes::Bytes>)> = keys
            .iter()
            .map(|(topic, p)| (records::commit_key(group, topic, *p), None))
            .collect();
        entries.push((records::group_metadata_key(group), None));
        let base_offset = match self.append(host, index, leader_epoch, &entries, None).await {
            Ok(base_offset) => base_offset,
            Err(code) => return code,
        };
        let removed = self.shards.with_loaded(index, leader_epoch, |shard| {
            // Offsets committed after the tombstones stay (their records are newer).
            if let Some(offsets) = shard.offsets.get_mut(group) {
                offsets.retain(|_, (_, log_offset)| *log_offset > base_offset);
                if offsets.is_empty() {
                    shard.offsets.remove(group);
                }
            }
            if shard.groups.get(group).is_some_and(Group::is_idle) {
                shard.groups.remove(group);
            }
        });
        tracing::info!(group, offsets = keys.len(), "group deleted");
        removed.err().unwrap_or(0)
    }

    /// OffsetDelete (KIP-496, Kafka's `handleDeleteOffsets`): tombstones for `partitions` of
    /// `group`'s committed offsets. An unknown group is GROUP_ID_NOT_FOUND; a group with members
    /// whose subscriptions cannot be read (not the `consumer` protocol type) NON_EMPTY_GROUP; a
    /// partition of a topic a member subscribes to keeps its offset and gets
    /// GROUP_SUBSCRIBED_TO_TOPIC. Returns the group's error code and one code per partition.
    pub async fn delete_offsets(
        &self,
        host: &impl Host,
        group: &str,
        partitions: &[(String, i32)],
    ) -> (i16, Vec<i16>) {
        let (index, leader_epoch) = match self.route(host, group) {
            Ok(routed) => routed,
            Err(code) => return (code, Vec::new()),
        };
        let checked = self.shards.with_loaded(index, leader_epoch, |shard| {
            if let Some(g) = shard.groups.get_mut(group) {
                g.tick(Instant::now());
            }
            let subscribed = match shard.groups.get(group) {
                Some(g) if !g.members.is_empty() => match g.subscribed_topics() {
                    Some(topics) => topics,
                    None => return Err(ResponseError::NonEmptyGroup.code()),
                },
                _ => Default::default(),
            };
            let offsets = shard.offsets.get(group);
            if !shard.groups.contains_key(group) && offsets.is_none_or(|o| o.is_empty()) {
                return Err(ResponseError::GroupIdNotFound.code());
            }
            Ok(partitions
                .iter()
                .map(|(topic, p)| {
                    if subscribed.contains(topic) {
                        (ResponseError::GroupSubscribedToTopic.code(), false)
                    } else {
                        let committed =
                            offsets.is_some_and(|o| o.contains_key(&(topic.clone(), *p)));
                        (0, committed)
                    }
                })
                .collect::<Vec<_>>())
        });
        let outcomes = match checked {
            Ok(Ok(outcomes)) => outcomes,
            Ok(Err(code)) | Err(code) => return (code, Vec::new()),
        };
        let doomed: Vec<(String, i32)> = partitions
            .iter()
            .zip(&outcomes)
            .filter(|(_, (_, committed))| *committed)
            .map(|(key, _)| key.clone())
            .collect();
        let codes = outcomes.iter().map(|(code, _)| *code).collect();
        if doomed.is_empty() {
            return (0, codes);
        }
        let entries: Vec<(bytes::Bytes, Option<bytes::Bytes>)> = doomed
            .iter()
            .map(|(topic, p)| (records::commit_key(group, topic, *p), None))
            .collect();
        let base_offset = match self.append(host, index, leader_epoch, &entries, None).await {
            Ok(base_offset) => base_offset,
            Err(code) => return (code, Vec::new()),
        };
        let removed = self.shards.with_loaded(index, leader_epoch, |shard| {
            if let Some(offsets) = shard.offsets.get_mut(group) {
                for key in &doomed {
                    if offsets.get(key).is_some_and(|(_, at)| *at < base_offset) {
                        offsets.remove(key);
                    }
                }
                if offsets.is_empty() {
                    shard.offsets.remove(group);
                }
            }
        });
        tracing::info!(
            group,
            partitions = doomed.len(),
            "committed offsets deleted"
        );
        match removed {
            Ok(()) => (0, codes),
            Err(code) => (code, Vec::new()),
        }
    }

    /// Writes a leader's assignment (the group metadata record) to offsets partition `index`
    /// and waits for it as for a commit; then the group's members get it, or the error
    /// (Kafka's `storeGroup` callback mapping: a timeout is REBALANCE_IN_PROGRESS).
    pub async fn store_group(
        &self,
        host: &impl Host,
        index: i32,
        leader_epoch: i32,
        group: &str,
        store: StoreAssignment,
    ) {
        let entries = [(
            records::group_metadata_key(group),
            Some(store.value.clone()),
        )];
        let code = match self.append(host, index, leader_epoch, &entries, None).await {
            Ok(_) => 0,
            Err(code) if code == ResponseError::RequestTimedOut.code() => {
                ResponseError::RebalanceInProgress.code()
            }
            Err(code) => code,
        };
        let now = Instant::now();
        let _ = self.with_group(index, leader_epoch, group, false, |g| {
            g.assignment_stored(store, code, now)
        });
    }

    /// Appends `entries` to offsets partition `index` as its leader in `leader_epoch` (a
    /// transactional batch of `producer`'s when given) and waits until they are below the HW
    /// (Kafka's `offsets.commit.required.acks = -1`). Returns the batch's base offset, or the
    /// error code the group APIs answer.
    async fn append(
        &self,
        host: &impl Host,
        index: i32,
        leader_epoch: i32,
        entries: &[(bytes::Bytes, Option<bytes::Bytes>)],
        producer: Option<(i64, i16)>,
    ) -> Result<i64, i16> {
        let Some(partition) = host.offsets_partition(index) else {
            return Err(ResponseError::NotCoordinator.code());
        };
        let now_ms = now_ms();
        let min_insync = usize::try_from(host.min_insync_replicas()).unwrap_or(1);
        let (base_offset, last_offset, epoch) = (|| -> Result<(i64, i64, i32), i16> {
            let mut bytes = records::build_batch(entries, now_ms).map_err(|e| {
                tracing::error!(error = %e, "cannot build an offsets batch");
                ResponseError::UnknownServerError.code()
            })?;
            if let Some((producer_id, producer_epoch)) = producer {
                let mut owned = bytes.to_vec();
                batch::set_attributes(&mut owned, batch::ATTRIBUTE_TRANSACTIONAL);
                batch::set_producer(&mut owned, producer_id, producer_epoch, -1, now_ms);
                bytes = owned.into();
            }
            let spans = batch::validate_records(&bytes, usize::MAX).map_err(|e| {
                tracing::error!(error = %e, "built an invalid offsets batch");
                ResponseError::UnknownServerError.code()
            })?;
            if partition.isr().len() < min_insync {
                return Err(ResponseError::CoordinatorNotAvailable.code());
            }
            let crate::partition::LeaderAppend {
                info,
                leader_epoch: epoch,
                ..
            } = partition
                .append_as_leader(&bytes, &spans)
                .map_err(|e| commit_error_code(&e))?;
            if epoch != leader_epoch {
                return Err(ResponseError::NotCoordinator.code());
            }
            Ok((info.base_offset, info.last_offset, epoch))
        })()?;
        // `offsets.commit.required.acks = 1` (a bug switch): answered once the own log has it.
        let local_only = host.group_config().commit_required_acks == 1 && producer.is_none();
        let waited = if local_only {
            HighWatermarkWait::Reached
        } else {
            wait(host, &partition, last_offset + 1, epoch).await
        };
        match waited {
            // Kafka: NOT_ENOUGH_REPLICAS_AFTER_APPEND becomes COORDINATOR_NOT_AVAILABLE.
            HighWatermarkWait::Reached if !local_only && partition.isr().len() < min_insync => {
                Err(ResponseError::CoordinatorNotAvailable.code())
            }
            HighWatermarkWait::Reached => Ok(base_offset),
            HighWatermarkWait::TimedOut => Err(ResponseError::RequestTimedOut.code()),
            HighWatermarkWait::NotLeader => Err(ResponseError::NotCoordinator.code()),
        }
    }

    /// A transaction marker of `producer_id` was written to offsets partition `index`: its
    /// pending transactional offsets take effect (commit) or are dropped (abort).
    pub fn txn_marker_written(&self, index: i32, producer_id: i64, commit: bool) {
        let mut shards = self.shards.lock();
        let Some(shard) = shards.get_mut(&index).filter(|s| s.loaded) else {
            return;
        };
        let shard = &mut shard.state;
        end_pending(
            &mut shard.offsets,
            &mut shard.pending_txn,
            producer_id,
            commit,
        );
    }

    /// Whether `group` has transactional offsets waiting for a marker for `(topic, partition)`
    /// (OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT then, KIP-447).
    pub fn has_pending_txn_offset(
        &self,
        index: i32,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> bool {
        let shards = self.shards.lock();
        shards.get(&index).is_some_and(|s| {
            s.state
                .pending_txn
                .values()
                .flatten()
                .any(|(g, t, p, _, _)| g == group && t == topic && *p == partition)
        })
    }

    /// The periodic task: follow offsets-partition leadership (load / unload), run group timers.
    pub fn tick(self: &Arc<Self>, host: &impl Host) {
        let now = Instant::now();
        let to_load = self
            .shards
            .follow(host.offsets_partitions(), |index, shard| {
                tracing::info!(
                    partition = index,
                    leader_epoch = shard.leader_epoch,
                    groups = shard.state.groups.len(),
                    "no longer coordinator for this offsets partition"
                );
            });
        for shard in self.shards.lock().values_mut().filter(|s| s.loaded) {
            for group in shard.state.groups.values_mut() {
                group.tick(now);
            }
            // An empty group with committed offsets stays (listed as Empty, deleted by
            // DeleteGroups), as in Kafka; one without any is forgotten.
            let offsets = &shard.state.offsets;
            shard
                .state
                .groups
                .retain(|id, g| !g.is_idle() || offsets.get(id).is_some_and(|o| !o.is_empty()));
        }
        for (index, partition, epoch) in to_load {
            let coordinator = Arc::clone(self);
            tokio::task::spawn_blocking(move || coordinator.load(index, &partition, epoch));
        }
    }

    /// Reads an offsets partition from its log start to its LEO into a new shard.
    fn load(&self, index: i32, partition: &Partition, leader_epoch: i32) {
        let started = Instant::now();
        let mut loaded = Offsets::default();
        let (mut records_read, mut skipped) = (0u64, 0u64);
        let complete = self.shards.read_log(index, partition, |span, bytes| {
            let (read_now, skipped_now) = load_batch(
                index,
                span,
                bytes,
                &mut loaded.offsets,
                &mut loaded.pending_txn,
            );
            records_read += read_now;
            skipped += skipped_now;
        });
        if !complete {
            return;
        }
        loaded.offsets.retain(|_, o| !o.is_empty());
        self.shards.install(index, leader_epoch, loaded, |shard| {
            tracing::info!(
                partition = index,
                leader_epoch,
                groups = shard.offsets.len(),
                records = records_read,
                batches_skipped = skipped,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "offsets partition loaded"
            );
        });
    }
}

/// Applies a written commit whose records start at `base_offset`: a transactional one waits for
/// its marker, any other takes effect — as does a transactional one with the bug switch
/// `transaction.offsets.visible = "immediately"` (`immediately`; a coordinator that loads the
/// partition later reads them as pending, as Kafka does).
fn apply_commit(shard: &mut Offsets, plan: CommitPlan, base_offset: i64, immediately: bool) {
    let entries = plan
        .entries
        .into_iter()
        .enumerate()
        .map(|(i, (topic, p, committed))| {
            (
                topic,
                p,
                committed,
                base_offset + i64::try_from(i).unwrap_or(0),
            )
        });
    if let Some((producer_id, _)) = plan.producer.filter(|_| !immediately) {
        let pending = shard.pending_txn.entry(producer_id).or_default();
        for (topic, p, committed, log_offset) in entries {
            if pending.len() < limits::OFFSETS_PER_GROUP_MAX {
                pending.push((plan.group.clone(), topic, p, committed, log_offset));
            }
        }
        return;
    }
    let group_offsets = shard.offsets.entry(plan.group.clone()).or_default();
    apply_offsets(&plan.group, group_offsets, entries);
}

/// Applies one batch of an offsets partition being loaded: committed offsets, transactional
/// offsets pending until their marker, and markers. Returns (records read, batches skipped).
fn load_batch(
    index: i32,
    span: &batch::BatchSpan,
    bytes: &[u8],
    loaded: &mut OffsetsByGroup,
    pending_txn: &mut PendingTxnOffsets,
) -> (u64, u64) {
    let (mut records_read, mut skipped) = (0u64, 0u64);
    let header = &span.header;
    if header.is_transactional() && header.is_control() {
        if let Some(marker) = crate::wire::control::marker_of(bytes) {
            let commit = marker == crate::wire::control::Marker::Commit;
            end_pending(loaded, pending_txn, header.producer_id, commit);
        }
        return (records_read, skipped);
    }
    if header.is_transactional() {
        if let Ok(decoded) = records::decode_batch(bytes) {
            let pending = pending_txn.entry(header.producer_id).or_default();
            for (record_offset, record) in decoded {
                if let records::OffsetsRecord::Commit {
                    group,
                    topic,
                    partition: p,
                    value: Some(c),
                } = record
                {
                    pending.push((group, topic, p, c, record_offset));
                }
            }
        }
        return (records_read, skipped);
    }
    match records::decode_batch(bytes) {
        Ok(decoded) => {
            for (record_offset, record) in decoded {
                records_read += 1;
                if let records::OffsetsRecord::Commit {
                    group,
                    topic,
                    partition: p,
                    value,
                } = record
                {
                    let group_offsets = loaded.entry(group).or_default();
                    match value {
                        Some(c) => {
                            if group_offsets.len() < limits::OFFSETS_PER_GROUP_MAX {
                                group_offsets.insert((topic, p), (c, record_offset));
                            }
                        }
                        None => {
                            group_offsets.remove(&(topic, p));
                        }
                    }
                }
            }
        }
        Err(e) => {
            skipped += 1;
            tracing::warn!(partition = index, batch_offset = span.header.base_offset, error = %e, "skipping an unreadable offsets batch");
        }
    }
    (records_read, skipped)
}

/// Ends `producer_id`'s pending transactional offsets: applied on commit, dropped on abort.
fn end_pending(
    offsets: &mut OffsetsByGroup,
    pending_txn: &mut PendingTxnOffsets,
    producer_id: i64,
    commit: bool,
) {
    let Some(pending) = pending_txn.remove(&producer_id) else {
        return;
    };
    if !commit {
        return;
    }
    for (group, topic, p, committed, log_offset) in pending {
        let group_offsets = offsets.entry(group.clone()).or_default();
        apply_offsets(&group, group_offsets, [(topic, p, committed, log_offset)]);
    }
}

/// Waits until `offset` is below the HW, at most `offsets.commit.timeout.ms`.
async fn wait(
    host: &impl Host,
    partition: &Partition,
    offset: i64,
    epoch: i32,
) -> HighWatermarkWait {
    let deadline = tokio::time::Instant::now()
        + Duration::from_millis(host.group_config().offsets_commit_timeout_ms);
    partition
        .wait_for_high_watermark(offset, epoch, deadline)
        .await
}

/// Validates a group id as Kafka does (non-empty), and bounds its length.
pub fn group_id_error(group: &str) -> Option<i16> {
    if group.is_empty() || group.len() > limits::GROUP_STRING_BYTES_MAX {
        Some(ResponseError::InvalidGroupId.code())
    } else {
        None
    }
}

/// The config a handler needs.
pub fn config(host: &impl Host) -> &GroupConfig {
    host.group_config()
}
