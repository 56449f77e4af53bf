//! The fast path: a hand-rolled scanner for the hot lines of a history (`send`, `poll`, and the
//! flat-valued client ops `enqueue`, `accept`, `drop`, `process`, `offset_commit`, `seek`).
//!
//! It borrows from the line (no allocation unless a string holds an escape) and reads only the
//! fields the checker needs. Anything it does not fully understand — another `f`, a float where an
//! integer belongs, a malformed record, a duplicate key, invalid JSON — makes it answer `None`, and
//! the caller falls back to the generic `serde_json` path, which also produces the error message
//! (with its line number) for a line that is not valid.

use std::borrow::Cow;

use kaos_history::line::{
    KEY_ERROR, KEY_F, KEY_INDEX, KEY_MONOTONIC_NS, KEY_PROCESS, KEY_TIME_NS, KEY_TYPE, KEY_VALUE,
};
use kaos_history::F;

use crate::history::{Flat, OpType, Rec};
use crate::limits;

/// What a scanned line's value holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body<'a> {
    Flat(Flat<'a>),
    /// The records are in the caller's scratch vector.
    Records,
}

/// One scanned line.
#[derive(Debug, Clone)]
pub(crate) struct Line<'a> {
    pub index: u64,
    pub time_ns: u64,
    pub process: Cow<'a, str>,
    pub kind: OpType,
    pub f: F,
    /// The client's CLOCK_MONOTONIC stamp, when the line has one.
    pub monotonic_ns: Option<u64>,
    pub error: Option<Cow<'a, str>>,
    pub body: Body<'a>,
}

/// Whether the fast path handles ops named `f`, and how: `Some(true)` for a poll (records),
/// `Some(false)` for a flat value, `None` for the generic path.
#[inline]
fn shape(f: &str) -> Option<(F, bool)> {
    let f = F::from_name(f)?;
    let poll = match f {
        F::Poll => true,
        F::Send | F::Enqueue | F::Accept | F::Drop | F::Process | F::OffsetCommit | F::Seek => {
            false
        }
        // A transaction's micro-ops are nested: the generic path.
        F::Txn
        | F::Assign
        | F::Subscribe
        | F::Rebalance
        | F::EndOffsets
        | F::Start
        | F::ClientStart
        | F::ClientExit
        | F::NodeStart
        | F::Network
        | F::StopClients
        | F::FinalRead
        | F::ReplicasInSync
        | F::ReplicaDump
        | F::End
        | F::Kill
        | F::PowerLoss
        | F::Pause
        | F::DropCaches
        | F::Isolate
        | F::Split
        | F::CutClients
        | F::LinkFault
        | F::Restart
        | F::Resume
        | F::Heal
        | F::Sequence
        | F::ScheduleLate
        | F::Partition
        | F::Stop
        | F::Crash
        | F::Degrade => return None,
    };
    Some((f, poll))
}

