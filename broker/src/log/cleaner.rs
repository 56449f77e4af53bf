//! Compaction: Kafka's log cleaner for a log whose `cleanup.policy` includes `compact`. A pass
//! keeps, in the closed segments below its upper offset (the replica's HW and LSO, the recovery
//! point, the active segment's base, and `min.compaction.lag.ms`), the latest record of each key;
//! tombstones (null values) go once their segment's newest record is older than
//! `delete.retention.ms` (Kafka before KIP-534 timed them by the segment's last modification;
//! KAFKA-4529 was a tombstone removed too early).
//!
//! What it keeps as Kafka does: offsets (a batch keeps its base offset and last offset delta, so
//! the records left leave gaps), the order, transactional and control batches as written (this
//! cleaner never removes them nor lets them supersede a record: an aborted write must not make a
//! committed value look stale), and the headers of batches whose records all went (Kafka keeps a
//! producer's last batch so, KAFKA-17076 its last batch per pass; kaos keeps every such batch
//! empty, so that batch offsets stay contiguous, which the log's read-back invariants check).
//! Keyless records are removed (Kafka counts them invalid). A rewritten batch is stored
//! uncompressed.
//!
//! Three steps, so that appends and reads go on while it works: [`Log::clean_plan`] (under the
//! partition's lock: which segments, and whether the dirty ratio asks for a pass),
//! [`CleanPlan::build`] (no lock: reads the segments through their open files, maps each key to
//! its latest offset, writes each segment's cleaned copy as `<base>.log.cleaned` and fsyncs it)
//! and [`Log::swap_cleaned`] (under the lock: each segment still as planned is replaced — its
//! index removed, the cleaned file renamed over the log, read back batch by batch into a new
//! index — and the directory fsynced). A crash at any point leaves each segment old or cleaned,
//! never torn, and never without the latest record of a key: a `.cleaned` file left behind is
//! removed at open, a missing index is rebuilt from its segment.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::limits;
use crate::log::index::OffsetIndex;
use crate::log::segment::{self, Segment};
use crate::log::{io_err, remove_if_present, sync_dir, Log, LogError, CLEANED_SUFFIX};
use crate::wire::batch::{self, BatchHeader, BATCH_HEADER_BYTES};
use crate::wire::records;

/// One closed segment a pass cleans, as planned under the lock.
#[derive(Debug)]
struct Planned {
    base_offset: i64,
    next_offset: i64,
    size_bytes: u64,
    largest_timestamp: i64,
    file: Arc<File>,
    log_path: PathBuf,
}

/// The segments of one pass, read and rewritten outside the lock by [`CleanPlan::build`].
#[derive(Debug)]
pub struct CleanPlan {
    dir: PathBuf,
    segments: Vec<Planned>,
    delete_retention_ms: i64,
    key_hash_bytes: u8,
}

