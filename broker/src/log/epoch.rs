//! The leader-epoch cache of one partition replica (KIP-101): `(epoch, start offset)` pairs, the
//! first offset written in each leader epoch, persisted in Kafka's `leader-epoch-checkpoint` format:
//! a version line `0`, a count line, then `epoch start_offset` per line. Rewritten atomically.

use std::path::{Path, PathBuf};

use crate::limits;
use crate::log::{sync_dir, LogError};

pub const LEADER_EPOCH_FILE_NAME: &str = "leader-epoch-checkpoint";

/// Epoch and offset for "not known" (Kafka's UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET).
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_OFFSET: i64 = -1;

/// `(epoch, start offset)` entries, epochs and offsets strictly increasing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochCache {
    path: PathBuf,
    entries: Vec<(i32, i64)>,
}

fn io_err(path: &Path, source: std::io::Error) -> LogError {
    LogError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Parses the checkpoint text; `None` if it is not valid.
pub fn parse(text: &str) -> Option<Vec<(i32, i64)>> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    if count > limits::EPOCH_ENTRIES_MAX {
        return None;
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let mut fields = lines.next()?.split_whitespace();
        let epoch: i32 = fields.next()?.parse().ok()?;
        let start: i64 = fields.next()?.parse().ok()?;
        if let Some(&(last_epoch, last_start)) = entries.last() {
            if epoch <= last_epoch || start < last_start {
                return None;
            }
        }
        entries.push((epoch, start));
    }
    Some(entries)
}

/// Reads a checkpoint file: `Ok(None)` when missing or invalid.
pub fn read(path: &Path) -> Result<Option<Vec<(i32, i64)>>, LogError> {
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, e)),
    };
    if metadata.len() > limits::EPOCH_CHECKPOINT_FILE_BYTES_MAX {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    Ok(parse(&text))
}

impl EpochCache {
    /// Loads the cache of the partition in `dir`, dropping entries at or above `log_end_offset`
    /// (they describe records the log no longer has). `None` when there is no valid checkpoint.
    pub fn load(dir: &Path, log_end_offset: i64) -> Result<Option<EpochCache>, LogError> {
        let path = dir.join(LEADER_EPOCH_FILE_NAME);
        let Some(entries) = read(&path)? else {
            return Ok(None);
        };
        let mut cache = EpochCache { path, entries };
        cache.truncate_from_end(log_end_offset)?;
        Ok(Some(cache))
    }

    /// A cache of `entries` whose file is not written until the cache next changes (used when
    /// the disk refuses the write at start).
    pub fn unwritten(dir: &Path, entries: Vec<(i32, i64)>) -> EpochCache {
        EpochCache {
            path: dir.join(LEADER_EPOCH_FILE_NAME),
            entries,
        }
    }

    /// A cache built from the epochs found in the log's batches (no checkpoint file yet).
    pub fn rebuilt(dir: &Path, entries: Vec<(i32, i64)>) -> Result<EpochCache, LogError> {
        let cache = EpochCache {
            path: dir.join(LEADER_EPOCH_FILE_NAME),
            entries,
        };
        cache.write()?;
        Ok(cache)
    }

    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|&(epoch, _)| epoch)
    }

    /// Records that `epoch` starts at `start_offset` (a new leader, or a follower appending a
    /// batch of a newer epoch). Older or equal epochs are ignored.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<(), LogError> {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| epoch <= latest) {
            return Ok(());
        }
        // An epoch that wrote nothing is replaced by the next one starting at the same offset.
        while self
            .entries
            .last()
            .is_some_and(|&(_, start)| start >= start_offset)
        {
            self.entries.pop();
        }
        self.entries.push((epoch, start_offset));
        let tail = &self.entries[self.entries.len().saturating_sub(2)..];
        crate::invariant::enforce(
            crate::invariant::epoch_entries_increasing(tail),
            self.path.display(),
        );
        self.write()
    }

    /// Drops entries starting at or after `end_offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Result<(), LogError> {
        let before = self.entries.len();
        self.entries.retain(|&(_, start)| start < end_offset);
        if self.entries.len() != before {
            self.write()?;
        }
        Ok(())
    }

    /// The answer to OffsetForLeaderEpoch: the largest epoch at most `epoch` and the offset where
    /// it ends (the next epoch's start, or the LEO for the latest). An epoch older than every
    /// known one (this replica lost that part of its log, e.g. to a power loss) ends where the
    /// first known epoch starts, as Kafka answers: the asker must cut there, since nothing it holds
    /// from that epoch is here. Undefined for an undefined epoch or an empty cache.
    pub fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> (i32, i64) {
        let Some(position) = self.entries.iter().rposition(|&(e, _)| e <= epoch) else {
            return match self.entries.first() {
                Some(&(_, first_start)) if epoch != UNDEFINED_EPOCH => (epoch, first_start),
                _ => (UNDEFINED_EPOCH, UNDEFINED_OFFSET),
            };
        };
        let found_epoch = self.entries[position].0;
        match self.entries.get(position + 1) {
            Some(&(_, next_start)) => (found_epoch, next_start),
            None => (found_epoch, log_end_offset),
        }
    }

    fn write(&self) -> Result<(), LogError> {
        let mut text = format!("0\n{}\n", self.entries.len());
        for (epoch, start) in &self.entries {
            text.push_str(&format!("{epoch} {start}\n"));
        }
        let tmp = self.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut file, text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| io_err(&self.path, e))?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assign_truncate_and_lookup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cache = EpochCache::rebuilt(dir.path(), vec![(0, 0)]).expect("write");
        cache.assign(2, 5).expect("assign");
        cache.assign(1, 3).expect("older ignored");
        assert_eq!(cache.entries(), &[(0, 0), (2, 5)]);
        assert_eq!(cache.end_offset_for(0, 9), (0, 5));
        assert_eq!(cache.end_offset_for(1, 9), (0, 5));
        assert_eq!(cache.end_offset_for(2, 9), (2, 9));
        assert_eq!(cache.end_offset_for(7, 9), (2, 9));
        let loaded = EpochCache::load(dir.path(), 4)
            .expect("load")
            .expect("present");
        assert_eq!(loaded.entries(), &[(0, 0)]);
        assert_eq!(parse("0\n1\n3 4\n"), Some(vec![(3, 4)]));
    }

    #[test]
    fn an_epoch_older_than_every_known_one_ends_where_the_first_known_starts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cache = EpochCache::rebuilt(dir.path(), vec![(2, 5)]).expect("write");
        assert_eq!(cache.end_offset_for(0, 9), (0, 5));
        assert_eq!(cache.end_offset_for(1, 9), (1, 5));
        assert_eq!(
            cache.end_offset_for(UNDEFINED_EPOCH, 9),
            (UNDEFINED_EPOCH, UNDEFINED_OFFSET)
        );
        cache.truncate_from_end(0).expect("truncate");
        assert_eq!(
            cache.end_offset_for(0, 0),
            (UNDEFINED_EPOCH, UNDEFINED_OFFSET)
        );
        assert_eq!(parse("1\n0\n"), None);
        assert_eq!(parse("0\n2\n3 4\n"), None);
    }
}
