//! Control batches (KIP-98): the transaction markers a coordinator writes to every partition of
//! a transaction when it ends. A marker is a batch with the transactional and control attributes,
//! the producer's id and epoch, no sequence (-1), and one record: key = version i16 (0) | type i16
//! (0 = abort, 1 = commit), value = version i16 (0) | coordinator epoch i32. Bytes only.

use crate::wire::batch::{
    self, put_varint, ATTRIBUTE_CONTROL, ATTRIBUTE_TRANSACTIONAL, BATCH_HEADER_BYTES,
};

/// What a marker says about its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Abort,
    Commit,
}

impl Marker {
    pub fn of_commit(commit: bool) -> Marker {
        if commit {
            Marker::Commit
        } else {
            Marker::Abort
        }
    }

    fn type_code(self) -> i16 {
        match self {
            Marker::Abort => 0,
            Marker::Commit => 1,
        }
    }
}

/// A marker batch at offset 0 (the log assigns the real one) for `producer_id` in
/// `producer_epoch`, written by a coordinator in `coordinator_epoch`.
pub fn build_marker(
    marker: Marker,
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    timestamp_ms: i64,
) -> Vec<u8> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&marker.type_code().to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let mut record = vec![0u8]; // attributes
    put_varint(&mut record, 0); // timestamp delta
    put_varint(&mut record, 0); // offset delta
    put_varint(&mut record, key.len() as i64);
    record.extend_from_slice(&key);
    put_varint(&mut record, value.len() as i64);
    record.extend_from_slice(&value);
    put_varint(&mut record, 0); // headers
    let mut section = Vec::with_capacity(record.len() + 2);
    put_varint(&mut section, record.len() as i64);
    section.extend_from_slice(&record);
    let mut out =
        batch::build_raw_batch(ATTRIBUTE_TRANSACTIONAL | ATTRIBUTE_CONTROL, 0, 1, &section);
    batch::set_producer(&mut out, producer_id, producer_epoch, -1, timestamp_ms);
    out
}

/// The marker a control batch holds (`batch` is the whole batch), or `None` when it is no
/// control batch or one of a type this broker does not know (Kafka ignores those too).
pub fn marker_of(batch: &[u8]) -> Option<Marker> {
    let header = batch::parse_header(batch, usize::MAX).ok()?;
    if !header.is_control() || header.record_count < 1 {
        return None;
    }
    let key = crate::wire::records::first_record_key(batch.get(BATCH_HEADER_BYTES..)?)?;
    if key.len() < 4 || i16::from_be_bytes([key[0], key[1]]) != 0 {
        return None;
    }
    match i16::from_be_bytes([key[2], key[3]]) {
        0 => Some(Marker::Abort),
        1 => Some(Marker::Commit),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_are_valid_batches() {
        for marker in [Marker::Abort, Marker::Commit] {
            let bytes = build_marker(marker, 42, 3, 7, 1000);
            let header = batch::validate_batch(&bytes, 1 << 20).expect("valid batch");
            assert!(header.is_control() && header.is_transactional());
            assert_eq!((header.producer_id, header.producer_epoch), (42, 3));
            assert_eq!(header.base_sequence, -1);
            crate::wire::records::validate_batch_records(&bytes, &header).expect("valid records");
            assert_eq!(marker_of(&bytes), Some(marker));
        }
        assert_eq!(marker_of(&batch::build_batch(0, 0, &[b"x"])), None);
    }
}
