//! The records of `__consumer_offsets`, in Kafka's formats so that Kafka tools could read them:
//! key v1 `(group, topic, partition)` → value v3 `(offset, leader epoch, metadata, commit time)`;
//! a record with no value (tombstone) deletes the offset. Group metadata records, key v2 `group`
//! → value v3 (generation, protocol, leader, members with their assignments), are written when a
//! generation's assignment is stored (as Kafka's `GroupMetadataManager.storeGroup` does) and
//! skipped on load: this coordinator keeps membership in memory only. No I/O here.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// Kafka's name for the internal topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// What one record of the offsets topic says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsRecord {
    Commit {
        group: String,
        topic: String,
        partition: i32,
        /// `None`: a tombstone.
        value: Option<Committed>,
    },
    /// A group metadata record (key v2) or a key version we do not know: skipped.
    Other,
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("truncated {what}")]
    Truncated { what: &'static str },
    #[error("invalid UTF-8 in {what}")]
    Utf8 { what: &'static str },
    #[error("unknown offset commit value version {0}")]
    ValueVersion(i16),
    #[error("record without a key")]
    NoKey,
    #[error("cannot encode: {0}")]
    Encode(String),
}

pub(crate) fn put_string(buf: &mut BytesMut, s: &str) {
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    buf.put_i16(len);
    buf.put_slice(&s.as_bytes()[..usize::try_from(len).unwrap_or(0)]);
}

pub(crate) fn get_i16(buf: &mut &[u8], what: &'static str) -> Result<i16, RecordError> {
    if buf.remaining() < 2 {
        return Err(RecordError::Truncated { what });
    }
    Ok(buf.get_i16())
}

pub(crate) fn get_i32(buf: &mut &[u8], what: &'static str) -> Result<i32, RecordError> {
    if buf.remaining() < 4 {
        return Err(RecordError::Truncated { what });
    }
    Ok(buf.get_i32())
}

pub(crate) fn get_i64(buf: &mut &[u8], what: &'static str) -> Result<i64, RecordError> {
    if buf.remaining() < 8 {
        return Err(RecordError::Truncated { what });
    }
    Ok(buf.get_i64())
}

pub(crate) fn get_string(buf: &mut &[u8], what: &'static str) -> Result<String, RecordError> {
    let len = get_i16(buf, what)?;
    let len = usize::try_from(len).unwrap_or(0);
    if buf.remaining() < len {
        return Err(RecordError::Truncated { what });
    }
    let (text, rest) = buf.split_at(len);
    let text = std::str::from_utf8(text)
        .map_err(|_| RecordError::Utf8 { what })?
        .to_string();
    *buf = rest;
    Ok(text)
}

/// Key v1 of an offset commit.
pub fn commit_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut buf = BytesMut::with_capacity(12 + group.len() + topic.len());
    buf.put_i16(1);
    put_string(&mut buf, group);
    put_string(&mut buf, topic);
    buf.put_i32(partition);
    buf.freeze()
}

/// Value v3 of an offset commit.
pub fn commit_value(committed: &Committed) -> Bytes {
    let mut buf = BytesMut::with_capacity(24 + committed.metadata.len());
    buf.put_i16(3);
    buf.put_i64(committed.offset);
    buf.put_i32(committed.leader_epoch);
    put_string(&mut buf, &committed.metadata);
    buf.put_i64(committed.commit_timestamp_ms);
    buf.freeze()
}

/// One member in a group metadata record (Kafka's `MemberMetadata`, value v3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group's generation as Kafka's `GroupMetadataValue` v3 holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadata {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberMetadata>,
}

fn put_nullable_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(i32::try_from(b.len()).unwrap_or(i32::MAX));
    buf.put_slice(b);
}

fn get_nullable_string(buf: &mut &[u8], what: &'static str) -> Result<Option<String>, RecordError> {
    if buf.len() >= 2 && buf[..2] == [0xff, 0xff] {
        buf.advance(2);
        return Ok(None);
    }
    get_string(buf, what).map(Some)
}

