//! Run-time invariants with a real process: a broker whose own log breaks an invariant stops with
//! the invariant's exit code and a message naming it, rather than serving a wrong offset.

mod common;

use std::time::Duration;

use common::*;

/// A broker's exit code when an invariant fails (`broker::invariant::INVARIANT_EXIT_CODE`).
const INVARIANT_EXIT_CODE: i32 = broker::invariant::INVARIANT_EXIT_CODE;

#[test]
fn a_log_whose_offsets_go_back_stops_the_broker_with_the_invariant_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    // Small segments: the batch to corrupt lies in a rolled segment, which a clean restart does
    // not scan (only the active segment's tail is checked).
    let config = "\"segment.bytes\" = 1024\n\"index.interval.bytes\" = 256\n";
    let broker = BrokerProcess::start(&data_dir, config);
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "inv", 1, 1, false), 0);
    let value = [b'v'; 100];
    for i in 0..40 {
        assert_eq!(
            produce_values(&mut client, "inv", 0, &[&value]),
            (0, i),
            "produce {i}"
        );
    }
    drop(client);
    assert_eq!(broker.terminate(), Some(0), "clean shutdown");

    // The base offset is outside the CRC: rewrite the third batch's so that it repeats the second's.
    let partition_dir = data_dir.join("inv-0");
    let segments = segment_files(&partition_dir);
    assert!(segments.len() >= 3, "{segments:?}");
    let first = &segments[0];
    let batches = batch_positions(first);
    assert!(batches.len() >= 4, "{batches:?}");
    let mut data = std::fs::read(first).expect("read segment");
    let (position, _) = batches[2];
    data[position..position + 8].copy_from_slice(&1i64.to_be_bytes());
    std::fs::write(first, &data).expect("write segment");

    let mut broker = BrokerProcess::start(&data_dir, config);
    let mut client = RawClient::connect(broker.address);
    // A consumer reading from the start: the read plan walks the corrupt segment's headers.
    send_fetch(&mut client, "inv", 0, 0, 0);
    let status = broker
        .wait_for_exit(Duration::from_secs(30))
        .expect("the broker stops on the broken invariant");
    let log = broker.log_text();
    assert_eq!(
        status.code(),
        Some(INVARIANT_EXIT_CODE),
        "{status}; log:\n{log}"
    );
    let message = log
        .lines()
        .find(|l| l.starts_with("kaos-broker fatal: invariant offsets_increasing violated"))
        .unwrap_or_else(|| panic!("no invariant message in the log:\n{log}"));
    assert!(
        message.contains("expected_base_offset=2 base_offset=1")
            && message.contains("00000000000000000000.log"),
        "{message}"
    );
    assert!(
        client.read_frame().is_none(),
        "no fetch answered from the broken log"
    );
}
