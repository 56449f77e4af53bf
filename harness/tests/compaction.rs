//! Compaction under the harness (issue 17), shown both ways: `compacted-leader-kill` (every
//! topic compacted, small segments, the log cleaner every 250 ms, the leader SIGKILLed in turn)
//! is valid against kaos-broker — the cleaner removed superseded messages (`compacted`) and no
//! latest record of a key (`lost`) — and invalid with `"log.cleaner.key.hash.bytes" = 1`, a
//! cleaner whose offset map takes keys with the same one-byte hash for one key and so removes
//! latest records: `lost`, each case a key whose last acknowledged record is gone.

use std::path::Path;

mod common;
use common::{broker_bin, kaos_run, text};

const NAME: &str = "compacted-leader-kill";

/// Runs the library scenario with `switch` (a `"key" = value` pair) added to its settings;
/// returns its exit code, output and results.json.
fn run(switch: Option<&str>) -> (Option<i32>, String, serde_json::Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{NAME}.toml"));
    let mut scenario = std::fs::read_to_string(&path).expect("library scenario");
    if let Some(pair) = switch {
        assert_eq!(
            scenario.matches("settings = { ").count(),
            1,
            "one settings table"
        );
        scenario = scenario.replace("settings = { ", &format!("settings = {{ {pair}, "));
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = kaos_run(tmp.path(), &scenario, &broker_bin());
    let (stdout, stderr) = text(&out);
    let results = tmp.path().join("store").join("latest").join("results.json");
    let results = std::fs::read_to_string(&results)
        .unwrap_or_else(|e| panic!("no results.json ({e})\n{stdout}\n{stderr}"));
    let results = serde_json::from_str(&results).expect("results.json is JSON");
    (out.status.code(), format!("{stdout}\n{stderr}"), results)
}

fn count(results: &serde_json::Value, class: &str) -> u64 {
    results["analysis"]["counts"][class].as_u64().unwrap_or(0)
}

#[test]
fn compaction_removes_superseded_messages_and_keeps_the_latest_of_every_key() {
    let (code, output, results) = run(None);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("verdict: VALID"), "{output}");
    assert_eq!(count(&results, "lost"), 0, "{output}");
    assert!(
        count(&results, "compacted") > 0,
        "the cleaner removed nothing:\n{output}"
    );
    let compacted = results["analysis"]["anomalies"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["kind"] == "compacted"))
        .and_then(|a| a["cases"].get(0))
        .expect("a compacted case");
    let cause = compacted["cause"].as_str().unwrap_or_default();
    assert!(cause.contains("later record of key"), "{cause}");
}

#[test]
fn a_cleaner_that_takes_colliding_keys_for_one_loses_latest_records() {
    let (code, output, results) = run(Some("\"log.cleaner.key.hash.bytes\" = 1"));
    assert_eq!(code, Some(1), "{output}");
    assert!(
        count(&results, "lost") > 0,
        "no loss with the switch:\n{output}"
    );
}
