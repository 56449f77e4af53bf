//! What the end-to-end tests share: the binaries under test, the scenario library (a scenario
//! with a bug switch), and `kaos run` of a scenario text.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `kaos` binary built for this test run.
pub fn kaos() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kaos"))
}

/// `kaos-broker` beside it (`cargo test --workspace` builds it).
pub fn broker_bin() -> PathBuf {
    let b = kaos().with_file_name("kaos-broker");
    assert!(
        b.is_file(),
        "{} is missing: build the workspace (cargo test --workspace builds it)",
        b.display()
    );
    b
}

/// The scenario library (harness/scenarios).
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// The library's scenario file `file` (`demo.toml`).
pub fn library(file: &str) -> PathBuf {
    scenarios_dir().join(file)
}

/// A library scenario's text, with `switch` (a `"key" = value` pair) added to its
/// `[cluster] settings` when given.
pub fn library_scenario(name: &str, switch: Option<&str>) -> String {
    let path = library(&format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).expect("library scenario");
    match switch {
        None => text,
        Some(pair) => {
            assert_eq!(
                text.matches("settings = { ").count(),
                1,
                "{name}: one settings table"
            );
            text.replace("settings = { ", &format!("settings = {{ {pair}, "))
        }
    }
}

/// Runs the library scenario `name` (with `switch`, see [`library_scenario`]) with `kaos run`
/// and returns its exit code, output and results.json.
pub fn run_library(name: &str, switch: Option<&str>) -> (Option<i32>, String, serde_json::Value) {
    let (code, output, results, _) = run_library_with_history(name, switch);
    (code, output, results)
}

/// [`run_library`], and the run's history.jsonl.
pub fn run_library_with_history(
    name: &str,
    switch: Option<&str>,
) -> (Option<i32>, String, serde_json::Value, String) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = kaos_run(tmp.path(), &library_scenario(name, switch), &broker_bin());
    let (stdout, stderr) = text(&out);
    let latest = tmp.path().join("store").join("latest");
    let results = std::fs::read_to_string(latest.join("results.json"))
        .unwrap_or_else(|e| panic!("{name}: no results.json ({e})\n{stdout}\n{stderr}"));
    let results = serde_json::from_str(&results).expect("results.json is JSON");
    let history = std::fs::read_to_string(latest.join("history.jsonl")).unwrap_or_default();
    let logs = invalid_runs_client_logs(&tmp.path().join("store"));
    (
        out.status.code(),
        format!("{stdout}\n{stderr}\nthe invalid runs' client logs:\n{logs}"),
        results,
        history,
    )
}

/// Writes `scenario` to `dir/scenario.toml` and returns the command that runs it with `kaos run`,
/// storing under `dir/store`, with the broker binary `broker`.
pub fn kaos_run_command(dir: &Path, scenario: &str, broker: &Path) -> Command {
    let file = dir.join("scenario.toml");
    std::fs::write(&file, scenario).expect("write scenario");
    let mut command = Command::new(kaos());
    command
        .arg("run")
        .arg(&file)
        .arg("--store")
        .arg(dir.join("store"))
        .arg("--broker-bin")
        .arg(broker);
    command
}

/// [`kaos_run_command`], run to its end.
pub fn kaos_run(dir: &Path, scenario: &str, broker: &Path) -> Output {
    kaos_run_command(dir, scenario, broker)
        .output()
        .expect("run kaos")
}

/// `kaos` with `args`, run to its end: (exit code, stdout, stderr).
pub fn kaos_with<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (Option<i32>, String, String) {
    let out = Command::new(kaos()).args(args).output().expect("run kaos");
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

/// `kaos` with `args`, run to its end in `dir`, with `kaos-broker` beside it as the broker.
pub fn kaos_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(kaos())
        .args(args)
        .current_dir(dir)
        .env("KAOS_BROKER_BIN", broker_bin())
        .output()
        .expect("run kaos")
}

