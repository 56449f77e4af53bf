//! The scenario library, run for real at a short duration with each file's pinned seed: every
//! scenario must reach the verdict its own `[expect]` table describes (a "bad" configuration
//! requires its anomaly, a "good" one forbids it), so `kaos run --all` exits 0.

use std::process::Command;

mod common;
use common::{broker_bin, exited, invalid_runs_client_logs, kaos, library, scenarios_dir, text};

/// Every scenario of the library (the test below checks that none is missing from this list).
const RUNNABLE: &[&str] = &[
    "demo",
    "power-loss-flush-none",
    "power-loss-flush-every-message",
    "buffer-full-drop",
    "buffer-full-block",
    "producer-kill-async",
    "producer-kill-outbox",
    "leader-kill-acks-all",
    "leader-kill-acks-1",
    "consumer-auto-commit",
    "consumer-commit-before",
    "consumer-commit-after",
    "consumer-threads-naive",
    "consumer-threads-contiguous",
    "idempotent-group",
    "reset-acks-0",
    "reset-acks-all",
    "partition-leader-acks-all",
    "partition-halves-acks-1",
    "partition-halves-acks-all",
    "leader-kill-idempotent",
    "truncation-hw-follower-restart",
    "truncation-leader-epoch-follower-restart",
    "truncation-hw-power-loss",
    "truncation-leader-epoch-power-loss",
    "truncation-lagging-follower-restart",
    "power-loss-torn-writes",
    "power-loss-small-segments",
    "isr-last-member-dies-unclean-off",
    "isr-last-member-dies-unclean-on",
    "retention-slow-consumer",
    "retention-soak",
    "coordinator-kill-after-commit",
    "coordinator-power-loss-after-commit",
    "leader-kill-uncommitted-reads",
    "idempotent-dropped-responses",
    "txn-isolation",
    "txn-leader-kill",
    "txn-zombie",
    "compacted-leader-kill",
    "eos-pipeline-process-kill",
    "pipeline-process-kill",
    "eos-pipeline-leader-kill",
    "pipeline-leader-kill",
    "eos-pipeline-coordinator-kill",
    "eos-pipeline-coordinator-power-loss",
    "eos-pipeline-metadata-before-image",
];

/// Library scenarios whose run on the correct broker, at the file's own duration or longer than
/// the library's, another test file of this suite already requires to exit 0 (the valid half of a
/// detection claim shown both ways; retention-soak with its data dirs measured): the library run
/// below leaves them out rather than run them twice (CI's time). The next test checks that each
/// named file still runs it.
const RUN_VALID_ELSEWHERE: &[(&str, &str)] = &[
    ("coordinator-kill-after-commit", "detection.rs"),
    ("coordinator-power-loss-after-commit", "detection.rs"),
    ("leader-kill-uncommitted-reads", "detection.rs"),
    ("idempotent-dropped-responses", "detection.rs"),
    ("power-loss-torn-writes", "detection.rs"),
    ("power-loss-small-segments", "detection.rs"),
    ("eos-pipeline-process-kill", "detection.rs"),
    ("truncation-lagging-follower-restart", "detection.rs"),
    ("eos-pipeline-metadata-before-image", "detection.rs"),
    ("compacted-leader-kill", "compaction.rs"),
    ("retention-soak", "retention.rs"),
];

/// The scenarios the library run below runs: RUNNABLE less RUN_VALID_ELSEWHERE.
fn run_here() -> Vec<&'static str> {
    RUNNABLE
        .iter()
        .copied()
        .filter(|name| RUN_VALID_ELSEWHERE.iter().all(|(n, _)| n != name))
        .collect()
}

#[test]
fn the_scenarios_left_out_of_the_library_run_are_run_valid_by_the_test_named() {
    for (name, file) in RUN_VALID_ELSEWHERE {
        assert!(RUNNABLE.contains(name), "{name} is not a library scenario");
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests")
                .join(file),
        )
        .expect("test file");
        assert!(
            text.contains(&format!("\"{name}\"")) || text.contains(&format!("\"{name}.toml\"")),
            "{file} no longer runs {name}: put it back into the library run"
        );
    }
    assert_eq!(run_here().len() + RUN_VALID_ELSEWHERE.len(), RUNNABLE.len());
}

