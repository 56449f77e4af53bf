//! The records inside a v2 batch whose header and CRC are already valid: what Kafka's
//! `LogValidator` and `DefaultRecord.readFrom` check before a produced batch is appended.
//!
//! ```text
//! record: length varint | attributes i8 | timestampDelta varlong | offsetDelta varint |
//!         keyLength varint | key | valueLength varint | value | headerCount varint | headers
//! header: keyLength varint | key | valueLength varint | value
//! ```
//! Checked: the compression codec exists (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd); compressed
//! records decompress within [`limits::DECOMPRESSED_BATCH_BYTES_MAX`]; exactly `recordCount`
//! records fill the records section; each record's fields fill exactly its length; varints are at
//! most 5 bytes (varlongs 10), as Kafka's `ByteUtils` reads them; lengths are -1 (null) or ≥ 0
//! (header keys ≥ 0); the i-th record has offsetDelta i, so offsets stay inside the batch.
//! An uncompressed batch is one pass over its bytes, with no allocation.

use std::io::Read;

use crate::limits;
use crate::wire::batch::{BatchHeader, BATCH_HEADER_BYTES};

/// The codec bits of a batch's `attributes`.
const COMPRESSION_MASK: i16 = 0x07;

/// Why the records of a batch are invalid (Kafka: `InvalidRecordException`, INVALID_RECORD).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("unknown compression codec {codec} (0-4 exist)")]
    UnknownCodec { codec: i16 },
    #[error("{codec} records do not decompress: {message}")]
    Decompress {
        codec: &'static str,
        message: String,
    },
    #[error("{codec} records decompress to more than {max_bytes} bytes")]
    DecompressedTooLarge {
        codec: &'static str,
        max_bytes: usize,
    },
    #[error("batch declares {declared} records but holds {found}")]
    CountMismatch { declared: i32, found: i64 },
    #[error("{extra_bytes} bytes follow the batch's {declared} records")]
    TrailingBytes { declared: i32, extra_bytes: usize },
    #[error("record {index}: {problem}")]
    Record { index: i64, problem: &'static str },
    #[error("record {index}: offsetDelta {offset_delta} is not {index}")]
    OffsetDelta { index: i64, offset_delta: i32 },
    /// Kafka's `LogValidator`: "Compacted topic cannot accept message without key"; every
    /// such record of the batch, by its index in the batch (the Produce response's
    /// `record_errors`, KIP-467).
    #[error("records {indexes:?}: a compacted topic cannot accept a record without a key")]
    NullKey { indexes: Vec<i32> },
}

/// The codec name of `attributes`, or the error for a codec that does not exist.
pub fn codec_name(attributes: i16) -> Result<&'static str, RecordError> {
    match attributes & COMPRESSION_MASK {
        0 => Ok("none"),
        1 => Ok("gzip"),
        2 => Ok("snappy"),
        3 => Ok("lz4"),
        4 => Ok("zstd"),
        codec => Err(RecordError::UnknownCodec { codec }),
    }
}

/// Validates the records of `batch` (one whole batch whose `header` was parsed and CRC checked).
pub fn validate_batch_records(batch: &[u8], header: &BatchHeader) -> Result<(), RecordError> {
    validate_batch_records_for(batch, header, false)
}

/// [`validate_batch_records`] for a topic that may be compacted: with `keys_required` a record
/// with a null key is refused ([`RecordError::NullKey`]), as Kafka refuses it on a compacted topic
/// (the check rides on the same pass over the records).
pub fn validate_batch_records_for(
    batch: &[u8],
    header: &BatchHeader,
    keys_required: bool,
) -> Result<(), RecordError> {
    let codec = codec_name(header.attributes)?;
    let section = &batch[BATCH_HEADER_BYTES.min(batch.len())..header.total_bytes.min(batch.len())];
    if codec == "none" {
        return check_record_section(section, header.record_count, keys_required);
    }
    let records = decompress(codec, section, limits::DECOMPRESSED_BATCH_BYTES_MAX)?;
    check_record_section(&records, header.record_count, keys_required)
}

