//! Record batch v2 header: parse, validate (length, magic, CRC32C) and patch, without decoding records.
//!
//! ```text
//! baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 | crc u32 |
//! attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64 |
//! producerId i64 | producerEpoch i16 | baseSequence i32 | recordCount i32 | records...
//! ```
//! `batchLength` counts the bytes after itself; the CRC covers `attributes` to the end, so the broker
//! may rewrite `baseOffset` and `partitionLeaderEpoch` without touching the CRC.

/// Bytes of `baseOffset` + `batchLength`, which `batchLength` does not count.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// Bytes of the whole v2 batch header, up to and including `recordCount`.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes of the prefix the broker rewrites: `baseOffset`, `batchLength`, `partitionLeaderEpoch`.
pub const PATCHED_PREFIX_BYTES: usize = 16;

const BATCH_LENGTH_AT: usize = 8;
const PARTITION_LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORD_COUNT_AT: usize = 57;

/// `attributes` bit of a batch written inside a transaction.
pub const ATTRIBUTE_TRANSACTIONAL: i16 = 0x10;
/// `attributes` bit of a control batch (transaction markers).
pub const ATTRIBUTE_CONTROL: i16 = 0x20;
/// `producerId` of a batch written without idempotence.
pub const NO_PRODUCER_ID: i64 = -1;

/// Why a batch is not a valid v2 record batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("{available} bytes is too short for a batch header")]
    TooShort { available: usize },
    #[error("batch length field {batch_length} is invalid")]
    BadLength { batch_length: i32 },
    #[error("batch of {total_bytes} bytes is larger than the {max_bytes} allowed")]
    TooLarge {
        total_bytes: usize,
        max_bytes: usize,
    },
    #[error("batch claims {total_bytes} bytes but only {available} are present")]
    Truncated {
        total_bytes: usize,
        available: usize,
    },
    #[error("magic {magic} is not 2")]
    BadMagic { magic: i8 },
    #[error("CRC32C mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("lastOffsetDelta {last_offset_delta} with recordCount {record_count} is inconsistent")]
    BadCount {
        last_offset_delta: i32,
        record_count: i32,
    },
}

/// The fields of a batch header that the broker uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Whole batch size including the 12 bytes of log overhead.
    pub total_bytes: usize,
    pub partition_leader_epoch: i32,
    pub last_offset_delta: i32,
    pub max_timestamp: i64,
    pub record_count: i32,
    pub attributes: i16,
    /// [`NO_PRODUCER_ID`] unless the producer is idempotent.
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl BatchHeader {
    /// Offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Offset after the batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// The offset after this batch if it were placed at `base_offset`.
    pub fn next_offset_from(&self, base_offset: i64) -> i64 {
        base_offset
            .saturating_add(i64::from(self.last_offset_delta))
            .saturating_add(1)
    }

    /// Whether an idempotent (or transactional) producer wrote this batch.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// Sequence of the last record: `baseSequence + lastOffsetDelta`, wrapping past `i32::MAX`
    /// to 0 as Kafka's `DefaultRecordBatch.incrementSequence` does.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTRIBUTE_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTRIBUTE_CONTROL != 0
    }
}

/// `sequence + increment` with Kafka's wrap-around from `i32::MAX` to 0.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

fn i64_at(bytes: &[u8], at: usize) -> i64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    i64::from_be_bytes(raw)
}

fn i32_at(bytes: &[u8], at: usize) -> i32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&bytes[at..at + 4]);
    i32::from_be_bytes(raw)
}

