//! `kaos lazyfs`: the power-loss fault's file system, in the spirit of Jepsen's LazyFS.
//!
//! A FUSE mount that mirrors a backing directory for any program writing under it, and loses on
//! demand what a machine loses when its power goes: every write not yet fsynced, and every
//! directory entry not yet made durable by an fsync of its directory.
//!
//! ```text
//! kaos lazyfs --backing DIR --mount DIR [--ready-file FILE] [--torn-writes] [--seed N]
//! ```
//!
//! # Layout
//! - `cache`: the page cache of unsynced writes and truncations (pure; unit-tested without FUSE).
//! - `journal`: the namespace entries not yet durable (pure).
//! - `fs`: the FUSE file system over both, and the power loss itself.
//! - `limits`: every bound in one place.
//! - this file: the command (mount, signals, ready file), [`check_available`] and [`unmount`].
//!
//! # Semantics
//! - **Data.** A write goes to the page cache only; reads, `stat` and `truncate` see the cached
//!   state merged over the backing bytes. `fsync`/`fdatasync` of a file writes its cached state
//!   through to the backing file and fsyncs that. `close` is not a sync.
//! - **Names.** create, mkdir, symlink and rename take effect in the backing directory at once and
//!   are journaled: a new entry is durable once its parent directory is fsynced, a rename once the
//!   directory it renamed *into* is fsynced. (Stricter than ext4, where a file's fsync also commits
//!   its name: this is the POSIX rule that portable programs follow.) unlink and rmdir are durable
//!   at once: a power loss never brings a deleted file back. Mode, owner and times are durable at
//!   once.
//! - **Power loss** (`SIGUSR1`): every unsynced write and truncation is dropped; every journaled
//!   entry is undone, newest first: created files and directories (with what is inside) are
//!   removed, renames are put back and the files they replaced are restored. A line on stderr
//!   says what was dropped; the ready file is rewritten with the count and the report. The mount
//!   keeps serving: the harness SIGKILLs the program (and reaps it), then signals, waits for the
//!   count in the ready file to grow, then restarts the program.
//! - **Torn writes** (`--torn-writes`): before the drop, a prefix of random length (0 to all of
//!   it, seeded by `--seed`) of each file's *last write* reaches the disk, at its own offset. The
//!   last write is the last run of contiguous writes: the kernel splits one write(2) into several
//!   FUSE requests (at page and max_write boundaries) and the daemon cannot see the syscall, so
//!   writes that each start where the previous ended count as one. For an appending program that
//!   is its whole unsynced tail: the disk keeps the tail's first bytes, cut anywhere, as writeback
//!   in file order would leave it. Earlier, non-contiguous unsynced writes are dropped (a hole of
//!   zeros may precede the prefix if the file was extended past them).
//! - **Bound.** Unsynced bytes are bounded by `limits::DIRTY_BYTES_MAX`. Over it the file dirty
//!   the longest is written back to the backing directory (without fsync), as the kernel's
//!   writeback does past `vm.dirty_bytes`: never ENOSPC, which no real page cache returns for
//!   being full. Data written back that way survives a power loss, as it may on a real machine.
//! - **SIGTERM/SIGINT**: unmount (lazily if busy) and exit 0. Nothing is flushed: a clean stop of
//!   the file system is not a sync, so unsynced writes never reach the backing directory (the
//!   namespace stays as it is).
//! - **Kernel caches.** Attributes and entries are given a zero lifetime and files are opened
//!   without FOPEN_KEEP_CACHE, so whatever runs after a power loss sees the mount as it now is.
//! - **Not supported** (answered with an errno): hard links (EPERM), mknod (devices, fifos),
//!   extended attributes, file locks beyond the kernel's local ones, RENAME_EXCHANGE (EINVAL).
//! - A mount left by a daemon that died (SIGKILL) must be unmounted before reuse: [`unmount`]
//!   does it; the daemon clears a dead `kaos lazyfs` mount at its mount point by itself and
//!   refuses any other mount there, naming the command to clear it.

/// A line on stderr, `kaos lazyfs: ` first. Never panics (eprintln! does when stderr is gone, and
/// a panic in the session thread would end the mount).
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), "kaos lazyfs: {}", format_args!($($arg)*));
    }};
}

mod cache;
mod fs;
mod journal;
pub mod limits;