/// Scans one line; `None` sends the caller to the generic path. `records` is cleared and filled
/// with a poll's records.
pub(crate) fn scan_line<'a>(line: &'a str, records: &mut Vec<Rec<'a>>) -> Option<Line<'a>> {
    records.clear();
    let mut c = Cursor {
        s: line,
        b: line.as_bytes(),
        i: 0,
    };
    if let Some(line) = c.line_in_order(records) {
        return Some(line);
    }
    records.clear();
    c.i = 0;
    c.ws();
    c.eat(b'{')?;
    let (mut index, mut time_ns, mut process, mut kind, mut f, mut error) =
        (None, None, None, None, None::<(F, bool)>, None);
    let mut monotonic_ns = None;
    let mut value: Option<(usize, usize)> = None;
    let mut body: Option<Body<'a>> = None;
    let mut seen_error = false;
    c.ws();
    if c.peek()? != b'}' {
        loop {
            c.ws();
            let key = c.string()?;
            c.ws();
            c.eat(b':')?;
            c.ws();
            match key.as_ref() {
                "index" => set(&mut index, c.u64()?)?,
                "time_ns" => set(&mut time_ns, c.u64()?)?,
                "monotonic_ns" => set(&mut monotonic_ns, c.u64()?)?,
                "process" => set(&mut process, c.string()?)?,
                "type" => set(&mut kind, OpType::from_name(&c.string()?)?)?,
                "f" => set(&mut f, shape(&c.string()?)?)?,
                "value" => {
                    if value.is_some() {
                        return None;
                    }
                    let start = c.i;
                    match f {
                        Some((_, poll)) => body = Some(c.body(poll, records)?),
                        None => c.skip()?,
                    }
                    value = Some((start, c.i));
                }
                "error" => {
                    if seen_error {
                        return None;
                    }
                    seen_error = true;
                    if c.peek()? == b'n' {
                        c.literal(b"null")?;
                    } else {
                        error = Some(c.string()?);
                    }
                }
                _ => c.skip()?,
            }
            c.ws();
            match c.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
    } else {
        c.i += 1;
    }
    c.ws();
    if c.i != c.b.len() {
        return None;
    }
    let (f, poll) = f?;
    let body = match (body, value) {
        (Some(body), _) => body,
        (None, Some((start, end))) => {
            let mut v = Cursor {
                s: &line[..end],
                b: &line.as_bytes()[..end],
                i: start,
            };
            v.body(poll, records)?
        }
        (None, None) if poll => Body::Records,
        (None, None) => Body::Flat(Flat::default()),
    };
    Some(Line {
        index: index?,
        time_ns: time_ns?,
        process: process?,
        kind: kind?,
        f,
        monotonic_ns,
        error,
        body,
    })
}

impl<'a> Cursor<'a> {
    /// The shape kaos writes (`kaos_history::line`), `{"index":…,"time_ns":…,"process":…,
    /// "type":…,"f":…[,"monotonic_ns":…],"value":…[,"error":…]}`, read without looking keys up; `None` on any other
    /// shape.
    #[inline]
    fn line_in_order(&mut self, records: &mut Vec<Rec<'a>>) -> Option<Line<'a>> {
        if !self.lit(KEY_INDEX) {
            return None;
        }
        let index = self.u64()?;
        if !self.lit(KEY_TIME_NS) {
            return None;
        }
        let time_ns = self.u64()?;
        if !self.lit(KEY_PROCESS) {
            return None;
        }
        let process = self.string()?;
        if !self.lit(KEY_TYPE) {
            return None;
        }
        let kind = OpType::from_name(&self.string()?)?;
        if !self.lit(KEY_F) {
            return None;
        }
        let (f, poll) = shape(&self.string()?)?;
        let monotonic_ns = if self.lit(KEY_MONOTONIC_NS) {
            Some(self.u64()?)
        } else {
            None
        };
        let body = if self.lit(KEY_VALUE) {
            self.body(poll, records)?
        } else if poll {
            Body::Records
        } else {
            Body::Flat(Flat::default())
        };
        let error = if self.lit(KEY_ERROR) {
            if self.lit(b"null") {
                None
            } else {
                Some(self.string()?)
            }
        } else {
            None
        };
        if !self.lit(b"}") {
            return None;
        }
        self.ws();
        if self.i != self.b.len() {
            return None;
        }
        Some(Line {
            index,
            time_ns,
            process,
            kind,
            f,
            monotonic_ns,
            error,
            body,
        })
    }
}

fn set<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None; // a duplicate key: serde rejects it, so the generic path reports it
    }
    *slot = Some(value);
    Some(())
}

