//! A record as a `poll` op lists it (`{"records":[…]}`): its field names and the value a client
//! writes.

use serde_json::{json, Value};

/// The record's topic (string).
pub const TOPIC: &str = "topic";
/// The record's partition (integer).
pub const PARTITION: &str = "partition";
/// The record's offset (integer).
pub const OFFSET: &str = "offset";
/// The record's message id (u64, or null for a record without one).
pub const ID: &str = "id";
/// Optional (issue 19): the partition's high watermark as the reading client knew it when it
/// received the record (librdkafka's value cached from the Fetch responses, the highest the
/// process had seen for the partition). A record at or above it was served above the high
/// watermark. Absent from histories written before it and from Jepsen's.
pub const HIGH_WATERMARK: &str = "high_watermark";

/// One record of a poll op: `high_watermark` is left out when the client did not know it.
pub fn poll_record(
    topic: &str,
    partition: i32,
    offset: i64,
    id: Option<u64>,
    high_watermark: Option<i64>,
) -> Value {
    let mut record = json!({TOPIC: topic, PARTITION: partition, OFFSET: offset, ID: id});
    if let (Some(hw), Some(fields)) = (high_watermark, record.as_object_mut()) {
        fields.insert(HIGH_WATERMARK.to_owned(), hw.into());
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_high_watermark_is_written_only_when_known() {
        let known = poll_record("kaos", 1, 42, Some(17), Some(40));
        assert_eq!(known[HIGH_WATERMARK], 40);
        assert_eq!(known[OFFSET], 42);
        assert_eq!(known[ID], 17);
        let unknown = poll_record("kaos", 1, 42, None, None);
        assert!(unknown.get(HIGH_WATERMARK).is_none(), "{unknown}");
        assert!(unknown[ID].is_null());
    }
}
