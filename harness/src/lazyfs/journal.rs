//! The namespace journal: directory entries created or renamed since the last fsync of the
//! directory that holds them. Pure data; the file system undoes entries at a power loss.
//!
//! Paths are relative to the backing directory and always name the entry's current place: a
//! rename (done, or undone at a power loss) rewrites every path below the name it moved.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// Which file an entry is about, as the backing file system numbers it (st_dev, st_ino), so that
/// an undo never removes or moves a different file that has since taken the same name.
pub type FileId = (u64, u64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A file or directory created at `path`; durable once `path`'s parent directory is fsynced.
    Created {
        path: PathBuf,
        id: FileId,
        is_dir: bool,
    },
    /// A rename of `id` from `from` to `to`; durable once `to`'s parent directory is fsynced.
    /// `replaced` is where the file it replaced waits (in the stash) to be put back.
    Renamed {
        from: PathBuf,
        to: PathBuf,
        id: FileId,
        replaced: Option<PathBuf>,
    },
}

impl Entry {
    /// The directory whose fsync makes this entry durable.
    pub fn sync_dir(&self) -> &Path {
        let path = match self {
            Entry::Created { path, .. } => path,
            Entry::Renamed { to, .. } => to,
        };
        path.parent().unwrap_or(Path::new(""))
    }
}

/// `path` with its prefix `from` replaced by `to`, if it lies at or below `from`.
pub fn moved(path: &Path, from: &Path, to: &Path) -> Option<PathBuf> {
    let rest = path.strip_prefix(from).ok()?;
    Some(if rest.as_os_str().is_empty() {
        to.to_path_buf()
    } else {
        to.join(rest)
    })
}

#[derive(Debug, Default)]
pub struct Journal {
    entries: VecDeque<Entry>,
}

impl Journal {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn push(&mut self, entry: Entry) {
        self.entries.push_back(entry);
    }

    /// The oldest entry, taken out as durable (the journal is full).
    pub fn pop_oldest(&mut self) -> Option<Entry> {
        self.entries.pop_front()
    }

    /// The newest entry, taken out to be undone (a power loss undoes newest first).
    pub fn pop_newest(&mut self) -> Option<Entry> {
        self.entries.pop_back()
    }

    /// `dir` was fsynced: its entries are durable; they are returned (to drop their stash).
    pub fn dir_synced(&mut self, dir: &Path) -> Vec<Entry> {
        let (durable, pending): (Vec<Entry>, Vec<Entry>) =
            self.entries.drain(..).partition(|e| e.sync_dir() == dir);
        self.entries = pending.into();
        durable
    }

    /// Something at `from` now lives at `to`: rewrite every path at or below `from`.
    pub fn rename_paths(&mut self, from: &Path, to: &Path) {
        let rewrite = |p: &mut PathBuf| {
            if let Some(new) = moved(p, from, to) {
                *p = new;
            }
        };
        for entry in &mut self.entries {
            match entry {
                Entry::Created { path, .. } => rewrite(path),
                Entry::Renamed { from: f, to: t, .. } => {
                    rewrite(f);
                    rewrite(t);
                }
            }
        }
    }

    /// Everything at or below `path` is gone for good (a stash entry deleted): forget it.
    pub fn forget_below(&mut self, path: &Path) {
        self.entries.retain(|e| match e {
            Entry::Created { path: p, .. } => !p.starts_with(path),
            Entry::Renamed { to, .. } => !to.starts_with(path),
        });
    }

    /// `path` was removed for good (unlink, rmdir): its creation needs no undo any more.
    pub fn removed(&mut self, path: &Path, id: FileId) {
        self.entries.retain(
            |e| !matches!(e, Entry::Created { path: p, id: i, .. } if p == path && *i == id),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(path: &str) -> Entry {
        Entry::Created {
            path: path.into(),
            id: (1, 1),
            is_dir: false,
        }
    }

    #[test]
    fn a_directory_fsync_makes_only_its_own_entries_durable() {
        let mut j = Journal::default();
        j.push(created("a/x"));
        j.push(created("b/y"));
        j.push(created("top"));
        j.push(Entry::Renamed {
            from: "b/t".into(),
            to: "a/z".into(),
            id: (1, 2),
            replaced: None,
        });
        let durable = j.dir_synced(Path::new("a"));
        assert_eq!(durable.len(), 2);
        assert_eq!(j.len(), 2);
        let durable = j.dir_synced(Path::new(""));
        assert_eq!(durable, vec![created("top")]);
        assert_eq!(j.pop_newest(), Some(created("b/y")));
    }

    #[test]
    fn renames_rewrite_paths_below_the_moved_name_only() {
        let mut j = Journal::default();
        j.push(created("d/x"));
        j.push(created("dd/x"));
        j.push(created("d"));
        j.rename_paths(Path::new("d"), Path::new("e/f"));
        assert_eq!(j.pop_newest(), Some(created("e/f")));
        assert_eq!(j.pop_newest(), Some(created("dd/x")));
        assert_eq!(j.pop_newest(), Some(created("e/f/x")));
    }
}
