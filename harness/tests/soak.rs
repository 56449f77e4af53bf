//! `kaos soak` and `kaos run --seeds` end to end on a single real broker: how many runs, which
//! seeds, the record in the store, what is kept of each run, the exit code.

use std::path::Path;

mod common;
use common::{kaos_in, one_broker, producer, text, CONSUMER};

/// Two seconds of an acks=all producer and a consumer on one broker: valid.
fn valid() -> String {
    let producer = producer(
        "async",
        300,
        r#""acks" = "all", "message.timeout.ms" = "5000""#,
    );
    one_broker("tiny", 2, 5, 1, &format!("{producer}{CONSUMER}"))
}

/// The same with a liveness floor no run can reach: invalid, whatever the seed.
fn invalid() -> String {
    format!("{}[expect]\nacknowledged_min = 1000000000\n", valid())
}

/// The soak record the output names (`soak record: PATH`), parsed.
fn record(dir: &Path, stdout: &str) -> serde_json::Value {
    let path = stdout
        .lines()
        .find_map(|l| l.strip_prefix("soak record: "))
        .unwrap_or_else(|| panic!("no soak record line in:\n{stdout}"));
    let path = dir.join(path);
    assert!(
        path.starts_with(dir.join("store/tiny")),
        "{}",
        path.display()
    );
    let name = path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("soak-") && name.ends_with(".json"),
        "{name}"
    );
    serde_json::from_slice(&std::fs::read(&path).expect("record")).expect("JSON")
}

fn seeds(record: &serde_json::Value) -> Vec<u64> {
    record["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["seed"].as_u64().expect("seed"))
        .collect()
}

#[test]
fn run_with_a_seed_range_runs_every_seed_and_counts_the_invalid_ones() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("s.toml"), invalid()).expect("scenario");
    let out = kaos_in(
        tmp.path(),
        &[
            "run", "s.toml", "--seeds", "5..7", "--store", "store", "--junit", "j.xml",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("soak: invalid in 3 of 3 seeds (first: seed 5, after "),
        "{stdout}"
    );
    assert!(stdout.contains("every seed ran"), "{stdout}");
    let r = record(tmp.path(), &stdout);
    assert_eq!(seeds(&r), [5, 6, 7], "an invalid run does not stop a range");
    assert_eq!(r["ended"], "seeds_done");
    assert_eq!(
        (r["first_seed"].as_u64(), r["last_seed"].as_u64()),
        (Some(5), Some(7))
    );
    for run in r["runs"].as_array().expect("runs") {
        assert_eq!(run["verdict"], "invalid");
        assert_eq!(run["data_kept"], true);
        let dir = tmp.path().join(run["run_dir"].as_str().expect("run dir"));
        assert!(dir.join("results.json").is_file(), "{}", dir.display());
        assert!(
            dir.join("nodes/n1/data").is_dir(),
            "invalid runs keep their data"
        );
        // The stored scenario replays the run: it carries the run's seed.
        let stored = std::fs::read_to_string(dir.join("scenario.toml")).expect("scenario");
        assert!(
            stored.contains(&format!("seed = {}", run["seed"])),
            "{stored}"
        );
        let replay = Path::new(run["run_dir"].as_str().expect("dir")).join("scenario.toml");
        assert!(
            stdout.contains(&format!("kaos run {}", replay.display())),
            "a replay line for seed {}:\n{stdout}",
            run["seed"]
        );
    }
    let junit = std::fs::read_to_string(tmp.path().join("j.xml")).expect("junit");
    assert_eq!(junit.matches("<testcase").count(), 3, "{junit}");
    for bad in ["8..7", "1-3"] {
        let out = kaos_in(tmp.path(), &["run", "s.toml", "--seeds", bad]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("expected A..B"), "{bad}: {stderr}");
    }
}

#[test]
fn a_soak_stops_at_the_first_invalid_run_or_when_its_time_is_up() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("bad.toml"), invalid()).expect("scenario");
    // Two seconds of run outlast a one-second soak: one run, whatever the machine's speed.
    let out = kaos_in(
        tmp.path(),
        &[
            "soak",
            "bad.toml",
            "--for",
            "1s",
            "--first-seed",
            "40",
            "--store",
            "store",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("soak: invalid in 1 of 1 seed (first: seed 40"),
        "{stdout}"
    );
    let r = record(tmp.path(), &stdout);
    assert_eq!(seeds(&r), [40]);
    assert_eq!(r["ended"], "first_invalid");
    assert_eq!(r["budget_s"].as_f64(), Some(1.0));
    assert!(r["runs"][0]["finished_after_s"].as_f64().expect("time") > 0.0);
    assert!(!r["runs"][0]["problems"]
        .as_array()
        .expect("problems")
        .is_empty());

    std::fs::write(tmp.path().join("good.toml"), valid()).expect("scenario");
    let out = kaos_in(
        tmp.path(),
        &[
            "soak",
            "good.toml",
            "--for",
            "1s",
            "--first-seed",
            "9",
            "--store",
            "store",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("soak: invalid in 0 of 1 seed\n"),
        "{stdout}"
    );
    assert!(stdout.contains("its time was up"), "{stdout}");
    assert!(!stdout.contains("replay"), "nothing to replay: {stdout}");
    let r = record(tmp.path(), &stdout);
    assert_eq!(seeds(&r), [9]);
    assert_eq!(r["ended"], "time_up");
    let run = &r["runs"][0];
    assert_eq!(
        (run["verdict"].as_str(), run["data_kept"].as_bool()),
        (Some("valid"), Some(false))
    );
    let dir = tmp.path().join(run["run_dir"].as_str().expect("run dir"));
    assert!(dir.join("results.json").is_file() && dir.join("history.jsonl").is_file());
    assert!(
        !dir.join("nodes/n1/data").exists(),
        "a valid run's data directory is dropped"
    );

    // --keep-valid keeps it; a malformed length is refused before anything runs.
    let out = kaos_in(
        tmp.path(),
        &[
            "soak",
            "good.toml",
            "--for",
            "1s",
            "--keep-valid",
            "--store",
            "store",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let r = record(tmp.path(), &stdout);
    let dir = tmp
        .path()
        .join(r["runs"][0]["run_dir"].as_str().expect("run dir"));
    assert!(dir.join("nodes/n1/data").is_dir(), "--keep-valid");
    let out = kaos_in(tmp.path(), &["soak", "good.toml", "--for", "1 hour"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("expected a length such as 90s"), "{stderr}");
}
