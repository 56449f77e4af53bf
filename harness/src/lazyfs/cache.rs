//! The page cache: every file's unsynced writes and truncations, held in memory until an fsync
//! writes them through. Pure data (no FUSE); the only I/O is [`Dirty::write_back`] and the
//! backing reader handed to [`PageCache::read`].
//!
//! A file's cached state is three numbers and a map:
//! - `size`: the size a program sees now;
//! - `floor`: backing bytes at or past it were truncated away (they read as zeros, never as the
//!   stale backing bytes, if the file grows again before it is synced);
//! - `extents`: dirty ranges, sorted, never overlapping nor touching (touching ranges are merged,
//!   so an appended log is one extent).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::time::SystemTime;

/// The unsynced state of one file.
#[derive(Debug, Clone)]
pub struct Dirty {
    extents: BTreeMap<u64, Vec<u8>>,
    size: u64,
    floor: u64,
    bytes: u64,
    /// The last run of contiguous writes (offset, length), while it is still pending: what a torn
    /// write tears. For an appending program, its whole unsynced tail.
    last_write: Option<(u64, u64)>,
    /// When this file first became dirty, in cache order: writeback takes the oldest first.
    since: u64,
    /// When a program last changed the file's contents through the cache.
    pub mtime: SystemTime,
}

impl Dirty {
    fn new(backing_len: u64, since: u64) -> Dirty {
        Dirty {
            extents: BTreeMap::new(),
            size: backing_len,
            floor: backing_len,
            bytes: 0,
            last_write: None,
            since,
            mtime: SystemTime::now(),
        }
    }

    /// Bytes held in extents.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The size a program sees.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Merges `data` at `offset` into the extents; returns the change in held bytes.
    fn insert(&mut self, offset: u64, data: &[u8]) -> i64 {
        let end = offset + data.len() as u64;
        // Extents touching [offset, end]: going down from the last one starting at or before
        // `end`, their ends decrease, so stop at the first that ends before `offset`.
        let mut touching: Vec<u64> = self
            .extents
            .range(..=end)
            .rev()
            .take_while(|(start, bytes)| *start + bytes.len() as u64 >= offset)
            .map(|(start, _)| *start)
            .collect();
        touching.reverse();
        let mut removed = 0u64;
        let (base, mut buf) = match touching.first() {
            Some(&start) if start <= offset => {
                touching.remove(0);
                let buf = self.extents.remove(&start).unwrap_or_default();
                removed += buf.len() as u64;
                (start, buf)
            }
            _ => (offset, Vec::with_capacity(data.len())),
        };
        let at = (offset - base) as usize;
        if buf.len() < at + data.len() {
            buf.resize(at + data.len(), 0);
        }
        buf[at..at + data.len()].copy_from_slice(data);
        for start in touching {
            let bytes = self.extents.remove(&start).unwrap_or_default();
            removed += bytes.len() as u64;
            let bytes_end = start + bytes.len() as u64;
            if bytes_end > end {
                buf.extend_from_slice(&bytes[(end - start) as usize..]);
            }
        }
        let added = buf.len() as u64;
        self.extents.insert(base, buf);
        self.bytes = self.bytes + added - removed;
        added as i64 - removed as i64
    }

    /// Cuts the file to `size`; returns the change in held bytes.
    fn truncate(&mut self, size: u64) -> i64 {
        let before = self.bytes;
        self.size = size;
        self.floor = self.floor.min(size);
        let beyond: Vec<u64> = self
            .extents
            .range(size..)
            .map(|(start, _)| *start)
            .collect();
        for start in beyond {
            if let Some(bytes) = self.extents.remove(&start) {
                self.bytes -= bytes.len() as u64;
            }
        }
        if let Some((start, bytes)) = self.extents.range_mut(..size).next_back() {
            let keep = (size - *start) as usize;
            if bytes.len() > keep {
                self.bytes -= (bytes.len() - keep) as u64;
                bytes.truncate(keep);
            }
        }
        self.last_write = match self.last_write {
            Some((offset, _)) if offset >= size => None,
            Some((offset, len)) => Some((offset, len.min(size - offset))),
            None => None,
        };
        self.bytes as i64 - before as i64
    }

