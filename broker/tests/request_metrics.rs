//! Request metrics against a real broker process: the Produce and Fetch requests it answered are
//! counted in each stage of `request-metrics.json`, which it writes at a graceful stop. Counts
//! and the order of percentiles only: no assertion on how long anything took.

mod common;

use broker::metrics::{MetricsSummary, Summary, METRICS_FILE_NAME};
use common::*;

/// Percentiles never decrease, and each stage counted `count` requests.
fn assert_consistent(what: &str, summary: &Summary, count: u64) {
    assert_eq!(summary.count, count, "{what}: {summary:?}");
    assert!(
        summary.p50_ms <= summary.p99_ms
            && summary.p99_ms <= summary.p999_ms
            && summary.p999_ms <= summary.max_ms,
        "{what}: {summary:?}"
    );
}

#[test]
fn answered_produce_and_fetch_requests_are_counted_in_every_stage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let broker = BrokerProcess::start(&data_dir, "");
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "measured", 1, 1, false), 0);
    for i in 0..5u8 {
        assert_eq!(
            produce_values(&mut client, "measured", 0, &[&[i; 100]]),
            (0, i64::from(i))
        );
    }
    // acks=0 has no response: nothing to measure up to "response written".
    let batch = broker::wire::batch::build_batch(0, 1, &[b"silent"]);
    assert!(produce_records(&mut client, "measured", 0, batch, 0).is_none());
    assert_eq!(fetch_once(&mut client, "measured", 0, 0, 100).0, 0);
    assert_eq!(fetch_once(&mut client, "measured", 0, 3, 100).0, 0);
    drop(client);
    assert_eq!(broker.terminate(), Some(0));

    let path = data_dir.join(METRICS_FILE_NAME);
    let json = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let metrics: MetricsSummary =
        serde_json::from_slice(&json).expect("request-metrics.json parses");
    for (what, summary) in [
        ("produce local", &metrics.produce.local),
        ("produce remote", &metrics.produce.remote),
        ("produce send", &metrics.produce.send),
        ("produce total", &metrics.produce.total),
    ] {
        assert_consistent(what, summary, 5);
    }
    for (what, summary) in [
        ("fetch local", &metrics.fetch.local),
        ("fetch remote", &metrics.fetch.remote),
        ("fetch send", &metrics.fetch.send),
        ("fetch total", &metrics.fetch.total),
    ] {
        assert_consistent(what, summary, 2);
    }
    // A single node has no leader to fetch from.
    assert_eq!(metrics.replica_fetch_round_trip.count, 0);
    assert_eq!(metrics.replica_fetch_append.count, 0);
}
