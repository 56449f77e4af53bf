//! Idempotent producers (KIP-98, without transactions): producer ids, and per partition each
//! producer's epoch and its last batches, for deduplication and sequence checks.
//!
//! - [`ProducerIds`] hands out producer ids for InitProducerId: `node id << 32 | counter`, the
//!   counter allocated durably in blocks (file [`PRODUCER_ID_BLOCK_FILE_NAME`]), so ids are unique
//!   across the brokers of a cluster (distinct node ids) and across restarts (a restart skips the
//!   rest of its block).
//! - [`ProducerStates`] is one partition's producer state, as Kafka's `ProducerStateManager`:
//!   per producer id the epoch and the last [`crate::limits::PRODUCER_BATCHES_KEPT`] batches
//!   (first and last sequence, first and last offset). The leader checks every idempotent batch
//!   before appending it ([`ProducerStates::check`]); leader, followers and recovery record every
//!   batch appended ([`ProducerStates::record`]). It is rebuilt from the batch headers of the log,
//!   never stored on its own (see [`crate::log::Log::scan_producer_batches`]).
//!
//! Kafka's rules (`ProducerAppendInfo.checkProducerEpoch` / `checkSequence`, Kafka >= 2.5):
//! - a batch whose epoch and sequence range equal one of the kept batches is a duplicate: it is
//!   answered with the original offsets and not appended again;
//! - an older epoch than the producer's is fenced (INVALID_PRODUCER_EPOCH);
//! - a newer epoch must start at sequence 0 (else OUT_OF_ORDER_SEQUENCE_NUMBER);
//! - the same epoch must continue at last sequence + 1 (else OUT_OF_ORDER_SEQUENCE_NUMBER);
//! - a producer id the partition has no state for is accepted at any sequence (KIP-360: the
//!   state may have been removed with the log; UNKNOWN_PRODUCER_ID is no longer returned).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use crate::limits;
use crate::wire::batch::{increment_sequence, BatchHeader};

/// What the leader logs (at info) for each retried batch it recognised as a duplicate and
/// answered with the original offsets; `kaos run` counts these lines per node.
pub const DUPLICATE_BATCH_LOG_LINE: &str = "recognised a retried batch as a duplicate";

/// File in the data dir holding the end of the last producer-id block allocated on this node.
pub const PRODUCER_ID_BLOCK_FILE_NAME: &str = "producer-id-block";

/// One batch a producer wrote, as kept for deduplication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// The producer fields of one appended batch (from its header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerAppend {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub batch: ProducerBatch,
}

impl ProducerAppend {
    /// The producer fields of a batch header placed at `base_offset`, if it has a producer id.
    /// Markers (control batches) and the transactional offset commits a group coordinator
    /// writes (no sequence) carry a producer id but no sequence to check: `None` for them too.
    pub fn of(header: &BatchHeader, base_offset: i64) -> Option<ProducerAppend> {
        if !header.has_producer_id()
            || header.is_control()
            || (header.is_transactional() && header.base_sequence < 0)
        {
            return None;
        }
        Some(ProducerAppend {
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            batch: ProducerBatch {
                first_sequence: header.base_sequence,
                last_sequence: header.last_sequence(),
                first_offset: base_offset,
                last_offset: base_offset + i64::from(header.last_offset_delta),
            },
        })
    }
}

/// One producer's state in one partition.
#[derive(Debug, Clone, Default)]
struct ProducerEntry {
    epoch: i16,
    /// Oldest first; at most [`limits::PRODUCER_BATCHES_KEPT`].
    batches: VecDeque<ProducerBatch>,
}

impl ProducerEntry {
    fn last_offset(&self) -> i64 {
        self.batches.back().map_or(-1, |b| b.last_offset)
    }
}

/// What the leader does with an idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Append it.
    Append,
    /// Already in the log at these offsets: answer with them, append nothing.
    Duplicate(ProducerBatch),
}