use fs::{LazyFs, Options, PowerLossReport, State};
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// The `source` our mounts carry in /proc/self/mountinfo, to recognise them.
const FS_NAME: &str = "kaos-lazyfs";

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The directory mirrored; what survives a power loss is what it holds.
    #[arg(long)]
    pub backing: PathBuf,
    /// Where to mount (an existing directory, not inside --backing).
    #[arg(long)]
    pub mount: PathBuf,
    /// Written (JSON: pid, backing, mount, power_losses, last_power_loss) once the mount serves,
    /// and rewritten after each power loss: wait for it, and for `power_losses` to grow.
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    /// At a power loss, let a random prefix of each file's last unsynced write reach the disk.
    #[arg(long)]
    pub torn_writes: bool,
    /// Seed for the torn-write prefixes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LazyfsError {
    #[error("{0}")]
    Unavailable(String),
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[error("{mount} is already a mount point ({fstype} from {from}); unmount it first: `umount {mount}`")]
    ForeignMount {
        mount: String,
        fstype: String,
        from: String,
    },
    #[error("{mount} is already served by a running `kaos lazyfs`; stop that one (kill -TERM its pid) or unmount it: `fusermount3 -u {mount}`")]
    AlreadyServed { mount: String },
    #[error("mounting {mount}")]
    Mount { mount: String, source: io::Error },
}

/// Entry point of `kaos lazyfs`: exit 0 after a clean stop, 2 on any error.
pub fn main(args: Args) -> ExitCode {
    match serve(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            note!("error: {:#}", anyhow::Error::from(e));
            ExitCode::from(2)
        }
    }
}

/// Whether this machine can run the power-loss file system: Linux, root, and a /dev/fuse that
/// opens. The harness calls it when it loads a scenario with power loss, so that a run never
/// silently skips the fault.
pub fn check_available() -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        return Err(
            "the power-loss fault (kaos lazyfs, a FUSE file system) runs on Linux only".into(),
        );
    }
    if !nix::unistd::geteuid().is_root() {
        return Err("the power-loss fault needs root: kaos lazyfs mounts a FUSE file system with mount(2); \
                    run kaos as root (in a container: --device /dev/fuse --cap-add SYS_ADMIN)"
            .into());
    }
    match std::fs::OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "the power-loss fault needs /dev/fuse, which does not open ({e}); load the module (`modprobe fuse`) \
             or, in a container, pass the device (--device /dev/fuse)"
        )),
    }
}

/// Unmounts `mount` if something is mounted there (lazily: busy or dead mounts too). A path
/// that is not a mount point is fine. Falls back to `fusermount3 -u -z` where umount2(2) is
/// refused.
pub fn unmount(mount: &Path) -> io::Result<()> {
    let mount = absolute(mount)?;
    if mounted_at(&mount)?.is_none() {
        return Ok(());
    }
    match nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EPERM) => {
            let status = std::process::Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(&mount)
                .stdin(std::process::Stdio::null())
                .status()?;
            if status.success() {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "`fusermount3 -u -z {}` failed ({status})",
                    mount.display()
                )))
            }
        }
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Lazily unmounts every `kaos lazyfs` mount (source `kaos-lazyfs` in /proc/self/mountinfo) whose
/// daemon is gone, which its mount answers with ENOTCONN: what a harness killed with SIGKILL
/// leaves (its daemons die with it, by their parent-death signal, but nobody unmounts). Live
/// mounts, of this harness or of another one running beside it, are left alone. Returns the mount
/// points cleared and the errors met.
pub fn remove_dead_mounts() -> (Vec<PathBuf>, Vec<String>) {
    let (mut cleared, mut errors) = (Vec::new(), Vec::new());
    let Ok(entries) = mounts() else {
        return (cleared, errors);
    };
    for entry in entries.into_iter().filter(MountEntry::is_lazyfs) {
        let mount = entry.mount_point;
        let dead =
            matches!(std::fs::metadata(&mount), Err(e) if e.raw_os_error() == Some(libc::ENOTCONN));
        if !dead || cleared.contains(&mount) {
            continue;
        }
        match unmount(&mount) {
            Ok(()) => cleared.push(mount),
            Err(e) => errors.push(format!(
                "unmounting the dead lazyfs mount {}: {e}",
                mount.display()
            )),
        }
    }
    (cleared, errors)
}

/// `path` made absolute without resolving its last component (which may be a dead mount).
fn absolute(path: &Path) -> io::Result<PathBuf> {
    let path = std::path::absolute(path)?;
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok(std::fs::canonicalize(parent)?.join(name)),
        _ => Ok(path),
    }
}

/// One line of /proc/self/mountinfo, unescaped.
struct MountEntry {
    mount_point: PathBuf,
    fstype: String,
    source: String,
}

impl MountEntry {
    /// Whether it is a `kaos lazyfs` mount.
    fn is_lazyfs(&self) -> bool {
        self.fstype.starts_with("fuse") && self.source == FS_NAME
    }
}

