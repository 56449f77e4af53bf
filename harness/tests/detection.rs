//! Each detection class shown both ways (issue 19): a scenario of the library is valid against
//! kaos-broker as it is, and invalid — the class found, with its evidence — against kaos-broker
//! with the bug switch that reproduces that class of bug (a setting of the scenario's cluster).

mod common;
use common::{run_library as run, run_library_with_history as run_with_history};

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
    commit_survives_unless_answered_before_replication("coordinator-kill-after-commit", "killed");
}

/// The same with the coordinator's power cut (every broker fsyncs each message, so the
/// coordinator keeps what it wrote; the follower that takes over must have the commit too).
#[test]
fn an_acknowledged_commit_survives_a_coordinator_power_loss_unless_answered_early() {
    commit_survives_unless_answered_before_replication(
        "coordinator-power-loss-after-commit",
        "lost power",
    );
}

/// `name` is valid on the correct broker and finds `lost_commit` with the coordinator answering
/// before replication; the case's cause names the fault (`fault`: "killed", "lost power").
fn commit_survives_unless_answered_before_replication(name: &str, fault: &str) {
    let (code, output, results) = run(name, None);
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(results["analysis"]["counts"]["lost_commit"], 0, "{output}");
    // The trigger aimed the faults: each one right after an acknowledged commit.
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
        cause.contains("an acknowledged commit was lost") && cause.contains(fault),
        "the case names the commit, the start and the fault: {cause}"
    );
    assert_eq!(case["op_indexes"].as_array().map(Vec::len), Some(2));
}