/// A segment's cleaned copy, fsynced, waiting for [`Log::swap_cleaned`].
#[derive(Debug)]
pub struct CleanedSegment {
    base_offset: i64,
    next_offset: i64,
    planned_size_bytes: u64,
    /// `None`: the pass removed nothing from the segment, which stays as it is.
    path: Option<PathBuf>,
    size_bytes: u64,
    records_removed: u64,
    tombstones_removed: u64,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleaned {
    pub segments: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
    pub tombstones_removed: u64,
}

/// The key the offset map stores for a record key: the key itself, or (the bug switch
/// `log.cleaner.key.hash.bytes`) that many bytes of its 64-bit FNV-1a hash.
fn map_key(key: &[u8], hash_bytes: u8) -> Vec<u8> {
    if hash_bytes == 0 {
        return key.to_vec();
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in key {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash.to_be_bytes()[..usize::from(hash_bytes.min(8))].to_vec()
}

impl Log {
    /// Plans a pass at wall-clock `now_ms` over the closed segments wholly below `upper_offset`
    /// (the caller's HW and LSO; the recovery point and the active segment bound it here), from
    /// the first one on and each at least `min.compaction.lag.ms` old; `None` when the log is
    /// not compacted, nothing is cleanable or less than `min.cleanable.dirty.ratio` of it is
    /// dirty (not cleaned since the broker started).
    pub fn clean_plan(
        &mut self,
        upper_offset: i64,
        now_ms: i64,
    ) -> Result<Option<CleanPlan>, LogError> {
        self.writable()?;
        if !self.config.compact {
            return Ok(None);
        }
        let upper_offset = upper_offset.min(self.recovery_point);
        let lag_ms = self.config.min_compaction_lag_ms;
        let closed = self.segments.len().saturating_sub(1);
        let mut planned = Vec::new();
        for segment in &mut self.segments[..closed] {
            if segment.next_offset > upper_offset || segment.is_empty() {
                break;
            }
            let largest_timestamp = segment.largest_timestamp()?;
            if now_ms.saturating_sub(largest_timestamp) < lag_ms {
                break;
            }
            planned.push(Planned {
                base_offset: segment.base_offset,
                next_offset: segment.next_offset,
                size_bytes: segment.size_bytes,
                largest_timestamp,
                file: Arc::clone(&segment.file),
                log_path: segment.log_path.clone(),
            });
        }
        let total: u64 = planned.iter().map(|p| p.size_bytes).sum();
        let dirty: u64 = planned
            .iter()
            .filter(|p| p.next_offset > self.first_dirty_offset)
            .map(|p| p.size_bytes)
            .sum();
        let ratio_permille = u64::from(self.config.min_cleanable_dirty_ratio_permille);
        if dirty == 0 || dirty * 1000 < ratio_permille * total {
            return Ok(None);
        }
        Ok(Some(CleanPlan {
            dir: self.dir.clone(),
            segments: planned,
            delete_retention_ms: self.config.delete_retention_ms,
            key_hash_bytes: self.config.cleaner_key_hash_bytes,
        }))
    }

    /// Replaces each planned segment that is still as planned (a truncation or retention may
    /// have removed or cut it meanwhile: its cleaned copy is then dropped) by its cleaned copy.
    /// The copy is read back batch by batch into a new index before it serves a read.
    pub fn swap_cleaned(&mut self, cleaned: Vec<CleanedSegment>) -> Result<Cleaned, LogError> {
        self.writable()?;
        let mut done = Cleaned::default();
        let closed = self.segments.len().saturating_sub(1);
        for copy in cleaned {
            let found = self.segments[..closed].iter().position(|s| {
                s.base_offset == copy.base_offset
                    && s.next_offset == copy.next_offset
                    && s.size_bytes == copy.planned_size_bytes
            });
            let Some(at) = found else {
                if let Some(path) = &copy.path {
                    remove_if_present(path)?;
                }
                continue;
            };
            self.first_dirty_offset = self.first_dirty_offset.max(copy.next_offset);
            let Some(path) = &copy.path else {
                continue;
            };
            self.segments[at] = self.swap_one(&copy, path)?;
            done.segments += 1;
            done.bytes_before += copy.planned_size_bytes;
            done.bytes_after += copy.size_bytes;
            done.records_removed += copy.records_removed;
            done.tombstones_removed += copy.tombstones_removed;
        }
        sync_dir(&self.dir)?;
        if done.segments > 0 {
            tracing::info!(dir = %self.dir.display(), segments = done.segments, bytes_before = done.bytes_before, bytes_after = done.bytes_after, records_removed = done.records_removed, tombstones_removed = done.tombstones_removed, "cleaned segments");
        }
        Ok(done)
    }

    /// The crash-safe replacement of one segment by its cleaned copy: the index goes first (a
    /// missing index is rebuilt at open), then the rename (atomic: old or new), then the new
    /// index from a full scan, which also checks every batch of the copy.
    fn swap_one(&self, copy: &CleanedSegment, path: &Path) -> Result<Segment, LogError> {
        let base = copy.base_offset;
        let index_path = self.dir.join(segment::file_name(base, "index"));
        remove_if_present(&index_path)?;
        sync_dir(&self.dir)?;
        let log_path = self.dir.join(segment::file_name(base, "log"));
        std::fs::rename(path, &log_path).map_err(|e| io_err(&log_path, e))?;
        let (file, log_path, index_path, size_bytes) = Segment::open(&self.dir, base)?;
        let index = OffsetIndex::create(&index_path, base)?;
        let mut segment =
            Segment::from_parts(base, base, size_bytes, file, log_path, index_path, index);
        let scan = segment.scan(0, base, true, self.config.index_interval_bytes)?;
        if scan.stopped.is_some() || scan.next_offset != copy.next_offset {
            return Err(LogError::Inconsistent(format!(
                "{}: the cleaned segment reads back as ending at {} ({:?}), not {}",
                segment.log_path.display(),
                scan.next_offset,
                scan.stopped,
                copy.next_offset
            )));
        }
        segment.next_offset = scan.next_offset;
        segment.flush()?;
        Ok(segment)
    }
}

impl Log {
    /// Where a consumer's read from `offset` starts: the base offset of the first batch at or
    /// after the one holding `offset`, below `upper_offset`, that holds a record, skipping the
    /// batches the cleaner emptied (at most [`limits::CLEANER_EMPTY_BATCHES_SKIPPED_MAX`] of
    /// them); `offset` itself when its batch holds records, or when only empty batches lie
    /// between it and `upper_offset` (the consumer then reads past them).
    pub fn first_record_offset(&self, offset: i64, upper_offset: i64) -> Result<i64, LogError> {
        let first = self
            .segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        let mut skipped = 0usize;
        for segment in &self.segments[first..] {
            let mut position = if segment.base_offset <= offset {
                u64::from(segment.index.lookup(offset)?.1)
            } else {
                0
            };
            while position < segment.size_bytes {
                let mut header = [0u8; BATCH_HEADER_BYTES];
                segment
                    .file
                    .read_exact_at(&mut header, position)
                    .map_err(|e| io_err(&segment.log_path, e))?;
                let parsed =
                    batch::parse_header(&header, limits::STORED_BATCH_BYTES_MAX).map_err(|e| {
                        LogError::Inconsistent(format!(
                            "{} at {position}: {e}",
                            segment.log_path.display()
                        ))
                    })?;
                if parsed.base_offset >= upper_offset {
                    return Ok(offset);
                }
                if parsed.next_offset() > offset {
                    if parsed.record_count > 0 {
                        return Ok(parsed.base_offset.max(offset));
                    }
                    skipped += 1;
                    if skipped > limits::CLEANER_EMPTY_BATCHES_SKIPPED_MAX {
                        return Ok(offset);
                    }
                }
                position += parsed.total_bytes as u64;
            }
        }
        Ok(offset)
    }
}

/// One stored batch read from a planned segment.
struct StoredBatch {
    bytes: Vec<u8>,
    header: BatchHeader,
}

/// Every batch of a planned segment, in order.
fn batches_of(planned: &Planned) -> Result<Vec<StoredBatch>, LogError> {
    let mut batches = Vec::new();
    let mut position = 0u64;
    while position < planned.size_bytes {
        let mut overhead = [0u8; batch::LOG_OVERHEAD_BYTES];
        planned
            .file
            .read_exact_at(&mut overhead, position)
            .map_err(|e| io_err(&planned.log_path, e))?;
        let inconsistent = |what: String| {
            LogError::Inconsistent(format!(
                "{} at {position}: {what}",
                planned.log_path.display()
            ))
        };
        let (_, total_bytes) = batch::parse_overhead(&overhead, limits::STORED_BATCH_BYTES_MAX)
            .map_err(|e| inconsistent(e.to_string()))?;
        if position + total_bytes as u64 > planned.size_bytes {
            return Err(inconsistent("a batch runs past the segment end".into()));
        }
        let mut bytes = vec![0u8; total_bytes];
        planned
            .file
            .read_exact_at(&mut bytes, position)
            .map_err(|e| io_err(&planned.log_path, e))?;
        let header = batch::validate_batch(&bytes, limits::STORED_BATCH_BYTES_MAX)
            .map_err(|e| inconsistent(e.to_string()))?;
        position += total_bytes as u64;
        batches.push(StoredBatch { bytes, header });
    }
    Ok(batches)
}

/// The uncompressed records section of a stored batch.
fn section_of(stored: &StoredBatch) -> Result<std::borrow::Cow<'_, [u8]>, LogError> {
    let section = &stored.bytes[BATCH_HEADER_BYTES..];
    let codec = records::codec_name(stored.header.attributes)
        .map_err(|e| LogError::Inconsistent(e.to_string()))?;
    if codec == "none" {
        return Ok(std::borrow::Cow::Borrowed(section));
    }
    records::decompress(codec, section, limits::DECOMPRESSED_BATCH_BYTES_MAX)
        .map(std::borrow::Cow::Owned)
        .map_err(|e| LogError::Inconsistent(e.to_string()))
}

/// Whether the cleaner reads a batch's records (transactional and control batches are kept as
/// written and supersede nothing).
fn cleanable(header: &BatchHeader) -> bool {
    !header.is_transactional() && !header.is_control()
}

impl CleanPlan {
    /// Removes the copies of a pass that will not be swapped in (a truncation came between).
    pub fn discard(&self, copies: Vec<CleanedSegment>) -> Result<(), LogError> {
        for path in copies.iter().filter_map(|c| c.path.as_ref()) {
            remove_if_present(path)?;
        }
        Ok(())
    }

    /// Reads the planned segments, maps each key to its latest offset among them, and writes
    /// each segment's cleaned copy beside it, fsynced. No lock: the segments are closed, and
    /// their open files keep them readable if a truncation removes them meanwhile.
    pub fn build(&self, now_ms: i64) -> Result<Vec<CleanedSegment>, LogError> {
        let (map, mapped) = self.offset_map()?;
        let mut cleaned = Vec::with_capacity(mapped);
        for planned in &self.segments[..mapped] {
            cleaned.push(self.clean_segment(planned, &map, now_ms)?);
        }
        Ok(cleaned)
    }

    /// The latest offset of every key in the planned segments, and how many segments it covers
    /// (all of them unless the keys outgrew [`limits::CLEANER_MAP_BYTES_MAX`]).
    fn offset_map(&self) -> Result<(HashMap<Vec<u8>, i64>, usize), LogError> {
        let mut map: HashMap<Vec<u8>, i64> = HashMap::new();
        let mut map_bytes = 0usize;
        for (mapped, planned) in self.segments.iter().enumerate() {
            let mut segment_map: Vec<(Vec<u8>, i64)> = Vec::new();
            for stored in batches_of(planned)? {
                if !cleanable(&stored.header) {
                    continue;
                }
                let section = section_of(&stored)?;
                let found = records::records_of(&section, stored.header.record_count)
                    .map_err(|e| LogError::Inconsistent(e.to_string()))?;
                for record in found {
                    if let Some(key) = record.key {
                        let offset = stored.header.base_offset + i64::from(record.offset_delta);
                        segment_map.push((map_key(key, self.key_hash_bytes), offset));
                    }
                }
            }
            let added: usize = segment_map
                .iter()
                .map(|(k, _)| k.len() + limits::CLEANER_MAP_ENTRY_OVERHEAD_BYTES)
                .sum();
            if map_bytes + added > limits::CLEANER_MAP_BYTES_MAX && mapped > 0 {
                return Ok((map, mapped));
            }
            map_bytes += added;
            map.extend(segment_map);
        }
        Ok((map, self.segments.len()))
    }

    /// Writes `planned`'s cleaned copy: the records the map says are the latest of their key
    /// (tombstones only while `delete.retention.ms` holds them), every batch kept; none when
    /// every record stays.
    fn clean_segment(
        &self,
        planned: &Planned,
        map: &HashMap<Vec<u8>, i64>,
        now_ms: i64,
    ) -> Result<CleanedSegment, LogError> {
        let retain_tombstones =
            now_ms.saturating_sub(planned.largest_timestamp) <= self.delete_retention_ms;
        let path = self.dir.join(format!(
            "{}{CLEANED_SUFFIX}",
            segment::file_name(planned.base_offset, "log")
        ));
        let mut out = io::BufWriter::new(File::create(&path).map_err(|e| io_err(&path, e))?);
        let (mut size_bytes, mut records_removed, mut tombstones_removed) = (0u64, 0u64, 0u64);
        for stored in batches_of(planned)? {
            let rewritten;
            let bytes: &[u8] = if cleanable(&stored.header) {
                let section = section_of(&stored)?;
                let found = records::records_of(&section, stored.header.record_count)
                    .map_err(|e| LogError::Inconsistent(e.to_string()))?;
                let mut kept = Vec::with_capacity(section.len());
                let mut kept_count = 0i32;
                for record in &found {
                    let offset = stored.header.base_offset + i64::from(record.offset_delta);
                    let latest = record.key.map(|key| {
                        map.get(&map_key(key, self.key_hash_bytes))
                            .is_none_or(|&latest| latest <= offset)
                    });
                    let keep = match latest {
                        Some(true) => !record.value_is_null || retain_tombstones,
                        _ => false,
                    };
                    if keep {
                        kept.extend_from_slice(record.bytes);
                        kept_count += 1;
                    } else {
                        records_removed += 1;
                        if latest == Some(true) {
                            tombstones_removed += 1;
                        }
                    }
                }
                if kept_count == stored.header.record_count {
                    &stored.bytes
                } else {
                    rewritten = batch::with_records(&stored.bytes, &kept, kept_count);
                    &rewritten
                }
            } else {
                &stored.bytes
            };
            out.write_all(bytes).map_err(|e| io_err(&path, e))?;
            size_bytes += bytes.len() as u64;
        }
        let file = out
            .into_inner()
            .map_err(|e| io_err(&path, e.into_error()))?;
        let path = if records_removed == 0 {
            drop(file);
            remove_if_present(&path)?;
            None
        } else {
            file.sync_all().map_err(|e| io_err(&path, e))?;
            Some(path)
        };
        Ok(CleanedSegment {
            base_offset: planned.base_offset,
            next_offset: planned.next_offset,
            planned_size_bytes: planned.size_bytes,
            path,
            size_bytes,
            records_removed,
            tombstones_removed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogConfig;
    use crate::wire::batch::{
        build_raw_batch, keyed_records_section, set_producer, validate_records,
    };

    /// A batch of `(key, value)` records (`None`: null) with every timestamp `timestamp_ms`.
    fn keyed_batch(records: &[(Option<&[u8]>, Option<&[u8]>)], timestamp_ms: i64) -> Vec<u8> {
        let section = keyed_records_section(records);
        let count = records.len() as i32;
        let mut batch = build_raw_batch(0, count - 1, count, &section);
        set_producer(&mut batch, -1, -1, -1, timestamp_ms);
        batch
    }

    fn compacted(segment_bytes: u64) -> LogConfig {
        LogConfig {
            segment_bytes,
            index_interval_bytes: 100,
            compact: true,
            min_cleanable_dirty_ratio_permille: 0,
            ..LogConfig::default()
        }
    }

    fn append(log: &mut Log, records: &[(Option<&[u8]>, Option<&[u8]>)], timestamp_ms: i64) {
        let batch = keyed_batch(records, timestamp_ms);
        let spans = validate_records(&batch, 1 << 20).expect("valid");
        log.append(&batch, &spans, 0).expect("append");
    }

    /// Every record below the LEO: (offset, key, value), read as a consumer fetches, batch
    /// after batch across the gaps.
    fn read_records(log: &Log) -> Vec<(i64, Option<Vec<u8>>, bool)> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let data = log
                .read_plan(offset, 1 << 20, log.log_end_offset())
                .expect("plan")
                .read()
                .expect("read back intact");
            let mut at = 0;
            while at < data.len() {
                let header = batch::validate_batch(&data[at..], 1 << 20).expect("valid");
                let section = &data[at + BATCH_HEADER_BYTES..at + header.total_bytes];
                for r in records::records_of(section, header.record_count).expect("records") {
                    out.push((
                        header.base_offset + i64::from(r.offset_delta),
                        r.key.map(<[u8]>::to_vec),
                        r.value_is_null,
                    ));
                }
                offset = header.next_offset();
                at += header.total_bytes;
            }
        }
        out
    }

    fn clean(log: &mut Log, upper_offset: i64, now_ms: i64) -> Cleaned {
        match log.clean_plan(upper_offset, now_ms).expect("plan") {
            Some(plan) => {
                let copies = plan.build(now_ms).expect("build");
                log.swap_cleaned(copies).expect("swap")
            }
            None => Cleaned::default(),
        }
    }

    /// 10 keys written 6 times each, one record per batch, over many small segments; then
    /// one batch of three records (keys 0, 1, 2) in the active segment.
    fn written(dir: &Path, config: LogConfig) -> Log {
        let (mut log, _) = Log::open(dir, config, 0, false).expect("open");
        for round in 0..6 {
            for key in 0..10u8 {
                let value = [round, key];
                append(&mut log, &[(Some(&[b'k', key]), Some(&value))], 1_000);
            }
        }
        log.flush().expect("flush");
        log
    }

    #[test]
    fn the_latest_record_of_each_key_stays_at_its_offset_and_reads_go_across_the_gaps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = written(dir.path(), compacted(1024));
        let leo = log.log_end_offset();
        assert_eq!(leo, 60);
        let active_base = log.segments.last().expect("active").base_offset;
        assert!(log.segment_count() > 3, "{} segments", log.segment_count());
        let done = clean(&mut log, leo, 2_000);
        assert!(
            done.segments > 0 && done.bytes_after < done.bytes_before,
            "{done:?}"
        );
        let records = read_records(&log);
        // Below the active segment: each key once, at its latest offset below it.
        for key in 0..10u8 {
            let offsets: Vec<i64> = records
                .iter()
                .filter(|(o, k, _)| *o < active_base && k.as_deref() == Some(&[b'k', key][..]))
                .map(|(o, _, _)| *o)
                .collect();
            let latest_closed = (0..6)
                .map(|round| round * 10 + i64::from(key))
                .filter(|&o| o < active_base)
                .max();
            assert!(offsets.len() <= 1, "key {key}: {offsets:?}");
            if (0..6)
                .map(|r| r * 10 + i64::from(key))
                .any(|o| o >= active_base)
            {
                continue; // superseded from the active segment: the map never saw it
            }
            assert_eq!(offsets.first().copied(), latest_closed, "key {key}");
        }
        // The active segment is as written.
        let active: Vec<i64> = records
            .iter()
            .map(|r| r.0)
            .filter(|&o| o >= active_base)
            .collect();
        assert_eq!(active, (active_base..leo).collect::<Vec<_>>());
        // The last offset of every key survives; offsets only increase.
        for key in 0..10 {
            assert!(
                records.iter().any(|r| r.0 == 50 + key),
                "latest of key {key}"
            );
        }
        assert!(records.windows(2).all(|w| w[0].0 < w[1].0));
        // A consumer at offset 0 (its batch emptied) is served from the first record after it.
        let first_kept = records[0].0;
        assert!(first_kept > 0);
        assert_eq!(log.first_record_offset(0, leo).expect("scan"), first_kept);
        assert_eq!(
            log.first_record_offset(first_kept, leo).expect("scan"),
            first_kept
        );
        assert_eq!(
            log.first_record_offset(0, first_kept).expect("scan"),
            0,
            "none below"
        );
        // Reopened (recovery scan included), the log reads the same and appends go on.
        drop(log);
        let (mut log, outcome) = Log::open(dir.path(), compacted(1024), 0, false).expect("reopen");
        assert!(outcome.truncated.is_none(), "{outcome:?}");
        assert_eq!(read_records(&log), records);
        assert_eq!(log.log_end_offset(), leo);
        append(&mut log, &[(Some(b"k\x00"), Some(b"new"))], 3_000);
        assert_eq!(log.log_end_offset(), leo + 1);
    }

    #[test]
    fn nothing_at_or_above_the_upper_offset_nor_the_active_segment_is_cleaned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = written(dir.path(), compacted(1024));
        let before = read_records(&log);
        // Upper offset (the HW) inside the first segment: nothing wholly below it.
        let first_end = log.segments[0].next_offset;
        assert_eq!(clean(&mut log, first_end - 1, 2_000).segments, 0);
        assert_eq!(read_records(&log), before);
        // Up to the HW at 30: keys superseded below 30 go only from segments below 30; the
        // records at and above 30 stay even where 30.. holds newer ones.
        let done = clean(&mut log, 30, 2_000);
        assert!(done.segments > 0);
        let after = read_records(&log);
        let at_or_above: Vec<_> = before.iter().filter(|r| r.0 >= 20).collect();
        for record in at_or_above {
            let kept_segment_end = log
                .segments
                .iter()
                .find(|s| s.base_offset <= record.0 && record.0 < s.next_offset)
                .map_or(0, |s| s.next_offset);
            if kept_segment_end > 30 {
                assert!(
                    after.contains(record),
                    "{record:?} above the HW was removed"
                );
            }
        }
        // Not compacted: no plan at all.
        let mut config = compacted(1024);
        config.compact = false;
        log.set_config(config);
        assert!(log.clean_plan(60, 2_000).expect("plan").is_none());
    }

    #[test]
    fn tombstones_stay_for_delete_retention_ms_then_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = compacted(1024);
        config.delete_retention_ms = 10_000;
        let (mut log, _) = Log::open(dir.path(), config, 0, false).expect("open");
        append(
            &mut log,
            &[(Some(b"a"), Some(b"1")), (Some(b"b"), Some(b"1"))],
            1_000,
        );
        append(&mut log, &[(Some(b"a"), None)], 1_000); // a's tombstone
        for _ in 0..30 {
            append(&mut log, &[(Some(b"c"), Some(&[b'x'; 100]))], 1_000);
        }
        log.flush().expect("flush");
        let leo = log.log_end_offset();
        clean(&mut log, leo, 5_000);
        let records = read_records(&log);
        assert!(
            !records.iter().any(|r| r.0 == 0),
            "a's value superseded by its tombstone"
        );
        assert!(records.iter().any(|r| r.0 == 1), "b's only value");
        assert!(
            records.iter().any(|r| r.0 == 2 && r.2),
            "the tombstone within delete.retention.ms"
        );
        // Later than delete.retention.ms after its segment's newest record: it goes (the dirty
        // ratio is 0, so a pass runs again once the log has new dirty bytes).
        log.first_dirty_offset = 0;
        let done = clean(&mut log, leo, 20_000);
        assert!(done.tombstones_removed >= 1, "{done:?}");
        let records = read_records(&log);
        assert!(!records.iter().any(|r| r.0 == 2), "tombstone removed");
        assert!(records.iter().any(|r| r.0 == 1), "b stays");
    }

