//! What the group coordinator ([`crate::group`], `__consumer_offsets`) and the transaction
//! coordinator ([`crate::txn`], `__transaction_state`) share: a key (a group id, a transactional
//! id) belongs to partition `abs(hash(key)) % N` of its internal topic ([`partition_for`]), the
//! broker leading that partition serves it, and that broker keeps the partition's state in memory
//! as one [`Shard`] per partition it leads. [`Shards`] routes a key to its shard
//! (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE otherwise), follows
//! the leadership of the topic's partitions (a new shard to load when this broker becomes leader
//! in a new epoch, the shard forgotten when it stops), reads a partition's log to load it, and
//! rate-limits the creation of the topic on first use (FindCoordinator creates it).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;

use crate::limits;
use crate::partition::{Partition, ReadUpTo, Role};
use crate::wire::batch::{self, BatchSpan};

/// Where a key is served when this broker coordinates it: its partition's index and leader
/// epoch. Otherwise an error code.
pub type Route = Result<(i32, i32), i16>;

/// Kafka's `abs(key.hashCode()) % partitions`: Java's String hash over UTF-16 code units, and
/// Kafka's `Utils.abs` (which maps `i32::MIN` to 0).
pub fn partition_for(key: &str, partition_count: i32) -> i32 {
    let mut hash: i32 = 0;
    for unit in key.encode_utf16() {
        hash = hash.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partition_count.max(1)
}

/// Milliseconds since the Unix epoch (record timestamps, transaction start times).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One internal-topic partition this broker leads, with the coordinator's state `S` of it.
#[derive(Debug)]
pub struct Shard<S> {
    pub leader_epoch: i32,
    /// The partition's log has been read into `state`; until then its keys are answered
    /// COORDINATOR_LOAD_IN_PROGRESS.
    pub loaded: bool,
    pub state: S,
}

/// A partition this broker has just become leader of: its shard is to be loaded.
pub type ToLoad = (i32, Arc<Partition>, i32);

/// The shards of the internal-topic partitions this broker leads, by partition index.
#[derive(Debug)]
pub struct Shards<S> {
    /// The topic's name, in log lines.
    topic: &'static str,
    shards: Mutex<BTreeMap<i32, Shard<S>>>,
    /// When this broker last asked for the topic to be created.
    last_create_attempt: Mutex<Option<Instant>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl<S: Default> Shards<S> {
    pub fn new(topic: &'static str) -> Shards<S> {
        Shards {
            topic,
            shards: Mutex::new(BTreeMap::new()),
            last_create_attempt: Mutex::new(None),
        }
    }

    /// Every shard, locked (the coordinator's own bookkeeping across shards).
    pub fn lock(&self) -> MutexGuard<'_, BTreeMap<i32, Shard<S>>> {
        lock(&self.shards)
    }

    /// Whether this broker may try to create the topic now (at most once a
    /// [`limits::OFFSETS_TOPIC_CREATE_RETRY_MS`]).
    pub fn may_create_topic(&self) -> bool {
        let mut last = lock(&self.last_create_attempt);
        let now = Instant::now();
        if last.is_some_and(|at| {
            now.duration_since(at) < Duration::from_millis(limits::OFFSETS_TOPIC_CREATE_RETRY_MS)
        }) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Where a (valid) `key` is served from this broker's point of view, given the topic's
    /// partition `count` (`None`: the topic does not exist yet) and this broker's replica of a
    /// partition.
    pub fn route(
        &self,
        key: &str,
        count: Option<i32>,
        replica: impl FnOnce(i32) -> Option<Arc<Partition>>,
    ) -> Route {
        let Some(count) = count else {
            return Err(ResponseError::CoordinatorNotAvailable.code());
        };
        let index = partition_for(key, count);
        let Some(partition) = replica(index) else {
            return Err(ResponseError::NotCoordinator.code());
        };
        let (role, _, leader_epoch) = partition.leadership();
        if role != Role::Leader {
            return Err(ResponseError::NotCoordinator.code());
        }
        match lock(&self.shards).get(&index) {
            Some(shard) if shard.leader_epoch == leader_epoch && shard.loaded => {
                Ok((index, leader_epoch))
            }
            // Loading, or leading but the coordinator has not noticed yet (next tick).
            _ => Err(ResponseError::CoordinatorLoadInProgress.code()),
        }
    }

    /// Runs `f` on the state of shard `index` if it is loaded in `leader_epoch`
    /// (NOT_COORDINATOR otherwise).
    pub fn with_loaded<T>(
        &self,
        index: i32,
        leader_epoch: i32,
        f: impl FnOnce(&mut S) -> T,
    ) -> Result<T, i16> {
        let mut shards = lock(&self.shards);
        let shard = shards
            .get_mut(&index)
            .filter(|s| s.leader_epoch == leader_epoch && s.loaded)
            .ok_or(ResponseError::NotCoordinator.code())?;
        Ok(f(&mut shard.state))
    }

    /// Follows the leadership of the topic's local `replicas`: forgets the shards of partitions
    /// this broker no longer leads in the shard's epoch (`forgotten` sees each before it goes)
    /// and returns the partitions it has become leader of, each with a new unloaded shard.
    pub fn follow(
        &self,
        replicas: Vec<(i32, Arc<Partition>)>,
        forgotten: impl Fn(i32, &Shard<S>),
    ) -> Vec<ToLoad> {
        let leading: BTreeMap<i32, (Arc<Partition>, i32)> = replicas
            .into_iter()
            .filter_map(|(i, p)| {
                let (role, _, epoch) = p.leadership();
                (role == Role::Leader).then_some((i, (p, epoch)))
            })
            .collect();
        let mut shards = lock(&self.shards);
        shards.retain(|index, shard| {
            let keep = leading
                .get(index)
                .is_some_and(|(_, epoch)| *epoch == shard.leader_epoch);
            if !keep {
                forgotten(*index, shard);
            }
            keep
        });
        let mut to_load = Vec::new();
        for (index, (partition, epoch)) in leading {
            if let std::collections::btree_map::Entry::Vacant(vacant) = shards.entry(index) {
                vacant.insert(Shard {
                    leader_epoch: epoch,
                    loaded: false,
                    state: S::default(),
                });
                tracing::info!(
                    topic = self.topic,
                    partition = index,
                    leader_epoch = epoch,
                    "loading an internal topic partition"
                );
                to_load.push((index, partition, epoch));
            }
        }
        to_load
    }

    /// Reads partition `index` from its log start to its LEO, handing `each` every batch (its
    /// span and bytes). Returns `false` when the log could not be read (leadership probably
    /// moved): the shard is forgotten and must not be installed.
    pub fn read_log(
        &self,
        index: i32,
        partition: &Partition,
        mut each: impl FnMut(&BatchSpan, &[u8]),
    ) -> bool {
        let end = partition.log_end_offset();
        let mut offset = partition.offsets().log_start_offset;
        while offset < end {
            let read = match partition.read(
                offset,
                limits::OFFSETS_LOAD_READ_BYTES,
                true,
                ReadUpTo::LogEnd,
            ) {
                Ok(read) if read.records.is_empty() => break,
                Ok(read) => read,
                Err(e) => {
                    tracing::warn!(topic = self.topic, partition = index, offset, error = %e, "cannot read an internal topic partition; loading stopped (leadership probably moved)");
                    lock(&self.shards).remove(&index);
                    return false;
                }
            };
            let spans = match batch::validate_records(&read.records, usize::MAX) {
                Ok(spans) => spans,
                Err(e) => {
                    tracing::error!(topic = self.topic, partition = index, offset, error = %e, "invalid batch in an internal topic partition; loading stopped there");
                    break;
                }
            };
            let Some(next) = spans.last().map(|s| s.header.next_offset()) else {
                break;
            };
            for span in &spans {
                each(
                    span,
                    &read.records[span.position..span.position + span.header.total_bytes],
                );
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
        true
    }

    /// Installs the `state` loaded for shard `index` if the shard still waits for it in
    /// `leader_epoch`; `installed` sees it then. A load that finishes after leadership moved is
    /// dropped.
    pub fn install(&self, index: i32, leader_epoch: i32, state: S, installed: impl FnOnce(&S)) {
        let mut shards = lock(&self.shards);
        match shards.get_mut(&index) {
            Some(shard) if shard.leader_epoch == leader_epoch && !shard.loaded => {
                shard.state = state;
                shard.loaded = true;
                installed(&shard.state);
            }
            _ => tracing::info!(
                topic = self.topic,
                partition = index,
                "internal topic load finished after leadership moved; dropped"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_string_hash_partitioning() {
        // "".hashCode() == 0; "a".hashCode() == 97; "group".hashCode() == 98629247.
        assert_eq!(partition_for("", 50), 0);
        assert_eq!(partition_for("a", 50), 97 % 50);
        assert_eq!(partition_for("group", 50), 98_629_247 % 50);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE → Utils.abs gives 0.
        assert_eq!(partition_for("polygenelubricants", 7), 0);
    }

    #[test]
    fn topic_creation_is_rate_limited() {
        let shards: Shards<()> = Shards::new("t");
        assert!(shards.may_create_topic());
        assert!(!shards.may_create_topic());
    }
}