#[test]
fn every_scenario_file_in_the_library_loads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut count = 0;
    for entry in std::fs::read_dir(scenarios_dir()).expect("scenarios dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "toml") {
            count += 1;
            // A directory of one file with a duration of 0 is refused at load, after parsing: the
            // error must be about the duration, not about the file.
            let out = Command::new(kaos())
                .args(["run", "--duration-s", "0", "--store"])
                .arg(tmp.path())
                .arg(&path)
                .env("KAOS_BROKER_BIN", broker_bin())
                .output()
                .expect("kaos run");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{}: {stderr}", path.display());
            assert!(
                stderr.contains("duration_s must be between"),
                "{}: {stderr}",
                path.display()
            );
        }
    }
    assert_eq!(
        count,
        RUNNABLE.len(),
        "every scenario of the library is run below"
    );
}

#[test]
fn the_runnable_scenarios_reproduce_their_claims() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("library");
    std::fs::create_dir(&dir).expect("mkdir");
    let names = run_here();
    for name in &names {
        std::fs::copy(
            library(&format!("{name}.toml")),
            dir.join(format!("{name}.toml")),
        )
        .expect("copy scenario");
    }
    let out = Command::new(kaos())
        .args(["run", "--all", "--duration-s", "14", "--store"])
        .arg(tmp.path().join("store"))
        .arg("--junit")
        .arg(tmp.path().join("library.xml"))
        .arg(&dir)
        .env("KAOS_BROKER_BIN", broker_bin())
        .output()
        .expect("kaos run --all");
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}\nthe invalid runs' client logs:\n{}",
        invalid_runs_client_logs(&tmp.path().join("store"))
    );
    assert_eq!(
        stdout.matches("verdict: VALID").count(),
        names.len(),
        "{stdout}"
    );
    // The bad configuration did lose acknowledged messages; the good one did not.
    let flush_none = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("power-loss-flush-none"))
        .expect("flush none ran");
    assert!(flush_none.contains("× lost (required)"), "{flush_none}");
    let flush_every = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("power-loss-flush-every-message"))
        .expect("flush every ran");
    assert!(!flush_every.contains("× lost"), "{flush_every}");
    let drop = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("buffer-full-drop"))
        .expect("drop ran");
    assert!(drop.contains("× producer_loss (required)"), "{drop}");
    let block = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("buffer-full-block"))
        .expect("block ran");
    assert!(!block.contains("× producer_loss"), "{block}");
    let killed_async = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("producer-kill-async"))
        .expect("async ran");
    assert!(
        killed_async.contains("× producer_loss (required)"),
        "{killed_async}"
    );
    let killed_outbox = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("producer-kill-outbox"))
        .expect("outbox ran");
    assert!(
        !killed_outbox.contains("× producer_loss"),
        "{killed_outbox}"
    );
    let acks_1 = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("leader-kill-acks-1"))
        .expect("acks=1 ran");
    assert!(acks_1.contains("× lost (required)"), "{acks_1}");
    let acks_all = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("leader-kill-acks-all"))
        .expect("acks=all ran");
    assert!(!acks_all.contains("× lost"), "{acks_all}");
    let reset_0 = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("reset-acks-0"))
        .expect("reset acks=0 ran");
    assert!(reset_0.contains("× lost (required)"), "{reset_0}");
    let reset_all = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("reset-acks-all"))
        .expect("reset acks=all ran");
    assert!(!reset_all.contains("× lost"), "{reset_all}");
    let partition = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("partition-leader-acks-all"))
        .expect("partition ran");
    assert!(!partition.contains("× lost"), "{partition}");
    let split = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("partition-halves-acks-1"))
        .expect("split ran");
    assert!(split.contains("× lost (required)"), "{split}");
    let split_all = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("partition-halves-acks-all"))
        .expect("split acks=all ran");
    assert!(!split_all.contains("× lost"), "{split_all}");
    let idempotent = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("leader-kill-idempotent"))
        .expect("idempotent ran");
    assert!(
        !idempotent.contains("× lost") && !idempotent.contains("× duplicates"),
        "{idempotent}"
    );
    let hw_restart = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("truncation-hw-follower-restart"))
        .expect("hw restart ran");
    assert!(hw_restart.contains("× lost (required)"), "{hw_restart}");
    let epoch_restart = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("truncation-leader-epoch-follower-restart"))
        .expect("epoch restart ran");
    assert!(!epoch_restart.contains("× lost"), "{epoch_restart}");
    let hw_power = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("truncation-hw-power-loss"))
        .expect("hw power loss ran");
    assert!(
        hw_power.contains("× replica_divergence (required)"),
        "{hw_power}"
    );
    let epoch_power = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("truncation-leader-epoch-power-loss"))
        .expect("epoch power loss ran");
    assert!(
        !epoch_power.contains("× replica_divergence"),
        "{epoch_power}"
    );
    // (power-loss-small-segments, which also loses nothing, is run by detection.rs, which
    // asserts it.)
    for good in ["isr-last-member-dies-unclean-off"] {
        let ran = stdout
            .split("scenario: ")
            .find(|s| s.starts_with(&format!("{good}\n")))
            .unwrap_or_else(|| panic!("{good} ran"));
        assert!(!ran.contains("× lost"), "{ran}");
    }
    let unclean = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("isr-last-member-dies-unclean-on"))
        .expect("unclean on ran");
    assert!(unclean.contains("× lost (required)"), "{unclean}");
    let slow = stdout
        .split("scenario: ")
        .find(|s| s.starts_with("retention-slow-consumer"))
        .expect("slow consumer ran");
    assert!(
        slow.contains("× retention_deleted (required)") && !slow.contains("× lost"),
        "{slow}"
    );
    let junit = std::fs::read_to_string(tmp.path().join("library.xml")).expect("junit");
    assert_eq!(junit.matches("<testcase").count(), names.len());
}

