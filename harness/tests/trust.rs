//! The harness never passes what it did not test, and nothing outlives a run (issue 13): bad
//! client and broker settings refused before anything starts, idle clients never VALID, bad
//! history files reported by line, and what a SIGKILLed run left removed by the next one.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
use common::{
    broker_bin, kaos_run, kaos_run_command, kaos_with, one_broker, producer, text, CONSUMER,
};

const PRODUCER_CONFIG: &str = r#""acks" = "all", "message.timeout.ms" = "4000""#;

/// Three seconds of a producer and a consumer on one broker.
fn short() -> String {
    let clients = producer("sync", 200, PRODUCER_CONFIG) + CONSUMER;
    one_broker("short", 3, 7, 1, &clients)
}

#[test]
fn client_properties_librdkafka_refuses_are_refused_at_load_naming_the_client() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (bad, needle) in [
        (r#""acks" = "bogus""#, "acks"),
        (r#""no.such.property" = "x""#, "no.such.property"),
    ] {
        let scenario = short().replace(r#""acks" = "all""#, bad);
        let out = kaos_run(tmp.path(), &scenario, &broker_bin());
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
        assert!(
            stderr.contains("producer-1") && stderr.contains(needle),
            "{stderr}"
        );
        assert!(
            !tmp.path().join("store").exists(),
            "refused before any run directory was made"
        );
    }
}

#[test]
fn a_scenario_without_producers_is_refused_at_load() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let scenario = one_broker("short", 3, 7, 1, CONSUMER);
    assert!(!scenario.contains("producer"));
    let out = kaos_run(tmp.path(), &scenario, &broker_bin());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no producer"), "{stderr}");
}

#[test]
fn a_run_whose_producer_acknowledged_nothing_is_unknown_not_valid() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // One broker cannot meet min.insync.replicas = 2: every acks=all send is refused
    // (NOT_ENOUGH_REPLICAS) until it times out, so nothing is acknowledged and nothing can be lost.
    let scenario = short().replace(
        "brokers = 1\n",
        "brokers = 1\nsettings = { \"min.insync.replicas\" = 2 }\n",
    );
    let out = kaos_run(tmp.path(), &scenario, &broker_bin());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("verdict: UNKNOWN"), "{stdout}");
    assert!(
        stdout.contains("producer-1 acknowledged nothing"),
        "{stdout}"
    );

    // Unless the scenario says that it means it.
    let allowed = format!("{scenario}\n[expect]\nidle_clients_allowed = true\n");
    let out = kaos_run(tmp.path(), &allowed, &broker_bin());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("verdict: VALID"), "{stdout}");
}

#[test]
fn broker_settings_the_broker_refuses_are_refused_before_any_node_starts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (bad, needle) in [
        (r#""segmnet.bytes" = 1048576"#, "segmnet.bytes"),
        (r#""min.insync.replicas" = "two""#, "min.insync.replicas"),
    ] {
        let scenario = short().replace(
            "brokers = 1\n",
            &format!("brokers = 1\nsettings = {{ {bad} }}\n"),
        );
        let out = kaos_run(tmp.path(), &scenario, &broker_bin());
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
        assert!(
            stderr.contains("node n1") && stderr.contains(needle),
            "the broker's own reason: {stderr}"
        );
        let latest = std::fs::canonicalize(tmp.path().join("store/latest")).expect("latest");
        assert!(
            !latest.join("nodes/n1/broker.log").exists(),
            "no node was started"
        );
    }
}

/// A broker binary that validates every config but dies at start the way kaos-broker does
/// (anyhow's report, then a backtrace).
fn dying_broker(dir: &Path) -> PathBuf {
    let path = dir.join("dying-broker");
    std::fs::write(
        &path,
        "#!/bin/sh\n[ \"$1\" = check-config ] && exit 0\n\
         echo 'INFO starting' >&2\n\
         echo 'Error: kaos-broker stopped with an error' >&2\n\
         echo '' >&2\n\
         echo 'Caused by:' >&2\n\
         echo '    the disk is on fire' >&2\n\
         echo 'Stack backtrace:' >&2\n\
         echo '   0: std::backtrace::Backtrace::create' >&2\n\
         exit 1\n",
    )
    .expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn a_node_that_dies_while_starting_is_reported_with_the_reason_from_its_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let broker = dying_broker(tmp.path());
    let out = kaos_run(tmp.path(), &short(), &broker);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("node n1 exited while starting")
            && stderr.contains("kaos-broker stopped with an error")
            && stderr.contains("the disk is on fire"),
        "{stderr}"
    );
    assert!(!stderr.contains("Backtrace::create"), "{stderr}");
}

#[test]
fn bench_arguments_are_validated_at_once() {
    let started = Instant::now();
    let bench = ["bench", "broker", "--bootstrap", "127.0.0.1:1", "--acks"];
    let (code, _, stderr) = kaos_with(&[&bench[..], &["banana"]].concat());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--acks \"banana\""), "{stderr}");
    let (code, _, stderr) = kaos_with(&[&bench[..], &["1", "--idempotence"]].concat());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("librdkafka refuses"), "{stderr}");
    eprintln!("both refused after {:?}", started.elapsed());
}

