//! Fault primitives the nemesis uses beyond what a platform does to its nodes.

use std::io::Write;

const DROP_CACHES: &str = "/proc/sys/vm/drop_caches";

/// Whether this process may drop the page cache; the reason when it may not.
pub fn drop_caches_available() -> Result<(), String> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(DROP_CACHES)
        .map(|_| ())
        .map_err(|e| {
            format!("the drop_caches fault needs write access to {DROP_CACHES} (run as root): {e}")
        })
}

/// Drops clean page-cache pages, dentries and inodes (`echo 3 > /proc/sys/vm/drop_caches`).
pub fn drop_caches() -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(DROP_CACHES)?;
    f.write_all(b"3\n")
}