/// Why the leader refuses an idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    #[error("producer {producer_id}: epoch {given} is older than the current epoch {current}")]
    FencedEpoch {
        producer_id: i64,
        given: i16,
        current: i16,
    },
    #[error("producer {producer_id} epoch {epoch}: sequence {given} does not follow {last} (out of order)")]
    OutOfOrder {
        producer_id: i64,
        epoch: i16,
        given: i32,
        last: i32,
    },
    #[error("producer {producer_id}: new epoch {epoch} must start at sequence 0, not {given}")]
    NewEpochNotAtZero {
        producer_id: i64,
        epoch: i16,
        given: i32,
    },
    #[error("producer {producer_id}: invalid epoch {epoch} or sequence {sequence}")]
    Invalid {
        producer_id: i64,
        epoch: i16,
        sequence: i32,
    },
}

/// Per partition: every known producer's epoch and last batches.
#[derive(Debug, Default, Clone)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStates {
    pub fn new() -> ProducerStates {
        ProducerStates::default()
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The epoch and the kept batches of `producer_id` (tests, debugging).
    pub fn entry(&self, producer_id: i64) -> Option<(i16, Vec<ProducerBatch>)> {
        self.producers
            .get(&producer_id)
            .map(|e| (e.epoch, e.batches.iter().copied().collect()))
    }

    /// Leader: checks a client's batch against the state. `pending` are batches of the same
    /// request checked before this one and not yet recorded (a request may hold several).
    /// `window`: how many of the producer's last batches a retry is recognised among (5, as
    /// Kafka; 1 is the bug switch `producer.state.batches.retained`, Kafka 0.11's broker).
    pub fn check(
        &self,
        header: &BatchHeader,
        pending: &[ProducerAppend],
        window: usize,
    ) -> Result<Check, ProducerError> {
        let producer_id = header.producer_id;
        let epoch = header.producer_epoch;
        let first = header.base_sequence;
        if epoch < 0 || first < 0 {
            return Err(ProducerError::Invalid {
                producer_id,
                epoch,
                sequence: first,
            });
        }
        // The state as it would be after the pending batches of this request.
        let mut entry = self.producers.get(&producer_id).cloned();
        for p in pending.iter().filter(|p| p.producer_id == producer_id) {
            apply(entry.get_or_insert_with(ProducerEntry::default), p);
        }
        let Some(entry) = entry else {
            return Ok(Check::Append);
        };
        let last = header.last_sequence();
        if epoch == entry.epoch {
            if let Some(duplicate) = entry
                .batches
                .iter()
                .rev()
                .take(window)
                .find(|b| b.first_sequence == first && b.last_sequence == last)
            {
                return Ok(Check::Duplicate(*duplicate));
            }
        }
        if epoch < entry.epoch {
            return Err(ProducerError::FencedEpoch {
                producer_id,
                given: epoch,
                current: entry.epoch,
            });
        }
        if epoch > entry.epoch {
            if first != 0 {
                return Err(ProducerError::NewEpochNotAtZero {
                    producer_id,
                    epoch,
                    given: first,
                });
            }
            return Ok(Check::Append);
        }
        match entry.batches.back() {
            // Same epoch but no batch kept (cannot happen once a batch was recorded): accept.
            None => Ok(Check::Append),
            Some(previous) if increment_sequence(previous.last_sequence, 1) == first => {
                Ok(Check::Append)
            }
            Some(previous) => Err(ProducerError::OutOfOrder {
                producer_id,
                epoch,
                given: first,
                last: previous.last_sequence,
            }),
        }
    }

    /// Whether a leader may record `append`: it continues the producer's sequence in its epoch
    /// at higher offsets, or starts a new epoch at 0 (the pair of [`ProducerStates::check`], as
    /// the batch is recorded). Replicated and recovered batches are recorded without it: a log
    /// may hold a gap where a leader had forgotten the producer (KIP-360).
    pub fn continues(&self, append: &ProducerAppend) -> Result<(), crate::invariant::Violation> {
        let previous =
            self.producers
                .get(&append.producer_id)
                .map(|entry| crate::invariant::ProducerLast {
                    epoch: entry.epoch,
                    last: entry
                        .batches
                        .back()
                        .map(|b| (b.last_sequence, b.last_offset)),
                });
        crate::invariant::sequence_continues(
            append.producer_id,
            previous,
            append.producer_epoch,
            append.batch.first_sequence,
            append.batch.first_offset,
        )
    }

    /// Records an appended batch (leader after its checks, follower, recovery): no checks, as
    /// Kafka does for replicated batches. Keeps at most [`limits::PRODUCERS_PER_PARTITION_MAX`]
    /// producers, forgetting the one whose last batch is oldest.
    pub fn record(&mut self, append: &ProducerAppend) {
        if !self.producers.contains_key(&append.producer_id)
            && self.producers.len() >= limits::PRODUCERS_PER_PARTITION_MAX
        {
            if let Some(oldest) = self
                .producers
                .iter()
                .min_by_key(|(_, e)| e.last_offset())
                .map(|(id, _)| *id)
            {
                self.producers.remove(&oldest);
            }
        }
        apply(
            self.producers.entry(append.producer_id).or_default(),
            append,
        );
    }
}

