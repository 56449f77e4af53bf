//! Each detection class shown both ways (issue 19): a scenario of the library is valid against
//! kaos-broker as it is, and invalid — the class found, with its evidence — against kaos-broker
//! with the bug switch that reproduces that class of bug (a setting of the scenario's cluster).

use std::path::Path;

mod common;
use common::{broker_bin, kaos_run, text};

/// A library scenario's text, with `switch` (a `"key" = value` pair) added to its
/// `[cluster] settings` when given.
fn scenario(name: &str, switch: Option<&str>) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
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

/// Runs `name` (with `switch`) and returns its exit code, stdout and results.json.
fn run(name: &str, switch: Option<&str>) -> (Option<i32>, String, serde_json::Value) {
    let (code, output, results, _) = run_with_history(name, switch);
    (code, output, results)
}

/// [`run`], and the run's history.jsonl.
fn run_with_history(
    name: &str,
    switch: Option<&str>,
) -> (Option<i32>, String, serde_json::Value, String) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = kaos_run(tmp.path(), &scenario(name, switch), &broker_bin());
    let (stdout, stderr) = text(&out);
    let latest = tmp.path().join("store").join("latest");
    let results = std::fs::read_to_string(latest.join("results.json"))
        .unwrap_or_else(|e| panic!("{name}: no results.json ({e})\n{stdout}\n{stderr}"));
    let results = serde_json::from_str(&results).expect("results.json is JSON");
    let history = std::fs::read_to_string(latest.join("history.jsonl")).unwrap_or_default();
    (
        out.status.code(),
        format!("{stdout}\n{stderr}"),
        results,
        history,
    )
}

/// The first case of class `kind` in a results.json, if any.
fn first_case<'a>(results: &'a serde_json::Value, kind: &str) -> Option<&'a serde_json::Value> {
    results["analysis"]["anomalies"]
        .as_array()?
        .iter()
        .find(|a| a["kind"] == kind)
        .and_then(|a| a["cases"].get(0))
}

#[test]
fn an_acknowledged_commit_survives_its_coordinator_unless_it_answers_before_replication() {
    let name = "coordinator-kill-after-commit";
    let (code, output, results) = run(name, None);
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(results["analysis"]["counts"]["lost_commit"], 0, "{output}");
    // The trigger aimed the kills: each one right after an acknowledged commit.
    assert!(output.contains("verdict: VALID"), "{output}");

    let (code, output, results) = run(name, Some("\"offsets.commit.required.acks\" = 1"));
    assert_eq!(code, Some(1), "{output}");
    let count = results["analysis"]["counts"]["lost_commit"]
        .as_u64()
        .unwrap_or(0);
    assert!(count >= 1, "no lost_commit with the switch:\n{output}");
    let case = first_case(&results, "lost_commit").expect("a lost_commit case");
    let cause = case["cause"].as_str().unwrap_or_default();
    assert!(
        cause.contains("an acknowledged commit was lost") && cause.contains("killed"),
        "the case names the commit, the start and the kill: {cause}"
    );
    assert_eq!(case["op_indexes"].as_array().map(Vec::len), Some(2));
}

#[test]
fn a_consumer_reads_only_committed_records_unless_fetch_serves_past_the_high_watermark() {
    let name = "leader-kill-uncommitted-reads";
    let (code, output, results) = run(name, None);
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(
        results["analysis"]["counts"]["uncommitted_read"], 0,
        "{output}"
    );

    let (code, output, results) = run(name, Some("\"consumer.fetch.bound\" = \"log-end\""));
    assert_eq!(code, Some(1), "{output}");
    let count = results["analysis"]["counts"]["uncommitted_read"]
        .as_u64()
        .unwrap_or(0);
    assert!(count >= 1, "no uncommitted_read with the switch:\n{output}");
    let case = first_case(&results, "uncommitted_read").expect("a case");
    let sub = case["sub_kind"].as_str().unwrap_or_default();
    assert!(sub == "truncated" || sub == "overwritten", "{case}");
}

/// The `in_flight` reports of the history's `heal` ops: (most requests in flight on one
/// connection, connections reset on reaching `reset_in_flight_min`), summed over the faults.
fn in_flight_seen(history: &str) -> (u64, u64) {
    let (mut max, mut resets) = (0, 0);
    for line in history.lines().filter(|l| l.contains("\"in_flight\"")) {
        let op: serde_json::Value = serde_json::from_str(line).expect("a history line");
        for seen in op["value"]["in_flight"].as_array().into_iter().flatten() {
            max = max.max(seen["max"].as_u64().unwrap_or(0));
            resets += seen["resets"].as_u64().unwrap_or(0);
        }
    }
    (max, resets)
}