struct Cursor<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    #[inline]
    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// A JSON string, borrowed unless it holds an escape. (Raw control characters inside a string,
    /// which JSON forbids, are not rejected here.)
    #[inline]
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.i;
        // The strings of a history are short (names, topics): a plain loop beats a vector search.
        let rest = &self.b[start..];
        let at = rest.iter().position(|&c| c == b'"' || c == b'\\')?;
        if self.b[start + at] == b'"' {
            self.i = start + at + 1;
            return self.s.get(start..start + at).map(Cow::Borrowed);
        }
        // An escape: find the closing quote, then let serde_json decode it.
        self.i = start + at;
        loop {
            let c = self.next()?;
            match c {
                b'"' => break,
                b'\\' => {
                    self.next()?;
                }
                _ => {}
            }
        }
        let end = self.i - 1;
        serde_json::from_str::<String>(self.s.get(start - 1..=end)?)
            .ok()
            .map(Cow::Owned)
    }

    /// Advances past `word` when the input continues with it.
    #[inline]
    fn lit<const N: usize>(&mut self, word: &[u8; N]) -> bool {
        if self.b.get(self.i..self.i + N) == Some(word.as_slice()) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    /// A JSON integer; a fraction or exponent is `None`.
    fn i64(&mut self) -> Option<i64> {
        let negative = self.peek()? == b'-';
        if negative {
            self.i += 1;
        }
        let magnitude = self.digits()?;
        if negative {
            if magnitude <= i64::MAX as u64 {
                Some(-(magnitude as i64))
            } else if magnitude == i64::MAX as u64 + 1 {
                Some(i64::MIN)
            } else {
                None
            }
        } else {
            i64::try_from(magnitude).ok()
        }
    }

    fn u64(&mut self) -> Option<u64> {
        self.digits()
    }

    fn digits(&mut self) -> Option<u64> {
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.i += 1;
        }
        let len = self.i - start;
        if len == 0 || (len > 1 && self.b[start] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return None;
        }
        Some(n)
    }

    /// `null` or a u64; any other value is `None` (the generic path decides).
    fn id(&mut self) -> Option<Option<u64>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            Some(None)
        } else {
            Some(Some(self.u64()?))
        }
    }

    /// Skips one JSON value, checking its structure.
    fn skip(&mut self) -> Option<()> {
        self.skip_at(0)
    }

    fn skip_at(&mut self, depth: usize) -> Option<()> {
        if depth > limits::JSON_DEPTH_MAX {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' => self.object(|c, _| c.skip_at(depth + 1)),
            b'[' => {
                self.i += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.skip_at(depth + 1)?;
                    self.ws();
                    match self.next()? {
                        b',' => continue,
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn number(&mut self) -> Option<()> {
        let start = self.i;
        while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.s.get(start..self.i)?.parse::<f64>().ok().map(|_| ())
    }

    fn body(&mut self, poll: bool, records: &mut Vec<Rec<'a>>) -> Option<Body<'a>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(if poll {
                Body::Records
            } else {
                Body::Flat(Flat::default())
            });
        }
        if poll {
            self.records(records)?;
            Some(Body::Records)
        } else {
            self.flat().map(Body::Flat)
        }
    }

    fn flat(&mut self) -> Option<Flat<'a>> {
        // The common shapes `{"id":17,"topic":"t"}` and `{…,"partition":0,"offset":42}`.
        let start = self.i;
        if self.lit(br#"{"id":"#) {
            let fast = (|| {
                let id = self.id()?;
                if !self.lit(br#","topic":"#) {
                    return None;
                }
                let topic = Some(self.string()?);
                let mut flat = Flat {
                    id,
                    topic,
                    ..Flat::default()
                };
                if self.lit(br#","partition":"#) {
                    flat.partition = Some(self.i64()?);
                    if !self.lit(br#","offset":"#) {
                        return None;
                    }
                    flat.offset = Some(self.i64()?);
                }
                self.lit(b"}").then_some(flat)
            })();
            if fast.is_some() {
                return fast;
            }
        }
        self.i = start;
        let mut flat = Flat::default();
        self.object(|c, key| {
            match key {
                "id" => flat.id = c.id()?,
                "topic" => flat.topic = Some(c.string()?),
                "partition" => flat.partition = Some(c.i64()?),
                "offset" => flat.offset = Some(c.i64()?),
                "group" => flat.group = Some(c.string()?),
                _ => c.skip()?,
            }
            Some(())
        })?;
        Some(flat)
    }

    /// `{"records":[{…},…], …}`: every record must be well formed, else `None`.
    fn records(&mut self, records: &mut Vec<Rec<'a>>) -> Option<()> {
        let mut found = false;
        self.object(|c, key| {
            if key != "records" {
                return c.skip();
            }
            found = true;
            c.eat(b'[')?;
            c.ws();
            if c.peek()? == b']' {
                c.i += 1;
                return Some(());
            }
            loop {
                c.ws();
                if let Some(record) = c.record_in_order() {
                    records.push(record);
                    c.ws();
                    match c.next()? {
                        b',' => continue,
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
                let (mut topic, mut partition, mut offset, mut id, mut high_watermark) =
                    (None, None, None, None, None);
                c.object(|c, key| {
                    match key {
                        "topic" => topic = Some(c.string()?),
                        "partition" => partition = Some(i32::try_from(c.i64()?).ok()?),
                        "offset" => offset = Some(c.i64()?),
                        "id" => id = c.id()?,
                        kaos_history::record::HIGH_WATERMARK => high_watermark = Some(c.i64()?),
                        _ => c.skip()?,
                    }
                    Some(())
                })?;
                records.push(Rec {
                    topic: topic?,
                    partition: partition?,
                    offset: offset?,
                    id,
                    high_watermark,
                });
                c.ws();
                match c.next()? {
                    b',' => continue,
                    b']' => return Some(()),
                    _ => return None,
                }
            }
        })?;
        found.then_some(())
    }

    /// The common shape `{"topic":"t","partition":0,"offset":4,"id":17}` (optionally with
    /// `,"high_watermark":5` last) read without looking keys up; on any other shape the cursor
    /// is left where it was and `None` returned.
    #[inline]
    fn record_in_order(&mut self) -> Option<Rec<'a>> {
        let start = self.i;
        let record = (|| {
            if !self.lit(br#"{"topic":"#) {
                return None;
            }
            let topic = self.string()?;
            if !self.lit(br#","partition":"#) {
                return None;
            }
            let partition = i32::try_from(self.i64()?).ok()?;
            if !self.lit(br#","offset":"#) {
                return None;
            }
            let offset = self.i64()?;
            if !self.lit(br#","id":"#) {
                return None;
            }
            let id = self.id()?;
            let high_watermark = if self.lit(br#","high_watermark":"#) {
                Some(self.i64()?)
            } else {
                None
            };
            if !self.lit(b"}") {
                return None;
            }
            Some(Rec {
                topic,
                partition,
                offset,
                id,
                high_watermark,
            })
        })();
        if record.is_none() {
            self.i = start;
        }
        record
    }

    /// An object; `field` reads each value (the cursor is at the value).
    fn object(&mut self, mut field: impl FnMut(&mut Self, &str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            field(self, &key)?;
            self.ws();
            match self.next()? {
                b',' => continue,
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(line: &str) -> Option<(Line<'_>, Vec<Rec<'_>>)> {
        let mut records = Vec::new();
        let line = scan_line(line, &mut records)?;
        Some((line, records))
    }

    #[test]
    fn scans_a_send_ok() {
        let (line, _) = scan(r#"{"index":3,"time_ns":10,"process":"p-1","type":"ok","f":"send","value":{"id":17,"topic":"kaos","partition":2,"offset":42,"extra":[1,{"a":"b"}]}}"#).expect("fast");
        assert_eq!(line.index, 3);
        assert_eq!(line.kind, OpType::Ok);
        let Body::Flat(flat) = line.body else {
            panic!("flat")
        };
        assert_eq!(flat.id, Some(17));
        assert_eq!(flat.partition, Some(2));
        assert_eq!(flat.offset, Some(42));
        assert_eq!(flat.topic.as_deref(), Some("kaos"));
    }

    #[test]
    fn scans_a_poll_with_value_before_f() {
        let (line, records) = scan(r#"{"value":{"records":[{"topic":"t\u0041","partition":0,"offset":4,"id":null},{"id":5,"offset":5,"partition":1,"topic":"t"}]},"index":1,"time_ns":2,"process":"c","type":"ok","f":"poll","error":null}"#).expect("fast");
        assert_eq!(line.body, Body::Records);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].topic, "tA");
        assert_eq!(records[0].id, None);
        assert_eq!(records[1].id, Some(5));
    }

    #[test]
    fn reads_a_record_s_high_watermark_in_either_shape() {
        let (_, records) = scan(r#"{"index":1,"time_ns":2,"process":"c","type":"ok","f":"poll","value":{"records":[{"topic":"t","partition":0,"offset":4,"id":7,"high_watermark":4},{"high_watermark":9,"id":8,"offset":5,"partition":0,"topic":"t"},{"topic":"t","partition":0,"offset":6,"id":9}]}}"#).expect("fast");
        let marks: Vec<Option<i64>> = records.iter().map(|r| r.high_watermark).collect();
        assert_eq!(marks, vec![Some(4), Some(9), None]);
        // A high watermark that is not an integer is not a record the fast path understands.
        assert!(scan(r#"{"index":1,"time_ns":2,"process":"c","type":"ok","f":"poll","value":{"records":[{"topic":"t","partition":0,"offset":4,"id":7,"high_watermark":"x"}]}}"#).is_none());
    }

    #[test]
    fn falls_back_on_anything_unusual() {
        for line in [
            r#"{"index":0,"time_ns":0,"process":"n","type":"ok","f":"kill","value":{"node":"n1"}}"#,
            r#"{"index":0,"time_ns":0,"process":"p","type":"ok","f":"send","value":{"id":1.5}}"#,
            r#"{"index":0,"index":1,"time_ns":0,"process":"p","type":"ok","f":"send"}"#,
            r#"{"index":0,"time_ns":0,"process":"p","type":"ok","f":"send"} x"#,
            r#"{"index":0,"time_ns":0,"process":"p","type":"ok","f":"send""#,
            r#"{"index":0,"time_ns":0,"process":"c","type":"ok","f":"poll","value":{"records":[{"topic":"t","offset":1}]}}"#,
            r#"{"index":0,"time_ns":0,"process":"c","type":"maybe","f":"poll"}"#,
            r#"{"index":0,"process":"c","type":"ok","f":"poll"}"#,
        ] {
            assert!(scan(line).is_none(), "{line}");
        }
    }

    #[test]
    fn skips_nested_unknown_values() {
        let (line, _) = scan(r#"{"index":0,"time_ns":0,"process":"p","type":"invoke","f":"send","meta":{"a":[1,2,{"b":[]},{}],"c":{"d":"e,f"}},"value":{"id":1}}"#).expect("fast");
        assert_eq!(
            line.body,
            Body::Flat(Flat {
                id: Some(1),
                ..Flat::default()
            })
        );
    }

    #[test]
    fn the_monotonic_stamp_is_read_in_any_field_order_and_may_be_absent() {
        let mut records = Vec::new();
        let stamp = |line: &str| {
            let mut records = Vec::new();
            scan_line(line, &mut records).map(|l| (l.index, l.monotonic_ns))
        };
        let in_order = r#"{"index":1,"time_ns":2,"process":"p","type":"ok","f":"send","monotonic_ns":77,"value":{"id":1}}"#;
        let reordered = r#"{"monotonic_ns":77,"index":1,"time_ns":2,"process":"p","type":"ok","f":"send","value":{"id":1}}"#;
        let without =
            r#"{"index":1,"time_ns":2,"process":"p","type":"ok","f":"send","value":{"id":1}}"#;
        assert_eq!(stamp(in_order), Some((1, Some(77))));
        assert_eq!(stamp(reordered), Some((1, Some(77))));
        assert_eq!(stamp(without), Some((1, None)));
        // A stamp that is not an integer sends the line to the generic path (which names it).
        let odd = r#"{"index":1,"time_ns":2,"process":"p","type":"ok","f":"send","monotonic_ns":"x","value":{"id":1}}"#;
        assert!(scan_line(odd, &mut records).is_none());
        assert!(crate::history::parse_op(odd, 4)
            .expect_err("not a u64")
            .to_string()
            .contains("line 4"));
    }

    #[test]
    fn the_fast_path_reads_the_lines_kaos_writes() {
        use kaos_history::line::{write_client_op, write_stamped};
        let value = serde_json::json!({"id": 17, "topic": "kaos", "partition": 2, "offset": 42});
        let mut client = Vec::new();
        write_client_op(
            &mut client,
            OpType::Ok,
            F::Send,
            Some(99),
            &value,
            Some("x"),
        );
        let client = String::from_utf8(client).expect("utf8");
        let mut line = Vec::new();
        write_stamped(&mut line, 5, 6, "producer-1", &client).expect("write");
        let text = String::from_utf8(line).expect("utf8");
        let mut c = Cursor {
            s: text.trim_end(),
            b: text.trim_end().as_bytes(),
            i: 0,
        };
        let mut records = Vec::new();
        let line = c.line_in_order(&mut records).expect("the in-order shape");
        assert_eq!(
            (
                line.index,
                line.time_ns,
                line.kind,
                line.f,
                line.monotonic_ns
            ),
            (5, 6, OpType::Ok, F::Send, Some(99))
        );
        assert_eq!(line.process, "producer-1");
        assert_eq!(line.error.as_deref(), Some("x"));
        let Body::Flat(flat) = line.body else {
            panic!("flat")
        };
        assert_eq!((flat.id, flat.offset), (Some(17), Some(42)));
    }
}