/// Every mount of /proc/self/mountinfo, in its order (a line it cannot read is passed over).
fn mounts() -> io::Result<Vec<MountEntry>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    let entry = |line: &str| {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        if fields.len() < sep + 3 || fields.len() < 5 {
            return None;
        }
        Some(MountEntry {
            mount_point: PathBuf::from(unescape(fields[4])),
            fstype: fields[sep + 1].to_string(),
            source: unescape(fields[sep + 2]),
        })
    };
    Ok(text.lines().filter_map(entry).collect())
}

/// Decodes the octal escapes of /proc/self/mountinfo (`\040` for a space, and so on).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = (bytes[i + 1] - b'0') as u32 * 64
                + (bytes[i + 2] - b'0') as u32 * 8
                + (bytes[i + 3] - b'0') as u32;
            out.push(value as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The topmost mount at exactly `mount`, if any.
fn mounted_at(mount: &Path) -> io::Result<Option<MountEntry>> {
    let wanted = PathBuf::from(mount.to_string_lossy().into_owned());
    Ok(mounts()?
        .into_iter()
        .filter(|entry| entry.mount_point == wanted)
        .last())
}

/// Clears a dead `kaos lazyfs` mount at `mount`; refuses a live one or any other mount.
fn prepare_mount_point(mount: &Path) -> Result<(), LazyfsError> {
    let shown = mount.display().to_string();
    let entry = mounted_at(mount).map_err(|source| LazyfsError::Io {
        what: "reading /proc/self/mountinfo for",
        path: mount.into(),
        source,
    })?;
    if let Some(entry) = entry {
        let ours = entry.is_lazyfs();
        if !ours {
            return Err(LazyfsError::ForeignMount {
                mount: shown,
                fstype: entry.fstype,
                from: entry.source,
            });
        }
        match std::fs::metadata(mount) {
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                unmount(mount).map_err(|source| LazyfsError::Io {
                    what: "clearing the dead mount at",
                    path: mount.into(),
                    source,
                })?;
                note!("cleared a dead kaos lazyfs mount at {shown} (its daemon had died)");
            }
            _ => return Err(LazyfsError::AlreadyServed { mount: shown }),
        }
    }
    match std::fs::metadata(mount) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(LazyfsError::Usage(format!(
            "the mount point {shown} is not a directory"
        ))),
        Err(source) => Err(LazyfsError::Io {
            what: "the mount point",
            path: mount.into(),
            source,
        }),
    }
}

#[derive(serde::Serialize)]
struct Status<'a> {
    pid: u32,
    backing: &'a Path,
    mount: &'a Path,
    power_losses: u64,
    last_power_loss: Option<&'a PowerLossReport>,
}

/// Writes the ready file atomically (a temporary file renamed over it).
fn write_status(path: &Path, status: &Status<'_>) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let text = serde_json::to_string(status).map_err(io::Error::other)?;
    std::fs::write(&tmp, text + "\n")?;
    std::fs::rename(&tmp, path)
}

/// Mounts the file system, serves it until SIGTERM or SIGINT (a power loss at each SIGUSR1),
/// then unmounts it.
fn serve(args: &Args) -> Result<(), LazyfsError> {
    check_available().map_err(LazyfsError::Unavailable)?;
    let (backing, mount) = checked_paths(args)?;
    // Signals first, so that none is lost between the mount and the loop.
    let mut signals =
        Signals::new([SIGUSR1, SIGTERM, SIGINT]).map_err(|source| LazyfsError::Io {
            what: "installing signal handlers for",
            path: mount.clone(),
            source,
        })?;
    let options = Options {
        torn_writes: args.torn_writes,
        seed: args.seed,
        dirty_bytes_max: limits::DIRTY_BYTES_MAX,
    };
    let state = State::new(backing.clone(), &options).map_err(|source| LazyfsError::Io {
        what: "opening the backing directory",
        path: backing.clone(),
        source,
    })?;
    let state = Arc::new(Mutex::new(state));
    let mut session = new_session(&state, &mount)?;
    let mut unmounter = session.unmount_callable();
    let notifier = session.notifier();
    let (done_tx, done_rx) = mpsc::channel();
    let signals_handle = signals.handle();
    let session_thread = std::thread::Builder::new()
        .name("lazyfs-session".into())
        .spawn(move || {
            let result = session.run();
            let _ = done_tx.send(result);
            signals_handle.close();
        })
        .map_err(|source| LazyfsError::Io {
            what: "starting the session thread for",
            path: mount.clone(),
            source,
        })?;

    if let Err(e) = wait_serving(&mount) {
        if unmounter.unmount().is_err() {
            let _ = unmount(&mount);
        }
        return Err(e);
    }
    let pid = std::process::id();
    let write = |power_losses: u64, last: Option<&PowerLossReport>| {
        if let Some(path) = &args.ready_file {
            let status = Status {
                pid,
                backing: &backing,
                mount: &mount,
                power_losses,
                last_power_loss: last,
            };
            if let Err(e) = write_status(path, &status) {
                note!("writing {}: {e}", path.display());
            }
        }
    };
    write(0, None);
    note!(
        "serving {} at {} (pid {pid}); SIGUSR1 = power loss, SIGTERM = unmount and exit",
        backing.display(),
        mount.display()
    );
    for signal in signals.forever() {
        match signal {
            SIGUSR1 => {
                let report = fs::lock(&state).power_loss();
                note!("{}", report.line());
                // Outside the lock: the kernel may call back into the file system meanwhile.
                for ino in &report.invalidate {
                    let _ = notifier.inval_inode(fuser::INodeNo(*ino), 0, -1);
                }
                write(report.number, Some(&report));
            }
            _ => break,
        }
    }

    shut_down(&mount, &mut unmounter, &done_rx, session_thread)
}

