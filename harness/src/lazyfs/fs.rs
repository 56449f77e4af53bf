//! The FUSE file system: a mirror of the backing directory whose file contents change only
//! through the page cache ([`super::cache`]) until an fsync, and whose new names are journaled
//! ([`super::journal`]) until their directory is fsynced. A power loss ([`State::power_loss`])
//! drops the cache and undoes the journal.
//!
//! Every handler answers the kernel with an errno on failure; nothing the kernel sends can make
//! it panic. All state sits behind one mutex: the session thread serves one request at a time,
//! and a power loss (from the signal thread) happens between two requests.

use super::cache::{Dirty, PageCache};
use super::journal::{moved, Entry, FileId, Journal};
use super::limits::{
    ATTR_TTL_MS, DIRTY_EXTENTS_PER_FILE_MAX, DIR_ENTRIES_MAX, FILE_BYTES_MAX, HANDLES_MAX,
    INODES_MAX, JOURNAL_ENTRIES_MAX, READ_BYTES_MAX, REPORT_PATHS_MAX,
};
use fuser::{
    BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The hidden directory (at the backing root) where files replaced by an unsynced rename wait,
/// so that a power loss can put them back. The mount never shows it.
pub const STASH_NAME: &str = ".kaos-lazyfs-stash";

type Res<T> = Result<T, Errno>;

#[derive(Debug, Clone)]
pub struct Options {
    pub torn_writes: bool,
    pub seed: u64,
    pub dirty_bytes_max: u64,
}

/// What a power loss dropped; printed to stderr and written to the ready file.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PowerLossReport {
    /// 1 for the first power loss of this daemon, and so on.
    pub number: u64,
    /// Files whose unsynced writes were dropped, and the bytes held for them.
    pub files_dropped: u64,
    pub bytes_dropped: u64,
    /// Up to `REPORT_PATHS_MAX` of those files, with their bytes.
    pub dropped: Vec<(String, u64)>,
    /// Files and directories removed because their directory was not fsynced since they were made.
    pub entries_removed: u64,
    pub removed: Vec<String>,
    /// Unsynced renames put back, and replaced files restored.
    pub renames_reverted: u64,
    pub replaced_restored: u64,
    /// With --torn-writes: files whose last unsynced write left a prefix on disk, and its bytes.
    pub torn_writes: u64,
    pub torn_bytes_kept: u64,
    /// Undo steps that could not be done (the namespace changed in a way the journal cannot
    /// follow): how many, and the first `REPORT_PATHS_MAX` of them.
    pub error_count: u64,
    pub errors: Vec<String>,
    pub took_ms: u64,
    /// Inodes whose cached pages the kernel should drop (not reported).
    #[serde(skip)]
    pub invalidate: Vec<u64>,
}

impl PowerLossReport {
    fn error(&mut self, what: String) {
        self.error_count += 1;
        if self.errors.len() < REPORT_PATHS_MAX {
            self.errors.push(what);
        }
    }

    /// One line for stderr, `key=value` so that both people and the harness can read it.
    pub fn line(&self) -> String {
        let mut line = format!(
            "power loss {}: dropped {} unsynced bytes in {} files, removed {} unsynced entries, reverted {} renames \
             (restored {} replaced files), torn writes {} ({} bytes kept), errors {}, took {} ms",
            self.number,
            self.bytes_dropped,
            self.files_dropped,
            self.entries_removed,
            self.renames_reverted,
            self.replaced_restored,
            self.torn_writes,
            self.torn_bytes_kept,
            self.error_count,
            self.took_ms,
        );
        if !self.dropped.is_empty() {
            let files: Vec<String> = self
                .dropped
                .iter()
                .map(|(p, b)| format!("{p} ({b} B)"))
                .collect();
            line.push_str(&format!("; dropped: {}", files.join(", ")));
        }
        if !self.removed.is_empty() {
            line.push_str(&format!("; removed: {}", self.removed.join(", ")));
        }
        if !self.errors.is_empty() {
            line.push_str(&format!("; errors: {}", self.errors.join("; ")));
        }
        line
    }
}

struct Inode {
    /// Relative to the backing root; `None` once the name is gone (unlinked, or removed by a
    /// power loss) while the kernel still holds the inode.
    path: Option<PathBuf>,
    id: FileId,
    nlookup: u64,
    open: u32,
}

struct Handle {
    ino: u64,
    file: Option<File>,
    writable: bool,
    /// A directory listing, read whole at opendir: (inode, kind, name).
    entries: Vec<(u64, FileType, OsString)>,
}

pub struct State {
    root: PathBuf,
    inodes: HashMap<u64, Inode>,
    by_id: HashMap<FileId, u64>,
    next_ino: u64,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    cache: PageCache,
    journal: Journal,
    next_stash: u64,
    rng: StdRng,
    torn_writes: bool,
    power_losses: u64,
    writeback_noted: bool,
}

fn file_id(meta: &Metadata) -> FileId {
    (meta.dev(), meta.ino())
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs.clamp(0, 999_999_999) as u32)
    } else {
        UNIX_EPOCH
    }
}

