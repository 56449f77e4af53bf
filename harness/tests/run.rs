//! `kaos run` and `kaos check` end to end: real broker processes, real librdkafka clients, real
//! SIGKILLs. Needs the `kaos-broker` binary beside `kaos` (`cargo test --workspace` builds it).

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{broker_bin, exited, history_ops, kaos, one_broker, producer, CONSUMER};

/// Six seconds of an async producer and a consumer on one broker, two partitions, with kills and
/// pauses of the broker.
fn short() -> String {
    let producer = producer(
        "async",
        500,
        r#""acks" = "all", "message.timeout.ms" = "8000""#,
    );
    let nemesis = "[nemesis]\nfaults = [\"kill\", \"pause\"]\ninterval_s = 1.5\ndown_s = 0.5\n\
                   target = \"n1\"\n";
    one_broker("short", 6, 7, 2, &(producer + CONSUMER + nemesis))
}

fn run(dir: &Path, scenario: &str) -> (std::process::Output, PathBuf) {
    let out = common::kaos_run(dir, scenario, &broker_bin());
    (out, dir.join("store").join("latest"))
}

#[test]
fn a_short_scenario_runs_end_to_end_and_is_valid() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (out, latest) = run(tmp.path(), &short());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("verdict: VALID"), "{stdout}");
    let needle = tmp.path().display().to_string();
    assert_eq!(
        processes_mentioning(&needle),
        Vec::<(u32, String)>::new(),
        "no process outlives the run"
    );

    let run_dir = std::fs::canonicalize(&latest).expect("store/latest points at the run");
    for f in [
        "history.jsonl",
        "results.json",
        "report.html",
        "scenario.toml",
        "nodes/n1/broker.log",
        "clients/producer-1.log",
    ] {
        assert!(
            run_dir.join(f).is_file(),
            "{f} missing in {}",
            run_dir.display()
        );
    }
    let ops = history_ops(&run_dir);
    let count = |process: &str, kind: &str, f: &str| {
        ops.iter()
            .filter(|o| o["process"] == process && o["type"] == kind && o["f"] == f)
            .count()
    };
    assert!(
        count("nemesis", "ok", "kill") >= 1,
        "the broker was killed at least once"
    );
    assert_eq!(
        count("nemesis", "ok", "kill"),
        count("nemesis", "ok", "restart")
    );
    assert!(
        count("nemesis", "ok", "pause") >= 1,
        "the broker was paused at least once"
    );
    assert_eq!(
        count("nemesis", "ok", "pause"),
        count("nemesis", "ok", "resume")
    );
    assert!(
        count("harness", "info", "client_start") >= 3,
        "producer, consumer and final reader starts are recorded"
    );
    assert!(
        count("producer-1", "ok", "send") > 100,
        "sends were acknowledged"
    );
    assert!(count("consumer-1", "ok", "poll") > 0, "the consumer read");
    assert_eq!(count("harness", "ok", "final_read"), 1);
    for (i, op) in ops.iter().enumerate() {
        assert_eq!(op["index"], i as u64);
    }
    // Every client op carries its process's CLOCK_MONOTONIC stamp, in the order the process
    // wrote them; the harness's and the nemesis's ops carry none.
    let mut last_stamp: std::collections::HashMap<String, u64> = Default::default();
    for op in &ops {
        let process = op["process"].as_str().expect("process");
        let stamp = op.get("monotonic_ns").and_then(serde_json::Value::as_u64);
        if process == "harness" || process == "nemesis" {
            assert_eq!(stamp, None, "{op}");
            continue;
        }
        let stamp = stamp.unwrap_or_else(|| panic!("a client op without its stamp: {op}"));
        let last = last_stamp.entry(process.to_owned()).or_insert(0);
        assert!(stamp >= *last, "{process}'s stamps go backwards at {op}");
        *last = stamp;
    }
    assert!(last_stamp.contains_key("producer-1") && last_stamp.contains_key("consumer-1"));

    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("results.json")).expect("results.json"))
            .expect("json");
    assert_eq!(results["analysis"]["verdict"], "valid");
    let report = std::fs::read_to_string(run_dir.join("report.html")).expect("report");
    assert!(
        report.contains("<svg") && report.contains("kill n1"),
        "the plot shows the kill windows"
    );

    // `kaos check` on the stored run reaches the same verdict.
    let check = Command::new(kaos())
        .arg("check")
        .arg(&run_dir)
        .output()
        .expect("kaos check");
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(String::from_utf8_lossy(&check.stdout).contains("verdict: VALID"));
}