/// `[nemesis] torn_writes` reaches lazyfs: the power losses of `power-loss-torn-writes` tear
/// writes (lazyfs's report in the history says how many), and the broker recovers from them and
/// serves only whole records; without a power loss to tear, the key is refused at load.
#[test]
fn torn_writes_reach_the_power_losses_and_need_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    let out = Command::new(kaos())
        .args(["run", "--duration-s", "10", "--store"])
        .arg(&store)
        .arg(library("power-loss-torn-writes.toml"))
        .env("KAOS_BROKER_BIN", broker_bin())
        .output()
        .expect("kaos run");
    let stdout = exited(&out, 0);
    let history = std::fs::read_to_string(store.join("latest/history.jsonl")).expect("history");
    let torn: u64 = history
        .lines()
        .filter(|l| l.contains("\"f\":\"power_loss\"") && l.contains("\"type\":\"ok\""))
        .filter_map(|l| {
            // lazyfs's report, a JSON object inside the op's value: `\"torn_writes\":N`.
            let report = l.split("torn_writes\\\":").nth(1)?;
            let digits: String = report.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u64>().ok()
        })
        .sum();
    assert!(torn > 0, "no power loss tore a write:\n{history}");
    // Recovery cut every torn batch: no record read that is not a kaos message.
    assert!(
        stdout.contains("records_without_id=0") && stdout.contains("unknown_ids_read=0"),
        "{stdout}"
    );

    let text = std::fs::read_to_string(library("power-loss-torn-writes.toml"))
        .expect("scenario")
        .replace("faults = [\"power_loss\"]", "faults = [\"kill\"]");
    let file = tmp.path().join("kill-torn.toml");
    std::fs::write(&file, text).expect("write");
    let out = Command::new(kaos())
        .args(["run", "--store"])
        .arg(&store)
        .arg(&file)
        .env("KAOS_BROKER_BIN", broker_bin())
        .output()
        .expect("kaos run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("torn_writes") && stderr.contains("power_loss"),
        "{stderr}"
    );
}

#[test]
fn a_failed_library_run_prints_the_client_logs_of_its_invalid_runs() {
    let store = tempfile::tempdir().expect("tempdir");
    let run = |scenario: &str, verdict: &str, log: &str| {
        let dir = store.path().join(scenario).join("20261204T000000.000Z");
        std::fs::create_dir_all(dir.join("clients")).expect("mkdir");
        let results = serde_json::json!({"analysis": {"verdict": verdict}});
        std::fs::write(dir.join("results.json"), results.to_string()).expect("results");
        let lines: Vec<String> = (0..30).map(|i| format!("{log} line {i}")).collect();
        std::fs::write(dir.join("clients/consumer-1.log"), lines.join("\n")).expect("log");
    };
    run("stalled", "invalid", "stalled-consumer");
    run("fine", "valid", "fine-consumer");
    let printed = invalid_runs_client_logs(store.path());
    assert!(printed.contains("stalled-consumer line 29"), "{printed}");
    assert!(
        printed.contains("stalled-consumer line 15"),
        "the last 15 lines: {printed}"
    );
    assert!(
        !printed.contains("stalled-consumer line 14"),
        "only the last 15: {printed}"
    );
    assert!(
        !printed.contains("fine-consumer"),
        "valid runs are left out: {printed}"
    );
}