    #[test]
    fn min_compaction_lag_and_the_dirty_ratio_hold_a_pass_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = compacted(1024);
        config.min_compaction_lag_ms = 5_000;
        let mut log = written(dir.path(), config);
        assert!(
            log.clean_plan(60, 3_000).expect("plan").is_none(),
            "younger than the lag"
        );
        assert!(clean(&mut log, 60, 10_000).segments > 0);
        // Everything cleaned once: with a ratio of 0.5 a pass waits for new dirty bytes.
        config.min_compaction_lag_ms = 0;
        config.min_cleanable_dirty_ratio_permille = 500;
        log.set_config(config);
        assert!(
            log.clean_plan(60, 10_000).expect("plan").is_none(),
            "nothing dirty"
        );
    }

    #[test]
    fn transactional_and_keyless_records_are_treated_as_kafka_treats_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = Log::open(dir.path(), compacted(1024), 0, false).expect("open");
        append(&mut log, &[(Some(b"k"), Some(b"committed"))], 1_000);
        // A transactional write of the same key after it: kept, and it supersedes nothing.
        let mut txn = keyed_batch(&[(Some(b"k"), Some(b"in a transaction"))], 1_000);
        set_producer(&mut txn, 7, 0, 0, 1_000);
        batch::set_attributes(&mut txn, batch::ATTRIBUTE_TRANSACTIONAL);
        let spans = validate_records(&txn, 1 << 20).expect("valid");
        log.append(&txn, &spans, 0).expect("append");
        append(&mut log, &[(None, Some(b"keyless"))], 1_000);
        for _ in 0..20 {
            append(&mut log, &[(Some(b"pad"), Some(&[b'x'; 100]))], 1_000);
        }
        log.flush().expect("flush");
        let leo = log.log_end_offset();
        clean(&mut log, leo, 2_000);
        let records = read_records(&log);
        assert!(
            records.iter().any(|r| r.0 == 0),
            "the committed value stays"
        );
        assert!(
            records.iter().any(|r| r.0 == 1),
            "the transactional record stays"
        );
        assert!(!records.iter().any(|r| r.0 == 2), "a keyless record goes");
    }

    #[test]
    fn a_crash_at_any_step_of_a_swap_leaves_every_latest_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = written(dir.path(), compacted(1024));
        let expected_latest: Vec<i64> = (50..60).collect();
        // Crash after the copies were written, before any swap: a leftover `.cleaned` file.
        let plan = log.clean_plan(60, 2_000).expect("plan").expect("cleanable");
        let copies = plan.build(2_000).expect("build");
        assert!(!copies.is_empty());
        let leftover = copies[0]
            .path
            .clone()
            .expect("the first segment lost records");
        assert!(leftover.exists());
        let full = read_records(&log);
        drop(log);
        let (log, outcome) = Log::open(dir.path(), compacted(1024), 0, false).expect("reopen");
        assert!(outcome.truncated.is_none());
        assert!(!leftover.exists(), "the leftover copy is removed at open");
        assert_eq!(read_records(&log), full, "the segments are whole");
        drop(log);
        // Crash inside a swap: index removed, copy renamed over the log, no new index.
        let (mut log, _) = Log::open(dir.path(), compacted(1024), 0, false).expect("reopen");
        let plan = log.clean_plan(60, 2_000).expect("plan").expect("cleanable");
        let copies = plan.build(2_000).expect("build");
        let first = &copies[0];
        let base = first.base_offset;
        std::fs::remove_file(dir.path().join(segment::file_name(base, "index"))).expect("rm");
        let copy = first.path.as_ref().expect("a copy");
        std::fs::rename(copy, dir.path().join(segment::file_name(base, "log"))).expect("rename");
        drop(log);
        let (log, outcome) = Log::open(dir.path(), compacted(1024), 60, true).expect("reopen");
        assert!(outcome.truncated.is_none(), "{outcome:?}");
        let records = read_records(&log);
        for offset in &expected_latest {
            assert!(
                records.iter().any(|r| r.0 == *offset),
                "latest at {offset} kept"
            );
        }
        assert!(
            records.len() < full.len(),
            "the swapped segment is the cleaned one"
        );
        assert_eq!(log.log_end_offset(), 60);
    }

    #[test]
    fn a_key_hash_too_short_takes_keys_for_one_and_removes_their_latest_records() {
        // Both ways: by whole keys every key keeps its latest record; by one byte of hash
        // (the bug switch) keys collide and latest records go.
        for (hash_bytes, loses) in [(0u8, false), (1u8, true)] {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut config = compacted(2048);
            config.cleaner_key_hash_bytes = hash_bytes;
            let (mut log, _) = Log::open(dir.path(), config, 0, false).expect("open");
            let keys: Vec<Vec<u8>> = (0..600u32).map(|k| k.to_be_bytes().to_vec()).collect();
            for key in &keys {
                append(&mut log, &[(Some(key), Some(b"v"))], 1_000);
            }
            append(&mut log, &[(Some(b"last"), Some(b"v"))], 1_000);
            log.flush().expect("flush");
            let leo = log.log_end_offset();
            clean(&mut log, leo, 2_000);
            let records = read_records(&log);
            let lost = keys
                .iter()
                .filter(|k| !records.iter().any(|r| r.1.as_deref() == Some(&k[..])))
                .count();
            assert_eq!(lost > 0, loses, "hash bytes {hash_bytes}: {lost} keys lost");
        }
    }
}
