//! One segment: `<20-digit base offset>.log` holding record batches back to back, and its `.index`.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::limits;
use crate::log::error::LogError;
use crate::log::index::{IndexError, OffsetIndex};
use crate::wire::batch::{self, BatchError};

/// File name of a segment or index: the base offset as 20 digits.
pub fn file_name(base_offset: i64, extension: &str) -> String {
    format!("{base_offset:020}.{extension}")
}

/// Base offset from a `<20 digits>.log` file name.
pub fn parse_file_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One segment of a partition log.
#[derive(Debug)]
pub struct Segment {
    pub base_offset: i64,
    /// Offset after the last batch (= base_offset when empty).
    pub next_offset: i64,
    pub size_bytes: u64,
    pub file: Arc<File>,
    pub log_path: PathBuf,
    pub index_path: PathBuf,
    pub index: OffsetIndex,
    bytes_since_index_entry: u64,
    /// The largest batch max timestamp in it (time retention), once known: -1 when it has no
    /// batch; `None` for a segment opened from disk until [`Segment::largest_timestamp`] reads it.
    max_timestamp: Option<i64>,
    /// When this process created or opened it (`segment.ms` rolls by it).
    pub opened: std::time::Instant,
}

/// Outcome of validating a segment's batches from some position.
#[derive(Debug)]
pub struct ScanOutcome {
    /// Bytes of the file, from its start, that hold valid batches.
    pub valid_bytes: u64,
    /// Offset after the last valid batch.
    pub next_offset: i64,
    /// Where and why the scan stopped before the end of the file.
    pub stopped: Option<(u64, String)>,
}

fn io_err(path: &Path, source: io::Error) -> LogError {
    LogError::Io {
        path: path.to_owned(),
        source,
    }
}

impl From<IndexError> for LogError {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Io { path, source } => LogError::Io { path, source },
            other => LogError::Inconsistent(other.to_string()),
        }
    }
}