/// The consumer records the partition's high watermark (librdkafka's, from its Fetch responses)
/// with each record it reads: how many of its records carry one, and how many of them lie at or
/// above it.
fn records_with_high_watermark(history: &str) -> (u64, u64) {
    let (mut with, mut above) = (0, 0);
    for line in history.lines().filter(|l| {
        l.contains(r#""process":"consumer-1""#) && l.contains(r#""type":"ok","f":"poll""#)
    }) {
        let op: serde_json::Value = serde_json::from_str(line).expect("a history line");
        for record in op["value"]["records"].as_array().into_iter().flatten() {
            if let Some(hw) = record["high_watermark"].as_i64() {
                with += 1;
                above += u64::from(record["offset"].as_i64().is_some_and(|o| o >= hw));
            }
        }
    }
    (with, above)
}

#[test]
fn a_consumer_reads_only_committed_records_unless_fetch_serves_past_the_high_watermark() {
    let name = "leader-kill-uncommitted-reads";
    let (code, output, results, history) = run_with_history(name, None);
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(
        results["analysis"]["counts"]["uncommitted_read"], 0,
        "{output}"
    );
    // The direct evidence was there to see: the consumer's records carry the high watermark.
    let (with, above) = records_with_high_watermark(&history);
    assert!(
        with >= 1_000,
        "{with} records with a high watermark\n{output}"
    );
    assert_eq!(above, 0, "{output}");

    let switch = "\"consumer.fetch.bound\" = \"log-end\"";
    let (code, output, results, history) = run_with_history(name, Some(switch));
    assert_eq!(code, Some(1), "{output}");
    let count = results["analysis"]["counts"]["uncommitted_read"]
        .as_u64()
        .unwrap_or(0);
    assert!(count >= 1, "no uncommitted_read with the switch:\n{output}");
    let (_, above) = records_with_high_watermark(&history);
    assert!(above >= 1, "{output}");
    let case = first_case(&results, "uncommitted_read").expect("a case");
    assert_eq!(case["sub_kind"], "above_high_watermark", "{case}");
    let cause = case["cause"].as_str().unwrap_or_default();
    assert!(
        cause.contains("high watermark for the partition"),
        "{cause}"
    );
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

    let switch = "\"log.recovery.truncate.torn.tail\" = false";
    let (code, output, results, history) = run_with_history(name, Some(switch));
    assert_eq!(code, Some(1), "{output}");
    // A reader meets the torn bytes behind the recovered log end: the broker's read-back check
    // stops it (exit 70), outside any fault.
    let crashes = results["analysis"]["counts"]["node_crash"]
        .as_u64()
        .unwrap_or(0);
    assert!(crashes >= 1, "no crash with the torn bytes kept:\n{output}");
    assert!(output.contains("exit 70"), "{output}");
    // The crash is recorded when it happens, also when the final read provoked it: before the
    // final read ends (which, with the only broker down, it then does at once, not at its
    // timeout).
    let index_of = |f: &str, types: &[&str]| {
        history.lines().find_map(|l| {
            let op: serde_json::Value = serde_json::from_str(l).ok()?;
            (op["f"] == f && types.iter().any(|t| op["type"] == *t))
                .then(|| op["index"].as_u64())?
        })
    };
    let crash = index_of("crash", &["info"]).expect("a crash op");
    let read_end = index_of("final_read", &["ok", "info"]).expect("the final read's end");
    assert!(
        crash < read_end,
        "crash op {crash}, final read ended at op {read_end}"
    );
    if index_of("final_read", &["invoke"]).is_some_and(|start| start < crash) {
        assert!(
            output.contains("every broker had exited on its own"),
            "{output}"
        );
    }
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
    let (code, output, results) = run(
        name,
        Some("\"transaction.offsets.visible\" = \"immediately\""),
    );
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

/// The `trigger_follower_lag_min` value of the history's `sequence` invoke: the lag it saw and
/// whether it was reached.
fn follower_lag_seen(history: &str) -> Option<(bool, i64)> {
    history.lines().find_map(|l| {
        let op: serde_json::Value = serde_json::from_str(l).ok()?;
        if op["f"] != "sequence" || op["type"] != "invoke" {
            return None;
        }
        let trigger = &op["value"]["trigger"];
        let reached = trigger["reached"].as_bool()?;
        let lag = if reached {
            &trigger["seen"]["lag"]
        } else {
            &trigger["lag_max_seen"]["lag"]
        };
        Some((reached, lag.as_i64().unwrap_or(-1)))
    })
}

/// KIP-101 scenario 1 aimed at a lagging follower (`trigger_follower_lag_min`): the double fault
/// starts once the follower lags by 200 records; with leader-epoch truncation the restarted
/// follower keeps what it has and takes over with every acknowledged write, with the pre-KIP-101
/// switch it cuts its log to its HW, a fetch round behind the leader's, and the acknowledged
/// records of that round are lost.
#[test]
fn a_lagging_follower_that_restarts_keeps_acknowledged_writes_unless_it_truncates_to_its_hw() {
    let name = "truncation-lagging-follower-restart";
    let (code, output, results, history) = run_with_history(name, None);
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(results["analysis"]["counts"]["lost"], 0, "{output}");
    let (reached, lag) = follower_lag_seen(&history).expect("the sequence records its trigger");
    assert!(
        reached && lag >= 200,
        "the trigger saw a lag of {lag}:\n{output}"
    );

    let switch = "\"replication.truncation\" = \"high-watermark\"";
    let (code, output, results, history) = run_with_history(name, Some(switch));
    assert_eq!(code, Some(1), "{output}");
    let lost = results["analysis"]["counts"]["lost"].as_u64().unwrap_or(0);
    assert!(
        lost >= 1,
        "nothing lost with high-watermark truncation:\n{output}"
    );
    let (reached, lag) = follower_lag_seen(&history).expect("the sequence records its trigger");
    assert!(
        reached && lag >= 200,
        "the trigger saw a lag of {lag}:\n{output}"
    );
}

#[test]
fn an_exactly_once_pipeline_makes_progress_unless_a_restarted_broker_answers_metadata_unready() {
    // The pipeline's transaction coordinator killed and started again while the controller is
    // paused: for 2 s it listens without the cluster's image. The correct broker holds the
    // Metadata requests that reach it meanwhile; the pipeline carries its input through.
    let name = "eos-pipeline-metadata-before-image";
    let (code, output, results) = run(name, None);
    assert_eq!(code, Some(0), "{output}");
    let counts = &results["analysis"]["counts"];
    assert_eq!(counts["pipeline_lost"], 0, "{output}");
    assert_eq!(counts["pipeline_duplicate"], 0, "{output}");
    assert_eq!(
        results["analysis"]["unmet"],
        serde_json::json!([]),
        "{output}"
    );

    // With the switch it answers them at once with no broker: librdkafka decommissions every
    // broker it knew, the coordinators with them. Whether a client then recovers (it goes back
    // to its bootstrap addresses) depends on timing: a run was invalid in about 2 of 3 seeds
    // (BENCHMARKS.md), so up to 4 seeds are tried for one that is. Its evidence is a stall: the
    // pipeline's progress requirement unmet, or the input producer's messages never sent
    // (`producer_loss`: librdkafka had no broker left to send them to until they timed out).
    let switch = "\"metadata.before.image\" = \"answer\"";
    let text = common::library_scenario(name, Some(switch));
    let mut outputs = Vec::new();
    for seed in 1..=4 {
        let tmp = tempfile::tempdir().expect("tempdir");
        let seeded = text.replace("seed = 1605", &format!("seed = {seed}"));
        let out = common::kaos_run(tmp.path(), &seeded, &common::broker_bin());
        let (stdout, stderr) = common::text(&out);
        let output = format!("{stdout}\n{stderr}");
        if out.status.code() == Some(0) {
            outputs.push(output);
            continue;
        }
        assert_eq!(out.status.code(), Some(1), "{output}");
        let results = std::fs::read_to_string(tmp.path().join("store/latest/results.json"))
            .expect("results.json");
        let results: serde_json::Value = serde_json::from_str(&results).expect("JSON");
        let stalled = results["analysis"]["unmet"]
            .to_string()
            .contains("pipeline stopped making progress");
        let unsent = results["analysis"]["counts"]["producer_loss"]
            .as_u64()
            .unwrap_or(0);
        assert!(
            stalled || unsent > 0,
            "invalid, but not by a stall:\n{output}"
        );
        let counts = &results["analysis"]["counts"];
        assert_eq!(counts["pipeline_lost"], 0, "{output}");
        assert_eq!(counts["pipeline_duplicate"], 0, "{output}");
        return;
    }
    panic!(
        "valid in 4 seeds of 4 with the switch:\n{}",
        outputs.join("\n")
    );
}