#[test]
fn every_retried_batch_in_flight_is_recognised_unless_the_broker_keeps_only_the_last() {
    let name = "idempotent-dropped-responses";
    let (code, output, results, history) = run_with_history(name, None);
    assert_eq!(code, Some(0), "{output}");
    let counts = &results["analysis"]["counts"];
    let recognised = counts["duplicate_batches"].as_u64().unwrap_or(0);
    assert!(
        recognised >= 3,
        "the retries were not recognised: {recognised}\n{output}"
    );
    assert_eq!(counts["duplicates"], 0, "{output}");
    assert_eq!(counts["unacknowledged_absent"], 0, "{output}");
    // The faults were aimed: connections with 3 requests in flight, reset there.
    let (max, resets) = in_flight_seen(&history);
    assert!(
        max >= 3 && resets >= 2,
        "in flight: max {max}, resets {resets}\n{output}"
    );

    let (code, output, results) = run(name, Some("\"producer.state.batches.retained\" = 1"));
    assert_eq!(code, Some(1), "{output}");
    // The retry of the first batch in flight is refused OUT_OF_ORDER_SEQUENCE_NUMBER: librdkafka
    // takes it for a desynchronised broker (a fatal error) and delivers nothing more, and the
    // retries the broker would have recognised never come.
    let counts = &results["analysis"]["counts"];
    let never_acknowledged = counts["unacknowledged_absent"].as_u64().unwrap_or(0);
    assert!(never_acknowledged >= 1, "the producer went on:\n{output}");
    assert!(
        counts["duplicate_batches"].as_u64().unwrap_or(0) < 3,
        "the one-batch window recognised the retries:\n{output}"
    );
}

#[test]
fn recovery_cuts_a_torn_batch_unless_it_leaves_the_torn_bytes_behind() {
    let name = "power-loss-torn-writes";
    let (code, output, results) = run(name, None);
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(results["analysis"]["counts"]["node_crash"], 0, "{output}");

    let (code, output, results) = run(name, Some("\"log.recovery.truncate.torn.tail\" = false"));
    assert_eq!(code, Some(1), "{output}");
    // A reader meets the torn bytes behind the recovered log end: the broker's read-back check
    // stops it (exit 70), outside any fault.
    let crashes = results["analysis"]["counts"]["node_crash"]
        .as_u64()
        .unwrap_or(0);
    assert!(crashes >= 1, "no crash with the torn bytes kept:\n{output}");
    assert!(output.contains("exit 70"), "{output}");
}

#[test]
fn a_rolled_segment_survives_a_power_loss_unless_the_roll_skips_the_directory_fsync() {
    let name = "power-loss-small-segments";
    let (code, output, results) = run(name, None);
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(results["analysis"]["counts"]["lost"], 0, "{output}");

    let (code, output, results) = run(name, Some("\"log.roll.dir.fsync\" = false"));
    assert_eq!(code, Some(1), "{output}");
    let lost = results["analysis"]["counts"]["lost"].as_u64().unwrap_or(0);
    assert!(
        lost >= 1,
        "nothing lost without the directory fsync:\n{output}"
    );
}

#[test]
fn an_exactly_once_pipeline_loses_nothing_unless_transactional_offsets_show_before_the_commit() {
    // A transactional pipeline aborting 10% of its transactions by choice and SIGKILLed every
    // 3 s: on the correct broker an aborted transaction's offsets are dropped with its outputs.
    let name = "eos-pipeline-process-kill";
    let (code, output, results) = run(name, None);
    assert_eq!(code, Some(0), "{output}");
    let counts = &results["analysis"]["counts"];
    assert_eq!(counts["pipeline_lost"], 0, "{output}");
    assert_eq!(counts["pipeline_duplicate"], 0, "{output}");
    assert!(
        counts["offset_commits"].as_u64().unwrap_or(0) > 0,
        "the pipeline committed nothing:\n{output}"
    );

    // With the switch, TxnOffsetCommit takes effect when written: an aborted transaction has
    // still moved the group past the input whose output the abort removed.
    let (code, output, results) = run(name, Some("\"transaction.offsets.visible\" = \"immediately\""));
    assert_eq!(code, Some(1), "{output}");
    let lost = results["analysis"]["counts"]["pipeline_lost"]
        .as_u64()
        .unwrap_or(0);
    assert!(lost >= 1, "no pipeline_lost with the switch:\n{output}");
    let case = first_case(&results, "pipeline_lost").expect("a pipeline_lost case");
    let cause = case["cause"].as_str().unwrap_or_default();
    assert!(
        cause.contains("that the pipeline's group") && cause.contains("is not in the final read"),
        "the case names the committed offset and the missing output: {cause}"
    );
    assert_eq!(case["ids"].as_array().map(Vec::len), Some(2));
}