fn kind_of(meta: &Metadata) -> FileType {
    FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile)
}

/// A name the kernel hands us, checked to be one path component.
fn component(name: &OsStr) -> Res<&OsStr> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(n)), None) if n == name => Ok(name),
        _ => Err(Errno::EINVAL),
    }
}

/// Reads `buf.len()` bytes at `offset`, zeros past the end of the file.
fn read_full_at(file: &File, mut offset: u64, mut buf: &mut [u8]) -> io::Result<usize> {
    let mut total = 0;
    while !buf.is_empty() {
        match file.read_at(buf, offset) {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                offset += n as u64;
                buf = &mut buf[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.fill(0);
    Ok(total)
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    }
}

fn open_backing(path: &Path) -> io::Result<(File, bool)> {
    match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => Ok((f, true)),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EACCES | libc::EROFS | libc::ETXTBSY | libc::EPERM)
            ) =>
        {
            Ok((File::open(path)?, false))
        }
        Err(e) => Err(e),
    }
}

impl State {
    pub fn new(root: PathBuf, options: &Options) -> io::Result<State> {
        let meta = fs::metadata(&root)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        let stash = root.join(STASH_NAME);
        if fs::symlink_metadata(&stash).is_ok() {
            // Left by a daemon that died: the renames that replaced these files stand.
            remove_any(&stash)?;
        }
        let mut inodes = HashMap::new();
        let mut by_id = HashMap::new();
        inodes.insert(
            1,
            Inode {
                path: Some(PathBuf::new()),
                id: file_id(&meta),
                nlookup: 1,
                open: 0,
            },
        );
        by_id.insert(file_id(&meta), 1);
        Ok(State {
            root,
            inodes,
            by_id,
            next_ino: 2,
            handles: HashMap::new(),
            next_fh: 1,
            cache: PageCache::new(options.dirty_bytes_max, DIRTY_EXTENTS_PER_FILE_MAX),
            journal: Journal::default(),
            next_stash: 0,
            rng: StdRng::seed_from_u64(options.seed),
            torn_writes: options.torn_writes,
            power_losses: 0,
            writeback_noted: false,
        })
    }

