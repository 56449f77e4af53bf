//! Produce validates records as Kafka's LogValidator does (issue 13): a batch whose records lie
//! about their count, framing, varints, lengths or codec, or do not decompress (within a bound),
//! gets INVALID_RECORD for its partition and nothing is stored; valid batches under every codec
//! are stored; clients cannot produce to `__consumer_offsets`, while commits still append to it.

mod alloc_meter;
mod codecs;
mod common;
mod group_support;

use std::io::Write;

use broker::wire::batch::{build_raw_batch, encode_records, put_varint};
use broker::wire::records;
use codecs::compressed_batch;
use common::*;

const INVALID_RECORD: i16 = 87;
const CORRUPT_MESSAGE: i16 = 2;
const INVALID_TOPIC_EXCEPTION: i16 = 17;

/// One record body (attributes .. headers) with the given key and value lengths written as-is.
fn record_with_lengths(offset_delta: i64, key_length: i64, value: &[u8]) -> Vec<u8> {
    let mut body = vec![0u8];
    put_varint(&mut body, 0);
    put_varint(&mut body, offset_delta);
    put_varint(&mut body, key_length);
    put_varint(&mut body, value.len() as i64);
    body.extend_from_slice(value);
    put_varint(&mut body, 0);
    let mut record = Vec::new();
    put_varint(&mut record, body.len() as i64);
    record.extend_from_slice(&body);
    record
}

/// The batches a hostile producer sent in issue 13, each with what it is.
fn invalid_batches() -> Vec<(&'static str, Vec<u8>)> {
    let one = encode_records(&[b"x"]);
    let mut cases = vec![
        (
            "lastOffsetDelta 3 with recordCount 1",
            build_raw_batch(0, 3, 1, &one),
        ),
        (
            "5 records declared, 1 present",
            build_raw_batch(0, 4, 5, &one),
        ),
        (
            "record count 2^31-1",
            build_raw_batch(0, i32::MAX - 1, i32::MAX, &one),
        ),
    ];
    let mut lying = one.clone();
    lying[0] += 4; // the length varint claims 2 bytes more than the record holds
    lying.extend_from_slice(&[0, 0]);
    cases.push((
        "record length longer than its fields",
        build_raw_batch(0, 0, 1, &lying),
    ));
    let mut short = record_with_lengths(0, -1, b"value");
    short[0] -= 2; // claims 1 byte fewer
    cases.push((
        "record length shorter than its fields",
        build_raw_batch(0, 0, 1, &short),
    ));
    // The length of a 1-record batch as a 6-byte varint (Kafka reads at most 5).
    let body = &one[1..];
    let mut overlong = vec![(body.len() as u8) << 1 | 0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
    overlong.extend_from_slice(body);
    cases.push(("overlong varint", build_raw_batch(0, 0, 1, &overlong)));
    cases.push((
        "negative key length -5",
        build_raw_batch(0, 0, 1, &record_with_lengths(0, -5, b"v")),
    ));
    cases.push((
        "offsetDelta 7 in a 1-record batch",
        build_raw_batch(0, 0, 1, &record_with_lengths(7, -1, b"v")),
    ));
    for codec in 5..=7 {
        cases.push(("compression codec 5-7", build_raw_batch(codec, 0, 1, &one)));
    }
    let random: Vec<u8> = (0..200u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for codec in 1..=4 {
        cases.push((
            "random bytes under a real codec",
            build_raw_batch(codec, 0, 1, &random),
        ));
    }
    cases
}

/// A gzip bomb: one record whose 256 MiB value is zeros, compressed to a few hundred KiB.
fn gzip_bomb() -> Vec<u8> {
    let value_bytes: usize = 256 << 20;
    let mut header = vec![0u8];
    put_varint(&mut header, 0);
    put_varint(&mut header, 0);
    put_varint(&mut header, -1);
    put_varint(&mut header, value_bytes as i64);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut length = Vec::new();
    put_varint(&mut length, (header.len() + value_bytes + 1) as i64);
    encoder.write_all(&length).expect("gzip");
    encoder.write_all(&header).expect("gzip");
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        encoder.write_all(&zeros).expect("gzip");
    }
    encoder.write_all(&[0]).expect("gzip"); // no headers
    build_raw_batch(1, 0, 1, &encoder.finish().expect("gzip"))
}

#[test]
fn invalid_records_are_refused_in_process_and_a_bomb_allocates_only_the_bound() {
    for (what, batch) in invalid_batches() {
        // Refused by the produce path's header checks (counts that disagree: a stored batch
        // the log cleaner rewrote may hold fewer records than its range, a produced one may
        // not) or by the record checks.
        let refused = broker::wire::batch::validate_produced_records(&batch, usize::MAX)
            .map_err(|e| e.to_string())
            .map(|spans| spans[0].header)
            .and_then(|header| {
                records::validate_batch_records(&batch, &header).map_err(|e| e.to_string())
            });
        assert!(refused.is_err(), "{what}: accepted");
    }
    for codec in 0..=4 {
        let batch = if codec == 0 {
            build_raw_batch(0, 1, 2, &encode_records(&[b"a", b"bb"]))
        } else {
            compressed_batch(codec, &[b"a", b"bb"])
        };
        let header = broker::wire::batch::validate_batch(&batch, usize::MAX).expect("header");
        assert_eq!(
            records::validate_batch_records(&batch, &header),
            Ok(()),
            "codec {codec}"
        );
    }
    let bomb = gzip_bomb();
    assert!(bomb.len() < 1 << 20, "the bomb is {} bytes", bomb.len());
    let header = broker::wire::batch::validate_batch(&bomb, usize::MAX).expect("header");
    let (refused, largest) =
        alloc_meter::measure(|| records::validate_batch_records(&bomb, &header));
    assert!(
        matches!(
            refused,
            Err(records::RecordError::DecompressedTooLarge { .. })
        ),
        "{refused:?}"
    );
    // Vec doubling may reach twice the bound, never the bomb's 256 MiB.
    assert!(
        largest <= 2 * broker::limits::DECOMPRESSED_BATCH_BYTES_MAX + 4096,
        "largest allocation {largest} bytes"
    );
}

#[test]
fn produce_answers_invalid_record_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), "");
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "validated", 1, 1, false), 0);
    for (what, batch) in invalid_batches() {
        assert_eq!(
            produce_records(&mut client, "validated", 0, batch, 1)
                .expect("answer")
                .0,
            INVALID_RECORD,
            "{what}"
        );
    }
    assert_eq!(
        produce_records(&mut client, "validated", 0, gzip_bomb(), 1)
            .expect("answer")
            .0,
        INVALID_RECORD,
        "256 MiB gzip bomb"
    );
    // A bad CRC stays CORRUPT_MESSAGE.
    let mut corrupt = compressed_batch(1, &[b"crc"]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    assert_eq!(
        produce_records(&mut client, "validated", 0, corrupt, 1)
            .expect("answer")
            .0,
        CORRUPT_MESSAGE
    );
    assert_eq!(
        list_offset(&mut client, "validated", 0, -1),
        (0, 0),
        "an invalid batch was stored"
    );
    // Valid batches under every codec are stored, at consecutive offsets.
    let mut next = 0;
    for codec in 1..=4 {
        let batch = compressed_batch(codec, &[b"one", b"two"]);
        assert_eq!(
            produce_records(&mut client, "validated", 0, batch, 1).expect("answer"),
            (0, next),
            "codec {codec}"
        );
        next += 2;
    }
    assert_eq!(list_offset(&mut client, "validated", 0, -1), (0, 8));
    assert!(broker
        .log_text()
        .contains("refused a produced batch: invalid records"));
}