/// One record of an uncompressed records section, as the log cleaner reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The whole record, its length varint included (copied as is when the record is kept).
    pub bytes: &'a [u8],
    pub offset_delta: i32,
    /// `None`: a null key.
    pub key: Option<&'a [u8]>,
    /// A null value: a tombstone.
    pub value_is_null: bool,
}

/// The records of a batch's records section, uncompressed (`section` is already decompressed),
/// each with its key and whether its value is null.
pub fn records_of(section: &[u8], count: i32) -> Result<Vec<RecordView<'_>>, RecordError> {
    let mut cursor = Cursor {
        bytes: section,
        at: 0,
    };
    let mut records = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(section.len()));
    for index in 0..i64::from(count) {
        let problem = |problem| RecordError::Record { index, problem };
        let start = cursor.at;
        let length = usize::try_from(cursor.varint().map_err(problem)?)
            .map_err(|_| problem("negative record length"))?;
        let Some(body) = section.get(cursor.at..cursor.at + length) else {
            return Err(problem("record length runs past the batch"));
        };
        cursor.at += length;
        let mut fields = Cursor { bytes: body, at: 1 };
        fields.varlong().map_err(problem)?; // timestampDelta
        let offset_delta = fields.varint().map_err(problem)?;
        let key = match fields.varint().map_err(problem)? {
            -1 => None,
            n => {
                let n = usize::try_from(n).map_err(|_| problem("negative key length"))?;
                let key = body
                    .get(fields.at..fields.at + n)
                    .ok_or_else(|| problem("a length runs past the record"))?;
                fields.at += n;
                Some(key)
            }
        };
        let value_is_null = fields.varint().map_err(problem)? == -1;
        records.push(RecordView {
            bytes: &section[start..cursor.at],
            offset_delta,
            key,
            value_is_null,
        });
    }
    Ok(records)
}

/// Decompresses a records section with `codec`, refusing output beyond `max_bytes` without
/// producing more than `max_bytes + 1` bytes of it.
pub fn decompress(
    codec: &'static str,
    section: &[u8],
    max_bytes: usize,
) -> Result<Vec<u8>, RecordError> {
    let failed = |e: std::io::Error| RecordError::Decompress {
        codec,
        message: e.to_string(),
    };
    let reader: Box<dyn Read + '_> = match codec {
        "gzip" => Box::new(flate2::read::MultiGzDecoder::new(section)),
        "snappy" => return snappy_decompress(section, max_bytes),
        "lz4" => Box::new(lz4::Decoder::new(section).map_err(failed)?),
        "zstd" => Box::new(zstd::stream::read::Decoder::with_buffer(section).map_err(failed)?),
        _ => return Err(RecordError::UnknownCodec { codec: -1 }),
    };
    let mut out = Vec::new();
    reader
        .take(max_bytes as u64 + 1)
        .read_to_end(&mut out)
        .map_err(failed)?;
    if out.len() > max_bytes {
        return Err(RecordError::DecompressedTooLarge { codec, max_bytes });
    }
    Ok(out)
}

/// snappy-java's stream header (Kafka's snappy framing); without it the section is raw snappy,
/// as snappy-java's `SnappyInputStream` falls back to.
const SNAPPY_JAVA_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const SNAPPY_JAVA_HEADER_BYTES: usize = 16;

