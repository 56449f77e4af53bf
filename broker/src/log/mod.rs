//! The durable log of one partition: segments of record batches, a sparse offset index per
//! segment, flush policy and recovery. Storage only: it knows offsets and bytes, not the protocol.
//!
//! Memory does not grow with the log: per segment only a few numbers and two file handles are
//! kept; index lookups and batch scans use positioned reads.

pub mod checkpoint;
pub mod cleaner;
pub mod epoch;
pub mod error;
pub mod index;
pub mod retention;
pub mod segment;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::config::LogConfig;
use crate::invariant;
use crate::limits;
pub use crate::log::error::{log_error_code, LogError};
use crate::log::index::OffsetIndex;
use crate::log::segment::Segment;
use crate::wire::batch::{self, BatchSpan, PATCHED_PREFIX_BYTES};

/// What recovery found and did.
#[derive(Debug, Default, Clone)]
pub struct RecoveryOutcome {
    pub segments_scanned: usize,
    pub batches_bytes_scanned: u64,
    /// Set when the log was truncated: where and why.
    pub truncated: Option<Truncation>,
}

/// A truncation done at recovery.
#[derive(Debug, Clone)]
pub struct Truncation {
    pub segment_base_offset: i64,
    pub position: u64,
    pub offset: i64,
    pub bytes_dropped: u64,
    pub segments_deleted: usize,
    pub reason: String,
}

/// Offsets assigned by an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// True when this append advanced the recovery point (flush.messages was reached): the
    /// checkpoint should be rewritten.
    pub recovery_point_advanced: bool,
    /// True when this append rolled a new segment: the rolled one is fsynced in the background
    /// ([`Log::rolled_flush_plan`]), as Kafka does, rather than in the append path.
    pub rolled: bool,
}

/// Rolled segments that may hold unflushed data, to fsync outside the log lock; once done,
/// everything below `up_to` is durable ([`Log::rolled_flushed`]).
#[derive(Debug)]
pub struct RolledFlush {
    pub files: Vec<(Arc<File>, PathBuf)>,
    pub index_paths: Vec<PathBuf>,
    pub up_to: i64,
}

impl RolledFlush {
    /// fsyncs the planned segments and their indexes (no lock held). An index deleted meanwhile
    /// (truncation) is skipped: the caller then does not use `up_to` anyway.
    pub fn run(&self) -> Result<(), LogError> {
        for (file, path) in &self.files {
            file.sync_data().map_err(|e| io_err(path, e))?;
        }
        for path in &self.index_paths {
            match File::open(path).and_then(|f| f.sync_data()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(path, e)),
            }
        }
        Ok(())
    }
}

/// Bytes to read for a fetch, computed under the log lock and read outside it.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    file: Option<Arc<File>>,
    path: PathBuf,
    position: u64,
    len_bytes: usize,
    first_base_offset: i64,
}

impl ReadPlan {
    fn empty() -> ReadPlan {
        ReadPlan {
            file: None,
            path: PathBuf::new(),
            position: 0,
            len_bytes: 0,
            first_base_offset: -1,
        }
    }

    pub fn len_bytes(&self) -> usize {
        self.len_bytes
    }

    /// Reads the planned bytes and checks them ([`ReadPlan::check`]).
    pub fn read(&self) -> Result<Bytes, LogError> {
        let data = self.read_unchecked()?;
        self.check(&data).map_err(|violation| {
            LogError::Inconsistent(format!("{}: {violation}", self.path.display()))
        })?;
        Ok(data)
    }

    /// Reads the planned bytes without checking them (the caller checks: a read that raced a
    /// truncation may find other bytes without the log being wrong).
    pub fn read_unchecked(&self) -> Result<Bytes, LogError> {
        let Some(file) = &self.file else {
            return Ok(Bytes::new());
        };
        let mut data = vec![0u8; self.len_bytes];
        file.read_exact_at(&mut data, self.position)
            .map_err(|source| LogError::Io {
                path: self.path.clone(),
                source,
            })?;
        Ok(Bytes::from(data))
    }

    /// The read-back half of the paired assertions on the log: the bytes read are whole batches,
    /// each with its length and CRC intact, at contiguous offsets from the planned one.
    pub fn check(&self, data: &[u8]) -> Result<(), invariant::Violation> {
        let mut at = 0usize;
        let mut expected = self.first_base_offset;
        while at < data.len() {
            let position = self.position + at as u64;
            let header = match batch::validate_batch(&data[at..], limits::STORED_BATCH_BYTES_MAX) {
                Ok(header) => header,
                Err(e) => {
                    return Err(invariant::Violation::new(
                        invariant::Invariant::StoredBatchIntact,
                        format!(
                            "position={position} read_bytes={} error={e}",
                            data.len() - at
                        ),
                    ))
                }
            };
            invariant::batch_follows(expected, header.base_offset, header.next_offset()).map_err(
                |v| {
                    invariant::Violation::new(
                        v.invariant,
                        format!("position={position} {}", v.state),
                    )
                },
            )?;
            expected = header.next_offset();
            at += header.total_bytes;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogState {
    Open,
    Closed,
    Failed,
}

/// The log of one partition.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    /// Sorted by base offset; the last one is the active segment. Never empty.
    segments: Vec<Segment>,
    recovery_point: i64,
    unflushed_messages: u64,
    state: LogState,
    /// The first offset a reader may ask for: at least the first segment's base, moved up by
    /// retention and DeleteRecords ([`retention`]), kept in the log-start-offset checkpoint.
    log_start_offset: i64,
    /// The end of what the log cleaner cleaned since this log was opened ([`cleaner`]): the
    /// segments above it are dirty.
    first_dirty_offset: i64,
}

fn io_err(path: &Path, source: io::Error) -> LogError {
    LogError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The suffix of a segment's cleaned copy (the log cleaner's) before it replaces the segment.
pub const CLEANED_SUFFIX: &str = ".cleaned";

/// Removes leftover cleaned copies in `dir` (a crash before their swap): the segments they
/// were made from are whole.
fn remove_cleaned_leftovers(dir: &Path) -> Result<usize, LogError> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(CLEANED_SUFFIX))
        {
            remove_if_present(&entry.path())?;
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::warn!(dir = %dir.display(), removed, "removed cleaned segment copies a crash left before their swap");
        sync_dir(dir)?;
    }
    Ok(removed)
}

pub(crate) fn remove_if_present(path: &Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path, e)),
    }
}

/// fsyncs a directory (after creating, renaming or deleting files in it).
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