#[test]
fn an_impossible_expectation_exits_1() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let scenario = short()
        .replace("duration_s = 6", "duration_s = 3")
        .replace("interval_s = 1.5", "interval_s = 60.0")
        + "\n[expect]\nacknowledged_min = 1000000000\n";
    let (out, _) = run(tmp.path(), &scenario);
    let stdout = exited(&out, 1);
    assert!(stdout.contains("verdict: INVALID"), "{stdout}");
}

#[test]
fn usage_errors_exit_2_with_the_reason() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (out, _) = run(tmp.path(), "name = \"x\"\nduration_s = 0\n");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("scenario") && stderr.contains("missing field"),
        "{stderr}"
    );

    let missing = Command::new(kaos())
        .args(["check", "/nonexistent/run"])
        .output()
        .expect("kaos check");
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn check_reports_a_history_cut_mid_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (out, latest) = run(
        tmp.path(),
        &short().replace("duration_s = 6", "duration_s = 2"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_dir = std::fs::canonicalize(&latest).expect("latest");
    // A harness killed mid-write leaves a partial last line.
    let history = run_dir.join("history.jsonl");
    let mut text = std::fs::read_to_string(&history).expect("history");
    text.push_str("{\"index\":999999,\"time_ns\":1,\"proc");
    std::fs::write(&history, text).expect("write");
    let check = Command::new(kaos())
        .arg("check")
        .arg(&run_dir)
        .output()
        .expect("kaos check");
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(stdout.contains("truncated"), "{stdout}");
}

/// PIDs of live processes whose command line mentions `needle` (our run's directory).
fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            // Zombies have an empty cmdline; only live processes count.
            if cmdline.contains(needle) {
                found.push((pid, cmdline));
            }
        }
    }
    found
}

#[test]
fn ctrl_c_ends_the_run_and_leaves_no_process_behind() {
    use std::time::{Duration, Instant};

    let tmp = tempfile::tempdir().expect("tempdir");
    let scenario = short().replace("duration_s = 6", "duration_s = 120");
    let store = tmp.path().join("store");
    let mut child = common::kaos_run_command(tmp.path(), &scenario, &broker_bin())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn kaos run");
    // Wait until the clients are producing (bounded), then interrupt.
    let deadline = Instant::now() + Duration::from_secs(60);
    let needle = tmp.path().display().to_string();
    loop {
        let history = store.join("latest/history.jsonl");
        let sends = std::fs::read_to_string(&history)
            .map(|t| t.matches("\"f\":\"send\"").count())
            .unwrap_or(0);
        if sends > 50 {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run never started producing");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        processes_mentioning(&needle).len() >= 3,
        "broker, producer and consumer are running"
    );
    let status = common::interrupt(&mut child, 30);
    assert_eq!(status.code(), Some(2));
    // Children die with the harness; give the kernel a moment to reap them (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_mentioning(&needle).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        processes_mentioning(&needle),
        Vec::<(u32, String)>::new(),
        "orphans left behind"
    );
    // The history written so far is intact and checkable.
    let ops = history_ops(&std::fs::canonicalize(store.join("latest")).expect("latest"));
    assert!(ops.len() > 50);
}

#[test]
fn check_reads_jepsen_kafka_histories() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../checkers/tests/fixtures");
    // Jepsen histories have no final read, so a clean one cannot be proven valid: unknown, with
    // a note saying why.
    let clean = Command::new(kaos())
        .args(["check", "--format", "jepsen"])
        .arg(fixtures.join("jepsen_clean.edn"))
        .output()
        .expect("kaos check");
    let stdout = exited(&clean, 1);
    assert!(
        stdout.contains("verdict: UNKNOWN") && stdout.contains("Jepsen history"),
        "{stdout}"
    );
    let bad = Command::new(kaos())
        .args(["check", "--format", "jepsen"])
        .arg(fixtures.join("jepsen_anomalies.edn"))
        .output()
        .expect("kaos check");
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("verdict: INVALID") && stdout.contains("lost"),
        "{stdout}"
    );
    let malformed = Command::new(kaos())
        .args(["check", "--format", "jepsen"])
        .arg(fixtures.join("jepsen_malformed.edn"))
        .output()
        .expect("kaos check");
    assert_eq!(malformed.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&malformed.stderr).contains("line"),
        "{}",
        String::from_utf8_lossy(&malformed.stderr)
    );
}