fn get_bytes(buf: &mut &[u8], what: &'static str) -> Result<Bytes, RecordError> {
    let len = usize::try_from(get_i32(buf, what)?).unwrap_or(0);
    if buf.remaining() < len {
        return Err(RecordError::Truncated { what });
    }
    let (bytes, rest) = buf.split_at(len);
    *buf = rest;
    Ok(Bytes::copy_from_slice(bytes))
}

/// Key v2 of a group metadata record.
pub fn group_metadata_key(group: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + group.len());
    buf.put_i16(2);
    put_string(&mut buf, group);
    buf.freeze()
}

/// Value v3 of a group metadata record.
pub fn group_metadata_value(group: &GroupMetadata) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(3);
    put_string(&mut buf, &group.protocol_type);
    buf.put_i32(group.generation);
    put_nullable_string(&mut buf, group.protocol.as_deref());
    put_nullable_string(&mut buf, group.leader.as_deref());
    buf.put_i64(group.current_state_timestamp_ms);
    buf.put_i32(i32::try_from(group.members.len()).unwrap_or(i32::MAX));
    for m in &group.members {
        put_string(&mut buf, &m.member_id);
        put_nullable_string(&mut buf, m.group_instance_id.as_deref());
        put_string(&mut buf, &m.client_id);
        put_string(&mut buf, &m.client_host);
        buf.put_i32(m.rebalance_timeout_ms);
        buf.put_i32(m.session_timeout_ms);
        put_bytes(&mut buf, &m.subscription);
        put_bytes(&mut buf, &m.assignment);
    }
    buf.freeze()
}

/// Reads a group metadata record (key v2, value v3): the group and its generation; `None` for
/// any other record. For tools and tests: the coordinator does not load membership.
pub fn parse_group_metadata(
    key: &[u8],
    value: &[u8],
) -> Result<Option<(String, GroupMetadata)>, RecordError> {
    let mut key = key;
    if get_i16(&mut key, "key version")? != 2 {
        return Ok(None);
    }
    let group = get_string(&mut key, "group")?;
    let mut v = value;
    let version = get_i16(&mut v, "group metadata version")?;
    if version != 3 {
        return Err(RecordError::ValueVersion(version));
    }
    let protocol_type = get_string(&mut v, "protocol type")?;
    let generation = get_i32(&mut v, "generation")?;
    let protocol = get_nullable_string(&mut v, "protocol")?;
    let leader = get_nullable_string(&mut v, "leader")?;
    let current_state_timestamp_ms = get_i64(&mut v, "state timestamp")?;
    let count = get_i32(&mut v, "member count")?;
    let mut members = Vec::new();
    for _ in 0..count.max(0) {
        members.push(MemberMetadata {
            member_id: get_string(&mut v, "member id")?,
            group_instance_id: get_nullable_string(&mut v, "group instance id")?,
            client_id: get_string(&mut v, "client id")?,
            client_host: get_string(&mut v, "client host")?,
            rebalance_timeout_ms: get_i32(&mut v, "rebalance timeout")?,
            session_timeout_ms: get_i32(&mut v, "session timeout")?,
            subscription: get_bytes(&mut v, "subscription")?,
            assignment: get_bytes(&mut v, "assignment")?,
        });
    }
    let metadata = GroupMetadata {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    };
    Ok(Some((group, metadata)))
}

