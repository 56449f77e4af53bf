//! The line format, written and recognised by the same code.
//!
//! A client writes `{"type":…,"f":…,"monotonic_ns":…,"value":…[,"error":…]}`
//! ([`write_client_op`]); the harness puts `"index":…,"time_ns":…,"process":…` in front of it
//! ([`write_stamped`]) and writes its own ops in the same order, without `monotonic_ns`
//! ([`write_op`]), so that every line of `history.jsonl` kaos writes is
//! `{"index":…,"time_ns":…,"process":…,"type":…,"f":…[,"monotonic_ns":…],"value":…[,"error":…]}`:
//! the shape the checker's fast path reads field by field with the `KEY_…` openings below.

use std::io::Write;

use serde::Serialize;

use crate::op::{OpType, F};

/// The openings of each field of a line in the order kaos writes them.
pub const KEY_INDEX: &[u8; 9] = br#"{"index":"#;
pub const KEY_TIME_NS: &[u8; 11] = br#","time_ns":"#;
pub const KEY_PROCESS: &[u8; 11] = br#","process":"#;
pub const KEY_TYPE: &[u8; 8] = br#","type":"#;
pub const KEY_F: &[u8; 5] = br#","f":"#;
pub const KEY_MONOTONIC_NS: &[u8; 16] = br#","monotonic_ns":"#;
pub const KEY_VALUE: &[u8; 9] = br#","value":"#;
pub const KEY_ERROR: &[u8; 9] = br#","error":"#;