/// One broker and a sequence fault whose steps depend on their order: pause, kill the paused
/// node, restart it, a resume that has nothing to resume, pause and resume again, and a last
/// pause left for the heal. Runs once (interval 5 s in an 8 s run).
fn sequence() -> String {
    let config =
        r#""acks" = "all", "message.timeout.ms" = "3000", "reconnect.backoff.max.ms" = "200""#;
    one_broker(
        "sequence",
        8,
        2,
        1,
        &(producer("async", 300, config) + SEQUENCE_STEPS),
    )
}

const SEQUENCE_STEPS: &str = r#"
[nemesis]
faults = ["sequence"]
interval_s = 5.0

[[nemesis.sequence]]
step = "pause"
target = "leader"
[[nemesis.sequence]]
step = "wait_ms"
ms = 300
[[nemesis.sequence]]
step = "kill"
target = "step:1"
[[nemesis.sequence]]
step = "restart"
target = "step:1"
[[nemesis.sequence]]
step = "wait_ms"
ms = 1500
[[nemesis.sequence]]
step = "resume"
target = "n1"
[[nemesis.sequence]]
step = "pause"
target = "step:4"
[[nemesis.sequence]]
step = "wait_ms"
ms = 200
[[nemesis.sequence]]
step = "resume"
target = "step:7"
[[nemesis.sequence]]
step = "pause"
target = "n1"

[expect]
# The broker is still paused when the producer stops: what it had accepted then times out.
producer_loss = "allowed"
"#;

/// The completions of the nemesis's steps (not their invokes, nor the `sequence` op itself).
fn completed_steps(ops: &[serde_json::Value]) -> impl Iterator<Item = &serde_json::Value> {
    ops.iter()
        .filter(|o| o["process"] == "nemesis" && o["type"] != "invoke" && o["f"] != "sequence")
}

/// A step's (f, type, step index; 0: not a step of the sequence).
fn step_row(o: &serde_json::Value) -> (&str, &str, u64) {
    (
        o["f"].as_str().unwrap_or(""),
        o["type"].as_str().unwrap_or(""),
        o["value"]["step"].as_u64().unwrap_or(0),
    )
}

#[test]
fn a_sequence_runs_its_steps_in_order_on_real_processes_and_heal_wakes_what_it_left_paused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (out, latest) = run(tmp.path(), &sequence());
    let stdout = exited(&out, 0);
    let needle = tmp.path().display().to_string();
    assert_eq!(
        processes_mentioning(&needle),
        Vec::<(u32, String)>::new(),
        "no process outlives the run"
    );
    let ops = history_ops(&std::fs::canonicalize(&latest).expect("latest"));
    let nemesis: Vec<&serde_json::Value> =
        ops.iter().filter(|o| o["process"] == "nemesis").collect();
    let completions: Vec<(&str, &str, u64)> = completed_steps(&ops).map(step_row).collect();
    let expected = [
        ("pause", "ok", 1),
        ("kill", "ok", 3),
        ("restart", "ok", 4),
        ("resume", "fail", 6),
        ("pause", "ok", 7),
        ("resume", "ok", 9),
        ("pause", "ok", 10),
        // The heal at the end of the run wakes the node the sequence left paused.
        ("resume", "ok", 0),
    ];
    assert_eq!(completions, expected, "{nemesis:#?}");
    assert_eq!(
        nemesis.iter().filter(|o| o["f"] == "sequence").count(),
        2,
        "one sequence: its invoke and its ok"
    );
    assert!(
        nemesis
            .iter()
            .all(|o| o["f"] == "sequence" || o["value"]["node"] == "n1" || o["type"] == "invoke"),
        "every step hit n1"
    );
    let value = |f: &str, step: u64| {
        nemesis
            .iter()
            .find(|o| o["f"] == f && o["type"] == "ok" && o["value"]["step"] == step)
            .map(|o| o["value"].clone())
            .expect("op")
    };
    // The restarted broker is a new process, answered (the restart waits for it), and is the one
    // paused next.
    let killed_pid = value("kill", 3)["pid"].clone();
    let restarted_pid = value("restart", 4)["pid"].clone();
    assert_ne!(killed_pid, restarted_pid);
    assert_eq!(value("pause", 7)["pid"], restarted_pid);
    let fail = nemesis
        .iter()
        .find(|o| o["f"] == "resume" && o["type"] == "fail")
        .expect("refused resume");
    assert!(
        fail["error"]
            .as_str()
            .is_some_and(|e| e.contains("not paused")),
        "{fail}"
    );
    // The broker served acks=all writes after its restart.
    let restart_index = nemesis
        .iter()
        .find(|o| o["f"] == "restart" && o["type"] == "ok")
        .and_then(|o| o["index"].as_u64())
        .expect("restart");
    let heal_index = ops
        .iter()
        .find(|o| o["process"] == "harness" && o["f"] == "heal")
        .and_then(|o| o["index"].as_u64())
        .expect("heal");
    assert!(
        ops.iter().any(|o| o["process"] == "producer-1"
            && o["type"] == "ok"
            && o["f"] == "send"
            && o["index"]
                .as_u64()
                .is_some_and(|i| i > restart_index && i < heal_index)),
        "acknowledged sends after the restart"
    );
    assert!(stdout.contains("verdict: VALID"), "{stdout}");
}

