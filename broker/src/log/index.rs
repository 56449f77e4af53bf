//! Sparse offset index of one segment: entries of (offset relative to the segment base: u32,
//! file position: u32), big-endian, 8 bytes each, one per `index.interval.bytes` of log.
//!
//! Lookups binary-search the file with positioned reads, so memory does not grow with the log.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes per index entry.
pub const ENTRY_BYTES: u64 = 8;

/// Errors of the offset index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "index {path}: entry offset {offset} is not above the last entry {last} or out of range"
    )]
    NotIncreasing {
        path: PathBuf,
        offset: i64,
        last: i64,
    },
}

/// The offset index of one segment.
#[derive(Debug)]
pub struct OffsetIndex {
    path: PathBuf,
    file: File,
    base_offset: i64,
    entry_count: u64,
    /// Last entry as (absolute offset, position), if any.
    last_entry: Option<(i64, u32)>,
}

impl OffsetIndex {
    /// Creates an empty index, replacing any file at `path`.
    pub fn create(path: &Path, base_offset: i64) -> Result<OffsetIndex, IndexError> {
        let io_err = |source| IndexError::Io {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io_err)?;
        Ok(OffsetIndex {
            path: path.to_owned(),
            file,
            base_offset,
            entry_count: 0,
            last_entry: None,
        })
    }