/// Replaces `dir/file_name` with `bytes` atomically: a temporary file written and fsynced, renamed
/// over the old one, the dir fsynced. A crash at any instant leaves the old or the new file.
pub fn write_file_atomically(dir: &Path, file_name: &str, bytes: &[u8]) -> Result<(), LogError> {
    let path = dir.join(file_name);
    let tmp = dir.join(format!("{file_name}.tmp"));
    let write = || -> io::Result<()> {
        let mut file = File::create(&tmp)?;
        io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| io_err(&path, e))?;
    sync_dir(dir)
}

/// Creates `dir` and any missing parents durably: each directory this call creates is fsynced
/// into its parent, so that a power loss right after does not take the new directory (and all
/// that was fsynced inside it) away. Existing directories are left as they are.
pub fn create_dir_durably(dir: &Path) -> Result<(), LogError> {
    let mut missing = Vec::new();
    let mut current = Some(dir);
    while let Some(path) = current {
        if path.as_os_str().is_empty() || path.is_dir() {
            break;
        }
        missing.push(path);
        current = path.parent();
    }
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    // Top-down: a child's entry is durable only once its parent's is.
    for path in missing.iter().rev() {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        sync_dir(parent)?;
    }
    Ok(())
}

impl Log {
    /// Opens (or creates) the log in `dir`. Unless `clean_shutdown`, every segment from the one
    /// holding `recovery_point` is validated batch by batch and the log is cut at the first torn or
    /// corrupt batch; a clean log only has the tail of its active segment checked.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        recovery_point: i64,
        clean_shutdown: bool,
    ) -> Result<(Log, RecoveryOutcome), LogError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        remove_cleaned_leftovers(dir)?;
        let bases = Self::segment_bases(dir)?;
        let mut outcome = RecoveryOutcome::default();
        if bases.is_empty() {
            let segment = Segment::create(dir, 0)?;
            sync_dir(dir)?;
            return Ok((Self::opened(dir, config, vec![segment]), outcome));
        }
        // The first segment that must be fully validated.
        let first_scanned = if clean_shutdown {
            bases.len() // none fully; the tail of the last one is checked below
        } else {
            bases
                .iter()
                .rposition(|&base| base <= recovery_point)
                .unwrap_or(0)
        };
        let (mut segments, truncation) =
            Self::recover_segments(dir, &config, &bases, first_scanned, &mut outcome)?;
        if segments.is_empty() {
            segments.push(Segment::create(dir, 0)?);
        }
        if truncation.is_some() || !clean_shutdown {
            for segment in segments
                .iter()
                .skip(first_scanned.min(segments.len().saturating_sub(1)))
            {
                segment.flush()?;
            }
            sync_dir(dir)?;
        }
        outcome.truncated = truncation;
        Ok((Self::opened(dir, config, segments), outcome))
    }

    /// An open log of `segments`, everything in them taken as flushed.
    fn opened(dir: &Path, config: LogConfig, segments: Vec<Segment>) -> Log {
        let log_end_offset = segments.last().map_or(0, |s| s.next_offset);
        let log_start_offset = segments.first().map_or(0, |s| s.base_offset);
        Log {
            log_start_offset,
            first_dirty_offset: log_start_offset,
            dir: dir.to_owned(),
            config,
            segments,
            recovery_point: log_end_offset,
            unflushed_messages: 0,
            state: LogState::Open,
        }
    }

    /// The base offsets of the segment files in `dir`, sorted.
    fn segment_bases(dir: &Path) -> Result<Vec<i64>, LogError> {
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
            let entry = entry.map_err(|e| io_err(dir, e))?;
            if let Some(base) = entry
                .file_name()
                .to_str()
                .and_then(segment::parse_file_name)
            {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        Ok(bases)
    }

    /// The recovery scan: opens the segments of `bases` in order, validating from
    /// `first_scanned` on (and the tail of the last one), and cuts the log at the first segment
    /// that does not follow its predecessor or the first torn or corrupt batch, deleting every
    /// later segment. Returns the segments kept and the truncation done, if any.
    fn recover_segments(
        dir: &Path,
        config: &LogConfig,
        bases: &[i64],
        first_scanned: usize,
        outcome: &mut RecoveryOutcome,
    ) -> Result<(Vec<Segment>, Option<Truncation>), LogError> {
        let mut segments: Vec<Segment> = Vec::with_capacity(bases.len());
        for (i, &base) in bases.iter().enumerate() {
            let expected_base = segments.last().map_or(base, |s: &Segment| s.next_offset);
            if base != expected_base {
                // Drop this segment and all later ones.
                Self::delete_segment_files(dir, &bases[i..])?;
                let truncation = Truncation {
                    segment_base_offset: base,
                    position: 0,
                    offset: expected_base,
                    bytes_dropped: 0,
                    segments_deleted: bases.len() - i,
                    reason: format!("segment base {base} does not follow the previous segment end {expected_base}"),
                };
                return Ok((segments, Some(truncation)));
            }
            let is_last = i + 1 == bases.len();
            let (mut segment, scan) =
                Self::open_and_scan(dir, config, base, i >= first_scanned, is_last, outcome)?;
            let Some(scan) = scan else {
                segment.next_offset = bases[i + 1];
                segments.push(segment);
                continue;
            };
            if let Some((position, reason)) = scan.stopped {
                let bytes_dropped = segment.size_bytes - position;
                if config.recovery_cuts_torn_tail {
                    segment.truncate(position, scan.next_offset)?;
                } else {
                    // The bug switch: the torn bytes stay, the next append lands behind them.
                    segment.next_offset = scan.next_offset;
                }
                let later = &bases[i + 1..];
                Self::delete_segment_files(dir, later)?;
                segments.push(segment);
                let truncation = Truncation {
                    segment_base_offset: base,
                    position,
                    offset: scan.next_offset,
                    bytes_dropped,
                    segments_deleted: later.len(),
                    reason,
                };
                return Ok((segments, Some(truncation)));
            }
            // If the next segment's base does not follow, the check at the top of the loop cuts there.
            segment.next_offset = scan.next_offset;
            segments.push(segment);
        }
        Ok((segments, None))
    }

    /// Opens the segment at `base` and scans what recovery must check of it: all of it when
    /// `full_scan` or its index is not valid (rebuilding the index), the part after its last
    /// index entry when it is the last segment, nothing otherwise (`None`).
    fn open_and_scan(
        dir: &Path,
        config: &LogConfig,
        base: i64,
        full_scan: bool,
        is_last: bool,
        outcome: &mut RecoveryOutcome,
    ) -> Result<(Segment, Option<segment::ScanOutcome>), LogError> {
        let (file, log_path, index_path, size_bytes) = Segment::open(dir, base)?;
        let index = if full_scan {
            None
        } else {
            OffsetIndex::open_checked(&index_path, base, size_bytes)?
        };
        let index_valid = index.is_some();
        let placeholder = match index {
            Some(index) => index,
            None => OffsetIndex::create(&index_path, base)?,
        };
        let mut segment = Segment::from_parts(
            base,
            base,
            size_bytes,
            file,
            log_path,
            index_path,
            placeholder,
        );
        let scan = if !index_valid {
            outcome.segments_scanned += 1;
            outcome.batches_bytes_scanned += size_bytes;
            Some(segment.scan(0, base, true, config.index_interval_bytes)?)
        } else if is_last {
            let (entry_offset, entry_position) = segment.index.lookup(i64::MAX)?;
            outcome.batches_bytes_scanned += size_bytes - u64::from(entry_position);
            Some(segment.scan(
                u64::from(entry_position),
                entry_offset,
                false,
                config.index_interval_bytes,
            )?)
        } else {
            None
        };
        Ok((segment, scan))
    }

    fn delete_segment_files(dir: &Path, bases: &[i64]) -> Result<(), LogError> {
        for &base in bases {
            for extension in ["log", "index"] {
                let path = dir.join(segment::file_name(base, extension));
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&path, e)),
                }
            }
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// LEO: the offset the next record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.segments.last().map_or(0, |s| s.next_offset)
    }

    /// Everything below this offset has been fsynced.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn active(&mut self) -> Result<&mut Segment, LogError> {
        self.segments
            .last_mut()
            .ok_or_else(|| LogError::Inconsistent("log has no segment".into()))
    }

    /// Appends validated batches from `records` (positions from [`batch::validate_records`]),
    /// assigning offsets from the LEO and stamping `leader_epoch`. One write per batch.
    pub fn append(
        &mut self,
        records: &[u8],
        spans: &[BatchSpan],
        leader_epoch: i32,
    ) -> Result<AppendInfo, LogError> {
        match self.state {
            LogState::Open => {}
            LogState::Closed => return Err(LogError::Closed),
            LogState::Failed => return Err(LogError::Failed),
        }
        let result = self.append_inner(records, spans, Some(leader_epoch));
        if let Err(LogError::Io { .. }) = &result {
            // A write may be half done: accept nothing more (recovery will cut the torn tail).
            self.state = LogState::Failed;
        }
        result
    }

    /// Appends batches fetched from the leader as they are: offsets and leader epochs kept. The
    /// first batch must start at the LEO.
    pub fn append_replicated(
        &mut self,
        records: &[u8],
        spans: &[BatchSpan],
    ) -> Result<AppendInfo, LogError> {
        match self.state {
            LogState::Open => {}
            LogState::Closed => return Err(LogError::Closed),
            LogState::Failed => return Err(LogError::Failed),
        }
        let mut expected = self.log_end_offset();
        for span in spans {
            if span.header.base_offset != expected {
                return Err(LogError::NonContiguous {
                    expected,
                    got: span.header.base_offset,
                });
            }
            expected = span.header.next_offset();
        }
        let result = self.append_inner(records, spans, None);
        if let Err(LogError::Io { .. }) = &result {
            self.state = LogState::Failed;
        }
        result
    }

    /// Cuts the log so that its LEO is at most `offset`, at a batch boundary: the batch holding
    /// `offset` goes too. Returns the new LEO. Used by followers (truncation on leader change).
    pub fn truncate_to(&mut self, offset: i64) -> Result<i64, LogError> {
        match self.state {
            LogState::Open => {}
            LogState::Closed => return Err(LogError::Closed),
            LogState::Failed => return Err(LogError::Failed),
        }
        if offset >= self.log_end_offset() {
            return Ok(self.log_end_offset());
        }
        let mut deleted = false;
        while self.segments.len() > 1
            && self
                .segments
                .last()
                .is_some_and(|s| s.base_offset >= offset)
        {
            if let Some(segment) = self.segments.pop() {
                segment.delete_files()?;
                deleted = true;
            }
        }
        let segment = self.active()?;
        let (cut_position, cut_offset) = if segment.base_offset >= offset {
            (0, segment.base_offset)
        } else {
            let (_, entry_position) = segment.index.lookup(offset)?;
            let mut position = u64::from(entry_position);
            loop {
                if position >= segment.size_bytes {
                    break (position, segment.next_offset);
                }
                let (base_offset, total_bytes, last_delta) = segment.read_scan_header(position)?;
                if base_offset + i64::from(last_delta) >= offset {
                    break (position, base_offset);
                }
                position += total_bytes as u64;
            }
        };
        segment.index.truncate_from(cut_offset)?;
        segment.truncate(cut_position, cut_offset)?;
        if deleted {
            sync_dir(&self.dir)?;
        }
        self.recovery_point = self.recovery_point.min(cut_offset);
        self.log_start_offset = self.log_start_offset.min(cut_offset);
        Ok(cut_offset)
    }

    /// `(epoch, start offset)` of every leader epoch found in the batches, in log order.
    pub fn scan_epochs(&self) -> Result<Vec<(i32, i64)>, LogError> {
        let mut entries: Vec<(i32, i64)> = Vec::new();
        for segment in &self.segments {
            let mut position = 0u64;
            while position < segment.size_bytes {
                let (base_offset, total_bytes, _) = segment.read_scan_header(position)?;
                let epoch = segment.read_leader_epoch(position)?;
                if entries.last().is_none_or(|&(last, _)| epoch > last) {
                    entries.push((epoch, base_offset));
                }
                position += total_bytes as u64;
            }
        }
        Ok(entries)
    }

    /// Calls `found` with the header of every batch that has a producer id in the newest
    /// segments, oldest first, and for a control batch its marker: whole segments from the newest
    /// back while their bytes fit in `bytes_max` (the active segment always). Returns the number
    /// of batches scanned and the offset the scan started at. Memory: one read buffer.
    pub fn scan_producer_batches(
        &self,
        bytes_max: u64,
        mut found: impl FnMut(&batch::BatchHeader, Option<crate::wire::control::Marker>),
    ) -> Result<(usize, i64), LogError> {
        let mut first = self.segments.len().saturating_sub(1);
        let mut bytes = self.segments.last().map_or(0, |s| s.size_bytes);
        while first > 0 && bytes + self.segments[first - 1].size_bytes <= bytes_max {
            first -= 1;
            bytes += self.segments[first].size_bytes;
        }
        // Sequential reads of a buffer at a time (a positioned read per header would cost a
        // syscall per batch: seconds for a log of small batches).
        let mut batches = 0usize;
        let mut buffer = vec![0u8; limits::RECOVERY_READ_BUFFER_BYTES];
        for segment in &self.segments[first..] {
            let inconsistent = |position: u64, what: String| {
                LogError::Inconsistent(format!(
                    "{} at {position}: {what}",
                    segment.log_path.display()
                ))
            };
            let mut position = 0u64;
            while position < segment.size_bytes {
                let len = usize::try_from((segment.size_bytes - position).min(buffer.len() as u64))
                    .unwrap_or(buffer.len());
                segment
                    .file
                    .read_exact_at(&mut buffer[..len], position)
                    .map_err(|e| io_err(&segment.log_path, e))?;
                let mut at = 0usize;
                while at + batch::BATCH_HEADER_BYTES <= len {
                    let header =
                        batch::parse_header(&buffer[at..len], limits::STORED_BATCH_BYTES_MAX)
                            .map_err(|e| inconsistent(position + at as u64, e.to_string()))?;
                    if position + (at + header.total_bytes) as u64 > segment.size_bytes {
                        return Err(inconsistent(
                            position + at as u64,
                            format!(
                                "batch of {} bytes runs past the segment end",
                                header.total_bytes
                            ),
                        ));
                    }
                    if header.is_control() && header.has_producer_id() {
                        let start = position + at as u64;
                        let marker = if at + header.total_bytes <= len {
                            crate::wire::control::marker_of(&buffer[at..at + header.total_bytes])
                        } else {
                            let mut whole = vec![0u8; header.total_bytes];
                            segment
                                .file
                                .read_exact_at(&mut whole, start)
                                .map_err(|e| io_err(&segment.log_path, e))?;
                            crate::wire::control::marker_of(&whole)
                        };
                        found(&header, marker);
                    } else if header.has_producer_id() {
                        found(&header, None);
                    }
                    batches += 1;
                    at += header.total_bytes;
                }
                if at == 0 {
                    return Err(inconsistent(
                        position,
                        "batch header runs past the segment end".into(),
                    ));
                }
                position += at as u64;
            }
        }
        let start = self.segments.get(first).map_or(0, |s| s.base_offset);
        Ok((batches, start))
    }

    fn append_inner(
        &mut self,
        records: &[u8],
        spans: &[BatchSpan],
        leader_epoch: Option<i32>,
    ) -> Result<AppendInfo, LogError> {
        let base_offset = self.log_end_offset();
        let recovery_point_before = self.recovery_point;
        let mut rolled = false;
        let mut last_offset = base_offset - 1;
        let mut messages = 0u64;
        for span in spans {
            let total_bytes = span.header.total_bytes;
            let bytes = records
                .get(span.position..span.position + total_bytes)
                .ok_or_else(|| {
                    LogError::Inconsistent(format!("batch span {span:?} outside records"))
                })?;
            let batch_base_offset = self.log_end_offset();
            let batch_next_offset =
                batch_base_offset + i64::from(span.header.last_offset_delta) + 1;
            let segment_bytes = self.config.segment_bytes;
            let segment_ms = self.config.segment_ms;
            let active = self.active()?;
            let too_big = active.size_bytes + total_bytes as u64 > segment_bytes;
            let too_far = batch_next_offset - active.base_offset > i64::from(u32::MAX);
            let too_old = active.opened.elapsed().as_millis()
                >= u128::try_from(segment_ms).unwrap_or(u128::MAX);
            if !active.is_empty() && (too_big || too_far || too_old) {
                self.roll()?;
                rolled = true;
            }
            let epoch = leader_epoch.unwrap_or(span.header.partition_leader_epoch);
            let prefix = batch::patched_prefix(bytes, batch_base_offset, epoch);
            let index_interval_bytes = self.config.index_interval_bytes;
            self.check_before_write(bytes, total_bytes, batch_base_offset, batch_next_offset);
            self.active()?.append_batch(
                &prefix,
                &bytes[PATCHED_PREFIX_BYTES..],
                batch_base_offset,
                batch_next_offset,
                index_interval_bytes,
            )?;
            self.active()?.note_timestamp(span.header.max_timestamp);
            invariant::enforce(
                invariant::log_end_moved_to(batch_next_offset, self.log_end_offset()),
                self.dir.display(),
            );
            last_offset = batch_next_offset - 1;
            messages += u64::from(span.header.record_count.unsigned_abs());
        }
        self.unflushed_messages += messages;
        if self.config.flush_messages > 0 && self.unflushed_messages >= self.config.flush_messages {
            self.flush()?;
        }
        let recovery_point_advanced = self.recovery_point > recovery_point_before;
        Ok(AppendInfo {
            base_offset,
            last_offset,
            recovery_point_advanced,
            rolled,
        })
    }

    /// The write half of the paired assertions on the log: the batch about to be written at
    /// `[base_offset, next_offset)` follows the LEO, and its length field and CRC are intact.
    fn check_before_write(
        &self,
        bytes: &[u8],
        total_bytes: usize,
        base_offset: i64,
        next_offset: i64,
    ) {
        let log_end_offset = self.log_end_offset();
        let position = self.segments.last().map_or(0, |s| s.size_bytes);
        let length_field = batch::parse_overhead(bytes, usize::MAX).map_or(0, |(_, bytes)| bytes);
        let crc_ok = batch::validate_batch(bytes, usize::MAX).is_ok();
        invariant::enforce(
            invariant::batch_follows(log_end_offset, base_offset, next_offset).and_then(|()| {
                invariant::batch_intact(position, total_bytes, length_field, crc_ok)
            }),
            self.dir.display(),
        );
    }

    /// Starts a new active segment at the LEO. The old one is fsynced later, off the append path
    /// (Kafka's roll schedules the flush of the rolled segment); the recovery point stays until it
    /// is.
    fn roll(&mut self) -> Result<(), LogError> {
        let next_offset = self.log_end_offset();
        let segment = Segment::create(&self.dir, next_offset)?;
        if self.config.roll_syncs_dir {
            sync_dir(&self.dir)?;
        }
        tracing::debug!(dir = %self.dir.display(), base_offset = next_offset, "rolled segment");
        self.segments.push(segment);
        Ok(())
    }

    /// Rolled segments holding data above the recovery point (not fsynced yet), if any.
    pub fn rolled_flush_plan(&self) -> Option<RolledFlush> {
        let (active, rolled) = self.segments.split_last()?;
        let pending: Vec<&Segment> = rolled
            .iter()
            .filter(|s| s.next_offset > self.recovery_point)
            .collect();
        if pending.is_empty() {
            return None;
        }
        Some(RolledFlush {
            files: pending
                .iter()
                .map(|s| (Arc::clone(&s.file), s.log_path.clone()))
                .collect(),
            index_paths: pending.iter().map(|s| s.index_path.clone()).collect(),
            up_to: active.base_offset,
        })
    }

    /// A [`RolledFlush`] planned on this log completed with no truncation since: everything below
    /// its `up_to` is durable. Returns true when the recovery point advanced.
    pub fn rolled_flushed(&mut self, up_to: i64) -> bool {
        let up_to = up_to.min(self.log_end_offset());
        if up_to > self.recovery_point {
            self.recovery_point = up_to;
            true
        } else {
            false
        }
    }

    /// fsyncs every segment above the recovery point (rolled ones not flushed in the background
    /// yet, and the active one); returns true when the recovery point advanced. A failed fsync
    /// fails the log (the kernel may have dropped the unwritten pages: Kafka takes the log dir
    /// offline).
    pub fn flush(&mut self) -> Result<bool, LogError> {
        let result = self.flush_inner();
        if let Err(LogError::Io { .. }) = &result {
            self.state = LogState::Failed;
        }
        result
    }

    /// Whether a write or an fsync failed: the log takes no more writes until the broker restarts.
    pub fn is_failed(&self) -> bool {
        self.state == LogState::Failed
    }

    /// Fails the log after an I/O error outside it (a background fsync of rolled segments).
    pub fn fail(&mut self) {
        self.state = LogState::Failed;
    }

    fn flush_inner(&mut self) -> Result<bool, LogError> {
        let log_end_offset = self.log_end_offset();
        if self.recovery_point >= log_end_offset {
            self.unflushed_messages = 0;
            return Ok(false);
        }
        let (active, rolled) = self
            .segments
            .split_last()
            .ok_or_else(|| LogError::Inconsistent("log has no segment".into()))?;
        for segment in rolled {
            if segment.next_offset > self.recovery_point {
                segment.flush()?;
            }
        }
        active.flush()?;
        self.recovery_point = log_end_offset;
        self.unflushed_messages = 0;
        Ok(true)
    }

    /// Flushes and refuses further appends (graceful shutdown). A failed log is flushed too (what
    /// it holds below its LEO was written whole) and stays failed.
    pub fn close(&mut self) -> Result<(), LogError> {
        match self.state {
            LogState::Open => {
                self.flush()?;
                self.state = LogState::Closed;
            }
            LogState::Failed => {
                self.flush()?;
            }
            LogState::Closed => {}
        }
        Ok(())
    }

    /// Plans a read of whole batches from the one holding `offset`, below `upper_offset` (the HW),
    /// of at most `max_bytes` but at least one batch (KIP-74). Reads stay within one segment.
    pub fn read_plan(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_offset: i64,
    ) -> Result<ReadPlan, LogError> {
        let log_start_offset = self.log_start_offset();
        let log_end_offset = self.log_end_offset();
        if offset < log_start_offset || offset > log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset,
                log_end_offset,
            });
        }
        if offset >= upper_offset.min(log_end_offset) {
            return Ok(ReadPlan::empty());
        }
        let segment_index = self
            .segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        let mut segment_index = segment_index;
        // Skip empty segments (possible only when the offset is a segment end).
        while segment_index + 1 < self.segments.len()
            && self.segments[segment_index].next_offset <= offset
        {
            segment_index += 1;
        }
        let segment = &self.segments[segment_index];
        let (entry_offset, entry_position) = segment.index.lookup(offset)?;
        let mut position = u64::from(entry_position);
        // Scan headers to the batch holding `offset`.
        let (mut base_offset, mut total_bytes, mut last_delta) =
            segment.read_scan_header(position)?;
        if base_offset < entry_offset {
            return Err(LogError::Inconsistent(format!(
                "{}: index entry {entry_offset} points at batch {base_offset}",
                segment.log_path.display()
            )));
        }
        while base_offset + i64::from(last_delta) < offset {
            let next_position = position + total_bytes as u64;
            if next_position >= segment.size_bytes {
                return Err(LogError::Inconsistent(format!(
                    "{}: offset {offset} not found before the segment end (next offset {})",
                    segment.log_path.display(),
                    segment.next_offset
                )));
            }
            let (next_base, next_total, next_delta) = segment.read_scan_header(next_position)?;
            invariant::enforce(
                invariant::batch_follows(
                    base_offset + i64::from(last_delta) + 1,
                    next_base,
                    next_base + i64::from(next_delta) + 1,
                ),
                format_args!("{} position {next_position}", segment.log_path.display()),
            );
            (position, base_offset, total_bytes, last_delta) =
                (next_position, next_base, next_total, next_delta);
        }
        let start_position = position;
        let first_base_offset = base_offset;
        let mut len_bytes = total_bytes;
        let mut cursor = position + total_bytes as u64;
        let mut expected = base_offset + i64::from(last_delta) + 1;
        while cursor < segment.size_bytes && expected < upper_offset {
            let (next_base, next_total, next_delta) = segment.read_scan_header(cursor)?;
            invariant::enforce(
                invariant::batch_follows(
                    expected,
                    next_base,
                    next_base + i64::from(next_delta) + 1,
                ),
                format_args!("{} position {cursor}", segment.log_path.display()),
            );
            if len_bytes + next_total > max_bytes {
                break;
            }
            len_bytes += next_total;
            cursor += next_total as u64;
            expected = next_base + i64::from(next_delta) + 1;
        }
        Ok(ReadPlan {
            file: Some(Arc::clone(&segment.file)),
            path: segment.log_path.clone(),
            position: start_position,
            len_bytes,
            first_base_offset,
        })
    }

    /// The record with the largest timestamp below `upper_offset` (the first such record of the
    /// first batch that holds it), as (offset, timestamp).
    pub fn max_timestamp_offset(&self, upper_offset: i64) -> Result<Option<(i64, i64)>, LogError> {
        // (segment, position, size, base offset, max timestamp) of the first batch that holds the
        // log's largest timestamp.
        let mut best: Option<(&Segment, u64, usize, i64, i64)> = None;
        'segments: for segment in &self.segments {
            let mut position = 0u64;
            while position < segment.size_bytes {
                let (base_offset, total_bytes, _) = segment.read_scan_header(position)?;
                if base_offset >= upper_offset {
                    break 'segments;
                }
                let max_timestamp = segment.read_max_timestamp(position)?;
                if best.is_none_or(|(.., t)| max_timestamp > t) {
                    best = Some((segment, position, total_bytes, base_offset, max_timestamp));
                }
                position += total_bytes as u64;
            }
        }
        let Some((segment, position, total_bytes, base_offset, max_timestamp)) = best else {
            return Ok(None);
        };
        // As Kafka since 3.8 (KAFKA-16310): the offset of the record that bears the timestamp,
        // not of its batch.
        let (delta, found) =
            Self::record_for_timestamp(segment, position, total_bytes, max_timestamp)?;
        Ok(Some((base_offset + i64::from(delta), found)))
    }

    /// Base offset of the first batch whose max timestamp is at least `timestamp_ms`, or `None`.
    /// Scans batch headers from the start (no time index yet).
    /// (offset delta, timestamp) of the first record at or after `timestamp_ms` in the batch of
    /// `total_bytes` at `position`, whose max timestamp says it holds one.
    fn record_for_timestamp(
        segment: &Segment,
        position: u64,
        total_bytes: usize,
        timestamp_ms: i64,
    ) -> Result<(i32, i64), LogError> {
        let mut bytes = vec![0u8; total_bytes];
        segment
            .file
            .read_exact_at(&mut bytes, position)
            .map_err(|e| io_err(&segment.log_path, e))?;
        let inconsistent = |what: String| {
            LogError::Inconsistent(format!(
                "{}: batch at {position}: {what}",
                segment.log_path.display()
            ))
        };
        let header = batch::parse_header(&bytes, limits::STORED_BATCH_BYTES_MAX)
            .map_err(|e| inconsistent(e.to_string()))?;
        match crate::wire::records::first_record_at_or_after(&bytes, &header, timestamp_ms) {
            Ok(Some(found)) => Ok(found),
            Ok(None) => Err(inconsistent(format!(
                "no record at or after its max timestamp {timestamp_ms}"
            ))),
            Err(e) => Err(inconsistent(e.to_string())),
        }
    }

    pub fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
        upper_offset: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        for segment in &self.segments {
            let mut position = 0u64;
            while position < segment.size_bytes {
                let (base_offset, total_bytes, _) = segment.read_scan_header(position)?;
                if base_offset >= upper_offset {
                    return Ok(None);
                }
                let max_timestamp = segment.read_max_timestamp(position)?;
                if max_timestamp >= timestamp_ms {
                    // As Kafka: the first record of this batch at or after the timestamp.
                    return Self::record_for_timestamp(
                        segment,
                        position,
                        total_bytes,
                        timestamp_ms,
                    )
                    .map(|(delta, found)| Some((base_offset + i64::from(delta), found)));
                }
                position += total_bytes as u64;
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::batch::{build_batch, validate_records};

    fn config(segment_bytes: u64) -> LogConfig {
        LogConfig {
            segment_bytes,
            index_interval_bytes: 100,
            flush_messages: 0,
            ..LogConfig::default()
        }
    }

    fn append_values(log: &mut Log, values: &[&[u8]]) -> AppendInfo {
        let records = build_batch(0, 1000, values);
        let spans = validate_records(&records, 1 << 20).expect("valid");
        log.append(&records, &spans, 0).expect("append")
    }

    fn read_all(log: &Log) -> Vec<(i64, usize)> {
        let mut batches = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let plan = log
                .read_plan(offset, 1, log.log_end_offset())
                .expect("plan");
            let data = plan.read().expect("read");
            let header = batch::validate_batch(&data, 1 << 20).expect("stored batch valid");
            assert!(header.base_offset <= offset && offset <= header.last_offset());
            batches.push((header.base_offset, header.record_count as usize));
            offset = header.next_offset();
        }
        batches
    }

    #[test]
    fn append_roll_read_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = Log::open(dir.path(), config(1024), 0, false).expect("open");
        for i in 0..100 {
            let info = append_values(&mut log, &[b"0123456789", b"abcdefghij"]);
            assert_eq!(info.base_offset, i * 2);
            assert_eq!(info.last_offset, i * 2 + 1);
        }
        assert_eq!(log.log_end_offset(), 200);
        assert!(log.segment_count() > 1, "rolled");
        // Every offset is readable, including the second record of a batch.
        for offset in [0, 1, 57, 199] {
            let plan = log.read_plan(offset, 1, 200).expect("plan");
            let data = plan.read().expect("read");
            let header = batch::validate_batch(&data, 1 << 20).expect("valid");
            assert!(header.base_offset <= offset && offset <= header.last_offset());
        }
        // Reading at the HW gives nothing; beyond the LEO is out of range.
        assert_eq!(log.read_plan(200, 100, 200).expect("plan").len_bytes(), 0);
        assert!(matches!(
            log.read_plan(201, 100, 200),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        // The HW bounds the read.
        let plan = log.read_plan(0, 1 << 20, 4).expect("plan");
        let data = plan.read().expect("read");
        assert_eq!(
            data.len(),
            2 * batch::validate_batch(&data, 1 << 20)
                .expect("valid")
                .total_bytes
        );
        assert_eq!(read_all(&log).len(), 100);
        log.close().expect("close");
        assert!(matches!(log.append(&[], &[], 0), Err(LogError::Closed)));
        drop(log);

        let (log, outcome) = Log::open(dir.path(), config(1024), 200, true).expect("reopen clean");
        assert!(outcome.truncated.is_none());
        assert_eq!(log.log_end_offset(), 200);
        assert_eq!(read_all(&log).len(), 100);
        drop(log);
        let (log, outcome) = Log::open(dir.path(), config(1024), 0, false).expect("reopen unclean");
        assert!(outcome.truncated.is_none(), "{outcome:?}");
        assert_eq!(log.log_end_offset(), 200);
    }

    #[test]
    fn recovery_truncates_at_a_corrupt_batch_and_appends_continue() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = Log::open(dir.path(), config(1 << 20), 0, false).expect("open");
        for _ in 0..10 {
            append_values(&mut log, &[b"value-value"]);
        }
        let batch_bytes = build_batch(0, 1000, &[b"value-value"]).len() as u64;
        drop(log);
        let segment_path = dir.path().join(segment::file_name(0, "log"));
        let mut data = std::fs::read(&segment_path).expect("read");
        data[(batch_bytes * 6 + 40) as usize] ^= 0xff; // inside batch 6 (offset 6)
        std::fs::write(&segment_path, &data).expect("write");
        let (mut log, outcome) = Log::open(dir.path(), config(1 << 20), 0, false).expect("recover");
        let truncation = outcome.truncated.expect("truncated");
        assert_eq!(truncation.offset, 6);
        assert_eq!(truncation.position, batch_bytes * 6);
        assert_eq!(log.log_end_offset(), 6);
        assert_eq!(read_all(&log).len(), 6);
        assert_eq!(append_values(&mut log, &[b"new"]).base_offset, 6);
    }

    #[test]
    fn recovery_cuts_a_torn_tail_and_later_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = Log::open(dir.path(), config(1024), 0, false).expect("open");
        for _ in 0..60 {
            append_values(&mut log, &[b"0123456789012345678901234567890123456789"]);
        }
        let segments = log.segment_count();
        assert!(segments >= 3);
        drop(log);
        // Tear the first segment's tail: everything after must go.
        let first = dir.path().join(segment::file_name(0, "log"));
        let length = std::fs::metadata(&first).expect("meta").len();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&first)
            .expect("open");
        file.set_len(length - 7).expect("truncate");
        drop(file);
        let (log, outcome) = Log::open(dir.path(), config(1024), 0, false).expect("recover");
        let truncation = outcome.truncated.expect("truncated");
        assert_eq!(truncation.segments_deleted, segments - 1);
        assert_eq!(log.segment_count(), 1);
        assert_eq!(read_all(&log).len() as i64, log.log_end_offset());
    }

    #[test]
    fn with_the_torn_tail_switch_recovery_keeps_the_torn_bytes_and_appends_land_behind_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = Log::open(dir.path(), config(1 << 20), 0, false).expect("open");
        for _ in 0..10 {
            append_values(&mut log, &[b"value-value"]);
        }
        drop(log);
        let path = dir.path().join(segment::file_name(0, "log"));
        let length = std::fs::metadata(&path).expect("meta").len();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_len(length - 7).expect("tear the last batch");
        drop(file);
        let buggy = LogConfig {
            recovery_cuts_torn_tail: false,
            ..config(1 << 20)
        };
        let (mut log, outcome) = Log::open(dir.path(), buggy, 0, false).expect("recover");
        assert_eq!(
            outcome.truncated.expect("stopped at the torn batch").offset,
            9
        );
        assert_eq!(log.log_end_offset(), 9);
        let torn_end = std::fs::metadata(&path).expect("meta").len();
        assert_eq!(torn_end, length - 7, "the torn bytes stay in the file");
        append_values(&mut log, &[b"after"]);
        drop(log);
        // The next recovery (correct or not) stops at the torn batch again: the append is gone.
        let (log, outcome) = Log::open(dir.path(), config(1 << 20), 0, false).expect("again");
        assert_eq!(outcome.truncated.expect("the torn batch mid-log").offset, 9);
        assert_eq!(
            log.log_end_offset(),
            9,
            "the append behind the torn bytes is lost"
        );
    }

    #[test]
    fn garbage_segment_is_cut_to_nothing_without_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(segment::file_name(0, "log")),
            b"this is not a record batch at all",
        )
        .expect("write");
        std::fs::write(dir.path().join(segment::file_name(0, "index")), b"junk").expect("write");
        let (mut log, outcome) = Log::open(dir.path(), config(1024), 0, true).expect("open");
        assert!(outcome.truncated.is_some());
        assert_eq!(log.log_end_offset(), 0);
        assert_eq!(append_values(&mut log, &[b"x"]).base_offset, 0);
    }

    #[test]
    fn truncate_to_cuts_at_batch_boundaries_and_replicated_appends_keep_offsets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = Log::open(dir.path(), config(1024), 0, false).expect("open");
        for _ in 0..60 {
            append_values(
                &mut log,
                &[b"0123456789012345678901234567890123456789", b"x"],
            );
        }
        assert!(log.segment_count() >= 3);
        assert_eq!(log.log_end_offset(), 120);
        // Mid-batch: the whole batch holding offset 51 goes.
        assert_eq!(log.truncate_to(51).expect("truncate"), 50);
        assert_eq!(log.log_end_offset(), 50);
        assert_eq!(read_all(&log).len(), 25);
        assert_eq!(log.truncate_to(500).expect("no-op"), 50);
        // A batch from a leader keeps its offset and epoch; a gap is refused.
        let records = build_batch(50, 1000, &[b"replicated"]);
        let spans = validate_records(&records, 1 << 20).expect("valid");
        let info = log.append_replicated(&records, &spans).expect("append");
        assert_eq!((info.base_offset, info.last_offset), (50, 50));
        let gap = build_batch(60, 1000, &[b"gap"]);
        let gap_spans = validate_records(&gap, 1 << 20).expect("valid");
        assert!(matches!(
            log.append_replicated(&gap, &gap_spans),
            Err(LogError::NonContiguous {
                expected: 51,
                got: 60
            })
        ));
        assert_eq!(log.truncate_to(0).expect("to zero"), 0);
        assert_eq!(log.segment_count(), 1);
        assert_eq!(append_values(&mut log, &[b"again"]).base_offset, 0);
        drop(log);
        let (log, outcome) = Log::open(dir.path(), config(1024), 0, false).expect("reopen");
        assert!(outcome.truncated.is_none(), "{outcome:?}");
        assert_eq!(log.log_end_offset(), 1);
        assert_eq!(log.scan_epochs().expect("epochs"), vec![(0, 0)]);
    }

    #[test]
    fn producer_batches_are_scanned_across_read_buffers_and_bounded_by_segments() {
        use crate::wire::batch::build_producer_batch;
        let dir = tempfile::tempdir().expect("tempdir");
        // One large segment: batches straddle the 1 MiB read buffer.
        let (mut log, _) = Log::open(dir.path(), config(64 << 20), 0, false).expect("open");
        let count = 20_000;
        for i in 0..count {
            let records = build_producer_batch(0, 1, &[b"0123456789"], 3, 0, i);
            let spans = validate_records(&records, 1 << 20).expect("valid");
            log.append(&records, &spans, 0).expect("append");
        }
        append_values(&mut log, &[b"not idempotent"]);
        assert!(log.segments[0].size_bytes > limits::RECOVERY_READ_BUFFER_BYTES as u64);
        let mut sequences = Vec::new();
        let (batches, from) = log
            .scan_producer_batches(u64::MAX, |h, _| {
                let a = crate::producer::ProducerAppend::of(h, h.base_offset).expect("idempotent");
                assert_eq!(a.batch.first_offset, i64::from(a.batch.first_sequence));
                sequences.push(a.batch.first_sequence);
            })
            .expect("scan");
        assert_eq!((batches, from), (count as usize + 1, 0));
        assert_eq!(sequences, (0..count).collect::<Vec<_>>());
        drop(log);
        // Small segments: only the newest that fit in the bound are read.
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = Log::open(dir.path(), config(1024), 0, false).expect("open");
        for i in 0..100 {
            let records = build_producer_batch(0, 1, &[&[b'x'; 100]], 3, 0, i);
            let spans = validate_records(&records, 1 << 20).expect("valid");
            log.append(&records, &spans, 0).expect("append");
        }
        assert!(log.segment_count() > 5);
        let mut last = None;
        let (batches, from) = log
            .scan_producer_batches(2048, |h, _| last = Some(h.base_sequence))
            .expect("scan");
        assert!(from > 0 && batches < 100, "{batches} batches from {from}");
        assert_eq!(last, Some(99));
    }

    #[test]
    fn a_read_back_that_differs_from_what_was_written_is_refused() {
        use crate::invariant::Invariant;
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = Log::open(dir.path(), config(1 << 20), 0, false).expect("open");
        for _ in 0..3 {
            append_values(&mut log, &[b"value-value"]);
        }
        let plan = log.read_plan(0, 1 << 20, 3).expect("plan");
        let data = plan.read_unchecked().expect("read");
        assert_eq!(plan.check(&data), Ok(()));
        let batch_bytes = data.len() / 3;
        let segment_path = dir.path().join(segment::file_name(0, "log"));
        let original = std::fs::read(&segment_path).expect("read");
        // A flipped bit in the second batch's records: its CRC no longer matches.
        let mut flipped = original.clone();
        flipped[batch_bytes + 40] ^= 0x01;
        std::fs::write(&segment_path, &flipped).expect("write");
        let data = plan.read_unchecked().expect("read");
        let violation = plan.check(&data).expect_err("CRC mismatch");
        assert_eq!(violation.invariant, Invariant::StoredBatchIntact);
        assert!(matches!(plan.read(), Err(LogError::Inconsistent(_))));
        // The third batch's base offset (outside the CRC) repeats the second's.
        let mut repeated = original.clone();
        repeated[2 * batch_bytes..2 * batch_bytes + 8].copy_from_slice(&1i64.to_be_bytes());
        std::fs::write(&segment_path, &repeated).expect("write");
        let data = plan.read_unchecked().expect("read");
        let violation = plan.check(&data).expect_err("offsets go back");
        assert_eq!(violation.invariant, Invariant::OffsetsIncreasing);
        assert!(
            violation
                .state
                .contains("expected_base_offset=2 base_offset=1"),
            "{violation}"
        );
        // A length field that no longer covers the batch.
        let mut short = original;
        short[batch_bytes + 11] ^= 0x04;
        std::fs::write(&segment_path, &short).expect("write");
        let data = plan.read_unchecked().expect("read");
        let violation = plan.check(&data).expect_err("length changed");
        assert_eq!(violation.invariant, Invariant::StoredBatchIntact);
    }

    #[test]
    #[should_panic(expected = "invariant offsets_increasing violated")]
    fn a_read_plan_over_offsets_that_go_back_stops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = Log::open(dir.path(), config(1 << 20), 0, false).expect("open");
        for _ in 0..3 {
            append_values(&mut log, &[b"value-value"]);
        }
        let batch_bytes = build_batch(0, 1000, &[b"value-value"]).len();
        let segment_path = dir.path().join(segment::file_name(0, "log"));
        let mut data = std::fs::read(&segment_path).expect("read");
        data[2 * batch_bytes..2 * batch_bytes + 8].copy_from_slice(&1i64.to_be_bytes());
        std::fs::write(&segment_path, &data).expect("write");
        let _ = log.read_plan(0, 1 << 20, 3);
    }

    #[test]
    fn flush_messages_advances_the_recovery_point() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = config(1 << 20);
        config.flush_messages = 3;
        let (mut log, _) = Log::open(dir.path(), config, 0, false).expect("open");
        assert!(!append_values(&mut log, &[b"a"]).recovery_point_advanced);
        assert!(!append_values(&mut log, &[b"a"]).recovery_point_advanced);
        assert_eq!(log.recovery_point(), 0);
        assert!(append_values(&mut log, &[b"a"]).recovery_point_advanced);
        assert_eq!(log.recovery_point(), 3);
    }

    #[test]
    fn a_roll_leaves_the_rolled_segment_to_a_flush_outside_the_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = Log::open(dir.path(), config(256), 0, false).expect("open");
        let value: &[u8] = b"0123456789012345678901234567890123456789";
        let mut rolls = 0;
        for _ in 0..12 {
            let info = append_values(&mut log, &[value, value]);
            assert!(
                !info.recovery_point_advanced,
                "the append path fsyncs nothing"
            );
            rolls += usize::from(info.rolled);
        }
        assert!(rolls >= 2, "{rolls} rolls");
        assert_eq!(log.recovery_point(), 0);
        let plan = log.rolled_flush_plan().expect("rolled segments to flush");
        assert_eq!(plan.files.len(), log.segment_count() - 1);
        assert_eq!(plan.up_to, log.segments.last().expect("active").base_offset);
        plan.run().expect("fsync");
        assert!(log.rolled_flushed(plan.up_to));
        assert_eq!(log.recovery_point(), plan.up_to);
        assert!(
            log.rolled_flush_plan().is_none(),
            "nothing rolled is left unflushed"
        );
        // A later roll plans only the new rolled segment; flush() takes everything.
        while !append_values(&mut log, &[value, value]).rolled {}
        assert_eq!(log.rolled_flush_plan().expect("one more").files.len(), 1);
        assert!(log.flush().expect("flush"));
        assert_eq!(log.recovery_point(), log.log_end_offset());
        assert!(log.rolled_flush_plan().is_none());
        // A truncation below the recovery point pulls it back; a stale plan's end cannot pass the LEO.
        assert_eq!(log.truncate_to(2).expect("truncate"), 2);
        assert_eq!(log.recovery_point(), 2);
        assert!(!log.rolled_flushed(plan.up_to));
    }
}