/// Reads the first 12 bytes: `(baseOffset, total batch bytes)`. Checks only that the length is plausible.
pub fn parse_overhead(bytes: &[u8], max_bytes: usize) -> Result<(i64, usize), BatchError> {
    if bytes.len() < LOG_OVERHEAD_BYTES {
        return Err(BatchError::TooShort {
            available: bytes.len(),
        });
    }
    let batch_length = i32_at(bytes, BATCH_LENGTH_AT);
    if batch_length < (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32 {
        return Err(BatchError::BadLength { batch_length });
    }
    let total_bytes = LOG_OVERHEAD_BYTES + batch_length as usize;
    if total_bytes > max_bytes {
        return Err(BatchError::TooLarge {
            total_bytes,
            max_bytes,
        });
    }
    Ok((i64_at(bytes, 0), total_bytes))
}

/// Parses the header fields needed to find offsets (first [`crate::limits::SCAN_HEADER_BYTES`] bytes):
/// base offset, total size and last offset delta. No magic or CRC check.
pub fn parse_scan_header(bytes: &[u8], max_bytes: usize) -> Result<(i64, usize, i32), BatchError> {
    let (base_offset, total_bytes) = parse_overhead(bytes, max_bytes)?;
    if bytes.len() < LAST_OFFSET_DELTA_AT + 4 {
        return Err(BatchError::TooShort {
            available: bytes.len(),
        });
    }
    let last_offset_delta = i32_at(bytes, LAST_OFFSET_DELTA_AT);
    if last_offset_delta < 0 {
        return Err(BatchError::BadCount {
            last_offset_delta,
            record_count: -1,
        });
    }
    Ok((base_offset, total_bytes, last_offset_delta))
}

/// Parses and checks the header of the batch at the start of `bytes`, without the CRC.
pub fn parse_header(bytes: &[u8], max_bytes: usize) -> Result<BatchHeader, BatchError> {
    let (base_offset, total_bytes) = parse_overhead(bytes, max_bytes)?;
    if bytes.len() < BATCH_HEADER_BYTES {
        return Err(BatchError::TooShort {
            available: bytes.len(),
        });
    }
    let magic = bytes[MAGIC_AT] as i8;
    if magic != 2 {
        return Err(BatchError::BadMagic { magic });
    }
    let last_offset_delta = i32_at(bytes, LAST_OFFSET_DELTA_AT);
    let record_count = i32_at(bytes, RECORD_COUNT_AT);
    // A stored batch may hold fewer records than its offset range (the log cleaner removed
    // some, keeping base offset and last offset delta) or none; a produced one holds exactly
    // its range ([`validate_produced_records`]).
    if last_offset_delta < 0
        || record_count < 0
        || i64::from(record_count) > i64::from(last_offset_delta) + 1
    {
        return Err(BatchError::BadCount {
            last_offset_delta,
            record_count,
        });
    }
    Ok(BatchHeader {
        base_offset,
        total_bytes,
        partition_leader_epoch: i32_at(bytes, PARTITION_LEADER_EPOCH_AT),
        last_offset_delta,
        max_timestamp: i64_at(bytes, MAX_TIMESTAMP_AT),
        record_count,
        attributes: i16::from_be_bytes([bytes[ATTRIBUTES_AT], bytes[ATTRIBUTES_AT + 1]]),
        producer_id: i64_at(bytes, PRODUCER_ID_AT),
        producer_epoch: i16::from_be_bytes([
            bytes[PRODUCER_EPOCH_AT],
            bytes[PRODUCER_EPOCH_AT + 1],
        ]),
        base_sequence: i32_at(bytes, BASE_SEQUENCE_AT),
    })
}

/// Validates the whole batch at the start of `bytes`: header, length present, CRC32C.
pub fn validate_batch(bytes: &[u8], max_bytes: usize) -> Result<BatchHeader, BatchError> {
    let header = parse_header(bytes, max_bytes)?;
    if bytes.len() < header.total_bytes {
        return Err(BatchError::Truncated {
            total_bytes: header.total_bytes,
            available: bytes.len(),
        });
    }
    let stored = i32_at(bytes, CRC_AT) as u32;
    let computed = crc32c::crc32c(&bytes[ATTRIBUTES_AT..header.total_bytes]);
    if stored != computed {
        return Err(BatchError::CrcMismatch { stored, computed });
    }
    Ok(header)
}

/// One validated batch inside a produce request's `records`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpan {
    /// Byte position of the batch in `records`.
    pub position: usize,
    pub header: BatchHeader,
}

