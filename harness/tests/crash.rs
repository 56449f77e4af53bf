//! A node that exits on its own, outside any fault, is reported as what its exit code means,
//! with the last lines of its log, and the verdict says so. The broker under test is kaos-broker
//! behind a wrapper script (`--broker-bin`): the first time node n1 starts it serves for two
//! seconds, then stops as kaos-broker does when an invariant fails (its message on stderr, exit
//! 71; `broker/tests/invariants.rs` shows the real broker doing that on a corrupt log). Its
//! restart at the end of the run is the real broker.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

mod common;
use common::{broker_bin, kaos};

const SCENARIO: &str = r#"
name = "crash"
duration_s = 6
seed = 3

[cluster]
brokers = 1

[topic]
name = "t"
partitions = 1

[[clients]]
kind = "producer"
mode = "async"
rate_per_s = 200
config = { "acks" = "all", "message.timeout.ms" = "20000" }

[[clients]]
kind = "consumer"
"#;

const FATAL: &str = "kaos-broker fatal: invariant hw_le_leo violated: hw=7 leo=5 at t-0";

/// A broker binary that crashes node n1's first incarnation after two seconds.
fn crashing_broker(dir: &std::path::Path) -> std::path::PathBuf {
    let script = dir.join("crashing-broker");
    let marker = dir.join("crashed-once");
    let text = format!(
        r#"#!/bin/sh
case "$1 $2" in
  "--node-id 1") ;;
  *) exec "{real}" "$@" ;;
esac
if [ -e "{marker}" ]; then exec "{real}" "$@"; fi
touch "{marker}"
"{real}" "$@" &
child=$!
sleep 2
kill -KILL "$child"
wait "$child"
echo "{FATAL}" >&2
exit 71
"#,
        real = broker_bin().display(),
        marker = marker.display(),
    );
    std::fs::write(&script, text).expect("write the wrapper");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

#[test]
fn a_node_that_exits_on_its_own_is_reported_with_its_exit_code_meaning_and_log_tail() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("scenario.toml");
    std::fs::write(&file, SCENARIO).expect("write scenario");
    let store = tmp.path().join("store");
    let out = Command::new(kaos())
        .arg("run")
        .arg(&file)
        .arg("--store")
        .arg(&store)
        .arg("--broker-bin")
        .arg(crashing_broker(tmp.path()))
        .output()
        .expect("run kaos");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let both = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(out.status.code(), Some(1), "{both}");
    assert!(stdout.contains("verdict: INVALID"), "{both}");
    assert!(
        stdout.contains("note: node n1 crashed: invariant violated (exit 71), outside any fault"),
        "{both}"
    );
    assert!(stdout.contains(FATAL), "the log's last lines: {both}");

    let run_dir = std::fs::canonicalize(store.join("latest")).expect("store/latest");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("results.json")).expect("results"))
            .expect("json");
    assert_eq!(results["analysis"]["verdict"], "invalid");
    let first_note = results["analysis"]["notes"][0].as_str().unwrap_or_default();
    assert!(
        first_note.starts_with("node n1 crashed: invariant violated (exit 71)")
            && first_note.contains(FATAL),
        "{first_note}"
    );
    let history = std::fs::read_to_string(run_dir.join("history.jsonl")).expect("history");
    let ops: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON op per line"))
        .collect();
    let crash = ops
        .iter()
        .find(|o| o["process"] == "nemesis" && o["f"] == "crash")
        .expect("a crash op");
    assert_eq!(crash["type"], "info");
    assert_eq!(crash["value"]["node"], "n1");
    assert_eq!(crash["value"]["exit_code"], 71);
    assert!(
        ops.iter().any(|o| o["process"] == "nemesis"
            && o["f"] == "restart"
            && o["type"] == "ok"
            && o["index"].as_u64() > crash["index"].as_u64()),
        "the end of the run restarts the crashed node"
    );

    // `kaos check` on the stored run says the same.
    let check = Command::new(kaos())
        .arg("check")
        .arg(&run_dir)
        .output()
        .expect("kaos check");
    let checked = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{checked}");
    assert!(
        checked.contains("node n1 crashed: invariant violated (exit 71)"),
        "{checked}"
    );
}