    fn abs(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    fn path_of(&self, ino: u64) -> Res<PathBuf> {
        match self.inodes.get(&ino) {
            Some(Inode { path: Some(p), .. }) => Ok(p.clone()),
            Some(_) => Err(Errno::ENOENT),
            None => Err(Errno::ESTALE),
        }
    }

    fn child_path(&self, parent: u64, name: &OsStr) -> Res<PathBuf> {
        let name = component(name)?;
        if parent == 1 && name == STASH_NAME {
            return Err(Errno::ENOENT);
        }
        let dir = self.path_of(parent)?;
        Ok(if dir.as_os_str().is_empty() {
            PathBuf::from(name)
        } else {
            dir.join(name)
        })
    }

    fn is_stash(&self, parent: u64, name: &OsStr) -> bool {
        parent == 1 && name == STASH_NAME
    }

    /// The inode number for the file at `path`, counting one kernel lookup.
    fn intern(&mut self, path: &Path, meta: &Metadata) -> Res<u64> {
        let id = file_id(meta);
        if let Some(&ino) = self.by_id.get(&id) {
            if let Some(inode) = self.inodes.get_mut(&ino) {
                inode.path = Some(path.to_path_buf());
                inode.nlookup += 1;
                return Ok(ino);
            }
        }
        if self.inodes.len() >= INODES_MAX {
            return Err(Errno::ENFILE);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(
            ino,
            Inode {
                path: Some(path.to_path_buf()),
                id,
                nlookup: 1,
                open: 0,
            },
        );
        self.by_id.insert(id, ino);
        Ok(ino)
    }

    fn rename_paths(&mut self, from: &Path, to: &Path) {
        for inode in self.inodes.values_mut() {
            if let Some(p) = &inode.path {
                if let Some(new) = moved(p, from, to) {
                    inode.path = Some(new);
                }
            }
        }
        self.journal.rename_paths(from, to);
    }

    /// Names at or below `path` are gone: their inodes live on only through open handles.
    fn remove_paths(&mut self, path: &Path) {
        let mut gone = Vec::new();
        for (ino, inode) in self.inodes.iter_mut() {
            if *ino != 1 && inode.path.as_deref().is_some_and(|p| p.starts_with(path)) {
                inode.path = None;
                gone.push((*ino, inode.id));
            }
        }
        for (ino, id) in gone {
            if self.by_id.get(&id) == Some(&ino) {
                self.by_id.remove(&id);
            }
            self.maybe_drop_inode(ino);
        }
    }

    /// Drops an inode the kernel has forgotten, once nothing else needs it.
    fn maybe_drop_inode(&mut self, ino: u64) {
        let Some(inode) = self.inodes.get(&ino) else {
            return;
        };
        if ino == 1 || inode.open > 0 {
            return;
        }
        if inode.path.is_none() {
            // Unreachable by name and not open: its unsynced data can never be read or synced.
            self.cache.take(ino);
        }
        if inode.nlookup == 0 && self.cache.get(ino).is_none() {
            let id = inode.id;
            self.inodes.remove(&ino);
            if self.by_id.get(&id) == Some(&ino) {
                self.by_id.remove(&id);
            }
        }
    }

    fn attr(&self, ino: u64, meta: &Metadata) -> FileAttr {
        let dirty = self.cache.get(ino);
        let size = dirty.map(Dirty::size).unwrap_or(meta.len());
        let blocks = if dirty.is_some() {
            size.div_ceil(512)
        } else {
            meta.blocks()
        };
        let mtime = match dirty {
            Some(d) => d.mtime,
            None => time(meta.mtime(), meta.mtime_nsec()),
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks,
            atime: time(meta.atime(), meta.atime_nsec()),
            mtime,
            ctime: time(meta.ctime(), meta.ctime_nsec()),
            crtime: UNIX_EPOCH,
            kind: kind_of(meta),
            perm: (meta.mode() & 0o7777) as u16,
            nlink: meta.nlink().min(u64::from(u32::MAX)) as u32,
            uid: meta.uid(),
            gid: meta.gid(),
            rdev: meta.rdev() as u32,
            blksize: 4096,
            flags: 0,
        }
    }

    fn metadata(&self, ino: u64, fh: Option<u64>) -> Res<Metadata> {
        if let Some(Handle {
            file: Some(file), ..
        }) = fh.and_then(|fh| self.handles.get(&fh))
        {
            return Ok(file.metadata()?);
        }
        let path = self.path_of(ino)?;
        Ok(fs::symlink_metadata(self.abs(&path))?)
    }

    fn new_handle(&mut self, handle: Handle) -> Res<u64> {
        if self.handles.len() >= HANDLES_MAX {
            return Err(Errno::ENFILE);
        }
        let fh = self.next_fh;
        self.next_fh += 1;
        if let Some(inode) = self.inodes.get_mut(&handle.ino) {
            inode.open += 1;
        }
        self.handles.insert(fh, handle);
        Ok(fh)
    }

    fn close_handle(&mut self, fh: u64) {
        if let Some(handle) = self.handles.remove(&fh) {
            if let Some(inode) = self.inodes.get_mut(&handle.ino) {
                inode.open = inode.open.saturating_sub(1);
            }
            self.maybe_drop_inode(handle.ino);
        }
    }

    /// Runs `f` on a writable backing file for `ino`: the handle `fh`, another open handle, or the
    /// file opened by its name.
    fn with_writable<R>(
        &self,
        ino: u64,
        fh: Option<u64>,
        f: impl FnOnce(&File) -> io::Result<R>,
    ) -> Res<R> {
        let handle = fh
            .and_then(|fh| self.handles.get(&fh))
            .filter(|h| h.writable && h.ino == ino)
            .or_else(|| self.handles.values().find(|h| h.writable && h.ino == ino));
        if let Some(Handle {
            file: Some(file), ..
        }) = handle
        {
            return Ok(f(file)?);
        }
        let path = self.path_of(ino)?;
        let file = OpenOptions::new().write(true).open(self.abs(&path))?;
        Ok(f(&file)?)
    }

    /// Keeps the cache under its bounds by writing whole files back (no fsync), oldest first.
    fn enforce_bounds(&mut self) {
        while let Some(ino) = self.cache.writeback_candidate() {
            let Some(dirty) = self.cache.take(ino) else {
                break;
            };
            if !self.writeback_noted {
                self.writeback_noted = true;
                note!(
                    "the page cache reached its bound ({} dirty bytes or {} ranges in a file): \
                     writing the oldest dirty files back to the backing directory without fsync, as the kernel \
                     does; such data survives a power loss",
                    crate::lazyfs::limits::DIRTY_BYTES_MAX,
                    DIRTY_EXTENTS_PER_FILE_MAX
                );
            }
            if let Err(e) = self.with_writable(ino, None, |file| dirty.write_back(file)) {
                note!("writing back inode {ino} failed ({e:?}); its unsynced data is lost");
            }
        }
    }

    fn journal_push(&mut self, entry: Entry) {
        self.journal.push(entry);
        while self.journal.len() > JOURNAL_ENTRIES_MAX {
            if let Some(entry) = self.journal.pop_oldest() {
                self.made_durable(entry);
            }
        }
    }

    /// An entry became durable: a file it replaced is gone for good.
    fn made_durable(&mut self, entry: Entry) {
        if let Entry::Renamed {
            replaced: Some(stash),
            ..
        } = entry
        {
            let _ = remove_any(&self.abs(&stash));
            self.remove_paths(&stash);
            self.journal.forget_below(&stash);
        }
    }

    fn stash_path(&mut self) -> Res<PathBuf> {
        let dir = self.root.join(STASH_NAME);
        if fs::symlink_metadata(&dir).is_err() {
            fs::create_dir(&dir)?;
        }
        let rel = Path::new(STASH_NAME).join(self.next_stash.to_string());
        self.next_stash += 1;
        Ok(rel)
    }

    fn chown_to(&self, path: &Path, req_uid: u32, req_gid: u32) {
        // Best effort: the daemon runs as root, the caller may not.
        let _ = std::os::unix::fs::lchown(path, Some(req_uid), Some(req_gid));
    }

    // ---- operations ----

    pub fn lookup(&mut self, parent: u64, name: &OsStr) -> Res<FileAttr> {
        let path = self.child_path(parent, name)?;
        let meta = fs::symlink_metadata(self.abs(&path))?;
        let ino = self.intern(&path, &meta)?;
        Ok(self.attr(ino, &meta))
    }

    pub fn forget(&mut self, ino: u64, nlookup: u64) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.nlookup = inode.nlookup.saturating_sub(nlookup);
        }
        self.maybe_drop_inode(ino);
    }

