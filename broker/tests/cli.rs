//! Command line and config file: unknown keys are an error naming the key; SIGTERM is a clean exit.

mod common;

use std::process::Command;

use common::*;

#[test]
fn unknown_config_key_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("broker.toml");
    std::fs::write(&config, "\"segment.bytes\" = 4096\n\"segment.byte\" = 5\n").expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_kaos-broker"))
        .args(["--node-id", "1", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run kaos-broker");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("segment.byte"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn sigterm_shuts_down_cleanly_and_restart_is_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let broker = BrokerProcess::start(&data_dir, "");
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "t", 2, 1, false), 0);
    assert_eq!(produce_values(&mut client, "t", 1, &[b"a", b"b"]), (0, 0));
    assert!(broker.log_text().contains(&format!(
        "kaos-broker ready node_id=1 listen={}",
        broker.address
    )));
    assert_eq!(broker.terminate(), Some(0));
    assert!(data_dir.join(::broker::CLEAN_SHUTDOWN_FILE_NAME).exists());
    let checkpoint = std::fs::read_to_string(data_dir.join("recovery-point-offset-checkpoint"))
        .expect("checkpoint");
    assert_eq!(checkpoint, "0\n2\nt 0 0\nt 1 2\n");
    let topic_id =
        std::fs::read_to_string(data_dir.join("t-0/partition.metadata")).expect("metadata");
    assert!(topic_id.starts_with("version: 0\ntopic_id: "), "{topic_id}");

    let restarted = BrokerProcess::start(&data_dir, "");
    assert!(
        restarted.log_text().contains("clean_shutdown=true"),
        "{}",
        restarted.log_text()
    );
    assert!(
        !data_dir.join(::broker::CLEAN_SHUTDOWN_FILE_NAME).exists(),
        "marker removed at start"
    );
    let mut client = RawClient::connect(restarted.address);
    assert_eq!(
        fetch_all(&mut client, "t", 1, 0),
        vec![(0, b"a".to_vec()), (1, b"b".to_vec())]
    );
    assert_eq!(
        std::fs::read_to_string(data_dir.join("t-1/partition.metadata")).expect("metadata"),
        topic_id,
        "topic id persisted"
    );
}

#[test]
fn check_config_validates_without_starting_and_names_the_refused_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |text: &str, controller: bool| {
        let config = dir.path().join("config.toml");
        std::fs::write(&config, text).expect("write");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kaos-broker"));
        cmd.arg("check-config").arg("--config").arg(&config);
        if controller {
            cmd.arg("--controller");
        }
        cmd.output().expect("run kaos-broker check-config")
    };
    let ok = check(
        "\"segment.bytes\" = 1048576\n\"min.insync.replicas\" = 2\n",
        false,
    );
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        !dir.path().join("data").exists()
            && std::fs::read_dir(dir.path()).expect("dir").count() == 1,
        "nothing but the config file: nothing started"
    );
    for (text, controller, needle) in [
        ("\"segmnet.bytes\" = 1\n", false, "segmnet.bytes"),
        (
            "\"min.insync.replicas\" = \"two\"\n",
            false,
            "min.insync.replicas",
        ),
        (
            "\"replication.truncation\" = \"none\"\n",
            false,
            "replication.truncation",
        ),
        ("\"segment.bytes\" = 1\n", false, "segment.bytes"),
        ("\"num.partitions\" = 0\n", true, "num.partitions"),
    ] {
        let out = check(text, controller);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains(needle), "{text}: {stderr}");
        assert!(!stderr.contains("backtrace"), "{stderr}");
    }
    let missing = Command::new(env!("CARGO_BIN_EXE_kaos-broker"))
        .args(["check-config", "--config", "/nonexistent/config.toml"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}
