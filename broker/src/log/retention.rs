//! Retention: the log start offset and the deletion of old segments, as Kafka's `UnifiedLog`
//! does them. The log start offset only moves up (retention, DeleteRecords, a leader's log start
//! followed by a replica); whole segments below it are deleted; time retention (`retention.ms`,
//! by each segment's largest record timestamp) and size retention (`retention.bytes`) delete the
//! oldest segments, never one holding an offset at or above the high watermark. When every
//! segment goes, an empty one is rolled at the log end first, so the log keeps its end offset.

use crate::config::LogConfig;
use crate::log::segment::Segment;
use crate::log::{sync_dir, Log, LogError, LogState};

/// Why segments were deleted (the log line's reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breach {
    LogStartOffset,
    RetentionTime,
    RetentionSize,
}

/// What one retention pass deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    pub segments: usize,
    pub bytes: u64,
    pub log_start_offset: i64,
    pub reason: Breach,
}

impl Log {
    /// The settings this log applies now (a topic config change replaces them).
    pub fn config(&self) -> LogConfig {
        self.config
    }

    /// Applies new settings (a topic config changed): they hold from the next append or
    /// retention pass.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// Bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size_bytes).sum()
    }

    /// Moves the log start offset up to `offset` (capped at the LEO; never down) and deletes the
    /// segments wholly below it up to `high_watermark`. Returns what was deleted, if anything.
    pub fn advance_log_start_offset(
        &mut self,
        offset: i64,
        high_watermark: i64,
    ) -> Result<Option<Deleted>, LogError> {
        self.writable()?;
        let offset = offset.min(self.log_end_offset());
        if offset > self.log_start_offset {
            tracing::info!(dir = %self.dir.display(), from = self.log_start_offset, to = offset, "log start offset moved");
            self.log_start_offset = offset;
        }
        let start = self.log_start_offset;
        self.delete_oldest(high_watermark, Breach::LogStartOffset, |segment, _| {
            Ok(segment.next_offset <= start)
        })
    }

    /// One retention pass at wall-clock time `now_ms`: segments below the log start offset,
    /// then those older than `retention.ms`, then those over `retention.bytes`.
    pub fn delete_retained(
        &mut self,
        high_watermark: i64,
        now_ms: i64,
    ) -> Result<Vec<Deleted>, LogError> {
        let mut done = Vec::new();
        done.extend(self.advance_log_start_offset(self.log_start_offset, high_watermark)?);
        let retention_ms = self.config.retention_ms;
        if retention_ms >= 0 {
            let deleted =
                self.delete_oldest(high_watermark, Breach::RetentionTime, |segment, _| {
                    Ok(now_ms.saturating_sub(segment.largest_timestamp()?) > retention_ms)
                })?;
            done.extend(deleted);
        }
        let retention_bytes = self.config.retention_bytes;
        if retention_bytes >= 0 {
            let mut over = i128::from(self.size_bytes()) - i128::from(retention_bytes);
            let deleted =
                self.delete_oldest(high_watermark, Breach::RetentionSize, |segment, _| {
                    let size = i128::from(segment.size_bytes);
                    if over - size >= 0 {
                        over -= size;
                        Ok(true)
                    } else {
                        Ok(false)
                    }
                })?;
            done.extend(deleted);
        }
        Ok(done)
    }

    /// Empties the log and starts it again at `offset` (a follower whose log ends below its
    /// leader's log start offset: what it lacks is gone from the leader).
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), LogError> {
        self.writable()?;
        let fresh = Segment::create(&self.dir, offset)?;
        for segment in std::mem::take(&mut self.segments) {
            if segment.base_offset != offset {
                segment.delete_files()?;
            }
        }
        self.segments.push(fresh);
        sync_dir(&self.dir)?;
        self.log_start_offset = offset;
        self.recovery_point = offset;
        self.unflushed_messages = 0;
        tracing::warn!(dir = %self.dir.display(), offset, "log emptied and restarted at the leader's log start offset");
        Ok(())
    }

    /// Sets the log start offset read from the checkpoint at start: within the first segment's
    /// base and the LEO.
    pub fn restore_log_start_offset(&mut self, checkpointed: i64) {
        let first = self.segments.first().map_or(0, |s| s.base_offset);
        self.log_start_offset = checkpointed.clamp(first, self.log_end_offset().max(first));
    }

    pub(super) fn writable(&self) -> Result<(), LogError> {
        match self.state {
            LogState::Open => Ok(()),
            LogState::Closed => Err(LogError::Closed),
            LogState::Failed => Err(LogError::Failed),
        }
    }

    /// Deletes the oldest segments while `deletable` says so of each, in order, stopping at the
    /// first it refuses, at one holding the high watermark or above, and at an empty active one.
    fn delete_oldest(
        &mut self,
        high_watermark: i64,
        reason: Breach,
        mut deletable: impl FnMut(&mut Segment, bool) -> Result<bool, LogError>,
    ) -> Result<Option<Deleted>, LogError> {
        let count = self.segments.len();
        let mut take = 0;
        while take < count {
            let is_last = take + 1 == count;
            let segment = &mut self.segments[take];
            if segment.next_offset > high_watermark || (is_last && segment.is_empty()) {
                break;
            }
            if !deletable(segment, is_last)? {
                break;
            }
            take += 1;
        }
        if take == 0 {
            return Ok(None);
        }
        if take == count {
            // Kafka's rule: the log never loses its end; an empty active segment takes over.
            let next_offset = self.log_end_offset();
            self.segments.push(Segment::create(&self.dir, next_offset)?);
        }
        let mut bytes = 0;
        for segment in self.segments.drain(..take) {
            bytes += segment.size_bytes;
            segment.delete_files()?;
        }
        sync_dir(&self.dir)?;
        let first = self.segments.first().map_or(0, |s| s.base_offset);
        self.log_start_offset = self.log_start_offset.max(first);
        self.recovery_point = self.recovery_point.max(first);
        let deleted = Deleted {
            segments: take,
            bytes,
            log_start_offset: self.log_start_offset,
            reason,
        };
        tracing::info!(dir = %self.dir.display(), segments = take, bytes, log_start_offset = self.log_start_offset, ?reason, "deleted old segments");
        Ok(Some(deleted))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::LogConfig;
    use crate::log::Log;
    use crate::wire::batch::{build_batch, validate_records};

    fn open(dir: &std::path::Path, config: LogConfig) -> Log {
        Log::open(dir, config, 0, false).expect("open").0
    }

    /// Appends one record batch with max timestamp `timestamp_ms`.
    fn append_at(log: &mut Log, timestamp_ms: i64) {
        let records = build_batch(0, timestamp_ms, &[&[b'v'; 200]]);
        let spans = validate_records(&records, 1 << 20).expect("valid");
        log.append(&records, &spans, 0).expect("append");
    }

    fn small(retention_ms: i64, retention_bytes: i64) -> LogConfig {
        LogConfig {
            segment_bytes: 1024,
            index_interval_bytes: 100,
            retention_ms,
            retention_bytes,
            ..LogConfig::default()
        }
    }

    #[test]
    fn size_retention_deletes_whole_segments_below_the_high_watermark_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small(-1, 2048));
        for _ in 0..40 {
            append_at(&mut log, 1_000);
        }
        let leo = log.log_end_offset();
        assert!(log.segment_count() > 4);
        // Nothing at or above the HW goes: with HW 0 nothing does.
        assert!(log.delete_retained(0, 2_000).expect("pass").is_empty());
        let done = log.delete_retained(leo, 2_000).expect("pass");
        assert_eq!(done.len(), 1, "{done:?}");
        assert!(
            log.size_bytes() >= 2048 && log.size_bytes() < 2048 + 1024,
            "{}",
            log.size_bytes()
        );
        assert_eq!(log.log_start_offset(), done[0].log_start_offset);
        assert!(log.log_start_offset() > 0);
        assert_eq!(log.log_end_offset(), leo);
        // Below the log start: out of range; at it: readable.
        let start = log.log_start_offset();
        assert!(log.read_plan(start - 1, 1 << 20, leo).is_err());
        assert!(
            log.read_plan(start, 1 << 20, leo)
                .expect("plan")
                .len_bytes()
                > 0
        );
        drop(log);
        // Reopened, the log starts at its first segment.
        let log = open(dir.path(), small(-1, 2048));
        assert_eq!(log.log_start_offset(), start);
    }

    #[test]
    fn time_retention_deletes_old_segments_and_rolls_when_everything_goes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small(10_000, -1));
        for _ in 0..12 {
            append_at(&mut log, 1_000);
        }
        let old_end = log.log_end_offset();
        for _ in 0..12 {
            append_at(&mut log, 50_000);
        }
        let leo = log.log_end_offset();
        let done = log.delete_retained(leo, 30_000).expect("pass");
        assert_eq!(done.len(), 1);
        assert!(log.log_start_offset() <= old_end && log.log_start_offset() > 0);
        // Everything old: every segment goes, an empty one at the LEO remains.
        log.delete_retained(leo, 100_000).expect("pass");
        assert_eq!(log.segment_count(), 1);
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (leo, leo));
        append_at(&mut log, 100_000);
        assert_eq!(log.log_end_offset(), leo + 1);
    }

    #[test]
    fn the_log_start_offset_moves_inside_a_segment_and_never_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small(-1, -1));
        for _ in 0..20 {
            append_at(&mut log, 1_000);
        }
        let deleted = log.advance_log_start_offset(7, 20).expect("advance");
        assert_eq!(log.log_start_offset(), 7);
        assert!(deleted.is_some(), "the segments wholly below 7 go");
        assert!(log.read_plan(6, 1 << 20, 20).is_err());
        assert!(log
            .advance_log_start_offset(3, 20)
            .expect("no-op")
            .is_none());
        assert_eq!(log.log_start_offset(), 7);
        // Restored from a checkpoint after a restart.
        drop(log);
        let mut log = open(dir.path(), small(-1, -1));
        assert!(log.log_start_offset() <= 7);
        log.restore_log_start_offset(7);
        assert_eq!(log.log_start_offset(), 7);
        log.truncate_fully_and_start_at(40).expect("restart");
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (40, 40));
        append_at(&mut log, 1_000);
        assert_eq!(log.log_end_offset(), 41);
    }
}
