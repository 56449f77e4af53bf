//! The records of `__transaction_state`, in Kafka's formats (`TransactionLogKey` v0,
//! `TransactionLogValue` v0) so that Kafka tools could read them: key = version i16 (0) |
//! transactional id; value = version i16 (0) | producer id i64 | producer epoch i16 | timeout ms
//! i32 | status i8 | partitions [topic, [partition i32]] (nullable) | last update ms i64 | start
//! ms i64. A record with no value (tombstone) removes the transactional id. No I/O here.

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};

use crate::group::records::{get_i16, get_i32, get_i64, get_string, put_string, RecordError};

/// Kafka's name for the internal topic.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// A transaction's state (Kafka's `TransactionState`, with its status bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnStatus {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnStatus {
    pub fn byte(self) -> i8 {
        match self {
            TxnStatus::Empty => 0,
            TxnStatus::Ongoing => 1,
            TxnStatus::PrepareCommit => 2,
            TxnStatus::PrepareAbort => 3,
            TxnStatus::CompleteCommit => 4,
            TxnStatus::CompleteAbort => 5,
            TxnStatus::Dead => 6,
            TxnStatus::PrepareEpochFence => 7,
        }
    }

    pub fn of_byte(byte: i8) -> Option<TxnStatus> {
        Some(match byte {
            0 => TxnStatus::Empty,
            1 => TxnStatus::Ongoing,
            2 => TxnStatus::PrepareCommit,
            3 => TxnStatus::PrepareAbort,
            4 => TxnStatus::CompleteCommit,
            5 => TxnStatus::CompleteAbort,
            6 => TxnStatus::Dead,
            7 => TxnStatus::PrepareEpochFence,
            _ => return None,
        })
    }
}

/// What the log keeps of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub status: TxnStatus,
    pub partitions: BTreeSet<(String, i32)>,
    pub last_update_ms: i64,
    pub start_ms: i64,
}

/// Key v0.
pub fn key(transactional_id: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + transactional_id.len());
    buf.put_i16(0);
    put_string(&mut buf, transactional_id);
    buf.freeze()
}

/// Value v0.
pub fn value(record: &TxnRecord) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(0);
    buf.put_i64(record.producer_id);
    buf.put_i16(record.producer_epoch);
    buf.put_i32(record.timeout_ms);
    buf.put_i8(record.status.byte());
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (topic, partition) in &record.partitions {
        match topics.last_mut() {
            Some((t, partitions)) if *t == topic.as_str() => partitions.push(*partition),
            _ => topics.push((topic.as_str(), vec![*partition])),
        }
    }
    buf.put_i32(i32::try_from(topics.len()).unwrap_or(i32::MAX));
    for (topic, partitions) in topics {
        put_string(&mut buf, topic);
        buf.put_i32(i32::try_from(partitions.len()).unwrap_or(i32::MAX));
        for p in partitions {
            buf.put_i32(p);
        }
    }
    buf.put_i64(record.last_update_ms);
    buf.put_i64(record.start_ms);
    buf.freeze()
}

/// Reads one record: the transactional id and its state (`None`: a tombstone), or `Ok(None)`
/// for a key version this broker does not know.
pub fn parse(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<Option<(String, Option<TxnRecord>)>, RecordError> {
    let mut key = key.ok_or(RecordError::NoKey)?;
    if get_i16(&mut key, "key version")? != 0 {
        return Ok(None);
    }
    let transactional_id = get_string(&mut key, "transactional id")?;
    let Some(mut value) = value else {
        return Ok(Some((transactional_id, None)));
    };
    let version = get_i16(&mut value, "value version")?;
    if version != 0 {
        return Err(RecordError::ValueVersion(version));
    }
    let producer_id = get_i64(&mut value, "producer id")?;
    let producer_epoch = get_i16(&mut value, "producer epoch")?;
    let timeout_ms = get_i32(&mut value, "timeout")?;
    let status_byte = value
        .first()
        .copied()
        .ok_or(RecordError::Truncated { what: "status" })? as i8;
    value = &value[1..];
    let status = TxnStatus::of_byte(status_byte).ok_or(RecordError::Truncated {
        what: "a known status",
    })?;
    let mut partitions = BTreeSet::new();
    let topics = get_i32(&mut value, "topic count")?;
    for _ in 0..topics.max(0) {
        let topic = get_string(&mut value, "topic")?;
        let count = get_i32(&mut value, "partition count")?;
        if usize::try_from(count).unwrap_or(0) > value.len() / 4 {
            return Err(RecordError::Truncated { what: "partitions" });
        }
        for _ in 0..count.max(0) {
            partitions.insert((topic.clone(), get_i32(&mut value, "partition")?));
        }
    }
    let last_update_ms = get_i64(&mut value, "last update time")?;
    let start_ms = get_i64(&mut value, "start time")?;
    Ok(Some((
        transactional_id,
        Some(TxnRecord {
            producer_id,
            producer_epoch,
            timeout_ms,
            status,
            partitions,
            last_update_ms,
            start_ms,
        }),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_garbage_is_an_error() {
        let record = TxnRecord {
            producer_id: 7 << 32 | 3,
            producer_epoch: 4,
            timeout_ms: 60_000,
            status: TxnStatus::PrepareCommit,
            partitions: [
                ("a".to_string(), 0),
                ("a".to_string(), 2),
                ("b".to_string(), 1),
            ]
            .into_iter()
            .collect(),
            last_update_ms: 10,
            start_ms: 9,
        };
        let parsed = parse(Some(&key("tx")), Some(&value(&record))).expect("parses");
        assert_eq!(parsed, Some(("tx".to_string(), Some(record.clone()))));
        assert_eq!(
            parse(Some(&key("tx")), None).expect("tombstone"),
            Some(("tx".into(), None))
        );
        let bytes = value(&record);
        for cut in 0..bytes.len() {
            assert!(
                parse(Some(&key("tx")), Some(&bytes[..cut])).is_err(),
                "cut at {cut}"
            );
        }
        assert!(parse(None, None).is_err());
    }
}