    pub fn getattr(&self, ino: u64, fh: Option<u64>) -> Res<FileAttr> {
        let meta = self.metadata(ino, fh)?;
        Ok(self.attr(ino, &meta))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn setattr(
        &mut self,
        ino: u64,
        fh: Option<u64>,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
    ) -> Res<FileAttr> {
        let meta = self.metadata(ino, fh)?;
        let path = self.path_of(ino).ok().map(|p| self.abs(&p));
        let handle_file = fh
            .and_then(|fh| self.handles.get(&fh))
            .and_then(|h| h.file.as_ref());
        if let Some(mode) = mode {
            let perms = fs::Permissions::from_mode(mode & 0o7777);
            match (handle_file, &path) {
                (Some(f), _) => f.set_permissions(perms)?,
                (None, Some(p)) => fs::set_permissions(p, perms)?,
                (None, None) => return Err(Errno::ENOENT),
            }
        }
        if uid.is_some() || gid.is_some() {
            match (handle_file, &path) {
                (Some(f), _) => std::os::unix::fs::fchown(f, uid, gid)?,
                (None, Some(p)) => std::os::unix::fs::lchown(p, uid, gid)?,
                (None, None) => return Err(Errno::ENOENT),
            }
        }
        if atime.is_some() || mtime.is_some() {
            let resolve = |t: TimeOrNow| match t {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => SystemTime::now(),
            };
            let mut times = fs::FileTimes::new();
            if let Some(t) = atime {
                times = times.set_accessed(resolve(t));
            }
            if let Some(t) = mtime {
                times = times.set_modified(resolve(t));
            }
            match (handle_file, &path) {
                (Some(f), _) => f.set_times(times)?,
                (None, Some(p)) => File::open(p)?.set_times(times)?,
                (None, None) => return Err(Errno::ENOENT),
            }
        }
        if let Some(size) = size {
            if meta.is_dir() {
                return Err(Errno::EISDIR);
            }
            if size > FILE_BYTES_MAX {
                return Err(Errno::EFBIG);
            }
            let backing_len = meta.len();
            self.cache.truncate(ino, size, || Ok(backing_len))?;
            self.enforce_bounds();
        }
        let meta = self.metadata(ino, fh)?;
        Ok(self.attr(ino, &meta))
    }

    pub fn readlink(&self, ino: u64) -> Res<Vec<u8>> {
        use std::os::unix::ffi::OsStrExt;
        let path = self.path_of(ino)?;
        Ok(fs::read_link(self.abs(&path))?
            .as_os_str()
            .as_bytes()
            .to_vec())
    }

    pub fn mkdir(
        &mut self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        req: (u32, u32),
    ) -> Res<FileAttr> {
        let path = self.child_path(parent, name)?;
        let abs = self.abs(&path);
        fs::DirBuilder::new()
            .mode(mode & !umask & 0o7777)
            .create(&abs)?;
        self.chown_to(&abs, req.0, req.1);
        let meta = fs::symlink_metadata(&abs)?;
        let ino = self.intern(&path, &meta)?;
        self.journal_push(Entry::Created {
            path,
            id: file_id(&meta),
            is_dir: true,
        });
        Ok(self.attr(ino, &meta))
    }

    pub fn symlink(
        &mut self,
        parent: u64,
        name: &OsStr,
        target: &Path,
        req: (u32, u32),
    ) -> Res<FileAttr> {
        let path = self.child_path(parent, name)?;
        let abs = self.abs(&path);
        std::os::unix::fs::symlink(target, &abs)?;
        self.chown_to(&abs, req.0, req.1);
        let meta = fs::symlink_metadata(&abs)?;
        let ino = self.intern(&path, &meta)?;
        self.journal_push(Entry::Created {
            path,
            id: file_id(&meta),
            is_dir: false,
        });
        Ok(self.attr(ino, &meta))
    }

    pub fn unlink(&mut self, parent: u64, name: &OsStr) -> Res<()> {
        let path = self.child_path(parent, name)?;
        let abs = self.abs(&path);
        let meta = fs::symlink_metadata(&abs)?;
        if meta.is_dir() {
            return Err(Errno::EISDIR);
        }
        fs::remove_file(&abs)?;
        self.journal.removed(&path, file_id(&meta));
        if meta.nlink() <= 1 {
            self.remove_paths(&path);
        }
        Ok(())
    }

    pub fn rmdir(&mut self, parent: u64, name: &OsStr) -> Res<()> {
        let path = self.child_path(parent, name)?;
        let abs = self.abs(&path);
        let meta = fs::symlink_metadata(&abs)?;
        fs::remove_dir(&abs)?;
        self.journal.removed(&path, file_id(&meta));
        self.remove_paths(&path);
        Ok(())
    }

    pub fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: RenameFlags,
    ) -> Res<()> {
        if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
            return Err(Errno::EINVAL);
        }
        let from = self.child_path(parent, name)?;
        let to = self.child_path(newparent, newname)?;
        let from_meta = fs::symlink_metadata(self.abs(&from))?;
        if from == to {
            return Ok(());
        }
        if to.starts_with(&from) {
            return Err(Errno::EINVAL);
        }
        let to_meta = match fs::symlink_metadata(self.abs(&to)) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let mut replaced = None;
        if let Some(to_meta) = &to_meta {
            if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                return Err(Errno::EEXIST);
            }
            if file_id(to_meta) == file_id(&from_meta) {
                return Ok(());
            }
            match (from_meta.is_dir(), to_meta.is_dir()) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) => {
                    if fs::read_dir(self.abs(&to))?.next().is_some() {
                        return Err(Errno::ENOTEMPTY);
                    }
                }
                (false, false) => {}
            }
            let stash = self.stash_path()?;
            fs::rename(self.abs(&to), self.abs(&stash))?;
            replaced = Some(stash);
        }
        if let Err(e) = fs::rename(self.abs(&from), self.abs(&to)) {
            if let Some(stash) = &replaced {
                let _ = fs::rename(self.abs(stash), self.abs(&to));
            }
            return Err(e.into());
        }
        if let Some(stash) = &replaced {
            self.rename_paths(&to, stash);
        }
        self.rename_paths(&from, &to);
        self.journal_push(Entry::Renamed {
            from,
            to,
            id: file_id(&from_meta),
            replaced,
        });
        Ok(())
    }

    pub fn open(&mut self, ino: u64) -> Res<u64> {
        let path = self.path_of(ino)?;
        let (file, writable) = open_backing(&self.abs(&path))?;
        self.new_handle(Handle {
            ino,
            file: Some(file),
            writable,
            entries: Vec::new(),
        })
    }

    pub fn create(
        &mut self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        req: (u32, u32),
    ) -> Res<(FileAttr, u64)> {
        let path = self.child_path(parent, name)?;
        let abs = self.abs(&path);
        let created = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode & !umask & 0o7777)
            .open(&abs);
        let (file, writable, new) = match created {
            Ok(f) => (f, true, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && flags & libc::O_EXCL == 0 => {
                let (f, w) = open_backing(&abs)?;
                (f, w, false)
            }
            Err(e) => return Err(e.into()),
        };
        if new {
            self.chown_to(&abs, req.0, req.1);
        }
        let meta = file.metadata()?;
        let ino = self.intern(&path, &meta)?;
        if new {
            self.journal_push(Entry::Created {
                path,
                id: file_id(&meta),
                is_dir: false,
            });
        } else if flags & libc::O_TRUNC != 0 {
            self.cache.truncate(ino, 0, || Ok(meta.len()))?;
        }
        let fh = self.new_handle(Handle {
            ino,
            file: Some(file),
            writable,
            entries: Vec::new(),
        })?;
        Ok((self.attr(ino, &meta), fh))
    }

    pub fn read(&self, ino: u64, fh: u64, offset: u64, size: u32) -> Res<Vec<u8>> {
        let Some(Handle {
            file: Some(file), ..
        }) = self.handles.get(&fh)
        else {
            return Err(Errno::EBADF);
        };
        let mut buf = vec![0u8; size.min(READ_BYTES_MAX) as usize];
        let n = match self.cache.read(ino, offset, &mut buf, |off, out| {
            read_full_at(file, off, out).map(|_| ())
        }) {
            Some(result) => result?,
            None => read_full_at(file, offset, &mut buf)?,
        };
        buf.truncate(n);
        Ok(buf)
    }

    pub fn write(&mut self, ino: u64, fh: u64, offset: u64, data: &[u8]) -> Res<u32> {
        let Some(Handle {
            file: Some(file), ..
        }) = self.handles.get(&fh)
        else {
            return Err(Errno::EBADF);
        };
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > FILE_BYTES_MAX)
        {
            return Err(Errno::EFBIG);
        }
        let len = u32::try_from(data.len()).map_err(|_| Errno::EINVAL)?;
        self.cache
            .write(ino, offset, data, || Ok(file.metadata()?.len()))?;
        self.enforce_bounds();
        Ok(len)
    }

    pub fn release(&mut self, fh: u64) {
        self.close_handle(fh);
    }

    /// fsync/fdatasync: the file's cached state goes to the backing file, which is then fsynced.
    pub fn fsync(&mut self, ino: u64, fh: u64, datasync: bool) -> Res<()> {
        let dirty = self.cache.take(ino);
        let sync = |file: &File| {
            if datasync {
                file.sync_data()
            } else {
                file.sync_all()
            }
        };
        if dirty.is_none() {
            // Nothing to write: the handle itself will do, even read-only (fsync(2) allows it).
            if let Some(Handle {
                file: Some(file), ..
            }) = self.handles.get(&fh)
            {
                return Ok(sync(file)?);
            }
        }
        self.with_writable(ino, Some(fh), |file| {
            if let Some(dirty) = &dirty {
                dirty.write_back(file)?;
            }
            sync(file)
        })
    }

    pub fn opendir(&mut self, ino: u64) -> Res<u64> {
        let path = self.path_of(ino)?;
        let mut entries = vec![
            (ino, FileType::Directory, OsString::from(".")),
            (1, FileType::Directory, OsString::from("..")),
        ];
        for entry in fs::read_dir(self.abs(&path))? {
            let entry = entry?;
            if ino == 1 && entry.file_name() == STASH_NAME {
                continue;
            }
            if entries.len() >= DIR_ENTRIES_MAX {
                return Err(Errno::EOVERFLOW);
            }
            let kind = entry
                .file_type()
                .ok()
                .and_then(FileType::from_std)
                .unwrap_or(FileType::RegularFile);
            // The mount's number for a file it knows, else the backing one (readdir's d_ino is
            // only a hint: stat asks lookup, which numbers every file it answers).
            let backing_ino = std::os::unix::fs::DirEntryExt::ino(&entry);
            let d_ino = entry
                .metadata()
                .ok()
                .and_then(|m| self.by_id.get(&file_id(&m)).copied())
                .unwrap_or(backing_ino);
            entries.push((d_ino, kind, entry.file_name()));
        }
        self.new_handle(Handle {
            ino,
            file: None,
            writable: false,
            entries,
        })
    }

    pub fn readdir(&self, fh: u64, offset: u64, reply: &mut ReplyDirectory) -> Res<()> {
        let handle = self.handles.get(&fh).ok_or(Errno::EBADF)?;
        for (i, (ino, kind, name)) in handle.entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), (i + 1) as u64, *kind, name) {
                break;
            }
        }
        Ok(())
    }

    /// fsync of a directory: entries created in it and renames into it become durable.
    pub fn fsyncdir(&mut self, ino: u64) -> Res<()> {
        let path = self.path_of(ino)?;
        for entry in self.journal.dir_synced(&path) {
            self.made_durable(entry);
        }
        File::open(self.abs(&path))?.sync_all()?;
        Ok(())
    }

    pub fn statfs(&self) -> Res<nix::sys::statvfs::Statvfs> {
        nix::sys::statvfs::statvfs(&self.root).map_err(|e| Errno::from_i32(e as i32))
    }

    // ---- power loss ----

    /// Drops every unsynced write, removes entries created since their directory's last fsync,
    /// reverts unsynced renames, and (with torn writes) leaves a random prefix of each file's last
    /// unsynced write on disk. The mount keeps serving.
    pub fn power_loss(&mut self) -> PowerLossReport {
        let started = Instant::now();
        self.power_losses += 1;
        let mut report = PowerLossReport {
            number: self.power_losses,
            ..PowerLossReport::default()
        };
        for (ino, dirty) in self.cache.take_all() {
            report.files_dropped += 1;
            report.bytes_dropped += dirty.bytes();
            report.invalidate.push(ino);
            let name = match self.path_of(ino) {
                Ok(p) => p.display().to_string(),
                Err(_) => format!("(unlinked inode {ino})"),
            };
            if report.dropped.len() < REPORT_PATHS_MAX {
                report.dropped.push((name.clone(), dirty.bytes()));
            }
            if !self.torn_writes {
                continue;
            }
            let Some(len) = dirty.last_write_len() else {
                continue;
            };
            let keep = self.rng.random_range(0..=len);
            report.torn_writes += 1;
            if keep == 0 {
                continue;
            }
            if let Some((offset, bytes)) = dirty.last_write_prefix(keep) {
                match self.with_writable(ino, None, |file| file.write_all_at(&bytes, offset)) {
                    Ok(()) => report.torn_bytes_kept += keep,
                    Err(e) => report.error(format!("tearing the last write of {name}: {e:?}")),
                }
            }
        }
        while let Some(entry) = self.journal.pop_newest() {
            self.undo(entry, &mut report);
        }
        let stash = self.root.join(STASH_NAME);
        if fs::symlink_metadata(&stash).is_ok() {
            if let Err(e) = remove_any(&stash) {
                report.error(format!("clearing {}: {e}", stash.display()));
            }
            self.remove_paths(Path::new(STASH_NAME));
        }
        for ino in report.invalidate.clone() {
            self.maybe_drop_inode(ino);
        }
        report.took_ms = started.elapsed().as_millis() as u64;
        report
    }

    fn identity(&self, rel: &Path) -> Option<FileId> {
        fs::symlink_metadata(self.abs(rel))
            .ok()
            .map(|m| file_id(&m))
    }

    fn undo(&mut self, entry: Entry, report: &mut PowerLossReport) {
        match entry {
            Entry::Created { path, id, is_dir } => {
                if self.identity(&path) != Some(id) {
                    return; // gone already, or the name now holds another file
                }
                let abs = self.abs(&path);
                let removed = if is_dir {
                    fs::remove_dir_all(&abs)
                } else {
                    fs::remove_file(&abs)
                };
                match removed {
                    Ok(()) => {
                        report.entries_removed += 1;
                        if report.removed.len() < REPORT_PATHS_MAX {
                            report.removed.push(path.display().to_string());
                        }
                        self.remove_paths(&path);
                    }
                    Err(e) => report.error(format!("removing {}: {e}", path.display())),
                }
            }
            Entry::Renamed {
                from,
                to,
                id,
                replaced,
            } => {
                if self.identity(&to) == Some(id) && self.identity(&from).is_none() {
                    match fs::rename(self.abs(&to), self.abs(&from)) {
                        Ok(()) => {
                            report.renames_reverted += 1;
                            self.rename_paths(&to, &from);
                        }
                        Err(e) => report.error(format!(
                            "renaming {} back to {}: {e}",
                            to.display(),
                            from.display()
                        )),
                    }
                }
                if let Some(stash) = replaced {
                    if self.identity(&to).is_none()
                        && fs::rename(self.abs(&stash), self.abs(&to)).is_ok()
                    {
                        report.replaced_restored += 1;
                        self.rename_paths(&stash, &to);
                    } else {
                        let _ = remove_any(&self.abs(&stash));
                        self.remove_paths(&stash);
                    }
                }
            }
        }
    }
}