/// Reads one record's key and value.
pub fn parse(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<OffsetsRecord, RecordError> {
    let mut key = key.ok_or(RecordError::NoKey)?;
    let key_version = get_i16(&mut key, "key version")?;
    if !(0..=1).contains(&key_version) {
        return Ok(OffsetsRecord::Other);
    }
    let group = get_string(&mut key, "group")?;
    let topic = get_string(&mut key, "topic")?;
    let partition = get_i32(&mut key, "partition")?;
    let Some(mut value) = value else {
        return Ok(OffsetsRecord::Commit {
            group,
            topic,
            partition,
            value: None,
        });
    };
    let version = get_i16(&mut value, "value version")?;
    let offset = get_i64(&mut value, "offset")?;
    let leader_epoch = if version >= 3 {
        get_i32(&mut value, "leader epoch")?
    } else {
        -1
    };
    let metadata = get_string(&mut value, "metadata")?;
    let commit_timestamp_ms = match version {
        0..=3 => get_i64(&mut value, "commit timestamp")?,
        other => return Err(RecordError::ValueVersion(other)),
    };
    Ok(OffsetsRecord::Commit {
        group,
        topic,
        partition,
        value: Some(Committed {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp_ms,
        }),
    })
}

/// One uncompressed record batch (v2) holding `entries` as key/value records; the log assigns
/// the offsets and stamps the leader epoch.
pub fn build_batch(entries: &[(Bytes, Option<Bytes>)], now_ms: i64) -> Result<Bytes, RecordError> {
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::try_from(i).unwrap_or(i64::MAX),
            // The encoder keeps records in one batch while offset - sequence is constant; the
            // batch's base sequence is the first record's: -1, no producer sequence.
            sequence: i32::try_from(i).unwrap_or(i32::MAX).wrapping_sub(1),
            timestamp: now_ms,
            key: Some(key.clone()),
            value: value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| RecordError::Encode(format!("{e:#}")))?;
    Ok(buf.freeze())
}

/// Decodes one batch read from the log into (offset, record) pairs.
pub fn decode_batch(batch: &[u8]) -> Result<Vec<(i64, OffsetsRecord)>, RecordError> {
    let mut bytes = Bytes::copy_from_slice(batch);
    let sets = RecordBatchDecoder::decode_all(&mut bytes)
        .map_err(|e| RecordError::Encode(format!("cannot decode batch: {e:#}")))?;
    let mut out = Vec::new();
    for record in sets.into_iter().flat_map(|set| set.records) {
        if record.control {
            continue;
        }
        let parsed = parse(record.key.as_deref(), record.value.as_deref())?;
        out.push((record.offset, parsed));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::batch;

    #[test]
    fn commit_record_round_trip_through_a_batch() {
        let committed = Committed {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp_ms: 1_700_000_000_000,
        };
        let batch = build_batch(
            &[
                (commit_key("g", "t", 5), Some(commit_value(&committed))),
                (commit_key("g", "t", 6), None),
            ],
            1,
        )
        .expect("encodes");
        assert_eq!(
            batch::validate_records(&batch, usize::MAX)
                .expect("one valid batch")
                .len(),
            1
        );
        let decoded = decode_batch(&batch).expect("decodes");
        assert_eq!(decoded.len(), 2);
        assert_eq!(
            decoded[0].1,
            OffsetsRecord::Commit {
                group: "g".into(),
                topic: "t".into(),
                partition: 5,
                value: Some(committed)
            }
        );
        assert!(matches!(
            &decoded[1].1,
            OffsetsRecord::Commit {
                value: None,
                partition: 6,
                ..
            }
        ));
    }

    #[test]
    fn group_metadata_round_trip() {
        let metadata = GroupMetadata {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 5,
            members: vec![MemberMetadata {
                member_id: "m1".into(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300,
                session_timeout_ms: 100,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let key = group_metadata_key("g");
        let value = group_metadata_value(&metadata);
        assert_eq!(
            parse(Some(&key), Some(&value)).expect("parses"),
            OffsetsRecord::Other
        );
        assert_eq!(
            parse_group_metadata(&key, &value).expect("parses"),
            Some(("g".to_string(), metadata))
        );
        assert!(parse_group_metadata(&key, &value[..value.len() - 1]).is_err());
        assert_eq!(
            parse_group_metadata(&commit_key("g", "t", 0), &value).expect("not a group record"),
            None
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse(Some(&[0, 1, 0, 9]), None).is_err());
        assert!(parse(None, Some(&[1])).is_err());
        assert!(parse(Some(&[0, 2]), None).is_ok());
        assert!(decode_batch(&[1, 2, 3]).is_err());
    }
}
