//! A full disk under a real broker process: the data dir on a small tmpfs this test mounts (root,
//! as CI runs; unmounted by a guard even when the test fails), filled by a file beside it. A topic
//! creation that fails leaves nothing behind and the broker restarts on the still-full disk; a
//! write that fails takes the partition to KAFKA_STORAGE_ERROR until restart; a graceful stop
//! exits with the documented code and loses nothing acknowledged.

mod common;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const KAFKA_STORAGE_ERROR: i16 = 56;

/// A tmpfs of `size` mounted on a temporary dir; unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        // /proc/self belongs to the process's effective user.
        let uid = std::os::unix::fs::MetadataExt::uid(
            &std::fs::metadata("/proc/self").expect("/proc/self"),
        );
        assert!(
            uid == 0,
            "mounting a tmpfs needs root (CI runs the tests as root)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "kaos-test"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t tmpfs failed: {status}");
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file beside the data dir until the file system refuses (bounded by its size).
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = File::create(&path).expect("create filler");
        let chunk = vec![0xa5u8; 64 * 1024];
        let mut full = false;
        for _ in 0..100_000 {
            match file.write(&chunk) {
                Ok(0) => {
                    full = true;
                    break;
                }
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => {
                    full = true;
                    break;
                }
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        assert!(full, "the tmpfs never filled");
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

fn values_of(client: &mut RawClient, topic: &str) -> Vec<Vec<u8>> {
    fetch_all(client, topic, 0, 0)
        .into_iter()
        .map(|(_, value)| value)
        .collect()
}

fn entries_starting_with(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read data dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(prefix))
        .collect()
}

#[test]
fn a_topic_creation_on_a_full_disk_leaves_nothing_and_the_broker_restarts_on_it() {
    let tmpfs = Tmpfs::mount("4m");
    let data = tmpfs.path().join("data");
    let broker = BrokerProcess::start(&data, "");
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "kept", 1, 1, false), 0);
    assert_eq!(
        produce_values(&mut client, "kept", 0, &[b"one", b"two"]),
        (0, 0)
    );
    let filler = tmpfs.fill();
    assert_eq!(
        create_topic(&mut client, "refused", 4, 1, false),
        KAFKA_STORAGE_ERROR
    );
    assert_eq!(
        entries_starting_with(&data, "refused"),
        Vec::<String>::new(),
        "a failed creation leaves no partition dir"
    );
    // A graceful stop on the full disk: the checkpoints cannot be written.
    drop(client);
    let (code, log) = broker.terminate_with_log();
    assert_eq!(code, Some(broker::UNCLEAN_SHUTDOWN_EXIT_CODE), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(!data.join(broker::CLEAN_SHUTDOWN_FILE_NAME).exists());
    // It starts again on the still-full disk, with what was acknowledged.
    let broker = BrokerProcess::start(&data, "");
    let mut client = RawClient::connect(broker.address);
    assert_eq!(
        values_of(&mut client, "kept"),
        vec![b"one".to_vec(), b"two".to_vec()]
    );
    std::fs::remove_file(filler).expect("free the disk");
    assert_eq!(create_topic(&mut client, "refused", 4, 1, false), 0);
    drop(client);
    assert_eq!(broker.terminate(), Some(0));
}

#[test]
fn a_failed_write_answers_storage_error_until_restart_and_loses_nothing_acknowledged() {
    let tmpfs = Tmpfs::mount("4m");
    let data = tmpfs.path().join("data");
    let broker = BrokerProcess::start(&data, "");
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "t", 1, 1, false), 0);
    let mut acknowledged: Vec<Vec<u8>> = Vec::new();
    for i in 0..10 {
        let value = format!("before-{i}").into_bytes();
        assert_eq!(produce_values(&mut client, "t", 0, &[&value]).0, 0);
        acknowledged.push(value);
    }
    let filler = tmpfs.fill();
    // Writes go on while the segment's last page has room, then fail.
    let mut refused = false;
    for i in 0..10_000 {
        let value = format!("full-{i}-{}", "x".repeat(1000)).into_bytes();
        match produce_values(&mut client, "t", 0, &[&value]).0 {
            0 => acknowledged.push(value),
            KAFKA_STORAGE_ERROR => {
                refused = true;
                break;
            }
            other => panic!("produce on a full disk: error code {other}"),
        }
    }
    assert!(refused, "a full disk never refused a produce");
    // With room again the partition still refuses: until restart, as Kafka's offline log dir.
    std::fs::remove_file(filler).expect("free the disk");
    assert_eq!(
        produce_values(&mut client, "t", 0, &[b"after-space"]).0,
        KAFKA_STORAGE_ERROR
    );
    assert_eq!(values_of(&mut client, "t"), acknowledged);
    drop(client);
    let (code, log) = broker.terminate_with_log();
    assert_eq!(code, Some(broker::UNCLEAN_SHUTDOWN_EXIT_CODE), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        !data.join(broker::CLEAN_SHUTDOWN_FILE_NAME).exists(),
        "a failed log is not marked clean"
    );
    let broker = BrokerProcess::start(&data, "");
    let mut client = RawClient::connect(broker.address);
    assert_eq!(
        produce_values(&mut client, "t", 0, &[b"after-restart"]).0,
        0
    );
    acknowledged.push(b"after-restart".to_vec());
    assert_eq!(values_of(&mut client, "t"), acknowledged);
    drop(client);
    assert_eq!(broker.terminate(), Some(0));
}
