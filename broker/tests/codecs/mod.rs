//! Kafka's four record codecs, for building compressed batches in tests.
#![allow(dead_code)]

use std::io::Write;

use broker::wire::batch::{build_raw_batch, encode_records};

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Kafka's snappy framing (snappy-java's stream format): header, then length-prefixed blocks.
pub fn snappy(bytes: &[u8]) -> Vec<u8> {
    let mut out = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    for block in bytes.chunks(32 * 1024) {
        let compressed = snap::raw::Encoder::new()
            .compress_vec(block)
            .expect("snappy");
        out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
        out.extend_from_slice(&compressed);
    }
    out
}

pub fn lz4(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = lz4::EncoderBuilder::new().build(Vec::new()).expect("lz4");
    encoder.write_all(bytes).expect("lz4");
    let (out, result) = encoder.finish();
    result.expect("lz4");
    out
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).expect("zstd")
}

/// A batch of `values` compressed with `codec` (1-4).
pub fn compressed_batch(codec: i16, values: &[&[u8]]) -> Vec<u8> {
    let count = values.len() as i32;
    build_raw_batch(
        codec,
        count - 1,
        count,
        &compress(codec, &encode_records(values)),
    )
}

/// `section` compressed with `codec` (1 gzip, 2 snappy, 3 lz4, 4 zstd; anything else: as is).
pub fn compress(codec: i16, section: &[u8]) -> Vec<u8> {
    match codec {
        1 => gzip(section),
        2 => snappy(section),
        3 => lz4(section),
        4 => zstd(section),
        _ => section.to_vec(),
    }
}