/// Network steps: a node isolated and healed inside the sequence, another left isolated for the
/// heal at the end of the run (needs root, `ip` and `nft`, as the partition faults). Runs once.
const SEQUENCE_NET: &str = r#"
name = "sequence-net"
duration_s = 6
seed = 2

[cluster]
brokers = 2
settings = { "broker.session.timeout.ms" = 3000, "broker.heartbeat.interval.ms" = 500 }

[topic]
name = "t"
partitions = 1
replication_factor = 2

[[clients]]
kind = "producer"
rate_per_s = 200
config = { "acks" = "all", "message.timeout.ms" = "5000" }

[nemesis]
faults = ["sequence"]
interval_s = 5.0

[[nemesis.sequence]]
step = "isolate"
target = "leader"
[[nemesis.sequence]]
step = "wait_ms"
ms = 500
[[nemesis.sequence]]
step = "heal"
[[nemesis.sequence]]
step = "isolate"
target = "n2"
"#;

#[test]
fn a_sequence_isolates_and_heals_and_the_end_of_the_run_heals_what_it_left_cut_off() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (out, latest) = run(tmp.path(), SEQUENCE_NET);
    let stdout = exited(&out, 0);
    let ops = history_ops(&std::fs::canonicalize(&latest).expect("latest"));
    let nemesis: Vec<&serde_json::Value> = completed_steps(&ops).collect();
    let steps: Vec<(&str, &str, u64)> = nemesis.iter().copied().map(step_row).collect();
    assert_eq!(
        steps,
        vec![
            ("isolate", "ok", 1),
            ("heal", "ok", 3),
            ("isolate", "ok", 4),
            ("heal", "ok", 0)
        ],
        "{nemesis:?}"
    );
    assert_eq!(nemesis[2]["value"]["node"], "n2");
    let isolate = ops
        .iter()
        .find(|o| o["f"] == "isolate" && o["type"] == "ok")
        .expect("isolate");
    let sides = &isolate["value"]["sides"];
    assert_eq!(
        sides[0].as_array().map(Vec::len),
        Some(1),
        "the target alone on one side: {sides}"
    );
    assert!(
        sides[1]
            .as_array()
            .is_some_and(|s| s.iter().any(|n| n == "clients")),
        "{sides}"
    );
    assert!(stdout.contains("verdict: VALID"), "{stdout}");
}