#[test]
fn a_missing_file_names_its_cause_once() {
    let (code, _, stderr) = kaos_with(&["run", "/nonexistent/scenario.toml"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn check_skips_a_line_that_is_not_utf8_names_it_and_checks_the_rest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = tmp.path().join("run");
    std::fs::create_dir_all(&run).expect("mkdir");
    let scenario = one_broker("checked", 1, 1, 1, &producer("sync", 100, ""));
    std::fs::write(run.join("scenario.toml"), scenario).expect("write");
    let mut history = Vec::new();
    history.extend_from_slice(br#"{"index":0,"time_ns":1,"process":"producer-1","type":"invoke","f":"send","value":{"id":1,"topic":"t"}}"#);
    history.push(b'\n');
    history.extend_from_slice(br#"{"index":1,"time_ns":2,"process":"producer-1","type":"ok","f":"send","value":{"id":1,"topic":"t","partition":0,"offset":0}}"#);
    history.push(b'\n');
    history.extend_from_slice(b"{\"index\":2,\"time_ns\":3,\"process\":\"producer-1\",\"type\":\"info\",\"f\":\"x\xff\"}\n");
    history.extend_from_slice(br#"{"index":3,"time_ns":4,"process":"producer-1","type":"invoke","f":"send","value":{"id":2,"topic":"t"}}"#);
    history.push(b'\n');
    std::fs::write(run.join("history.jsonl"), history).expect("write");
    let (code, stdout, stderr) = kaos_with(&[std::ffi::OsStr::new("check"), run.as_os_str()]);
    assert_ne!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stdout.contains("verdict:"), "{stdout}");
    assert!(
        stdout.contains("history line(s) 3 is not valid UTF-8"),
        "{stdout}"
    );
    // The lines after the bad one were checked too.
    assert!(stdout.contains("ops=3"), "{stdout}");
}

#[test]
fn an_empty_jepsen_file_is_an_error_and_edn_errors_name_the_right_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let empty = tmp.path().join("empty.edn");
    std::fs::write(&empty, "").expect("write");
    let check = |file: &Path| {
        kaos_with(&[
            std::ffi::OsStr::new("check"),
            "--format".as_ref(),
            "jepsen".as_ref(),
            file.as_os_str(),
        ])
    };
    let (code, stdout, stderr) = check(&empty);
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("is empty"), "{stderr}");

    let one_line = tmp.path().join("one.edn");
    std::fs::write(&one_line, "{:type :invoke, :f :send\n").expect("write");
    let (code, _, stderr) = check(&one_line);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("history line 1:"), "{stderr}");
    assert!(!stderr.contains("(line starts: )"), "{stderr}");
}

// ---- Nothing outlives a run, even a SIGKILLed one ----

/// A minute of power losses of n1, every 30 s.
fn power_loss() -> String {
    let nemesis =
        "[nemesis]\nfaults = [\"power_loss\"]\ninterval_s = 30.0\ndown_s = 0.5\ntarget = \"n1\"\n";
    let tables = producer("sync", 200, r#""acks" = "all""#) + nemesis;
    one_broker("killed-power-loss", 60, 3, 1, &tables)
}

/// The fuse mounts of /proc/self/mountinfo under `dir`.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let dir = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&dir))
        .map(PathBuf::from)
        .collect()
}

/// Unmounts (lazily) whatever a test left under its directory, even when it fails.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        for m in mounts_under(&self.0) {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Starts `kaos run` of `scenario` and SIGKILLs it once `ready` holds for its store (bounded).
fn run_and_sigkill(dir: &Path, scenario: &str, extra: &[&str], ready: impl Fn(&Path) -> bool) {
    let store = dir.join("store");
    let mut child = kaos_run_command(dir, scenario, &broker_bin())
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kaos run");
    let deadline = Instant::now() + Duration::from_secs(180);
    while !ready(&store) {
        if Instant::now() > deadline || child.try_wait().expect("try_wait").is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run never got ready to be killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().expect("SIGKILL the harness");
    child.wait().expect("reap the harness");
}

#[test]
fn a_dead_lazyfs_mount_of_a_sigkilled_run_is_removed_by_the_next_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = std::fs::canonicalize(tmp.path()).expect("canonical");
    let _unmount = Unmount(root.clone());
    run_and_sigkill(&root, &power_loss(), &[], |store| {
        std::fs::read_to_string(store.join("latest/history.jsonl"))
            .is_ok_and(|t| t.matches("\"f\":\"send\"").count() > 20)
    });
    // The daemon dies with the harness (parent-death signal); its mount stays, dead.
    let deadline = Instant::now() + Duration::from_secs(10);
    let dead = |m: &PathBuf| matches!(std::fs::metadata(m), Err(e) if e.raw_os_error() == Some(libc::ENOTCONN));
    while !mounts_under(&root).iter().any(dead) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = mounts_under(&root);
    assert!(left.iter().any(dead), "a dead mount is left: {left:?}");

    // The next run (any scenario) removes it.
    let next = root.join("next");
    std::fs::create_dir_all(&next).expect("mkdir");
    let out = kaos_run(&next, &short(), &broker_bin());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("dead lazyfs mount"), "{stderr}");
    assert_eq!(mounts_under(&root), Vec::<PathBuf>::new());
    std::fs::remove_dir_all(root.join("store")).expect("the killed run's directory can be removed");
}