fn snappy_decompress(section: &[u8], max_bytes: usize) -> Result<Vec<u8>, RecordError> {
    let mut out = Vec::new();
    let block = |compressed: &[u8], out: &mut Vec<u8>| -> Result<(), RecordError> {
        let failed = |message: String| RecordError::Decompress {
            codec: "snappy",
            message,
        };
        let length = snap::raw::decompress_len(compressed).map_err(|e| failed(e.to_string()))?;
        if out.len() + length > max_bytes {
            return Err(RecordError::DecompressedTooLarge {
                codec: "snappy",
                max_bytes,
            });
        }
        let start = out.len();
        out.resize(start + length, 0);
        snap::raw::Decoder::new()
            .decompress(compressed, &mut out[start..])
            .map_err(|e| failed(e.to_string()))?;
        Ok(())
    };
    if !section.starts_with(SNAPPY_JAVA_MAGIC) {
        block(section, &mut out)?;
        return Ok(out);
    }
    let mut rest = section.get(SNAPPY_JAVA_HEADER_BYTES..).unwrap_or_default();
    while !rest.is_empty() {
        let Some((length, tail)) = rest.split_first_chunk::<4>() else {
            return Err(RecordError::Decompress {
                codec: "snappy",
                message: format!("{} bytes left for a 4-byte block length", rest.len()),
            });
        };
        let length = u32::from_be_bytes(*length) as usize;
        let Some(compressed) = tail.get(..length) else {
            return Err(RecordError::Decompress {
                codec: "snappy",
                message: format!("block of {length} bytes with {} left", tail.len()),
            });
        };
        block(compressed, &mut out)?;
        rest = &tail[length..];
    }
    Ok(out)
}

/// A cursor over record bytes that reads Kafka's varints.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    /// An unsigned LEB128 of at most `max_bytes` bytes (5 for a varint, 10 for a varlong).
    fn unsigned(&mut self, max_bytes: usize) -> Result<u64, &'static str> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let Some(&byte) = self.bytes.get(self.at) else {
                return Err("a varint runs past the end");
            };
            self.at += 1;
            value |= u64::from(byte & 0x7f).wrapping_shl(7 * i as u32);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a varint is longer than Kafka allows")
    }

    /// A zigzag varint (i32), overflowing bits dropped as Kafka's `ByteUtils.readVarint` does.
    fn varint(&mut self) -> Result<i32, &'static str> {
        let raw = self.unsigned(5)? as u32;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    fn varlong(&mut self) -> Result<i64, &'static str> {
        let raw = self.unsigned(10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// Skips a length-prefixed field: -1 (null, if `nullable`) or that many bytes.
    fn skip_field(&mut self, nullable: bool, what: &'static str) -> Result<(), &'static str> {
        match self.varint()? {
            -1 if nullable => Ok(()),
            length if length < 0 => Err(what),
            length if length as usize > self.left() => Err("a length runs past the record"),
            length => {
                self.at += length as usize;
                Ok(())
            }
        }
    }
}

/// The key of the first record of an uncompressed records section (a control batch's), or
/// `None` when it is null or the record is cut short.
pub fn first_record_key(section: &[u8]) -> Option<&[u8]> {
    let mut cursor = Cursor {
        bytes: section,
        at: 0,
    };
    let length = usize::try_from(cursor.varint().ok()?).ok()?;
    let body = section.get(cursor.at..cursor.at + length)?;
    let mut cursor = Cursor { bytes: body, at: 1 };
    cursor.varlong().ok()?; // timestampDelta
    cursor.varint().ok()?; // offsetDelta
    let key_length = usize::try_from(cursor.varint().ok()?).ok()?;
    body.get(cursor.at..cursor.at + key_length)
}

/// Checks one record body (after its length varint): every field present, nothing left over.
/// Returns its offsetDelta and whether its key is null.
fn validate_record_body(body: &[u8]) -> Result<(i32, bool), &'static str> {
    let mut cursor = Cursor { bytes: body, at: 0 };
    if body.is_empty() {
        return Err("empty record");
    }
    cursor.at = 1; // attributes: unused in v2
    cursor.varlong()?; // timestampDelta
    let offset_delta = cursor.varint()?;
    let key_at = cursor.at;
    cursor.skip_field(true, "negative key length other than -1")?;
    let key_is_null = Cursor {
        bytes: body,
        at: key_at,
    }
    .varint()
        == Ok(-1);
    cursor.skip_field(true, "negative value length other than -1")?;
    let headers = cursor.varint()?;
    if headers < 0 {
        return Err("negative header count");
    }
    if headers as usize > cursor.left() {
        return Err("header count larger than the record");
    }
    for _ in 0..headers {
        cursor.skip_field(false, "negative header key length")?;
        cursor.skip_field(true, "negative header value length other than -1")?;
    }
    if cursor.left() != 0 {
        return Err("fields end before the record length");
    }
    Ok((offset_delta, key_is_null))
}