/// The issue's "done when": `kaos check --format jepsen` (the binary, as a user runs it) gives
/// every history of Jepsen's kafka_test.clj the answer its fixture records — the anomaly classes
/// with exactly their message ids, and the verdict — with `--ww-deps` where Jepsen's test sets
/// `:ww-deps` (and `--realtime` where the fixture reads the history's order as real time). The fixtures' `about` says how each answer relates to Jepsen's assertion.
#[test]
fn check_format_jepsen_answers_every_kafka_test_history_as_its_fixture_says() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../checkers/tests/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(&fixtures)
        .expect("fixtures")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter_map(|n| {
            n.strip_suffix(".expected.json")
                .filter(|n| n.starts_with("kafka_"))
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 37, "{names:?}");
    for name in &names {
        let path = fixtures.join(format!("{name}.expected.json"));
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("expected")).expect("json");
        assert!(
            expected.get("expect").is_none(),
            "{name}: checked with the defaults"
        );
        let history = fixtures.join(expected["history"].as_str().expect("history file"));
        let mut command = Command::new(kaos());
        command
            .args(["check", "--format", "jepsen", "--json"])
            .arg(&history);
        for flag in ["ww_deps", "realtime"] {
            if expected[flag].as_bool() == Some(true) {
                command.arg(format!("--{}", flag.replace('_', "-")));
            }
        }
        let out = command.output().expect("kaos check");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let analysis: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "{name}: {e}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let found: serde_json::Map<String, serde_json::Value> = analysis["anomalies"]
            .as_array()
            .expect("anomalies")
            .iter()
            .map(|a| {
                let mut ids: Vec<u64> = a["cases"]
                    .as_array()
                    .expect("cases")
                    .iter()
                    .map(|c| c["id"].as_u64().expect("id"))
                    .collect();
                ids.sort_unstable();
                (
                    a["kind"].as_str().expect("kind").to_owned(),
                    serde_json::json!(ids),
                )
            })
            .collect();
        let want = expected["anomalies"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(found, want, "{name}: {stdout}");
        if let Some(verdict) = expected.get("verdict") {
            assert_eq!(&analysis["verdict"], verdict, "{name}");
            let code = if verdict == "valid" { 0 } else { 1 };
            assert_eq!(out.status.code(), Some(code), "{name}");
        }
    }
    // --ww-deps is for Jepsen histories only: a usage error on a kaos run.
    let refused = Command::new(kaos())
        .args(["check", "--ww-deps"])
        .arg(&fixtures)
        .output()
        .expect("kaos check");
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("apply to --format jepsen only"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// `kaos check --json` prints the analysis as results.json carries it: every case's message,
/// sub-kind, positions (acknowledged, read, skipped) and op indexes, compared here exactly with
/// the answer Jepsen's test asserts (poll-skip-test "abort doesn't roll back": skips at 3 and 5,
/// offsets 1 2 and 1..4 skipped, by the polls completed at ops 6 and 8); the text names them too.
#[test]
fn check_json_gives_every_case_exactly() {
    let edn = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../checkers/tests/fixtures/kafka_poll_skip_test_txn_abort_no_rollback.edn");
    let out = Command::new(kaos())
        .args(["check", "--format", "jepsen", "--json"])
        .arg(&edn)
        .output()
        .expect("kaos check --json");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let analysis: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    let skip = analysis["anomalies"]
        .as_array()
        .expect("anomalies")
        .iter()
        .find(|a| a["kind"] == "poll_skip")
        .expect("poll_skip");
    let p = 1 << 20; // Jepsen's key :x, the first non-integer key
    let at = |o: i64| serde_json::json!({"topic": "jepsen", "partition": p, "offset": o});
    let evidence: Vec<serde_json::Value> = skip["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c["id"], "sub_kind": c["sub_kind"], "ids": c["ids"],
                "acknowledged_at": c["acknowledged_at"],
                "read_at": c["read_at"], "positions": c["positions"],
                "op_indexes": c["op_indexes"],
            })
        })
        .collect();
    assert_eq!(
        evidence,
        vec![
            serde_json::json!({
                "id": 3, "sub_kind": "between_polls", "ids": [1, 2], "acknowledged_at": at(3),
                "read_at": [at(3)], "positions": [at(1), at(2)], "op_indexes": [6],
            }),
            serde_json::json!({
                "id": 5, "sub_kind": "between_polls", "ids": [1, 2, 3, 4], "acknowledged_at": at(5),
                "read_at": [at(5)], "positions": [at(1), at(2), at(3), at(4)], "op_indexes": [8],
            }),
        ],
        "{stdout}"
    );
    assert_eq!(skip["count"], 2);
    assert_eq!(analysis["verdict"], "invalid");

    let text = Command::new(kaos())
        .args(["check", "--format", "jepsen"])
        .arg(&edn)
        .output()
        .expect("kaos check");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!(
            "  case: id 5 (between_polls) acked p{p}@5 read [p{p}@5] ids [1, 2, 3, 4] positions [p{p}@1, p{p}@2, p{p}@3, p{p}@4] ops [8]"
        )),
        "{text}"
    );
}
