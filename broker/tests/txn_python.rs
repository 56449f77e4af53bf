//! A peer client: Python confluent-kafka's transactional producer (its wheel bundles its own
//! librdkafka) commits and aborts transactions over two partitions, and a zombie (a producer whose
//! transactional.id a successor initialised) fails to commit; a read_committed consumer then
//! reads exactly the committed transactions, a read_uncommitted one every record (the aborted
//! transactions' and the zombie's, which the successor's init_transactions aborted, included). Needs `python3` with `confluent_kafka` (`.ci/run` installs it with pip);
//! without them the test fails and says so.

mod common;

use common::*;

const TRANSACTIONS: u32 = 9;
const SENDS: u32 = 10;

fn ids(report: &serde_json::Value, key: &str) -> Vec<u64> {
    let mut ids: Vec<u64> = report[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is a list: {report}"))
        .iter()
        .map(|v| v.as_u64().expect("an id"))
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn confluent_kafka_transactions_commit_abort_and_fence_a_zombie() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), "");
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "py-txn", 2, 1, false), 0);

    let report = run_python_report(
        "txn_producer.py",
        &[
            broker.bootstrap(),
            "py-txn".into(),
            TRANSACTIONS.to_string(),
            SENDS.to_string(),
        ],
    );
    eprintln!("confluent-kafka with librdkafka {}", report["librdkafka"]);
    assert_eq!(report["errors"], serde_json::json!([]), "delivery errors");

    let committed = ids(&report, "committed");
    let aborted = ids(&report, "aborted");
    let zombie = ids(&report, "zombie");
    let successor = ids(&report, "successor");
    assert_eq!(committed.len() as u32, 6 * SENDS);
    assert_eq!(aborted.len() as u32, 3 * SENDS);
    let fenced = report["zombie_error"].as_str().unwrap_or("none");
    assert!(
        ["PRODUCER_FENCED", "_FENCED", "INVALID_PRODUCER_EPOCH"].contains(&fenced),
        "the zombie's commit must fail as fenced: {fenced}"
    );

    let mut expected: Vec<u64> = committed.iter().chain(&successor).copied().collect();
    expected.sort_unstable();
    assert_eq!(
        ids(&report, "read_committed"),
        expected,
        "read_committed: the committed transactions and the successor's, nothing aborted, nothing of the zombie"
    );
    let uncommitted = ids(&report, "read_uncommitted");
    for id in committed
        .iter()
        .chain(&aborted)
        .chain(&successor)
        .chain(&zombie)
    {
        assert!(
            uncommitted.binary_search(id).is_ok(),
            "read_uncommitted returns every record below the high watermark, aborted ones too: {id} missing"
        );
    }
    drop(broker);
}