/// Validates every batch of a produce request's `records` (there must be at least one, and they
/// must fill `records` exactly). `message_max_bytes` bounds each batch.
pub fn validate_records(
    records: &[u8],
    message_max_bytes: usize,
) -> Result<Vec<BatchSpan>, BatchError> {
    let mut spans = Vec::new();
    let mut position = 0;
    if records.is_empty() {
        return Err(BatchError::TooShort { available: 0 });
    }
    while position < records.len() {
        let rest = &records[position..];
        // A batch claiming more bytes than the request holds is corrupt; a complete batch above
        // the limit is too large.
        let (_, total_bytes) = parse_overhead(rest, usize::MAX)?;
        if total_bytes > rest.len() {
            return Err(BatchError::Truncated {
                total_bytes,
                available: rest.len(),
            });
        }
        if total_bytes > message_max_bytes {
            return Err(BatchError::TooLarge {
                total_bytes,
                max_bytes: message_max_bytes,
            });
        }
        let header = validate_batch(rest, message_max_bytes)?;
        spans.push(BatchSpan { position, header });
        position += header.total_bytes;
    }
    Ok(spans)
}

/// [`validate_records`] for a produce request: each batch also holds exactly one record per
/// offset of its range, at least one (Kafka's `LogValidator`: "Inconsistent batch offset range
/// and count of records"); only the log cleaner makes batches with fewer.
pub fn validate_produced_records(
    records: &[u8],
    message_max_bytes: usize,
) -> Result<Vec<BatchSpan>, BatchError> {
    let spans = validate_records(records, message_max_bytes)?;
    for span in &spans {
        let header = &span.header;
        if header.record_count < 1
            || i64::from(header.record_count) != i64::from(header.last_offset_delta) + 1
        {
            return Err(BatchError::BadCount {
                last_offset_delta: header.last_offset_delta,
                record_count: header.record_count,
            });
        }
    }
    Ok(spans)
}

/// The first [`PATCHED_PREFIX_BYTES`] of a batch with `baseOffset` and `partitionLeaderEpoch` rewritten.
pub fn patched_prefix(
    batch: &[u8],
    base_offset: i64,
    partition_leader_epoch: i32,
) -> [u8; PATCHED_PREFIX_BYTES] {
    let mut prefix = [0u8; PATCHED_PREFIX_BYTES];
    prefix.copy_from_slice(&batch[..PATCHED_PREFIX_BYTES]);
    prefix[..8].copy_from_slice(&base_offset.to_be_bytes());
    prefix[PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4]
        .copy_from_slice(&partition_leader_epoch.to_be_bytes());
    prefix
}

/// Builds a valid uncompressed v2 batch holding `values` (test and tooling helper; not the hot path).
pub fn build_batch(base_offset: i64, timestamp_ms: i64, values: &[&[u8]]) -> Vec<u8> {
    build_producer_batch(base_offset, timestamp_ms, values, NO_PRODUCER_ID, -1, -1)
}