    /// Fills `buf` with the file's bytes from `offset` (clipped at `size`): backing bytes below
    /// `floor`, zeros elsewhere, extents over both. Returns how many bytes are valid.
    fn read(
        &self,
        offset: u64,
        buf: &mut [u8],
        read_backing: impl FnOnce(u64, &mut [u8]) -> io::Result<()>,
    ) -> io::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let end = self.size.min(offset + buf.len() as u64);
        let len = (end - offset) as usize;
        let buf = &mut buf[..len];
        buf.fill(0);
        if offset < self.floor {
            let backing_len = (self.floor.min(end) - offset) as usize;
            read_backing(offset, &mut buf[..backing_len])?;
        }
        for (start, bytes) in self.extents.range(..end).rev() {
            let bytes_end = start + bytes.len() as u64;
            if bytes_end <= offset {
                break;
            }
            let from = offset.max(*start);
            let to = end.min(bytes_end);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&bytes[(from - start) as usize..(to - start) as usize]);
        }
        Ok(len)
    }

    /// Applies this state to the backing file: the truncation, every extent, the final size.
    /// Does not fsync: the caller decides.
    pub fn write_back(&self, file: &File) -> io::Result<()> {
        let backing_len = file.metadata()?.len();
        if self.floor < backing_len {
            file.set_len(self.floor)?;
        }
        for (start, bytes) in &self.extents {
            file.write_all_at(bytes, *start)?;
        }
        if file.metadata()?.len() != self.size {
            file.set_len(self.size)?;
        }
        Ok(())
    }

    /// The first `len` bytes of the last pending write, with its offset: what reaches the disk
    /// when the power goes in the middle of that write.
    pub fn last_write_prefix(&self, len: u64) -> Option<(u64, Vec<u8>)> {
        let (offset, write_len) = self.last_write?;
        let len = len.min(write_len);
        let (start, bytes) = self.extents.range(..=offset).next_back()?;
        let from = (offset - start) as usize;
        let to = from + len as usize;
        bytes.get(from..to).map(|b| (offset, b.to_vec()))
    }

    /// Length of the last pending write, if any.
    pub fn last_write_len(&self) -> Option<u64> {
        self.last_write.map(|(_, len)| len)
    }

    pub fn extent_count(&self) -> usize {
        self.extents.len()
    }
}

/// Every file's unsynced state, keyed by the mount's inode number, with a bound on the bytes held.
#[derive(Debug)]
pub struct PageCache {
    files: HashMap<u64, Dirty>,
    bytes: u64,
    bytes_max: u64,
    extents_per_file_max: usize,
    next_since: u64,
    /// The file whose last write took it over `extents_per_file_max`, if any.
    crowded: Option<u64>,
}

impl PageCache {
    pub fn new(bytes_max: u64, extents_per_file_max: usize) -> PageCache {
        PageCache {
            files: HashMap::new(),
            bytes: 0,
            bytes_max,
            extents_per_file_max,
            next_since: 0,
            crowded: None,
        }
    }