/// The backing directory (canonical) and the mount point (absolute, prepared), checked: a
/// directory each, neither inside the other.
fn checked_paths(args: &Args) -> Result<(PathBuf, PathBuf), LazyfsError> {
    let backing = std::fs::canonicalize(&args.backing).map_err(|source| LazyfsError::Io {
        what: "the backing directory",
        path: args.backing.clone(),
        source,
    })?;
    if !backing.is_dir() {
        return Err(LazyfsError::Usage(format!(
            "the backing path {} is not a directory",
            backing.display()
        )));
    }
    let mount = absolute(&args.mount).map_err(|source| LazyfsError::Io {
        what: "the mount point",
        path: args.mount.clone(),
        source,
    })?;
    if mount.starts_with(&backing) || backing.starts_with(&mount) {
        return Err(LazyfsError::Usage(format!(
            "the mount point {} and the backing directory {} must not contain one another (the file system would read its own mount)",
            mount.display(),
            backing.display()
        )));
    }
    prepare_mount_point(&mount)?;

    Ok((backing, mount))
}

/// The FUSE session of the file system over `state`, mounted at `mount`.
fn new_session(
    state: &Arc<Mutex<State>>,
    mount: &Path,
) -> Result<fuser::Session<LazyFs>, LazyfsError> {
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName(FS_NAME.into()),
        fuser::MountOption::DefaultPermissions,
        fuser::MountOption::NoAtime,
    ];
    config.acl = fuser::SessionACL::All;
    let session = fuser::Session::new(
        LazyFs {
            state: state.clone(),
        },
        mount,
        &config,
    )
    .map_err(|source| LazyfsError::Mount {
        mount: mount.display().to_string(),
        source,
    })?;
    Ok(session)
}

/// After SIGTERM (or an unmount from outside, which ends the session by itself): unmount, then
/// wait (bounded) for the session thread.
fn shut_down(
    mount: &Path,
    unmounter: &mut fuser::SessionUnmounter,
    done_rx: &mpsc::Receiver<io::Result<()>>,
    session_thread: std::thread::JoinHandle<()>,
) -> Result<(), LazyfsError> {
    if let Ok(result) = done_rx.try_recv() {
        // The session ended by itself: someone unmounted the file system from outside.
        let _ = session_thread.join();
        note!("{} was unmounted from outside; exiting", mount.display());
        return result.map_err(|source| LazyfsError::Mount {
            mount: mount.display().to_string(),
            source,
        });
    }
    if unmounter.unmount().is_err() {
        // Busy (a program still has files open): detach it now, the kernel ends it when they close.
        if let Err(e) = unmount(mount) {
            note!("unmounting {}: {e}", mount.display());
        }
    }
    match done_rx.recv_timeout(Duration::from_millis(limits::SHUTDOWN_TIMEOUT_MS)) {
        Ok(_) => {
            let _ = session_thread.join();
            note!("unmounted {}", mount.display());
        }
        Err(_) => note!(
            "the session did not end within {} ms; exiting anyway",
            limits::SHUTDOWN_TIMEOUT_MS
        ),
    }
    Ok(())
}

/// Waits until the mount answers a stat through FUSE (bounded).
fn wait_serving(mount: &Path) -> Result<(), LazyfsError> {
    let (tx, rx) = mpsc::channel();
    let probe = mount.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::metadata(&probe).map(|_| ()));
    });
    match rx.recv_timeout(Duration::from_millis(limits::READY_TIMEOUT_MS)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(LazyfsError::Io {
            what: "the new mount does not answer at",
            path: mount.into(),
            source,
        }),
        Err(_) => Err(LazyfsError::Usage(format!(
            "the new mount at {} did not answer within {} ms",
            mount.display(),
            limits::READY_TIMEOUT_MS
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape(r"/x\134y"), r"/x\y");
        assert_eq!(unescape(r"/plain\0"), r"/plain\0");
    }
}
