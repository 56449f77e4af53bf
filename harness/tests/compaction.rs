//! Compaction under the harness (issue 17), shown both ways: `compacted-leader-kill` (every
//! topic compacted, small segments, the log cleaner every 250 ms, the leader SIGKILLed in turn)
//! is valid against kaos-broker — the cleaner removed superseded messages (`compacted`) and no
//! latest record of a key (`lost`) — and invalid with `"log.cleaner.key.hash.bytes" = 1`, a
//! cleaner whose offset map takes keys with the same one-byte hash for one key and so removes
//! latest records: `lost`, each case a key whose last acknowledged record is gone.

mod common;
use common::run_library;

const NAME: &str = "compacted-leader-kill";

/// Runs the library scenario with `switch` (a `"key" = value` pair) added to its settings;
/// returns its exit code, output and results.json.
fn run(switch: Option<&str>) -> (Option<i32>, String, serde_json::Value) {
    run_library(NAME, switch)
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
