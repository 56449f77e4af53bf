//! Broker profiles end to end: the library's demo and a power-loss scenario on tansu (crates.io,
//! the first broker kaos did not write), each with the verdict measured here and why; a scenario
//! that needs what a profile lacks refused at load with the reason; a profile whose command is
//! wrong failing at start with the node's own output. tansu must be installed
//! (`cargo install tansu --locked --features dynostore,libsql`; `.ci/run` does it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{kaos, text};

fn library(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

/// tansu on PATH or in ~/.cargo/bin, where kaos looks for it.
fn assert_tansu_installed() {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cargo = std::env::var_os("CARGO_HOME").map_or(home.join(".cargo"), PathBuf::from);
    let mut places = vec![cargo.join("bin")];
    if let Some(path) = std::env::var_os("PATH") {
        places.extend(std::env::split_paths(&path));
    }
    assert!(
        places.iter().any(|d| d.join("tansu").is_file()),
        "tansu is not installed: cargo install tansu --locked --features dynostore,libsql (.ci/run installs it)"
    );
}

/// `kaos run FILE --store DIR/store ARGS…`, without the environment's broker overrides.
fn kaos_run(dir: &Path, file: &Path, args: &[&str]) -> Output {
    Command::new(kaos())
        .arg("run")
        .arg(file)
        .arg("--store")
        .arg(dir.join("store"))
        .args(args)
        .env_remove("KAOS_BROKER_BIN")
        .env_remove("KAOS_BROKER")
        .output()
        .expect("run kaos")
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write");
    path
}

/// The value of `name=` on the `counts:` line kaos prints.
fn count(stdout: &str, name: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("counts: "))
        .unwrap_or_else(|| panic!("no counts line in {stdout}"));
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

#[test]
fn a_profile_with_a_wrong_command_fails_at_start_with_the_node_s_own_output() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(
        tmp.path(),
        "wrong.toml",
        r#"
name = "wrong"
command = "/bin/sh"
[broker]
args = ["-c", "echo \"wrong: no such option --listen {listen}\" >&2; exit 3"]
[settings]
format = "none"
"#,
    );
    let scenario = write(
        tmp.path(),
        "s.toml",
        r#"
name = "wrong-command"
duration_s = 5
broker_profile = "wrong.toml"
[cluster]
brokers = 1
[topic]
name = "t"
partitions = 1
[[clients]]
kind = "producer"
"#,
    );
    let out = kaos_run(tmp.path(), &scenario, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("node n1 exited while starting (exit status: 3)")
            && stderr.contains("wrong: no such option --listen 127.0.0.1:"),
        "{stderr}"
    );
}

#[test]
fn a_scenario_needing_what_a_profile_lacks_is_refused_at_load() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "leader-kill-acks-all.toml",
            "cannot run on broker profile tansu: the scenario needs 3 brokers, which broker profile tansu does not have (features.multi_node = false)",
        ),
        (
            "power-loss-flush-every-message.toml",
            "cluster setting \"flush.messages\": broker profile tansu takes no settings",
        ),
    ];
    for (file, needle) in cases {
        let out = kaos_run(tmp.path(), &library(file), &["--broker", "tansu"]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{file}: {stdout}\n{stderr}");
        assert!(stderr.contains(needle), "{file}: {stderr}");
        assert!(
            !tmp.path().join("store").exists(),
            "{file}: refused before anything ran"
        );
    }
    // A replication factor above one, on one broker of a single-node profile.
    let rf = std::fs::read_to_string(library("demo.toml"))
        .expect("demo")
        .replace("brokers = 1", "brokers = 2")
        .replace("replication_factor = 1", "replication_factor = 2");
    let file = write(tmp.path(), "rf.toml", &rf);
    let out = kaos_run(tmp.path(), &file, &["--broker", "tansu-memory"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("2 brokers") && stderr.contains("tansu-memory"),
        "{stderr}"
    );
    // `--all` leaves out what the profile cannot run, with the reason, and runs the rest (here:
    // nothing else).
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).expect("mkdir");
    std::fs::copy(library("leader-kill-acks-all.toml"), lib.join("l.toml")).expect("copy");
    let out = Command::new(kaos())
        .args(["run", "--all", "--broker", "tansu", "--store"])
        .arg(tmp.path().join("store"))
        .arg(&lib)
        .env_remove("KAOS_BROKER_BIN")
        .output()
        .expect("kaos run --all");
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.contains("refused: scenario") && stdout.contains("features.multi_node = false"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("  refused  "), "{stdout}");
    // The unknown profile names the library.
    let out = kaos_run(tmp.path(), &library("demo.toml"), &["--broker", "kafka"]);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("no broker profile named \"kafka\": the built-in ones are kaos-broker, tansu, tansu-memory"),
        "{stderr}"
    );
}