impl ProducerStates {
    /// Records a transaction marker of `producer_id` in `producer_epoch`: a newer epoch (the
    /// coordinator fenced the producer, or bumped it on a timeout) replaces the producer's, so
    /// that its older epoch is fenced from now on; the sequence restarts in the new epoch.
    pub fn record_marker(&mut self, producer_id: i64, producer_epoch: i16) {
        let full = self.producers.len() >= limits::PRODUCERS_PER_PARTITION_MAX;
        match self.producers.get_mut(&producer_id) {
            Some(entry) if entry.epoch >= producer_epoch => {}
            Some(entry) => {
                entry.epoch = producer_epoch;
                entry.batches.clear();
            }
            None if full => {}
            None => {
                self.producers.insert(
                    producer_id,
                    ProducerEntry {
                        epoch: producer_epoch,
                        batches: VecDeque::new(),
                    },
                );
            }
        }
    }

    /// The epoch this partition knows for `producer_id`.
    pub fn epoch(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|e| e.epoch)
    }
}

fn apply(entry: &mut ProducerEntry, append: &ProducerAppend) {
    if entry.epoch != append.producer_epoch {
        entry.epoch = append.producer_epoch;
        entry.batches.clear();
    }
    if entry.batches.len() >= limits::PRODUCER_BATCHES_KEPT {
        entry.batches.pop_front();
    }
    entry.batches.push_back(append.batch);
}

/// Why producer ids cannot be handed out.
#[derive(Debug, thiserror::Error)]
pub enum ProducerIdError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("node {node_id} has used up its 2^32 producer ids")]
    Exhausted { node_id: i32 },
}

/// Producer ids of this node: `node_id << 32 | counter`; the counter's block end is durable.
#[derive(Debug)]
pub struct ProducerIds {
    node_id: i32,
    path: PathBuf,
    next: u64,
    block_end: u64,
}

