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
            assert_eq!(text.matches("settings = { ").count(), 1, "{name}: one settings table");
            text.replace("settings = { ", &format!("settings = {{ {pair}, "))
        }
    }
}

/// Runs `name` (with `switch`) and returns its exit code, stdout and results.json.
fn run(name: &str, switch: Option<&str>) -> (Option<i32>, String, serde_json::Value) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = kaos_run(tmp.path(), &scenario(name, switch), &broker_bin());
    let (stdout, stderr) = text(&out);
    let results = tmp.path().join("store").join("latest").join("results.json");
    let results = std::fs::read_to_string(&results)
        .unwrap_or_else(|e| panic!("{name}: no results.json ({e})\n{stdout}\n{stderr}"));
    let results = serde_json::from_str(&results).expect("results.json is JSON");
    (out.status.code(), format!("{stdout}\n{stderr}"), results)
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

#[test]
fn dropped_responses_make_the_broker_recognise_retried_batches_and_write_nothing_twice() {
    // Only the correct broker: with `"producer.state.batches.retained" = 1` this run is still
    // valid, since librdkafka 2.12 had one produce request per partition in flight here and
    // retried only the last batch, which a one-batch window recognises too (see the README).
    let name = "idempotent-dropped-responses";
    let (code, output, results) = run(name, None);
    assert_eq!(code, Some(0), "{output}");
    let counts = &results["analysis"]["counts"];
    let recognised = counts["duplicate_batches"].as_u64().unwrap_or(0);
    assert!(recognised >= 2, "the retries were not recognised: {recognised}\n{output}");
    assert_eq!(counts["duplicates"], 0, "{output}");
    assert_eq!(counts["unacknowledged_absent"], 0, "{output}");
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
