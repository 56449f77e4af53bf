//! A replica's side of retention: the topic's log settings applied, retention passes below its
//! HW, DeleteRecords on the leader, a follower following its leader's log start offset, and
//! the log cleaner's passes on a compacted topic.

use crate::config::LogConfig;
use crate::log::cleaner::Cleaned;
use crate::log::retention::Deleted;
use crate::log::LogError;
use crate::partition::{Partition, ReplicaError, Role};

impl Partition {
    pub fn log_start_offset(&self) -> i64 {
        self.stored().log.log_start_offset()
    }

    /// The log settings this replica applies (the broker's with its topic's configs over them).
    pub fn log_config(&self) -> LogConfig {
        self.stored().log.config()
    }

    pub fn set_log_config(&self, config: LogConfig) {
        self.stored().log.set_config(config);
    }

    /// Bytes of the replica's segments (DescribeLogDirs).
    pub fn size_bytes(&self) -> u64 {
        self.stored().log.size_bytes()
    }

    /// One retention pass at `now_ms`, below this replica's HW (Kafka's rule: a leader and
    /// its followers delete alike, none what is not committed).
    pub fn delete_retained(&self, now_ms: i64) -> Result<Vec<Deleted>, LogError> {
        let high_watermark = self.high_watermark();
        let deleted = self.stored().log.delete_retained(high_watermark, now_ms)?;
        if !deleted.is_empty() {
            self.signals.checkpoint_needed.notify_one();
        }
        Ok(deleted)
    }

    /// DeleteRecords on the leader: the log start offset moves to `offset` (-1: the HW), which
    /// may not pass the HW (OFFSET_OUT_OF_RANGE). Returns the new log start offset (the low
    /// watermark).
    pub fn delete_records(&self, offset: i64) -> Result<i64, ReplicaError> {
        if self.role() != Role::Leader {
            return Err(ReplicaError::NotLeader);
        }
        let high_watermark = self.high_watermark();
        let offset = if offset == -1 { high_watermark } else { offset };
        let mut stored = self.stored();
        if offset < 0 || offset > high_watermark {
            return Err(ReplicaError::Log(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: stored.log.log_start_offset(),
                log_end_offset: high_watermark,
            }));
        }
        stored
            .log
            .advance_log_start_offset(offset, high_watermark)?;
        let log_start_offset = stored.log.log_start_offset();
        drop(stored);
        Ok(log_start_offset)
    }

    /// A follower takes its leader's log start offset, up to its own HW (what it has that the
    /// leader committed).
    pub fn follow_log_start_offset(&self, leader_log_start_offset: i64) -> Result<(), LogError> {
        let high_watermark = self.high_watermark();
        let target = leader_log_start_offset.min(high_watermark);
        let mut stored = self.stored();
        if target <= stored.log.log_start_offset() {
            return Ok(());
        }
        stored
            .log
            .advance_log_start_offset(target, high_watermark)?;
        drop(stored);
        self.signals.checkpoint_needed.notify_one();
        Ok(())
    }

    /// A follower whose log ends below its leader's log start offset: it empties its log and
    /// starts it again there (Kafka's `truncateFullyAndStartAt`).
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), LogError> {
        let mut stored = self.stored();
        stored.log.truncate_fully_and_start_at(offset)?;
        stored.truncations += 1;
        stored.epochs.truncate_from_end(offset)?;
        (stored.producers, stored.txns) = super::rebuild_producers(&stored.log)?;
        self.high_watermark.send_if_modified(|hw| {
            if *hw != offset {
                *hw = offset;
                true
            } else {
                false
            }
        });
        drop(stored);
        self.signals.checkpoint_needed.notify_one();
        Ok(())
    }

    /// Sets the log start offset from the checkpoint at start.
    pub fn restore_log_start_offset(&self, checkpointed: i64) {
        self.stored().log.restore_log_start_offset(checkpointed);
    }
}

impl Partition {
    /// One log cleaner pass at `now_ms` on a compacted topic's replica, below its HW and its
    /// last stable offset (Kafka's rule: every replica cleans its own log, none what is not
    /// committed or not decided). The segments are read and rewritten without the lock; a
    /// truncation meanwhile makes the pass drop its copies.
    pub fn clean(&self, now_ms: i64) -> Result<Cleaned, LogError> {
        let upper_offset = self.last_stable_offset().min(self.high_watermark());
        let (plan, truncations) = {
            let mut stored = self.stored();
            (
                stored.log.clean_plan(upper_offset, now_ms)?,
                stored.truncations,
            )
        };
        let Some(plan) = plan else {
            return Ok(Cleaned::default());
        };
        let copies = plan.build(now_ms)?;
        let mut stored = self.stored();
        if stored.truncations != truncations {
            drop(stored);
            plan.discard(copies)?;
            return Ok(Cleaned::default());
        }
        stored.log.swap_cleaned(copies)
    }
}