impl Segment {
    /// Creates a new empty segment (replacing files of the same name).
    pub fn create(dir: &Path, base_offset: i64) -> Result<Segment, LogError> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let index_path = dir.join(file_name(base_offset, "index"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(|e| io_err(&log_path, e))?;
        let index = OffsetIndex::create(&index_path, base_offset)?;
        Ok(Segment {
            base_offset,
            next_offset: base_offset,
            size_bytes: 0,
            file: Arc::new(file),
            log_path,
            index_path,
            index,
            bytes_since_index_entry: 0,
            max_timestamp: Some(-1),
            opened: std::time::Instant::now(),
        })
    }

    /// Opens an existing segment file. `next_offset` and the index are set up by the caller
    /// (from the next segment, a tail scan, or a recovery scan).
    pub fn open(dir: &Path, base_offset: i64) -> Result<(File, PathBuf, PathBuf, u64), LogError> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let index_path = dir.join(file_name(base_offset, "index"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(|e| io_err(&log_path, e))?;
        let size_bytes = file.metadata().map_err(|e| io_err(&log_path, e))?.len();
        Ok((file, log_path, index_path, size_bytes))
    }

    pub fn from_parts(
        base_offset: i64,
        next_offset: i64,
        size_bytes: u64,
        file: File,
        log_path: PathBuf,
        index_path: PathBuf,
        index: OffsetIndex,
    ) -> Segment {
        Segment {
            base_offset,
            next_offset,
            size_bytes,
            file: Arc::new(file),
            log_path,
            index_path,
            index,
            bytes_since_index_entry: 0,
            max_timestamp: None,
            opened: std::time::Instant::now(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }

    /// Appends one batch as `prefix` (patched first bytes) + `rest`, in one positioned write,
    /// adding an index entry every `index_interval_bytes`.
    pub fn append_batch(
        &mut self,
        prefix: &[u8],
        rest: &[u8],
        base_offset: i64,
        next_offset: i64,
        index_interval_bytes: u32,
    ) -> Result<(), LogError> {
        let position = self.size_bytes;
        let total_bytes = (prefix.len() + rest.len()) as u64;
        let position_u32 = u32::try_from(position).map_err(|_| {
            LogError::Inconsistent(format!(
                "{}: position {position} above u32",
                self.log_path.display()
            ))
        })?;
        if self.size_bytes > 0 && self.bytes_since_index_entry >= u64::from(index_interval_bytes) {
            self.index.append(base_offset, position_u32)?;
            self.bytes_since_index_entry = 0;
        }
        write_all_vectored_at(&self.file, prefix, rest, position)
            .map_err(|e| io_err(&self.log_path, e))?;
        self.size_bytes += total_bytes;
        self.bytes_since_index_entry += total_bytes;
        self.next_offset = next_offset;
        Ok(())
    }

    /// fsyncs the segment and its index.
    pub fn flush(&self) -> Result<(), LogError> {
        self.file
            .sync_data()
            .map_err(|e| io_err(&self.log_path, e))?;
        self.index.flush()?;
        Ok(())
    }

    /// Validates every batch from `start_position` (expected to hold `start_offset`) to the end of
    /// the file: length, magic, CRC32C, offsets contiguous from `start_offset`. When `index` is given,
    /// entries are added to it as during appends.
    pub fn scan(
        &mut self,
        start_position: u64,
        start_offset: i64,
        rebuild_index: bool,
        index_interval_bytes: u32,
    ) -> Result<ScanOutcome, LogError> {
        if rebuild_index {
            self.index = OffsetIndex::create(&self.index_path, self.base_offset)?;
            self.bytes_since_index_entry = 0;
        }
        let file_bytes = self.size_bytes;
        let mut buffer: Vec<u8> = Vec::with_capacity(limits::RECOVERY_READ_BUFFER_BYTES);
        let mut buffer_position = start_position; // file position of buffer[0]
        let mut position = start_position;
        let mut expected_offset = start_offset;
        let stop = |position: u64, expected_offset: i64, reason: String| ScanOutcome {
            valid_bytes: position,
            next_offset: expected_offset,
            stopped: Some((position, reason)),
        };
        while position < file_bytes {
            let in_buffer = (position - buffer_position) as usize;
            // Make sure the buffer holds at least the header (or all that is left).
            let want_header =
                (batch::BATCH_HEADER_BYTES as u64).min(file_bytes - position) as usize;
            if buffer.len() < in_buffer + want_header {
                self.refill(
                    &mut buffer,
                    &mut buffer_position,
                    position,
                    limits::RECOVERY_READ_BUFFER_BYTES,
                )?;
            }
            let in_buffer = (position - buffer_position) as usize;
            let header_bytes = &buffer[in_buffer..];
            let (_, total_bytes) =
                match batch::parse_overhead(header_bytes, limits::STORED_BATCH_BYTES_MAX) {
                    Ok(found) => found,
                    Err(e) => return Ok(stop(position, expected_offset, e.to_string())),
                };
            if position + total_bytes as u64 > file_bytes {
                let e = BatchError::Truncated {
                    total_bytes,
                    available: (file_bytes - position) as usize,
                };
                return Ok(stop(position, expected_offset, e.to_string()));
            }
            if buffer.len() < in_buffer + total_bytes {
                let want = total_bytes.max(limits::RECOVERY_READ_BUFFER_BYTES);
                self.refill(&mut buffer, &mut buffer_position, position, want)?;
            }
            let in_buffer = (position - buffer_position) as usize;
            let header = match batch::validate_batch(
                &buffer[in_buffer..in_buffer + total_bytes],
                total_bytes,
            ) {
                Ok(header) => header,
                Err(e) => return Ok(stop(position, expected_offset, e.to_string())),
            };
            if header.base_offset != expected_offset {
                let reason = format!(
                    "batch base offset {} where {} was expected",
                    header.base_offset, expected_offset
                );
                return Ok(stop(position, expected_offset, reason));
            }
            if header.next_offset() - self.base_offset > i64::from(u32::MAX) {
                let reason = format!(
                    "offset {} too far above segment base {}",
                    header.last_offset(),
                    self.base_offset
                );
                return Ok(stop(position, expected_offset, reason));
            }
            if rebuild_index
                && position > 0
                && self.bytes_since_index_entry >= u64::from(index_interval_bytes)
            {
                self.index.append(header.base_offset, position as u32)?;
                self.bytes_since_index_entry = 0;
            }
            self.bytes_since_index_entry += total_bytes as u64;
            position += total_bytes as u64;
            expected_offset = header.next_offset();
        }
        Ok(ScanOutcome {
            valid_bytes: position,
            next_offset: expected_offset,
            stopped: None,
        })
    }

    /// Reads up to `want` bytes from `position` into `buffer`.
    fn refill(
        &self,
        buffer: &mut Vec<u8>,
        buffer_position: &mut u64,
        position: u64,
        want: usize,
    ) -> Result<(), LogError> {
        let read_bytes = (want as u64).min(self.size_bytes - position) as usize;
        buffer.clear();
        buffer.resize(read_bytes, 0);
        self.file
            .read_exact_at(buffer, position)
            .map_err(|e| io_err(&self.log_path, e))?;
        *buffer_position = position;
        Ok(())
    }

    /// Cuts the segment file to `size_bytes` (recovery) and records the new end.
    pub fn truncate(&mut self, size_bytes: u64, next_offset: i64) -> Result<(), LogError> {
        self.file
            .set_len(size_bytes)
            .map_err(|e| io_err(&self.log_path, e))?;
        self.file
            .sync_all()
            .map_err(|e| io_err(&self.log_path, e))?;
        self.size_bytes = size_bytes;
        self.next_offset = next_offset;
        // What was cut may have held the largest timestamp.
        self.max_timestamp = if size_bytes == 0 { Some(-1) } else { None };
        Ok(())
    }

    /// Reads the scan header of the batch at `position`: (base offset, total bytes, last offset delta).
    pub fn read_scan_header(&self, position: u64) -> Result<(i64, usize, i32), LogError> {
        let mut header = [0u8; limits::SCAN_HEADER_BYTES];
        if position + header.len() as u64 > self.size_bytes {
            return Err(LogError::Inconsistent(format!(
                "{}: batch header at {position} runs past the segment end {}",
                self.log_path.display(),
                self.size_bytes
            )));
        }
        self.file
            .read_exact_at(&mut header, position)
            .map_err(|e| io_err(&self.log_path, e))?;
        let found =
            batch::parse_scan_header(&header, limits::STORED_BATCH_BYTES_MAX).map_err(|e| {
                LogError::Inconsistent(format!(
                    "{}: bad batch header at {position}: {e}",
                    self.log_path.display()
                ))
            })?;
        if position + found.1 as u64 > self.size_bytes {
            return Err(LogError::Inconsistent(format!(
                "{}: batch at {position} of {} bytes runs past the segment end {}",
                self.log_path.display(),
                found.1,
                self.size_bytes
            )));
        }
        Ok(found)
    }

    /// Reads the partition leader epoch of the batch at `position`.
    pub fn read_leader_epoch(&self, position: u64) -> Result<i32, LogError> {
        let mut raw = [0u8; 4];
        self.file
            .read_exact_at(&mut raw, position + 12)
            .map_err(|e| io_err(&self.log_path, e))?;
        Ok(i32::from_be_bytes(raw))
    }

    /// Reads the max timestamp of the batch at `position`.
    pub fn read_max_timestamp(&self, position: u64) -> Result<i64, LogError> {
        let mut raw = [0u8; 8];
        self.file
            .read_exact_at(&mut raw, position + 35)
            .map_err(|e| io_err(&self.log_path, e))?;
        Ok(i64::from_be_bytes(raw))
    }

    /// Takes an appended batch's max timestamp into the segment's largest one.
    pub fn note_timestamp(&mut self, max_timestamp: i64) {
        if let Some(known) = &mut self.max_timestamp {
            *known = (*known).max(max_timestamp);
        }
    }

    /// The largest max timestamp of its batches (-1 when empty), read from the batch headers
    /// the first time for a segment opened from disk.
    pub fn largest_timestamp(&mut self) -> Result<i64, LogError> {
        if let Some(known) = self.max_timestamp {
            return Ok(known);
        }
        let mut largest = -1i64;
        let mut position = 0u64;
        while position < self.size_bytes {
            let (_, total_bytes, _) = self.read_scan_header(position)?;
            largest = largest.max(self.read_max_timestamp(position)?);
            position += total_bytes as u64;
        }
        self.max_timestamp = Some(largest);
        Ok(largest)
    }

    /// Deletes the segment's files.
    pub fn delete_files(&self) -> Result<(), LogError> {
        for path in [&self.log_path, &self.index_path] {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(path, e)),
            }
        }
        Ok(())
    }
}

/// Writes `first` then `second` at `position` with one `pwritev`, finishing any partial write.
fn write_all_vectored_at(
    file: &File,
    first: &[u8],
    second: &[u8],
    position: u64,
) -> io::Result<()> {
    let total_bytes = first.len() + second.len();
    let offset = i64::try_from(position).map_err(|_| io::Error::other("position above i64"))?;
    let written =
        nix::sys::uio::pwritev(file, &[IoSlice::new(first), IoSlice::new(second)], offset)
            .map_err(io::Error::from)?;
    if written == total_bytes {
        return Ok(());
    }
    // Rare partial write: finish with plain positioned writes.
    let mut done = written;
    if done < first.len() {
        file.write_all_at(&first[done..], position + done as u64)?;
        done = first.len();
    }
    let in_second = done - first.len();
    file.write_all_at(&second[in_second..], position + done as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        assert_eq!(file_name(42, "log"), "00000000000000000042.log");
        assert_eq!(parse_file_name("00000000000000000042.log"), Some(42));
        assert_eq!(parse_file_name("42.log"), None);
        assert_eq!(parse_file_name("0000000000000000004x.log"), None);
        assert_eq!(parse_file_name("00000000000000000042.index"), None);
    }
}