/// Byte offset of a batch's firstTimestamp (after base offset 8, length 4, leader epoch 4, magic
/// 1, CRC 4, attributes 2 and last offset delta 4).
const FIRST_TIMESTAMP_AT: usize = 27;
/// The timestampType bit of a batch's attributes: LogAppendTime.
const LOG_APPEND_TIME: i16 = 0x08;

/// The first record of `batch` (one whole stored batch, `header` parsed from it) whose timestamp
/// is at least `timestamp_ms`, as (offset delta, timestamp): what Kafka's ListOffsets by time
/// answers (the record, not its batch). With LogAppendTime every record has the batch's max
/// timestamp.
pub fn first_record_at_or_after(
    batch: &[u8],
    header: &BatchHeader,
    timestamp_ms: i64,
) -> Result<Option<(i32, i64)>, RecordError> {
    if header.attributes & LOG_APPEND_TIME != 0 {
        return Ok((header.max_timestamp >= timestamp_ms).then_some((0, header.max_timestamp)));
    }
    let first_timestamp = batch
        .get(FIRST_TIMESTAMP_AT..FIRST_TIMESTAMP_AT + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(i64::from_be_bytes)
        .ok_or(RecordError::Record {
            index: 0,
            problem: "the batch is shorter than its header",
        })?;
    let codec = codec_name(header.attributes)?;
    let section = &batch[BATCH_HEADER_BYTES.min(batch.len())..header.total_bytes.min(batch.len())];
    let decompressed;
    let records = if codec == "none" {
        section
    } else {
        decompressed = decompress(codec, section, limits::DECOMPRESSED_BATCH_BYTES_MAX)?;
        &decompressed[..]
    };
    let mut cursor = Cursor {
        bytes: records,
        at: 0,
    };
    for index in 0..i64::from(header.record_count) {
        let problem = |problem| RecordError::Record { index, problem };
        let length = usize::try_from(cursor.varint().map_err(problem)?)
            .map_err(|_| problem("negative record length"))?;
        let Some(body) = records.get(cursor.at..cursor.at + length) else {
            return Err(problem("record length runs past the batch"));
        };
        cursor.at += length;
        let mut fields = Cursor { bytes: body, at: 1 }; // after the attributes
        let timestamp_delta = fields.varlong().map_err(problem)?;
        let offset_delta = fields.varint().map_err(problem)?;
        let timestamp = first_timestamp.saturating_add(timestamp_delta);
        if timestamp >= timestamp_ms {
            return Ok(Some((offset_delta, timestamp)));
        }
    }
    Ok(None)
}

/// Checks that `section` holds exactly `declared` well-framed records with offsetDeltas 0, 1, ….
pub fn validate_record_section(section: &[u8], declared: i32) -> Result<(), RecordError> {
    check_record_section(section, declared, false)
}

/// [`validate_record_section`], refusing a null key when `keys_required`.
fn check_record_section(
    section: &[u8],
    declared: i32,
    keys_required: bool,
) -> Result<(), RecordError> {
    let mut cursor = Cursor {
        bytes: section,
        at: 0,
    };
    let mut index: i64 = 0;
    let mut null_keys: Vec<i32> = Vec::new();
    while index < i64::from(declared) {
        if cursor.left() == 0 {
            return Err(RecordError::CountMismatch {
                declared,
                found: index,
            });
        }
        let problem = |problem| RecordError::Record { index, problem };
        let length = cursor.varint().map_err(problem)?;
        if length < 0 {
            return Err(problem("negative record length"));
        }
        let Some(body) = section.get(cursor.at..cursor.at + length as usize) else {
            return Err(problem("record length runs past the batch"));
        };
        cursor.at += length as usize;
        let (offset_delta, key_is_null) = validate_record_body(body).map_err(problem)?;
        if keys_required && key_is_null && null_keys.len() < limits::RECORD_ERRORS_MAX {
            null_keys.push(i32::try_from(index).unwrap_or(i32::MAX));
        }
        if i64::from(offset_delta) != index {
            return Err(RecordError::OffsetDelta {
                index,
                offset_delta,
            });
        }
        index += 1;
    }
    if cursor.left() != 0 {
        return Err(RecordError::TrailingBytes {
            declared,
            extra_bytes: cursor.left(),
        });
    }
    if !null_keys.is_empty() {
        return Err(RecordError::NullKey { indexes: null_keys });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::batch::{
        build_raw_batch, encode_records, keyed_records_section, put_varint, validate_batch,
    };

    fn check(batch: &[u8]) -> Result<(), RecordError> {
        let header = validate_batch(batch, usize::MAX).expect("valid header");
        validate_batch_records(batch, &header)
    }

    #[test]
    fn the_first_record_at_or_after_a_timestamp_is_found_inside_its_batch() {
        let mut section = Vec::new();
        for (delta, value) in [(0i64, b"a"), (5, b"b"), (9, b"c")] {
            let mut body = vec![0u8];
            put_varint(&mut body, delta);
            put_varint(&mut body, section_count(&section));
            put_varint(&mut body, -1);
            put_varint(&mut body, 1);
            body.extend_from_slice(value);
            put_varint(&mut body, 0);
            put_varint(&mut section, body.len() as i64);
            section.extend_from_slice(&body);
        }
        let mut batch = build_raw_batch(0, 2, 3, &section);
        batch[27..35].copy_from_slice(&1_000i64.to_be_bytes());
        batch[35..43].copy_from_slice(&1_009i64.to_be_bytes());
        crate::wire::batch::seal(&mut batch);
        let header = validate_batch(&batch, usize::MAX).expect("valid header");
        assert_eq!(check(&batch), Ok(()));
        let find = |t| first_record_at_or_after(&batch, &header, t).expect("readable");
        assert_eq!(find(0), Some((0, 1_000)));
        assert_eq!(find(1_001), Some((1, 1_005)));
        assert_eq!(find(1_005), Some((1, 1_005)));
        assert_eq!(find(1_009), Some((2, 1_009)));
        assert_eq!(find(1_010), None);
    }

    /// How many records `section` (built by the test above) holds so far.
    fn section_count(section: &[u8]) -> i64 {
        let mut cursor = Cursor {
            bytes: section,
            at: 0,
        };
        let mut count = 0;
        while cursor.left() > 0 {
            let length = cursor.varint().expect("length") as usize;
            cursor.at += length;
            count += 1;
        }
        count
    }

    #[test]
    fn a_compacted_topic_refuses_a_null_key_and_the_cleaner_reads_keys_and_tombstones() {
        let section = keyed_records_section(&[
            (Some(&b"k"[..]), Some(&b"v"[..])),
            (Some(b"k"), None),
            (None, Some(b"v")),
        ]);
        let batch = build_raw_batch(0, 2, 3, &section);
        let header = validate_batch(&batch, usize::MAX).expect("valid header");
        assert_eq!(validate_batch_records_for(&batch, &header, false), Ok(()));
        assert_eq!(
            validate_batch_records_for(&batch, &header, true),
            Err(RecordError::NullKey { indexes: vec![2] })
        );
        let records = records_of(&section, 3).expect("records");
        let seen: Vec<(i32, Option<&[u8]>, bool)> = records
            .iter()
            .map(|r| (r.offset_delta, r.key, r.value_is_null))
            .collect();
        assert_eq!(
            seen,
            vec![
                (0, Some(&b"k"[..]), false),
                (1, Some(&b"k"[..]), true),
                (2, None, false)
            ]
        );
        assert_eq!(
            records.iter().map(|r| r.bytes.len()).sum::<usize>(),
            section.len()
        );
        // Kept records copied into a batch of the same offset range: valid as stored, not as
        // produced (fewer records than offsets).
        let kept = crate::wire::batch::with_records(&batch, records[1].bytes, 1);
        let stored = validate_batch(&kept, usize::MAX).expect("a valid stored batch");
        assert_eq!(
            (
                stored.base_offset,
                stored.last_offset_delta,
                stored.record_count
            ),
            (0, 2, 1)
        );
        assert!(crate::wire::batch::validate_produced_records(&kept, usize::MAX).is_err());
        assert!(crate::wire::batch::validate_produced_records(&batch, usize::MAX).is_ok());
    }

    #[test]
    fn exact_records_pass_and_counts_must_match() {
        let section = encode_records(&[b"a", b"bb", b""]);
        assert_eq!(check(&build_raw_batch(0, 2, 3, &section)), Ok(()));
        assert_eq!(
            check(&build_raw_batch(0, 3, 4, &section)),
            Err(RecordError::CountMismatch {
                declared: 4,
                found: 3
            })
        );
        assert_eq!(
            check(&build_raw_batch(0, 1, 2, &section)),
            Err(RecordError::TrailingBytes {
                declared: 2,
                extra_bytes: section.len() - encode_records(&[b"a", b"bb"]).len()
            })
        );
    }

    #[test]
    fn varints_are_at_most_five_bytes_and_lengths_at_least_minus_one() {
        let mut cursor = Cursor {
            bytes: &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
            at: 0,
        };
        assert!(cursor.varint().is_err());
        let mut cursor = Cursor {
            bytes: &[0xfe, 0xff, 0xff, 0xff, 0x0f],
            at: 0,
        };
        assert_eq!(cursor.varint(), Ok(i32::MAX));
        for key_length in [-2i64, -5, i64::from(i32::MIN)] {
            let mut body = vec![0u8, 0, 0];
            put_varint(&mut body, key_length);
            put_varint(&mut body, 0);
            put_varint(&mut body, 0);
            assert!(
                validate_record_body(&body).is_err(),
                "key length {key_length}"
            );
        }
    }

    #[test]
    fn unknown_codecs_and_undecodable_payloads_are_refused() {
        let section = encode_records(&[b"x"]);
        for codec in 5..=7 {
            assert_eq!(
                check(&build_raw_batch(codec, 0, 1, &section)),
                Err(RecordError::UnknownCodec { codec })
            );
        }
        for codec in 1..=4 {
            assert!(
                check(&build_raw_batch(codec, 0, 1, b"not compressed at all")).is_err(),
                "codec {codec}"
            );
        }
    }

    #[test]
    fn snappy_raw_and_framed_decompress_within_the_bound() {
        let data = encode_records(&[b"snappy"]);
        let raw = snap::raw::Encoder::new()
            .compress_vec(&data)
            .expect("compress");
        assert_eq!(snappy_decompress(&raw, 1024), Ok(data.clone()));
        let mut framed = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
        framed.extend_from_slice(&(raw.len() as u32).to_be_bytes());
        framed.extend_from_slice(&raw);
        assert_eq!(snappy_decompress(&framed, 1024), Ok(data.clone()));
        assert!(matches!(
            snappy_decompress(&framed, data.len() - 1),
            Err(RecordError::DecompressedTooLarge { .. })
        ));
        framed.truncate(framed.len() - 1);
        assert!(snappy_decompress(&framed, 1024).is_err());
    }
}
