//! The exactly-once pipeline's way out of librdkafka's `send_offsets_to_transaction` hang
//! (librdkafka issues #5511, #5456): a call that has not returned after twice the pipeline's
//! `send_offsets_timeout_ms` is left behind, its transaction recorded failed (`SendOffsetsHung`),
//! and a new producer fences the old one and aborts its transaction; the batch is read again.
//! Here the hang is real: kaos-broker's `debug.txn.offset.commit.unanswered = 1` carries out the
//! pipeline's first TxnOffsetCommit and never answers it, and librdkafka waits past the timeout
//! the pipeline gave it.

mod common;
use common::{broker_bin, history_ops, kaos_run, text};

/// One broker leaving its first TxnOffsetCommit unanswered, a producer and a transactional
/// pipeline whose `send_offsets_to_transaction` gets 2 s (left behind after 4 s).
const SCENARIO: &str = r#"name = "send-offsets-hang"
duration_s = 15
seed = 7

[cluster]
brokers = 1
settings = { "debug.txn.offset.commit.unanswered" = 1 }

[topic]
name = "t"
partitions = 3

[[clients]]
kind = "producer"
mode = "async"
rate_per_s = 200
config = { "acks" = "all", "enable.idempotence" = "true", "linger.ms" = "5" }

[[clients]]
kind = "consumer"
pipeline = { transactional = true, send_offsets_timeout_ms = 2000, producer = { "transaction.timeout.ms" = "10000" } }
config = { "isolation.level" = "read_committed" }

[expect]
pipeline_lost = "forbidden"
pipeline_duplicate = "forbidden"
lost = "forbidden"
duplicate = "forbidden"
pipeline_output_min_percent = 99
"#;

#[test]
fn a_hung_send_offsets_fails_its_transaction_and_the_pipeline_goes_on_exactly_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = kaos_run(tmp.path(), SCENARIO, &broker_bin());
    let (stdout, stderr) = text(&out);
    let output = format!("{stdout}\n{stderr}");
    let latest = tmp.path().join("store").join("latest");
    let broker_log =
        std::fs::read_to_string(latest.join("nodes/n1/broker.log")).unwrap_or_default();
    assert!(
        broker_log.contains("leaving this TxnOffsetCommit without an answer"),
        "the broker did not hold back a TxnOffsetCommit answer:\n{output}"
    );
    let pipeline_log =
        std::fs::read_to_string(latest.join("clients/consumer-1.log")).unwrap_or_default();
    assert!(
        pipeline_log.contains("send_offsets_to_transaction has not returned after 4000 ms"),
        "the watchdog did not fire:\n{pipeline_log}"
    );

    // The transaction whose offsets hung is a `fail` (no EndTxn was sent: only an abort can end
    // it, which the new producer's init_transactions does), and transactions commit after it.
    let ops = history_ops(&latest);
    let txns: Vec<&serde_json::Value> = ops
        .iter()
        .filter(|o| o["process"] == "consumer-1" && o["f"] == "txn" && o["type"] != "invoke")
        .collect();
    let hung = txns
        .iter()
        .position(|o| o["error"] == "SendOffsetsHung")
        .unwrap_or_else(|| panic!("no txn failed SendOffsetsHung:\n{output}"));
    assert_eq!(txns[hung]["type"], "fail", "{}", txns[hung]);
    assert_eq!(
        txns.iter()
            .filter(|o| o["error"] == "SendOffsetsHung")
            .count(),
        1,
        "one TxnOffsetCommit was left unanswered"
    );
    assert!(
        txns[hung + 1..].iter().any(|o| o["type"] == "ok"),
        "no transaction committed after the hang:\n{output}"
    );

    // The verdict stays truthful: the failed transaction's outputs were aborted and its batch
    // carried through again, once.
    assert_eq!(out.status.code(), Some(0), "{output}");
    assert!(output.contains("verdict: VALID"), "{output}");
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(latest.join("results.json")).expect("results.json"),
    )
    .expect("results.json is JSON");
    let counts = &results["analysis"]["counts"];
    assert_eq!(counts["pipeline_lost"], 0, "{output}");
    assert_eq!(counts["pipeline_duplicate"], 0, "{output}");
    assert!(
        counts["offset_commits"].as_u64().unwrap_or(0) > 0,
        "the pipeline committed nothing:\n{output}"
    );
}