/// [`build_batch`] written by producer `producer_id` in `producer_epoch` from `base_sequence`.
pub fn build_producer_batch(
    base_offset: i64,
    timestamp_ms: i64,
    values: &[&[u8]],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Vec<u8> {
    let count = values.len() as i32;
    let mut batch = build_raw_batch(0, count - 1, count, &encode_records(values));
    batch[..8].copy_from_slice(&base_offset.to_be_bytes());
    set_producer(
        &mut batch,
        producer_id,
        producer_epoch,
        base_sequence,
        timestamp_ms,
    );
    batch
}

/// Sets the producer fields and both timestamps of a built batch and seals it again.
pub fn set_producer(
    batch: &mut [u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    timestamp_ms: i64,
) {
    batch[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&timestamp_ms.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&timestamp_ms.to_be_bytes());
    batch[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&producer_id.to_be_bytes());
    batch[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2].copy_from_slice(&producer_epoch.to_be_bytes());
    batch[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&base_sequence.to_be_bytes());
    seal(batch);
}

/// Sets the attributes of a built batch (transactional, control) and seals it again.
pub fn set_attributes(batch: &mut [u8], attributes: i16) {
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    seal(batch);
}

/// Appends Kafka's zigzag varint of `value` to `out`.
pub fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        if zigzag < 0x80 {
            out.push(zigzag as u8);
            return;
        }
        out.push((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
}

/// The uncompressed records section holding `values` (null keys, no headers, offsetDeltas 0..n).
pub fn encode_records(values: &[&[u8]]) -> Vec<u8> {
    let mut records = Vec::new();
    for (delta, value) in values.iter().enumerate() {
        let mut record = vec![0u8]; // attributes
        put_varint(&mut record, 0); // timestamp delta
        put_varint(&mut record, delta as i64);
        put_varint(&mut record, -1); // null key
        put_varint(&mut record, value.len() as i64);
        record.extend_from_slice(value);
        put_varint(&mut record, 0); // headers
        put_varint(&mut records, record.len() as i64);
        records.extend_from_slice(&record);
    }
    records
}

/// The records section of a batch of `(key, value)` records (`None`: null), offset deltas 0, 1,
/// 2, …, no headers, timestamp deltas 0: for tests that build batches by hand.
#[cfg(test)]
pub fn keyed_records_section(records: &[(Option<&[u8]>, Option<&[u8]>)]) -> Vec<u8> {
    let mut section = Vec::new();
    for (delta, (key, value)) in records.iter().enumerate() {
        let mut body = vec![0u8];
        put_varint(&mut body, 0);
        put_varint(&mut body, delta as i64);
        for field in [key, value] {
            match field {
                Some(bytes) => {
                    put_varint(&mut body, bytes.len() as i64);
                    body.extend_from_slice(bytes);
                }
                None => put_varint(&mut body, -1),
            }
        }
        put_varint(&mut body, 0);
        put_varint(&mut section, body.len() as i64);
        section.extend_from_slice(&body);
    }
    section
}

/// A batch at offset 0 with the given `attributes`, counts and records section, whatever they
/// hold, with a valid CRC: for tests and fuzzing of the record validation.
pub fn build_raw_batch(
    attributes: i16,
    last_offset_delta: i32,
    record_count: i32,
    records: &[u8],
) -> Vec<u8> {
    let mut batch = Vec::with_capacity(BATCH_HEADER_BYTES + records.len());
    batch.extend_from_slice(&0i64.to_be_bytes());
    batch.extend_from_slice(
        &((BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES + records.len()) as i32).to_be_bytes(),
    );
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&[0; 4]); // crc, below
    batch.extend_from_slice(&attributes.to_be_bytes());
    batch.extend_from_slice(&last_offset_delta.to_be_bytes());
    batch.extend_from_slice(&0i64.to_be_bytes()); // base timestamp
    batch.extend_from_slice(&0i64.to_be_bytes()); // max timestamp
    batch.extend_from_slice(&NO_PRODUCER_ID.to_be_bytes());
    batch.extend_from_slice(&(-1i16).to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes());
    batch.extend_from_slice(&record_count.to_be_bytes());
    batch.extend_from_slice(records);
    seal(&mut batch);
    batch
}

/// The batch `original` (whole, valid) with its records section replaced by `records` holding
/// `record_count` uncompressed records: base offset, last offset delta, timestamps, producer
/// fields and attributes kept (the codec bits cleared: the records are no longer compressed),
/// length and CRC written anew. What the log cleaner writes for a batch it removed records from
/// (Kafka keeps base offset and last offset delta too, so offsets never move).
pub fn with_records(original: &[u8], records: &[u8], record_count: i32) -> Vec<u8> {
    let mut batch = Vec::with_capacity(BATCH_HEADER_BYTES + records.len());
    batch.extend_from_slice(&original[..BATCH_HEADER_BYTES]);
    batch.extend_from_slice(records);
    let batch_length = (batch.len() - LOG_OVERHEAD_BYTES) as i32;
    batch[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = i16::from_be_bytes([batch[ATTRIBUTES_AT], batch[ATTRIBUTES_AT + 1]]) & !0x07;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&record_count.to_be_bytes());
    seal(&mut batch);
    batch
}

/// Rewrites the CRC of a whole batch after its fields changed.
pub fn seal(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_batch_round_trips() {
        let batch = build_batch(0, 1000, &[b"a", b"bb", b"ccc"]);
        let header = validate_batch(&batch, 1 << 20).expect("valid");
        assert_eq!(header.total_bytes, batch.len());
        assert_eq!(header.record_count, 3);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(header.max_timestamp, 1000);
    }

    #[test]
    fn producer_fields_are_parsed_and_sequences_wrap() {
        let batch = build_producer_batch(0, 1000, &[b"a", b"b", b"c"], 77, 3, 10);
        let header = validate_batch(&batch, 1 << 20).expect("valid");
        assert!(header.has_producer_id());
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (77, 3, 10)
        );
        assert_eq!(header.last_sequence(), 12);
        assert!(!header.is_transactional() && !header.is_control());
        assert!(!validate_batch(&build_batch(0, 1, &[b"x"]), 1 << 20)
            .expect("valid")
            .has_producer_id());
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    }

    #[test]
    fn patching_keeps_the_crc_valid() {
        let mut batch = build_batch(0, 1000, &[b"x"]);
        let prefix = patched_prefix(&batch, 1234, 7);
        batch[..PATCHED_PREFIX_BYTES].copy_from_slice(&prefix);
        let header = validate_batch(&batch, 1 << 20).expect("still valid");
        assert_eq!(header.base_offset, 1234);
        assert_eq!(header.partition_leader_epoch, 7);
        assert_eq!(header.next_offset(), 1235);
    }

    #[test]
    fn every_flipped_byte_after_the_prefix_is_detected() {
        let batch = build_batch(0, 1000, &[b"hello", b"world"]);
        for at in PATCHED_PREFIX_BYTES..batch.len() {
            let mut bad = batch.clone();
            bad[at] ^= 0x40;
            assert!(
                validate_batch(&bad, 1 << 20).is_err(),
                "flip at {at} not detected"
            );
        }
    }

    #[test]
    fn truncation_and_bad_lengths_are_detected() {
        let batch = build_batch(0, 1000, &[b"hello"]);
        for len in 0..batch.len() {
            assert!(
                validate_batch(&batch[..len], 1 << 20).is_err(),
                "truncated to {len} accepted"
            );
        }
        let mut negative = batch.clone();
        negative[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert_eq!(
            validate_batch(&negative, 1 << 20),
            Err(BatchError::BadLength { batch_length: -5 })
        );
        let mut magic = batch.clone();
        magic[16] = 1;
        assert_eq!(
            validate_batch(&magic, 1 << 20),
            Err(BatchError::BadMagic { magic: 1 })
        );
    }

    #[test]
    fn records_with_several_batches_split_and_oversize_is_reported() {
        let mut records = build_batch(0, 1, &[b"a"]);
        records.extend(build_batch(0, 1, &[b"b", b"c"]));
        let spans = validate_records(&records, 1 << 20).expect("valid");
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[1].position, spans[0].header.total_bytes);
        let big = build_batch(0, 1, &[&[0u8; 500]]);
        assert!(matches!(
            validate_records(&big, 100),
            Err(BatchError::TooLarge { .. })
        ));
        assert!(validate_records(&[], 100).is_err());
        assert!(validate_records(&records[..records.len() - 1], 1 << 20).is_err());
    }
}