/// `{"type":"ok","f":"send"`: how a client line of `kind` and `f` starts.
fn write_head(out: &mut Vec<u8>, kind: OpType, f: F) {
    // Names are plain ASCII words: no escaping needed.
    out.extend_from_slice(br#"{"type":""#);
    out.extend_from_slice(kind.name().as_bytes());
    out.push(b'"');
    out.extend_from_slice(&KEY_F[..]);
    out.push(b'"');
    out.extend_from_slice(f.name().as_bytes());
    out.push(b'"');
}

/// Appends a client's op line (with its newline) to `out`: `monotonic_ns` is the client's
/// CLOCK_MONOTONIC reading when it wrote the op (`None`: no stamp, as before issue 15).
pub fn write_client_op(
    out: &mut Vec<u8>,
    kind: OpType,
    f: F,
    monotonic_ns: Option<u64>,
    value: &serde_json::Value,
    error: Option<&str>,
) {
    write_head(out, kind, f);
    if let Some(ns) = monotonic_ns {
        out.extend_from_slice(&KEY_MONOTONIC_NS[..]);
        // Writing an integer into a Vec cannot fail.
        let _ = write!(out, "{ns}");
    }
    out.extend_from_slice(&KEY_VALUE[..]);
    // Serialising a Value or a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
    if let Some(error) = error {
        out.extend_from_slice(&KEY_ERROR[..]);
        let _ = serde_json::to_writer(&mut *out, error);
    }
    out.extend_from_slice(b"}\n");
}

/// How a client line of `kind` and `f` starts, to recognise one without parsing it.
pub fn client_prefix(kind: OpType, f: F) -> Vec<u8> {
    let mut head = Vec::new();
    write_head(&mut head, kind, f);
    head
}

/// Writes a client's line (`{"type":…`, a JSON object, without its newline) as a history line:
/// `index`, `time_ns` and `process` put in front of its fields, then a newline.
pub fn write_stamped(
    out: &mut impl Write,
    index: u64,
    time_ns: u64,
    process: &str,
    client_line: &str,
) -> std::io::Result<()> {
    let body = client_line.trim().strip_prefix('{').unwrap_or_default();
    write_stamp(out, index, time_ns, process)?;
    out.write_all(b",")?;
    out.write_all(body.as_bytes())?;
    out.write_all(b"\n")
}

fn write_stamp(
    out: &mut impl Write,
    index: u64,
    time_ns: u64,
    process: &str,
) -> std::io::Result<()> {
    out.write_all(&KEY_INDEX[..])?;
    write!(out, "{index}")?;
    out.write_all(&KEY_TIME_NS[..])?;
    write!(out, "{time_ns}")?;
    out.write_all(&KEY_PROCESS[..])?;
    serde_json::to_writer(&mut *out, process)?;
    Ok(())
}

/// The fields of an op after its stamp, in the order clients write them.
#[derive(Serialize)]
struct Fields<'a> {
    #[serde(rename = "type")]
    kind: OpType,
    f: &'a str,
    value: &'a serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// Writes an op of the harness or the nemesis as a history line, with its newline.
#[allow(clippy::too_many_arguments)]
pub fn write_op(
    out: &mut impl Write,
    index: u64,
    time_ns: u64,
    process: &str,
    kind: OpType,
    f: F,
    value: &serde_json::Value,
    error: Option<&str>,
) -> std::io::Result<()> {
    let mut fields = Vec::new();
    serde_json::to_writer(
        &mut fields,
        &Fields {
            kind,
            f: f.name(),
            value,
            error,
        },
    )?;
    let text = String::from_utf8_lossy(&fields);
    write_stamped(out, index, time_ns, process, &text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Op;
    use serde_json::json;

    #[test]
    fn a_client_line_stamped_is_the_line_an_op_serialises_to() {
        let mut client = Vec::new();
        write_client_op(
            &mut client,
            OpType::Info,
            F::Send,
            Some(123_456_789),
            &json!({"id": 1}),
            Some("TIMED_OUT"),
        );
        let client = String::from_utf8(client).expect("utf8");
        assert_eq!(
            client,
            "{\"type\":\"info\",\"f\":\"send\",\"monotonic_ns\":123456789,\"value\":{\"id\":1},\"error\":\"TIMED_OUT\"}\n"
        );
        assert!(client
            .as_bytes()
            .starts_with(&client_prefix(OpType::Info, F::Send)));
        assert!(!client
            .as_bytes()
            .starts_with(&client_prefix(OpType::Ok, F::Send)));
        let mut line = Vec::new();
        write_stamped(&mut line, 7, 42, "producer-1", client.trim_end()).expect("write");
        let op: Op = serde_json::from_slice(&line).expect("an op");
        let again = serde_json::to_string(&op).expect("json") + "\n";
        assert_eq!(again.as_bytes(), line.as_slice());
        assert_eq!(op.name(), Some(F::Send));
        assert_eq!(op.monotonic_ns, Some(123_456_789));
    }

    #[test]
    fn a_line_without_the_monotonic_stamp_still_reads() {
        // A history written before issue 15: no `monotonic_ns`.
        let mut client = Vec::new();
        write_client_op(&mut client, OpType::Ok, F::Poll, None, &json!(null), None);
        assert_eq!(
            String::from_utf8(client.clone()).expect("utf8"),
            "{\"type\":\"ok\",\"f\":\"poll\",\"value\":null}\n"
        );
        let mut line = Vec::new();
        let text = String::from_utf8(client).expect("utf8");
        write_stamped(&mut line, 1, 2, "consumer-1", text.trim_end()).expect("write");
        let op: Op = serde_json::from_slice(&line).expect("an op");
        assert_eq!(op.monotonic_ns, None);
        let again = serde_json::to_string(&op).expect("json") + "\n";
        assert_eq!(again.as_bytes(), line.as_slice());
    }

    #[test]
    fn the_harness_writes_its_ops_in_the_same_order() {
        let mut line = Vec::new();
        write_op(
            &mut line,
            3,
            9,
            "nemesis",
            OpType::Ok,
            F::Kill,
            &json!({"node": "n1"}),
            None,
        )
        .expect("write");
        assert_eq!(
            String::from_utf8(line).expect("utf8"),
            "{\"index\":3,\"time_ns\":9,\"process\":\"nemesis\",\"type\":\"ok\",\"f\":\"kill\",\"value\":{\"node\":\"n1\"}}\n"
        );
    }
}
