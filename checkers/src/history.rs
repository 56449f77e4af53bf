//! The history format (`docs/history.md`, the contract in the `kaos-history` crate): one op a
//! line, parsed one line at a time, and the op values the checker reads.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::limits;

pub use kaos_history::{Op, OpType};

/// A history that cannot be read. A checker verdict is never an error; this is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    #[error("history line {line_number}: {reason}{}", quoted(.quote))]
    InvalidLine {
        line_number: usize,
        reason: String,
        quote: String,
    },
    #[error("history line {line_number}: empty line")]
    EmptyLine { line_number: usize },
}

/// ` (line starts: …)` after an error, or nothing when there is nothing to quote.
fn quoted(quote: &str) -> String {
    if quote.trim().is_empty() {
        String::new()
    } else {
        format!(" (line starts: {quote})")
    }
}

impl HistoryError {
    /// The 1-based line number the error is about.
    pub fn line_number(&self) -> usize {
        match self {
            HistoryError::InvalidLine { line_number, .. }
            | HistoryError::EmptyLine { line_number } => *line_number,
        }
    }
}

/// Parses one line of `history.jsonl`. `line_number` is 1-based and only names the line in errors.
pub fn parse_op(line: &str, line_number: usize) -> Result<Op, HistoryError> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Err(HistoryError::EmptyLine { line_number });
    }
    let mut op = serde_json::from_str::<Op>(trimmed).map_err(|e| HistoryError::InvalidLine {
        line_number,
        reason: describe_json_error(&e),
        quote: quote(trimmed),
    })?;
    op.upgrade_legacy();
    Ok(op)
}

fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Eof => "the JSON object is cut short",
        Category::Syntax => "not valid JSON",
        Category::Data => "not a valid op",
        Category::Io => "unreadable",
    };
    format!("{what}: {e}")
}

fn quote(line: &str) -> String {
    let mut quoted: String = line.chars().take(limits::LINE_QUOTE_CHARS_MAX).collect();
    if line.chars().count() > limits::LINE_QUOTE_CHARS_MAX {
        quoted.push('…');
    }
    quoted
}

/// A place in a log: topic, partition, offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} partition {} offset {}",
            self.topic, self.partition, self.offset
        )
    }
}

/// The fields of a flat op value: `{"id","topic","partition","offset","group"}`, any subset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Flat<'a> {
    pub id: Option<u64>,
    pub topic: Option<Cow<'a, str>>,
    pub partition: Option<i64>,
    pub offset: Option<i64>,
    pub group: Option<Cow<'a, str>>,
}

/// One record of a poll's `value.records`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rec<'a> {
    pub topic: Cow<'a, str>,
    pub partition: i32,
    pub offset: i64,
    pub id: Option<u64>,
    /// The reading client's high watermark for the partition when it received the record
    /// (`kaos_history::record::HIGH_WATERMARK`), when the history has it.
    pub high_watermark: Option<i64>,
}

/// `value.id` of a send as a u64 message id.
pub(crate) fn message_id(value: &serde_json::Value) -> Option<u64> {
    value.get("id").and_then(serde_json::Value::as_u64)
}

/// The flat fields of a client op value (`send`, `process`, `offset_commit`, …), borrowed.
pub(crate) fn flat_of(value: &serde_json::Value) -> Flat<'_> {
    let text = |key: &str| {
        value
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(Cow::Borrowed)
    };
    let int = |key: &str| value.get(key).and_then(serde_json::Value::as_i64);
    Flat {
        id: message_id(value),
        topic: text("topic"),
        partition: int("partition"),
        offset: int("offset"),
        group: text("group"),
    }
}

/// Whether a client spec (a `client_start` value's `spec`) reads with
/// `isolation.level = read_uncommitted` (librdkafka's default is read_committed).
pub(crate) fn reads_uncommitted(spec: &serde_json::Value) -> bool {
    spec.get("config")
        .and_then(|c| c.get("isolation.level"))
        .and_then(serde_json::Value::as_str)
        .is_some_and(|level| level.trim() == "read_uncommitted")
}

