//! Every bound `kaos lazyfs` keeps, in one place.

/// Unsynced (dirty) bytes held in memory across all files. Over it, whole files are written back
/// to the backing directory, the file dirtied longest ago first, without an fsync: what the
/// kernel's writeback does when dirty pages pass `vm.dirty_bytes`. Data written back this way
/// survives a power loss, exactly as it may on a real machine.
pub const DIRTY_BYTES_MAX: u64 = 512 << 20;
/// Separate dirty ranges kept for one file; over it the file is written back (a workload of many
/// tiny scattered writes would otherwise make every read walk a long map).
pub const DIRTY_EXTENTS_PER_FILE_MAX: usize = 65_536;
/// Unsynced namespace entries (created files and directories, renames) remembered for undoing
/// at a power loss. Over it, the oldest entry is made durable (forgotten), as a file system's
/// journal commits on its own after a while.
pub const JOURNAL_ENTRIES_MAX: usize = 1 << 20;
/// Inodes the mount keeps a number for at once (the kernel forgets them as its caches shrink).
pub const INODES_MAX: usize = 1 << 22;
/// File and directory handles open at once.
pub const HANDLES_MAX: usize = 1 << 20;
/// Entries one directory listing may hold (a listing is read whole at opendir).
pub const DIR_ENTRIES_MAX: usize = 1 << 20;
/// Largest read answered at once (the kernel asks for at most its max_read, 128 KiB to 1 MiB).
pub const READ_BYTES_MAX: u32 = 16 << 20;
/// Largest file offset accepted (the kernel's own limit for FUSE is larger; this keeps offset
/// arithmetic far from overflow).
pub const FILE_BYTES_MAX: u64 = 1 << 52;
/// Files named one by one in the stderr report of a power loss (the totals are always complete).
pub const REPORT_PATHS_MAX: usize = 32;
/// How long a SIGTERM waits for the FUSE session to end after unmounting before exiting anyway.
pub const SHUTDOWN_TIMEOUT_MS: u64 = 5_000;
/// How long the daemon waits for its own mount to answer before writing the ready file.
pub const READY_TIMEOUT_MS: u64 = 10_000;
/// Attribute and entry cache lifetime given to the kernel: zero, so a power loss is seen at once
/// (the kernel asks again for every lookup and stat).
pub const ATTR_TTL_MS: u64 = 0;

const _: () = assert!(DIRTY_BYTES_MAX < FILE_BYTES_MAX);
const _: () = assert!(DIRTY_EXTENTS_PER_FILE_MAX > 0 && JOURNAL_ENTRIES_MAX > 0);
const _: () = assert!(REPORT_PATHS_MAX > 0);