    /// Opens an existing index and checks it against its segment: entries strictly increasing,
    /// positions inside the segment. Returns `Ok(None)` when it is missing or invalid (rebuild it).
    pub fn open_checked(
        path: &Path,
        base_offset: i64,
        segment_bytes: u64,
    ) -> Result<Option<OffsetIndex>, IndexError> {
        let io_err = |source| IndexError::Io {
            path: path.to_owned(),
            source,
        };
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(e)),
        };
        let length_bytes = file.metadata().map_err(io_err)?.len();
        if length_bytes % ENTRY_BYTES != 0 {
            return Ok(None);
        }
        let entry_count = length_bytes / ENTRY_BYTES;
        let mut chunk = vec![0u8; 64 * 1024];
        let mut last: Option<(u32, u32)> = None;
        let mut at = 0u64;
        while at < length_bytes {
            let chunk_bytes = (length_bytes - at).min(chunk.len() as u64) as usize;
            file.read_exact_at(&mut chunk[..chunk_bytes], at)
                .map_err(io_err)?;
            for entry in chunk[..chunk_bytes].chunks_exact(ENTRY_BYTES as usize) {
                let relative = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]);
                let position = u32::from_be_bytes([entry[4], entry[5], entry[6], entry[7]]);
                if u64::from(position) >= segment_bytes {
                    return Ok(None);
                }
                if let Some((last_relative, last_position)) = last {
                    if relative <= last_relative || position <= last_position {
                        return Ok(None);
                    }
                }
                last = Some((relative, position));
            }
            at += chunk_bytes as u64;
        }
        Ok(Some(OffsetIndex {
            path: path.to_owned(),
            file,
            base_offset,
            entry_count,
            last_entry: last
                .map(|(relative, position)| (base_offset + i64::from(relative), position)),
        }))
    }

    pub fn entry_count(&self) -> u64 {
        self.entry_count
    }

    /// Last entry as (absolute offset, position).
    pub fn last_entry(&self) -> Option<(i64, u32)> {
        self.last_entry
    }

    /// Appends an entry; `offset` must be above the last entry and within u32 of the base.
    pub fn append(&mut self, offset: i64, position: u32) -> Result<(), IndexError> {
        let last = self
            .last_entry
            .map_or(self.base_offset - 1, |(last, _)| last);
        let relative = offset - self.base_offset;
        if offset <= last || !(0..=i64::from(u32::MAX)).contains(&relative) {
            return Err(IndexError::NotIncreasing {
                path: self.path.clone(),
                offset,
                last,
            });
        }
        let mut entry = [0u8; ENTRY_BYTES as usize];
        entry[..4].copy_from_slice(&(relative as u32).to_be_bytes());
        entry[4..].copy_from_slice(&position.to_be_bytes());
        self.file
            .write_all_at(&entry, self.entry_count * ENTRY_BYTES)
            .map_err(|source| IndexError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.entry_count += 1;
        self.last_entry = Some((offset, position));
        Ok(())
    }

    fn read_entry(&self, entry_index: u64) -> Result<(i64, u32), IndexError> {
        let mut entry = [0u8; ENTRY_BYTES as usize];
        self.file
            .read_exact_at(&mut entry, entry_index * ENTRY_BYTES)
            .map_err(|source| IndexError::Io {
                path: self.path.clone(),
                source,
            })?;
        let relative = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]);
        let position = u32::from_be_bytes([entry[4], entry[5], entry[6], entry[7]]);
        Ok((self.base_offset + i64::from(relative), position))
    }

    /// The largest entry whose offset is at most `offset`, as (offset, position);
    /// `(base_offset, 0)` when there is none.
    pub fn lookup(&self, offset: i64) -> Result<(i64, u32), IndexError> {
        if let Some((last_offset, last_position)) = self.last_entry {
            if last_offset <= offset {
                return Ok((last_offset, last_position));
            }
        }
        // Binary search over entries [low, high): find the last entry <= offset.
        let (mut low, mut high) = (0u64, self.entry_count);
        let mut found = (self.base_offset, 0u32);
        while low < high {
            let middle = low + (high - low) / 2;
            let entry = self.read_entry(middle)?;
            if entry.0 <= offset {
                found = entry;
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        Ok(found)
    }

    /// Removes every entry at or above `offset` (the log was truncated there).
    pub fn truncate_from(&mut self, offset: i64) -> Result<(), IndexError> {
        // Entries are increasing: keep the first `low` entries, those below `offset`.
        let (mut low, mut high) = (0u64, self.entry_count);
        while low < high {
            let middle = low + (high - low) / 2;
            if self.read_entry(middle)?.0 < offset {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        let io_err = |source| IndexError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.set_len(low * ENTRY_BYTES).map_err(io_err)?;
        self.last_entry = if low == 0 {
            None
        } else {
            Some(self.read_entry(low - 1)?)
        };
        self.entry_count = low;
        Ok(())
    }

    /// fsyncs the index file.
    pub fn flush(&self) -> Result<(), IndexError> {
        self.file.sync_data().map_err(|source| IndexError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_the_largest_entry_not_above() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("00000000000000000100.index");
        let mut index = OffsetIndex::create(&path, 100).expect("create");
        assert_eq!(index.lookup(150).expect("lookup"), (100, 0));
        for i in 1..=50u32 {
            index
                .append(100 + i64::from(i) * 10, i * 1000)
                .expect("append");
        }
        assert_eq!(index.lookup(99).expect("lookup"), (100, 0));
        assert_eq!(index.lookup(105).expect("lookup"), (100, 0));
        assert_eq!(index.lookup(110).expect("lookup"), (110, 1000));
        assert_eq!(index.lookup(255).expect("lookup"), (250, 15000));
        assert_eq!(index.lookup(10_000).expect("lookup"), (600, 50000));
        assert!(index.append(600, 60000).is_err(), "not increasing");
        drop(index);

        let reopened = OffsetIndex::open_checked(&path, 100, 1_000_000)
            .expect("open")
            .expect("valid");
        assert_eq!(reopened.entry_count(), 50);
        assert_eq!(reopened.lookup(333).expect("lookup"), (330, 23000));
        // Positions beyond the segment make it invalid.
        assert!(OffsetIndex::open_checked(&path, 100, 20_000)
            .expect("open")
            .is_none());
    }

    #[test]
    fn torn_or_garbage_index_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.index");
        std::fs::write(&path, [1u8, 2, 3]).expect("write");
        assert!(OffsetIndex::open_checked(&path, 0, 1000)
            .expect("open")
            .is_none());
        std::fs::write(&path, [0, 0, 0, 5, 0, 0, 0, 9, 0, 0, 0, 4, 0, 0, 0, 10]).expect("write");
        assert!(
            OffsetIndex::open_checked(&path, 0, 1000)
                .expect("open")
                .is_none(),
            "decreasing"
        );
        assert!(
            OffsetIndex::open_checked(&dir.path().join("missing.index"), 0, 1000)
                .expect("open")
                .is_none()
        );
    }
}