impl ProducerIds {
    /// Opens the allocator of `data_dir`: the next id is the end of the last block allocated
    /// (ids of a block half used before a crash or restart are never handed out again).
    pub fn open(data_dir: &Path, node_id: i32) -> Result<ProducerIds, ProducerIdError> {
        let path = data_dir.join(PRODUCER_ID_BLOCK_FILE_NAME);
        let block_end = match std::fs::read(&path) {
            Ok(bytes) if bytes.len() <= 64 => {
                let text = String::from_utf8_lossy(&bytes);
                text.trim().parse::<u64>().map_err(|e| ProducerIdError::Corrupt {
                    path: path.clone(),
                    message: format!("not a counter ({e}); remove it only if this node's data dir is wiped too"),
                })?
            }
            Ok(_) => {
                return Err(ProducerIdError::Corrupt {
                    path,
                    message: "longer than a counter".into(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(ProducerIdError::Io { path, source }),
        };
        Ok(ProducerIds {
            node_id,
            path,
            next: block_end,
            block_end,
        })
    }

    /// A producer id never handed out before by any node (given distinct node ids).
    pub fn next_id(&mut self) -> Result<i64, ProducerIdError> {
        if self.next >= 1 << 32 {
            return Err(ProducerIdError::Exhausted {
                node_id: self.node_id,
            });
        }
        if self.next >= self.block_end {
            let block_end = (self.next + limits::PRODUCER_ID_BLOCK_SIZE).min(1 << 32);
            self.persist(block_end)?;
            self.block_end = block_end;
        }
        let counter = self.next;
        self.next += 1;
        Ok((i64::from(self.node_id) << 32) | counter as i64)
    }

    fn persist(&self, block_end: u64) -> Result<(), ProducerIdError> {
        let io = |source| ProducerIdError::Io {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        std::io::Write::write_all(&mut file, format!("{block_end}\n").as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::batch::{build_producer_batch, validate_batch};

    fn header(producer_id: i64, epoch: i16, sequence: i32, count: usize) -> BatchHeader {
        let values: Vec<&[u8]> = vec![b"v"; count];
        validate_batch(
            &build_producer_batch(0, 1, &values, producer_id, epoch, sequence),
            1 << 20,
        )
        .expect("valid")
    }

    fn append(states: &mut ProducerStates, h: &BatchHeader, base_offset: i64) {
        states.record(&ProducerAppend::of(h, base_offset).expect("idempotent"));
    }

    #[test]
    fn duplicates_gaps_and_epochs() {
        let mut states = ProducerStates::new();
        // Unknown producer: any sequence is accepted (KIP-360).
        assert_eq!(
            states.check(&header(5, 0, 7, 2), &[], limits::PRODUCER_BATCHES_KEPT),
            Ok(Check::Append)
        );
        let mut offset = 0;
        for sequence in (0..20).step_by(2) {
            let h = header(5, 0, sequence, 2);
            assert_eq!(
                states.check(&h, &[], limits::PRODUCER_BATCHES_KEPT),
                Ok(Check::Append),
                "seq {sequence}"
            );
            append(&mut states, &h, offset);
            offset += 2;
        }
        // The last five batches are duplicates, with their offsets.
        for (i, sequence) in (10..20).step_by(2).enumerate() {
            let Ok(Check::Duplicate(batch)) = states.check(
                &header(5, 0, sequence, 2),
                &[],
                limits::PRODUCER_BATCHES_KEPT,
            ) else {
                panic!("seq {sequence} not a duplicate");
            };
            assert_eq!(batch.first_offset, 10 + 2 * i as i64);
            assert_eq!(batch.last_offset, 11 + 2 * i as i64);
        }
        // Older than the window, or a gap: out of order.
        assert!(matches!(
            states.check(&header(5, 0, 8, 2), &[], limits::PRODUCER_BATCHES_KEPT),
            Err(ProducerError::OutOfOrder { .. })
        ));
        assert!(matches!(
            states.check(&header(5, 0, 21, 1), &[], limits::PRODUCER_BATCHES_KEPT),
            Err(ProducerError::OutOfOrder { .. })
        ));
        // Same first sequence, other length: not a duplicate.
        assert!(matches!(
            states.check(&header(5, 0, 18, 1), &[], limits::PRODUCER_BATCHES_KEPT),
            Err(ProducerError::OutOfOrder { .. })
        ));
        // A new epoch starts at 0; an old epoch is fenced.
        assert!(matches!(
            states.check(&header(5, 1, 3, 1), &[], limits::PRODUCER_BATCHES_KEPT),
            Err(ProducerError::NewEpochNotAtZero { .. })
        ));
        let bumped = header(5, 1, 0, 1);
        assert_eq!(
            states.check(&bumped, &[], limits::PRODUCER_BATCHES_KEPT),
            Ok(Check::Append)
        );
        append(&mut states, &bumped, offset);
        assert!(matches!(
            states.check(&header(5, 0, 20, 1), &[], limits::PRODUCER_BATCHES_KEPT),
            Err(ProducerError::FencedEpoch { .. })
        ));
        assert_eq!(states.entry(5).expect("known").1.len(), 1);
        // Pending batches of the same request count.
        let next = header(5, 1, 1, 1);
        let pending = [ProducerAppend::of(&next, offset + 1).expect("idempotent")];
        assert!(matches!(
            states.check(&next, &pending, limits::PRODUCER_BATCHES_KEPT),
            Ok(Check::Duplicate(_))
        ));
        assert_eq!(
            states.check(&header(5, 1, 2, 1), &pending, limits::PRODUCER_BATCHES_KEPT),
            Ok(Check::Append)
        );
    }

    #[test]
    fn with_a_window_of_one_only_the_last_batch_is_recognised() {
        let mut states = ProducerStates::new();
        for (i, sequence) in (0..10).step_by(2).enumerate() {
            append(&mut states, &header(5, 0, sequence, 2), 2 * i as i64);
        }
        // Kafka 0.11's broker (the bug switch): the retry of the batch before the last is not
        // recognised, and does not continue the sequence either.
        assert!(matches!(
            states.check(&header(5, 0, 8, 2), &[], 1),
            Ok(Check::Duplicate(b)) if b.first_offset == 8
        ));
        assert!(matches!(
            states.check(&header(5, 0, 6, 2), &[], 1),
            Err(ProducerError::OutOfOrder { .. })
        ));
        assert!(matches!(
            states.check(&header(5, 0, 6, 2), &[], limits::PRODUCER_BATCHES_KEPT),
            Ok(Check::Duplicate(b)) if b.first_offset == 6
        ));
    }

    #[test]
    fn a_leader_records_only_batches_that_continue_the_sequence() {
        let mut states = ProducerStates::new();
        let of = |h: &BatchHeader, offset| ProducerAppend::of(h, offset).expect("idempotent");
        // Unknown producer: any sequence (KIP-360).
        assert_eq!(states.continues(&of(&header(5, 0, 7, 2), 0)), Ok(()));
        append(&mut states, &header(5, 0, 7, 2), 0);
        assert_eq!(states.continues(&of(&header(5, 0, 9, 1), 2)), Ok(()));
        assert_eq!(states.continues(&of(&header(5, 1, 0, 1), 2)), Ok(()));
        for (bad, offset) in [
            (header(5, 0, 10, 1), 2), // a gap
            (header(5, 0, 7, 2), 2),  // a repeat
            (header(5, 0, 9, 1), 1),  // an offset below the last
            (header(5, 1, 3, 1), 2),  // a new epoch not at 0
        ] {
            let violation = states.continues(&of(&bad, offset)).expect_err("refused");
            assert_eq!(
                violation.invariant,
                crate::invariant::Invariant::ProducerSequenceContinuous,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn producer_ids_are_unique_across_restarts_and_nodes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ids = std::collections::BTreeSet::new();
        for _ in 0..3 {
            let mut node = ProducerIds::open(dir.path(), 2).expect("open");
            for _ in 0..5 {
                assert!(ids.insert(node.next_id().expect("id")));
            }
        }
        let other = tempfile::tempdir().expect("tempdir");
        let id = ProducerIds::open(other.path(), 3)
            .expect("open")
            .next_id()
            .expect("id");
        assert!(ids.insert(id));
        assert!(ids.iter().all(|&id| id >= 0));
        std::fs::write(dir.path().join(PRODUCER_ID_BLOCK_FILE_NAME), "garbage").expect("write");
        assert!(matches!(
            ProducerIds::open(dir.path(), 2),
            Err(ProducerIdError::Corrupt { .. })
        ));
    }
}