    /// Bytes held for all files.
    #[cfg(test)]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn get(&self, key: u64) -> Option<&Dirty> {
        self.files.get(&key)
    }

    fn entry(
        &mut self,
        key: u64,
        backing_len: impl FnOnce() -> io::Result<u64>,
    ) -> io::Result<&mut Dirty> {
        if !self.files.contains_key(&key) {
            let dirty = Dirty::new(backing_len()?, self.next_since);
            self.next_since += 1;
            self.files.insert(key, dirty);
        }
        self.files
            .get_mut(&key)
            .ok_or_else(|| io::Error::other("cache entry vanished"))
    }

    fn account(&mut self, delta: i64) {
        self.bytes = self.bytes.saturating_add_signed(delta);
    }

    /// Holds a write. `backing_len` is asked only when the file has no cached state yet.
    pub fn write(
        &mut self,
        key: u64,
        offset: u64,
        data: &[u8],
        backing_len: impl FnOnce() -> io::Result<u64>,
    ) -> io::Result<()> {
        let dirty = self.entry(key, backing_len)?;
        dirty.mtime = SystemTime::now();
        if data.is_empty() {
            return Ok(());
        }
        let delta = dirty.insert(offset, data);
        let end = offset + data.len() as u64;
        dirty.size = dirty.size.max(end);
        // A write that starts where the last one ended extends it: the kernel splits one
        // write(2) into several FUSE requests, and the syscall boundaries are not visible here.
        dirty.last_write = match dirty.last_write {
            Some((start, len)) if start + len == offset => Some((start, len + data.len() as u64)),
            _ => Some((offset, data.len() as u64)),
        };
        if dirty.extent_count() > self.extents_per_file_max {
            self.crowded = Some(key);
        }
        self.account(delta);
        Ok(())
    }

    /// Holds a truncation (or extension) to `size`.
    pub fn truncate(
        &mut self,
        key: u64,
        size: u64,
        backing_len: impl FnOnce() -> io::Result<u64>,
    ) -> io::Result<()> {
        let dirty = self.entry(key, backing_len)?;
        dirty.mtime = SystemTime::now();
        let delta = dirty.truncate(size);
        self.account(delta);
        Ok(())
    }

    /// Reads through the cache; `None` when the file has no cached state (read the backing file).
    pub fn read(
        &self,
        key: u64,
        offset: u64,
        buf: &mut [u8],
        read_backing: impl FnOnce(u64, &mut [u8]) -> io::Result<()>,
    ) -> Option<io::Result<usize>> {
        self.files
            .get(&key)
            .map(|dirty| dirty.read(offset, buf, read_backing))
    }

    /// Takes a file's state out of the cache (to write it through, or to drop it).
    pub fn take(&mut self, key: u64) -> Option<Dirty> {
        let dirty = self.files.remove(&key)?;
        self.bytes -= dirty.bytes;
        if self.crowded == Some(key) {
            self.crowded = None;
        }
        Some(dirty)
    }

    /// Takes everything out (a power loss).
    pub fn take_all(&mut self) -> Vec<(u64, Dirty)> {
        self.bytes = 0;
        self.crowded = None;
        let mut all: Vec<(u64, Dirty)> = self.files.drain().collect();
        all.sort_by_key(|(_, d)| d.since);
        all
    }

    /// The file to write back now, if the cache is over a bound: the one with too many extents,
    /// else, over the byte bound, the one dirty the longest.
    pub fn writeback_candidate(&self) -> Option<u64> {
        if let Some(key) = self.crowded {
            return Some(key);
        }
        if self.bytes <= self.bytes_max {
            return None;
        }
        self.files
            .iter()
            .min_by_key(|(_, d)| d.since)
            .map(|(key, _)| *key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model of the same file as a plain byte vector, to compare the cache against.
    fn read_all(cache: &PageCache, key: u64, backing: &[u8]) -> Vec<u8> {
        let size = cache
            .get(key)
            .map(|d| d.size())
            .unwrap_or(backing.len() as u64) as usize;
        let mut buf = vec![0xAA; size + 10];
        let n = cache
            .read(key, 0, &mut buf, |offset, out| {
                out.copy_from_slice(&backing[offset as usize..offset as usize + out.len()]);
                Ok(())
            })
            .expect("cached")
            .expect("read");
        buf.truncate(n);
        buf
    }

    fn no_backing() -> io::Result<u64> {
        Ok(0)
    }

    #[test]
    fn overlapping_writes_merge_into_one_extent_with_the_latest_bytes() {
        let mut cache = PageCache::new(1 << 20, 16);
        cache.write(1, 0, b"aaaaaaaa", no_backing).expect("write");
        cache.write(1, 4, b"bbbbbbbb", no_backing).expect("write");
        cache.write(1, 2, b"cc", no_backing).expect("write");
        cache.write(1, 20, b"dd", no_backing).expect("write");
        assert_eq!(read_all(&cache, 1, b""), b"aaccbbbbbbbb\0\0\0\0\0\0\0\0dd");
        assert_eq!(cache.get(1).map(|d| d.extent_count()), Some(2));
        assert_eq!(cache.bytes(), 14);
        // A write bridging both extents merges them.
        cache
            .write(1, 10, b"eeeeeeeeee", no_backing)
            .expect("write");
        assert_eq!(read_all(&cache, 1, b""), b"aaccbbbbbbeeeeeeeeeedd");
        assert_eq!(cache.get(1).map(|d| d.extent_count()), Some(1));
        assert_eq!(cache.bytes(), 22);
        // Appends touch the extent and extend it.
        cache.write(1, 22, b"ff", no_backing).expect("write");
        assert_eq!(cache.get(1).map(|d| d.extent_count()), Some(1));
        assert_eq!(cache.bytes(), 24);
        // A write inside an extent changes nothing but its bytes.
        cache.write(1, 0, b"Z", no_backing).expect("write");
        assert_eq!(read_all(&cache, 1, b""), b"Zaccbbbbbbeeeeeeeeeeddff");
        assert_eq!(cache.bytes(), 24);
    }

    #[test]
    fn reads_merge_cached_writes_over_the_backing_bytes() {
        let backing = b"0123456789";
        let mut cache = PageCache::new(1 << 20, 16);
        cache.write(7, 3, b"xy", || Ok(10)).expect("write");
        cache
            .write(7, 12, b"z", || unreachable!("asked once"))
            .expect("write");
        assert_eq!(read_all(&cache, 7, backing), b"012xy56789\0\0z");
        // A read in the middle, crossing backing, extent, backing.
        let mut buf = [0u8; 4];
        let n = cache
            .read(7, 2, &mut buf, |offset, out| {
                out.copy_from_slice(&backing[offset as usize..offset as usize + out.len()]);
                Ok(())
            })
            .expect("cached")
            .expect("read");
        assert_eq!(&buf[..n], b"2xy5");
        // A file with no cached state reads from the backing file.
        assert!(cache.read(8, 0, &mut buf, |_, _| Ok(())).is_none());
    }

    #[test]
    fn truncate_hides_backing_bytes_past_it_even_when_the_file_grows_again() {
        let backing = b"0123456789";
        let mut cache = PageCache::new(1 << 20, 16);
        cache.write(1, 8, b"ab", || Ok(10)).expect("write");
        cache.truncate(1, 4, || Ok(10)).expect("truncate");
        assert_eq!(read_all(&cache, 1, backing), b"0123");
        assert_eq!(cache.bytes(), 0);
        cache.write(1, 6, b"Q", || Ok(10)).expect("write");
        assert_eq!(read_all(&cache, 1, backing), b"0123\0\0Q");
        cache.truncate(1, 9, || Ok(10)).expect("extend");
        assert_eq!(read_all(&cache, 1, backing), b"0123\0\0Q\0\0");
        // Truncating through an extent keeps its head.
        cache.write(1, 2, b"abcdef", || Ok(10)).expect("write");
        cache.truncate(1, 5, || Ok(10)).expect("truncate");
        assert_eq!(read_all(&cache, 1, backing), b"01abc");
        assert_eq!(cache.bytes(), 3);
    }

    #[test]
    fn write_back_makes_the_backing_file_what_the_cache_showed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").expect("write");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open");
        let mut cache = PageCache::new(1 << 20, 16);
        cache.write(1, 8, b"ab", || Ok(10)).expect("write");
        cache.truncate(1, 4, || Ok(10)).expect("truncate");
        cache.write(1, 6, b"Q", || Ok(10)).expect("write");
        let shown = read_all(&cache, 1, b"0123456789");
        let dirty = cache.take(1).expect("dirty");
        assert_eq!(cache.bytes(), 0);
        dirty.write_back(&file).expect("write back");
        assert_eq!(std::fs::read(&path).expect("read"), shown);
    }

    #[test]
    fn the_torn_prefix_is_taken_from_the_last_run_of_contiguous_writes() {
        let mut cache = PageCache::new(1 << 20, 16);
        cache
            .write(1, 100, b"elsewhere", no_backing)
            .expect("write");
        cache.write(1, 0, b"first", no_backing).expect("write");
        cache.write(1, 5, b"second", no_backing).expect("write");
        let dirty = cache.get(1).expect("dirty");
        assert_eq!(dirty.last_write_len(), Some(11));
        assert_eq!(dirty.last_write_prefix(7), Some((0, b"firstse".to_vec())));
        assert_eq!(
            dirty.last_write_prefix(99),
            Some((0, b"firstsecond".to_vec()))
        );
        cache.write(1, 3, b"ST", no_backing).expect("write");
        assert_eq!(
            cache.get(1).and_then(|d| d.last_write_prefix(99)),
            Some((3, b"ST".to_vec()))
        );
        cache.truncate(1, 4, no_backing).expect("truncate");
        assert_eq!(
            cache.get(1).and_then(|d| d.last_write_prefix(99)),
            Some((3, b"S".to_vec()))
        );
        cache.truncate(1, 2, no_backing).expect("truncate");
        assert_eq!(cache.get(1).and_then(|d| d.last_write_len()), None);
    }

    #[test]
    fn over_the_byte_bound_the_oldest_dirty_file_is_written_back_first() {
        let mut cache = PageCache::new(10, 2);
        cache.write(1, 0, b"aaaaaa", no_backing).expect("write");
        cache.write(2, 0, b"bbbb", no_backing).expect("write");
        assert_eq!(cache.writeback_candidate(), None);
        cache.write(2, 4, b"b", no_backing).expect("write");
        assert_eq!(cache.writeback_candidate(), Some(1));
        cache.take(1);
        assert_eq!(cache.writeback_candidate(), None);
        // Too many extents in one file.
        cache.write(3, 0, b"x", no_backing).expect("write");
        cache.write(3, 2, b"x", no_backing).expect("write");
        cache.write(3, 4, b"x", no_backing).expect("write");
        assert_eq!(cache.writeback_candidate(), Some(3));
    }
}