/// The `fuser` face of [`State`].
pub struct LazyFs {
    pub state: Arc<Mutex<State>>,
}

impl LazyFs {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

/// Locks the state; a panic elsewhere never leaves the mount unusable.
pub fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

const TTL: Duration = Duration::from_millis(ATTR_TTL_MS);
const GENERATION: Generation = Generation(0);

impl Filesystem for LazyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.state().lookup(parent.0, name) {
            Ok(attr) => reply.entry(&TTL, &attr, GENERATION),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.state().forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.state().getattr(ino.0, fh.map(|f| f.0)) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        match self
            .state()
            .setattr(ino.0, fh.map(|f| f.0), mode, uid, gid, size, atime, mtime)
        {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.state().readlink(ino.0) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        match self
            .state()
            .mkdir(parent.0, name, mode, umask, (req.uid(), req.gid()))
        {
            Ok(attr) => reply.entry(&TTL, &attr, GENERATION),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.state().unlink(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.state().rmdir(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        match self
            .state()
            .symlink(parent.0, link_name, target, (req.uid(), req.gid()))
        {
            Ok(attr) => reply.entry(&TTL, &attr, GENERATION),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut state = self.state();
        if state.is_stash(parent.0, name) || state.is_stash(newparent.0, newname) {
            return reply.error(Errno::EPERM);
        }
        match state.rename(parent.0, name, newparent.0, newname, flags) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // No FOPEN_KEEP_CACHE: the kernel drops its cached pages of the file at every open, so a
        // program started after a power loss reads what the mount now holds.
        match self.state().open(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.state().read(ino.0, fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.state().write(ino.0, fh.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) is not a sync.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.state().release(fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.state().fsync(ino.0, fh.0, datasync) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.state().opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.state().readdir(fh.0, offset, &mut reply) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.state().release(fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.state().fsyncdir(ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.state().statfs() {
            Ok(s) => reply.statfs(
                s.blocks(),
                s.blocks_free(),
                s.blocks_available(),
                s.files(),
                s.files_free(),
                s.block_size() as u32,
                s.name_max() as u32,
                s.fragment_size() as u32,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self
            .state()
            .create(parent.0, name, mode, umask, flags, (req.uid(), req.gid()))
        {
            Ok((attr, fh)) => {
                reply.created(&TTL, &attr, GENERATION, FileHandle(fh), FopenFlags::empty())
            }
            Err(e) => reply.error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The state machine without FUSE: operations called directly on a temporary backing dir.
    use super::*;

    fn state(dir: &Path) -> State {
        State::new(
            dir.to_path_buf(),
            &Options {
                torn_writes: false,
                seed: 1,
                dirty_bytes_max: 1 << 20,
            },
        )
        .expect("state")
    }

    fn create(s: &mut State, parent: u64, name: &str) -> (u64, u64) {
        let (attr, fh) = s
            .create(parent, OsStr::new(name), 0o644, 0o022, 0, (0, 0))
            .expect("create");
        (attr.ino.0, fh)
    }

    #[test]
    fn unsynced_rename_over_is_reverted_and_the_replaced_file_restored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = state(dir.path());
        let (ckpt, fh) = create(&mut s, 1, "ckpt");
        s.write(ckpt, fh, 0, b"old").expect("write");
        s.fsync(ckpt, fh, false).expect("fsync");
        s.fsyncdir(1).expect("fsyncdir");
        let (tmp, fh2) = create(&mut s, 1, "ckpt.tmp");
        s.write(tmp, fh2, 0, b"new").expect("write");
        s.fsync(tmp, fh2, false).expect("fsync");
        s.rename(
            1,
            OsStr::new("ckpt.tmp"),
            1,
            OsStr::new("ckpt"),
            RenameFlags::empty(),
        )
        .expect("rename");
        assert_eq!(fs::read(dir.path().join("ckpt")).expect("read"), b"new");
        let report = s.power_loss();
        assert_eq!(
            (
                report.renames_reverted,
                report.replaced_restored,
                report.entries_removed
            ),
            (1, 1, 1),
            "{report:?}"
        );
        assert_eq!(fs::read(dir.path().join("ckpt")).expect("read"), b"old");
        assert!(!dir.path().join("ckpt.tmp").exists());
        assert!(!dir.path().join(STASH_NAME).exists());
    }

    #[test]
    fn a_new_directory_vanishes_with_its_files_unless_its_parent_was_synced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = state(dir.path());
        let a = s
            .mkdir(1, OsStr::new("a"), 0o755, 0, (0, 0))
            .expect("mkdir")
            .ino
            .0;
        let (_, fh) = create(&mut s, a, "x");
        s.release(fh);
        s.fsyncdir(a).expect("fsyncdir a");
        let report = s.power_loss();
        assert_eq!(report.entries_removed, 1, "{report:?}");
        assert!(!dir.path().join("a").exists());

        let b = s
            .mkdir(1, OsStr::new("b"), 0o755, 0, (0, 0))
            .expect("mkdir")
            .ino
            .0;
        let (_, fh) = create(&mut s, b, "y");
        s.release(fh);
        s.fsyncdir(b).expect("fsyncdir b");
        s.fsyncdir(1).expect("fsyncdir root");
        let report = s.power_loss();
        assert_eq!(report.entries_removed, 0, "{report:?}");
        assert!(dir.path().join("b/y").exists());
    }

    #[test]
    fn over_the_dirty_bound_the_oldest_file_is_written_back_and_survives_a_power_loss() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = State::new(
            dir.path().to_path_buf(),
            &Options {
                torn_writes: false,
                seed: 1,
                dirty_bytes_max: 100,
            },
        )
        .expect("state");
        let (old, fh1) = create(&mut s, 1, "old");
        let (new, fh2) = create(&mut s, 1, "new");
        s.fsyncdir(1).expect("fsyncdir");
        s.write(old, fh1, 0, &[b'o'; 60]).expect("write");
        s.write(new, fh2, 0, &[b'n'; 30]).expect("write");
        assert_eq!(
            fs::read(dir.path().join("old")).expect("read").len(),
            0,
            "under the bound nothing is written back"
        );
        s.write(new, fh2, 30, &[b'n'; 30]).expect("write");
        assert_eq!(
            fs::read(dir.path().join("old")).expect("read"),
            vec![b'o'; 60],
            "the oldest dirty file is written back"
        );
        assert_eq!(fs::read(dir.path().join("new")).expect("read").len(), 0);
        let report = s.power_loss();
        assert_eq!(
            (report.files_dropped, report.bytes_dropped),
            (1, 60),
            "{report:?}"
        );
        assert_eq!(
            fs::read(dir.path().join("old")).expect("read"),
            vec![b'o'; 60]
        );
    }

    #[test]
    fn torn_writes_keep_a_seeded_prefix_of_the_last_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = State::new(
            dir.path().to_path_buf(),
            &Options {
                torn_writes: true,
                seed: 3,
                dirty_bytes_max: 1 << 20,
            },
        )
        .expect("state");
        let (ino, fh) = create(&mut s, 1, "log");
        s.fsyncdir(1).expect("fsyncdir");
        s.write(ino, fh, 0, b"synced.").expect("write");
        s.fsync(ino, fh, false).expect("fsync");
        s.write(ino, fh, 7, b"dropped.").expect("write");
        s.write(ino, fh, 15, &[b'z'; 1000]).expect("write");
        let report = s.power_loss();
        let on_disk = fs::read(dir.path().join("log")).expect("read");
        assert_eq!(report.torn_writes, 1);
        // The two appends are one run: a prefix of the unsynced tail reaches the disk.
        let mut expected = b"synced.dropped.".to_vec();
        expected.extend_from_slice(&[b'z'; 1000]);
        expected.truncate(7 + report.torn_bytes_kept as usize);
        assert_eq!(on_disk, expected, "{report:?}");
    }
}