/// Sends SIGINT to a running `kaos` and waits (at most `within_s` seconds, then SIGKILL and
/// panic) for it to end; returns how it ended.
pub fn interrupt(child: &mut std::process::Child, within_s: u64) -> std::process::ExitStatus {
    use std::time::{Duration, Instant};
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let deadline = Instant::now() + Duration::from_secs(within_s);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kaos did not end within {within_s} s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A command's stdout and stderr, as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts that a command exited with `code` (its stdout and stderr in the message, if not) and
/// returns its stdout.
pub fn exited(out: &Output, code: i32) -> String {
    let (stdout, stderr) = text(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

/// The last lines of every client log of each run under `store` (`store/<scenario>/<run>/`)
/// whose verdict is not valid: what a failed test prints, since the store goes with its
/// temporary directory (a stalled or failed client says why only in its log).
pub fn invalid_runs_client_logs(store: &Path) -> String {
    const LINES: usize = 15;
    const LOGS_MAX: usize = 40;
    let mut logs = Vec::new();
    let dirs = |dir: &Path| -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        found.sort();
        found
    };
    for run in dirs(store).iter().flat_map(|scenario| dirs(scenario)) {
        let verdict = std::fs::read_to_string(run.join("results.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|r| r["analysis"]["verdict"].as_str().map(str::to_owned));
        if verdict.as_deref().is_none_or(|v| v == "valid") {
            continue;
        }
        for log in dirs(&run.join("clients")) {
            if log.extension().is_some_and(|e| e == "log") && logs.len() < LOGS_MAX {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(LINES).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                logs.push(format!("== {} ==\n{}", log.display(), tail.join("\n")));
            }
        }
    }
    logs.join("\n")
}

/// The ops of a run's `history.jsonl`, one JSON value per line.
pub fn history_ops(run_dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(run_dir.join("history.jsonl")).expect("history.jsonl");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON op per line"))
        .collect()
}

/// Whether `ops` hold an op of `process` with type `kind` and function `f`.
pub fn has_op(ops: &[serde_json::Value], process: &str, kind: &str, f: &str) -> bool {
    ops.iter()
        .any(|o| o["process"] == process && o["type"] == kind && o["f"] == f)
}

/// The text of a scenario on one broker with topic `t` of `partitions` partitions: `name`,
/// `duration_s` and `seed`, then `tables` (its `[[clients]]`, `[nemesis]`, … tables).
pub fn one_broker(name: &str, duration_s: u32, seed: u64, partitions: u32, tables: &str) -> String {
    format!(
        "name = \"{name}\"\nduration_s = {duration_s}\nseed = {seed}\n\n[cluster]\nbrokers = 1\n\n\
         [topic]\nname = \"t\"\npartitions = {partitions}\n\n{tables}"
    )
}

/// A producer's `[[clients]]` table: its `mode` (`sync`, `async`), rate and librdkafka `config`
/// (inline TOML pairs).
pub fn producer(mode: &str, rate_per_s: u32, config: &str) -> String {
    format!(
        "[[clients]]\nkind = \"producer\"\nmode = \"{mode}\"\nrate_per_s = {rate_per_s}\n\
         config = {{ {config} }}\n\n"
    )
}

/// A consumer's `[[clients]]` table (defaults: subscribes to the topic).
pub const CONSUMER: &str = "[[clients]]\nkind = \"consumer\"\n\n";

/// What kaos-broker writes when its planted crash (`debug.crash.after.ms = 2000`) stops it.
pub const PLANTED_CRASH: &str =
    "kaos-broker fatal: invariant planted_crash violated: debug.crash.after.ms=2000";

/// Six seconds of an async producer and a consumer on one broker whose node n1 crashes on its own
/// two seconds after its first start (kaos-broker's `debug.crash.after.ms`: exit 71, as a
/// violated invariant stops it); its restart at the end of the run serves normally.
pub fn crashing_scenario() -> String {
    let producer = producer(
        "async",
        200,
        r#""acks" = "all", "message.timeout.ms" = "20000""#,
    );
    one_broker("crash", 6, 3, 1, &(producer + CONSUMER)).replace(
        "brokers = 1\n",
        "brokers = 1\nsettings = { \"debug.crash.after.ms\" = 2000 }\n",
    )
}

/// Asserts how a run of [`crashing_scenario`] (its output `out`, its store `store`) reports the
/// crash: `invalid`, the `node_crash` anomaly with the node's exit code, meaning and log tail as
/// its case and count, the note first, the `crash` op then the node's restart in the history;
/// and `kaos check` of the stored run says the same.
pub fn assert_crash_reported(out: &Output, store: &Path) {
    let (stdout, stderr) = text(out);
    let both = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(out.status.code(), Some(1), "{both}");
    assert!(stdout.contains("verdict: INVALID"), "{both}");
    assert!(
        stdout.contains("node n1 crashed: invariant violated (exit 71), outside any fault"),
        "{both}"
    );
    assert!(
        stdout.contains(PLANTED_CRASH),
        "the log's last lines: {both}"
    );
    assert!(
        stdout.contains("anomaly: 1 × node_crash (forbidden)"),
        "{both}"
    );

    let run_dir = std::fs::canonicalize(store.join("latest")).expect("store/latest");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("results.json")).expect("results"))
            .expect("json");
    let analysis = &results["analysis"];
    assert_eq!(analysis["verdict"], "invalid");
    assert_eq!(analysis["counts"]["node_crash"], 1, "{analysis}");
    let anomaly = analysis["anomalies"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["kind"] == "node_crash"))
        .unwrap_or_else(|| panic!("a node_crash anomaly: {analysis}"));
    assert_eq!(anomaly["allowance"], "forbidden");
    let case = &anomaly["cases"][0];
    assert_eq!(case["sub_kind"], "invariant", "{case}");
    assert_eq!(case["exit"]["node"], "n1", "{case}");
    assert_eq!(case["exit"]["exit_code"], 71, "{case}");
    assert_eq!(
        case["exit"]["meaning"], "invariant violated (exit 71)",
        "{case}"
    );
    let tail = case["exit"]["log_tail"].as_str().unwrap_or_default();
    assert!(tail.contains(PLANTED_CRASH), "{case}");
    let first_note = analysis["notes"][0].as_str().unwrap_or_default();
    assert!(
        first_note.starts_with("node n1 crashed: invariant violated (exit 71)")
            && first_note.contains(PLANTED_CRASH),
        "{first_note}"
    );

    let ops = history_ops(&run_dir);
    let crash = ops
        .iter()
        .find(|o| o["process"] == "nemesis" && o["f"] == "crash")
        .expect("a crash op");
    assert_eq!(crash["type"], "info");
    assert_eq!(crash["value"]["node"], "n1");
    assert_eq!(crash["value"]["exit_code"], 71);
    assert_eq!(case["op_indexes"][0], crash["index"], "{case}");
    assert!(
        ops.iter().any(|o| o["process"] == "nemesis"
            && o["f"] == "restart"
            && o["type"] == "ok"
            && o["index"].as_u64() > crash["index"].as_u64()),
        "the end of the run restarts the crashed node"
    );

    let (code, checked, stderr) = kaos_with(&[std::ffi::OsStr::new("check"), run_dir.as_os_str()]);
    assert_eq!(code, Some(1), "{checked}\n{stderr}");
    assert!(
        checked.contains("node n1 crashed: invariant violated (exit 71)"),
        "{checked}"
    );
}

/// tansu on PATH or in ~/.cargo/bin, where kaos looks for it.
pub fn assert_tansu_installed() {
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
        "tansu is not installed: cargo install tansu --version 0.6.0 --locked --features dynostore,libsql,postgres (.ci/run installs it)"
    );
}

/// The demo's SIGKILLs at a rate tansu keeps up with on this machine (300 messages/s: at the
/// demo's 2000/s its sqlite engine acknowledges fewer than it is sent, and the backlog times out
/// in the producer).
pub fn tansu_kill_scenario() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/demo.toml"))
        .expect("demo")
        .replace("name = \"demo\"", "name = \"tansu-kill\"")
        .replace("rate_per_s = 2000", "rate_per_s = 300")
}