#[test]
fn clients_cannot_produce_to_consumer_offsets_but_commits_still_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        "\"offsets.topic.num.partitions\" = 1\n",
    );
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "data", 1, 1, false), 0);
    // The coordinator creates __consumer_offsets; wait until it serves the group.
    let served = poll_until(100, std::time::Duration::from_millis(100), || {
        (group_support::find_coordinator(broker.address, "g").0 == 0).then_some(())
    });
    assert!(served.is_some(), "no coordinator for group g");
    let batch = broker::wire::batch::build_batch(0, 1, &[b"forged offset record"]);
    assert_eq!(
        produce_records(&mut client, "__consumer_offsets", 0, batch, 1)
            .expect("answer")
            .0,
        INVALID_TOPIC_EXCEPTION
    );
    let batch = broker::wire::batch::build_batch(0, 1, &[b"x"]);
    assert_eq!(
        produce_records(&mut client, "__transaction_state", 0, batch, 1)
            .expect("answer")
            .0,
        INVALID_TOPIC_EXCEPTION
    );
    assert_eq!(
        list_offset(&mut client, "__consumer_offsets", 0, -1),
        (0, 0)
    );
    // The coordinator's own append still works (COORDINATOR_LOAD_IN_PROGRESS, 14, while the new
    // offsets partition loads: retried).
    let committed =
        poll_until(
            100,
            std::time::Duration::from_millis(100),
            || match group_support::simple_commit(broker.address, "g", "data", 0, 42) {
                14 => None,
                code => Some(code),
            },
        );
    assert_eq!(committed, Some(0));
    assert_eq!(
        group_support::offset_fetch(broker.address, "g", "data", &[0]).map(|o| o[&0]),
        Ok(42)
    );
    assert_eq!(
        list_offset(&mut client, "__consumer_offsets", 0, -1),
        (0, 1)
    );
}