/// The records of a poll ok value. Records that lack a topic, partition or offset are counted in
/// the second element and skipped.
pub(crate) fn polled_records(value: &serde_json::Value) -> (Vec<Rec<'_>>, u64) {
    let Some(records) = value.get("records").and_then(serde_json::Value::as_array) else {
        return (Vec::new(), u64::from(!value.is_null()));
    };
    let mut parsed = Vec::with_capacity(records.len());
    let mut malformed = 0u64;
    for record in records {
        let topic = record.get("topic").and_then(serde_json::Value::as_str);
        let partition = record
            .get("partition")
            .and_then(serde_json::Value::as_i64)
            .and_then(|p| i32::try_from(p).ok());
        let offset = record.get("offset").and_then(serde_json::Value::as_i64);
        match (topic, partition, offset) {
            (Some(topic), Some(partition), Some(offset)) => parsed.push(Rec {
                topic: Cow::Borrowed(topic),
                partition,
                offset,
                id: record.get("id").and_then(serde_json::Value::as_u64),
                high_watermark: record
                    .get(kaos_history::record::HIGH_WATERMARK)
                    .and_then(serde_json::Value::as_i64),
            }),
            _ => malformed += 1,
        }
    }
    (parsed, malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_send_invoke() {
        let op = parse_op(
            r#"{"index":3,"time_ns":10,"process":"producer-1","type":"invoke","f":"send","value":{"id":17,"topic":"kaos"}}"#,
            4,
        )
        .expect("valid line");
        assert_eq!(op.kind, OpType::Invoke);
        assert_eq!(message_id(&op.value), Some(17));
        assert_eq!(op.error, None);
    }

    #[test]
    fn value_and_error_are_optional() {
        let op = parse_op(
            r#"{"index":0,"time_ns":0,"process":"c","type":"fail","f":"poll","error":"TIMED_OUT"}"#,
            1,
        )
        .expect("valid line");
        assert!(op.value.is_null());
        assert_eq!(op.error.as_deref(), Some("TIMED_OUT"));
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let err = parse_op(
            r#"{"index":0,"time_ns":0,"process":"c","type":"maybe","f":"poll"}"#,
            7,
        )
        .expect_err("bad type");
        let text = err.to_string();
        assert!(text.contains("line 7"), "{text}");
        assert!(text.contains("maybe"), "{text}");
        assert_eq!(err.line_number(), 7);

        let err =
            parse_op(r#"{"index":0,"time_ns":0,"process":"c","type":"ok""#, 9).expect_err("cut");
        assert!(err.to_string().contains("cut short"), "{err}");
        let err =
            parse_op(r#"{"index":0,"process":"c","type":"ok","f":"x"}"#, 2).expect_err("no time");
        assert!(err.to_string().contains("time_ns"), "{err}");
    }

    #[test]
    fn round_trips_through_serde() {
        let line = r#"{"index":1,"time_ns":5,"process":"nemesis","type":"ok","f":"kill","value":{"node":"n1"}}"#;
        let op = parse_op(line, 1).expect("valid");
        let again = serde_json::to_string(&op).expect("serialises");
        assert_eq!(again, line);
    }

    #[test]
    fn reads_poll_records_and_counts_malformed_ones() {
        let value = serde_json::json!({"records":[
            {"topic":"kaos","partition":0,"offset":4,"id":17},
            {"topic":"kaos","partition":1,"offset":5,"id":null,"high_watermark":5},
            {"topic":"kaos","offset":6,"id":18}
        ]});
        let (records, malformed) = polled_records(&value);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].id, Some(17));
        assert_eq!(records[1].id, None);
        assert_eq!(records[0].high_watermark, None);
        assert_eq!(records[1].high_watermark, Some(5));
        assert_eq!(malformed, 1);
    }
}
