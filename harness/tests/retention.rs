//! Retention under the harness (issue 17): `retention-soak` runs three brokers keeping 64 KiB
//! per partition replica under leader kills, and every node's data dir stays bounded (asserted on
//! the stored run's node dirs: each partition replica's segments hold at most `retention.bytes`
//! plus one segment, whatever the run's length), while nothing acknowledged is lost.

use std::path::{Path, PathBuf};

mod common;
use common::{broker_bin, kaos_with};

/// The scenario's `log.retention.bytes` and `segment.bytes`.
const RETENTION_BYTES: u64 = 65_536;
const SEGMENT_BYTES: u64 = 16_384;

/// Bytes of the segment files in a partition dir.
fn segment_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("partition dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

/// Every `kaos-<p>` partition dir under `store`'s node data dirs.
fn partition_dirs(store: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![store.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir").filter_map(Result::ok) {
            let path = entry.path();
            if !path.is_dir() || path.is_symlink() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().to_string();
            let in_data = dir.file_name().is_some_and(|n| n == "data");
            if in_data && name.starts_with("kaos-") {
                found.push(path);
            } else {
                pending.push(path);
            }
        }
    }
    found
}

#[test]
fn retention_soak_keeps_every_data_dir_bounded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let scenario = common::library("retention-soak.toml");
    let store = tmp.path().join("store");
    let (code, stdout, stderr) = kaos_with(&[
        "run".as_ref(),
        "--duration-s".as_ref(),
        "20".as_ref(),
        "--store".as_ref(),
        store.as_os_str(),
        "--broker-bin".as_ref(),
        broker_bin().as_os_str(),
        scenario.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("verdict: VALID"), "{stdout}");
    let dirs = partition_dirs(&tmp.path().join("store"));
    assert_eq!(dirs.len(), 3 * 2, "3 replicas of 2 partitions: {dirs:?}");
    // About 20 s at 1,000 messages/s of ~170 bytes a record: megabytes written per partition.
    for dir in dirs {
        let bytes = segment_bytes(&dir);
        assert!(
            bytes <= RETENTION_BYTES + SEGMENT_BYTES,
            "{}: {bytes} bytes, above retention.bytes + one segment",
            dir.display()
        );
    }
}