/// The demo's SIGKILLs at a rate tansu keeps up with on this machine (300 messages/s: at the
/// demo's 2000/s its sqlite engine acknowledges fewer than it is sent, and the backlog times out
/// in the producer).
fn tansu_kill_scenario() -> String {
    std::fs::read_to_string(library("demo.toml"))
        .expect("demo")
        .replace("name = \"demo\"", "name = \"tansu-kill\"")
        .replace("rate_per_s = 2000", "rate_per_s = 300")
}

/// Measured here: valid, nothing acknowledged lost, a few duplicates (3 runs: 0–2). A SIGKILL
/// leaves what tansu committed in the page cache, where the restarted process reads it back.
#[test]
fn tansu_loses_nothing_acknowledged_to_a_sigkill() {
    assert_tansu_installed();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = write(tmp.path(), "kill.toml", &tansu_kill_scenario());
    let out = kaos_run(
        tmp.path(),
        &file,
        &["--broker", "tansu", "--duration-s", "15"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("verdict: VALID"), "{stdout}");
    assert_eq!(count(&stdout, "lost"), 0, "{stdout}");
    assert!(count(&stdout, "sends_ok") > 1000, "{stdout}");
    let history = std::fs::read_to_string(history_of(tmp.path(), "tansu-kill")).expect("history");
    assert!(
        history.contains("\"broker\":\"tansu\"") && history.contains("\"f\":\"kill\""),
        "the run was on tansu, and it was killed"
    );
}

/// The power-loss scenario on tansu's sqlite engine, acks=all, 300 messages/s, its power cut
/// every ~4 s.
const TANSU_POWER_LOSS: &str = r#"
name = "tansu-power-loss"
duration_s = 20
seed = 7
broker = "tansu"
[cluster]
brokers = 1
[topic]
name = "kaos"
partitions = 1
[[clients]]
kind = "producer"
mode = "async"
rate_per_s = 300
config = { "acks" = "all", "linger.ms" = "50", "message.timeout.ms" = "8000", "reconnect.backoff.max.ms" = "500" }
[[clients]]
kind = "consumer"
config = { "reconnect.backoff.max.ms" = "500" }
[nemesis]
faults = ["power_loss"]
interval_s = 4.0
down_s = 1.0
target = "n1"
"#;

/// After the first power loss the topic itself is gone. tansu's sqlite engine commits in WAL mode
/// with `synchronous = NORMAL`, which fsyncs the WAL only at a checkpoint (every 1000 pages); the
/// power loss drops the unsynced WAL (lazyfs names `tansu.db-wal`), and with it the CreateTopics
/// that tansu had answered and every message it had acknowledged. The producer then gets
/// UNKNOWN_TOPIC_OR_PARTITION, and so does every Metadata request of the final read: a complete
/// read of a topic that no longer exists, so every acknowledged message is `lost` and the run
/// invalid (measured before the checker knew a vanished topic: UNKNOWN, "no completed final
/// read").
#[test]
fn a_power_loss_takes_tansu_s_unsynced_wal_with_the_topic_and_every_acknowledged_message() {
    assert_tansu_installed();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = write(tmp.path(), "power-loss.toml", TANSU_POWER_LOSS);
    let out = kaos_run(tmp.path(), &file, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("verdict: INVALID"), "{stdout}");
    assert!(
        stdout.contains("The topic itself was gone: the final read found no topic kaos (Metadata: UNKNOWN_TOPIC_OR_PARTITION)"),
        "{stdout}"
    );
    let acknowledged = count(&stdout, "sends_ok");
    assert!(
        acknowledged > 0,
        "tansu acknowledged before the power loss: {stdout}"
    );
    assert!(
        count(&stdout, "lost") > 0,
        "what it acknowledged before the first power loss is lost: {stdout}"
    );
    assert!(
        count(&stdout, "sends_fail") > 0,
        "and refused after it: {stdout}"
    );
    let history = history_of(tmp.path(), "tansu-power-loss");
    let run = history.parent().expect("run dir");
    let lazyfs = std::fs::read_to_string(run.join("nodes/n1/lazyfs.log")).expect("lazyfs log");
    assert!(
        lazyfs.contains("power loss 1: dropped") && lazyfs.contains("tansu.db-wal ("),
        "{lazyfs}"
    );
    let history = std::fs::read_to_string(&history).expect("history");
    assert!(
        history.contains("\"topic_missing\":\"UNKNOWN_TOPIC_OR_PARTITION\""),
        "the final read found the topic gone"
    );
}

/// The history of the one run of `scenario` under `dir/store`.
fn history_of(dir: &Path, scenario: &str) -> PathBuf {
    let runs = dir.join("store").join(scenario);
    let run = std::fs::read_dir(&runs)
        .unwrap_or_else(|e| panic!("{}: {e}", runs.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("history.jsonl").is_file())
        .expect("a run directory");
    run.join("history.jsonl")
}
