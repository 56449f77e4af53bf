//! `kaos-broker dump` on a stopped node's data dir: every record as a JSON line with its message
//! id, leader epoch and CRC verdict, a summary line per partition; strictly read-only; a corrupt
//! batch is reported `crc_ok: false`, a torn tail stops the partition with a clear message, and
//! garbage never makes it panic.

mod cluster;
mod common;

use cluster::*;
use common::*;

#[test]
fn dump_reports_records_corruption_and_a_torn_tail_without_touching_the_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let broker = BrokerProcess::start(&data_dir, "");
    let mut client = RawClient::connect(broker.address);
    assert_eq!(common::create_topic(&mut client, "d", 1, 1, false), 0);
    for id in 0..10u64 {
        assert_eq!(
            produce_id(broker.address, "d", 0, id, 1, 10_000),
            (0, id as i64)
        );
    }
    let clean = dump(&data_dir);
    let key = ("d".to_string(), 0);
    assert_eq!(clean.records[&key].len(), 10);
    for (offset, (epoch, id, crc_ok)) in &clean.records[&key] {
        assert_eq!((*epoch, *id, *crc_ok), (0, Some(*offset as u64), true));
    }
    assert_eq!(clean.summaries[&key]["log_end_offset"], 10);
    assert_eq!(clean.summaries[&key]["log_start_offset"], 0);
    broker.kill();

    // Flip a byte inside batch 3 (covered by its CRC) and tear the last batch.
    let segment = segment_files(&data_dir.join("d-0")).remove(0);
    let positions = batch_positions(&segment);
    let mut bytes = std::fs::read(&segment).expect("read");
    let (at, size) = positions[3];
    bytes[at + size - 3] ^= 0x5a;
    let (last_at, _) = positions[9];
    bytes.truncate(last_at + 20);
    std::fs::write(&segment, &bytes).expect("write");
    let before: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(data_dir.join("d-0"))
        .expect("dir")
        .map(|e| {
            let path = e.expect("entry").path();
            let data = std::fs::read(&path).expect("read");
            (path, data)
        })
        .collect();
    let broken = dump(&data_dir);
    let records = &broken.records[&key];
    assert_eq!(
        records.len(),
        9,
        "the torn batch is not reported as records"
    );
    assert!(!records[&3].2, "offset 3 fails its CRC");
    assert!(records.iter().filter(|(o, _)| **o != 3).all(|(_, r)| r.2));
    assert_eq!(broken.summaries[&key]["log_end_offset"], 9);
    assert!(broken.stderr.contains("CRC mismatch"), "{}", broken.stderr);
    assert!(broken.stderr.contains("torn tail"), "{}", broken.stderr);
    for (path, data) in before {
        assert_eq!(
            std::fs::read(&path).expect("read"),
            data,
            "{} unchanged",
            path.display()
        );
    }

    // Garbage: no panic, a message.
    std::fs::write(&segment, b"this is not a record batch").expect("write");
    let garbage = dump(&data_dir);
    assert!(!garbage.records.contains_key(&key));
    assert_eq!(garbage.summaries[&key]["log_end_offset"], 0);
    assert!(!garbage.stderr.is_empty());
}
