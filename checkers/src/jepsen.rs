//! Jepsen Kafka-workload histories (`jepsen.tests.kafka`): EDN in, kaos ops out, then the same
//! checker. `kaos check --format jepsen history.edn` calls [`check_edn`].
//!
//! The mapping (also in `docs/history.md`):
//! - each op map `{:index :time :type :process :f :value :error}` becomes one or more kaos ops
//!   with the same `index`; `:time` (ns) is `time_ns`; `:process` n is `jepsen-<n>`, `:nemesis`
//!   is `nemesis`;
//! - `:f :send`, `:poll`, `:txn` carry micro-ops: `[:send k v]` is a kaos `send` of message `v`
//!   (invoke) and `[:send k [offset v]]` its ack at partition `k`, offset `offset` (ok);
//!   `[:poll {k [[offset v] …]}]` is a kaos `poll` ok with those records; a `:fail`/`:info`
//!   completion fails/leaves unknown each of its sends — except an `:info` one that an `:ok`
//!   poll proves committed (it read one of its sends): its sends are acks, at the offsets the
//!   completion gave or where an `:ok` poll read them; the polls of a `:fail`/`:info` completion
//!   are `poll` `fail`/`info` ops with their records (checked against the consumer's position,
//!   which they do not move);
//! - every key is a partition of topic `jepsen` (an integer key is the partition number; any other
//!   key gets the next free number); every value is a message id — unless one value appears under
//!   two keys, then the id is `key_number << 32 | value` (and a note says so);
//! - `:assign` / `:subscribe` (value: the keys) become `assign` / `subscribe`, which reset the
//!   consumer's expected offsets (no offset commits: the next read may start anywhere);
//! - nemesis ops keep their `:f` except `:start-partition` → `partition`, `:stop-partition` →
//!   `heal`, `:start` → `restart`; their value's nodes become `{"nodes": [...]}`;
//! - other ops (`:crash`, `:debug-topic-partitions`, …) are kept as ops without meaning to the
//!   checker. Jepsen has no final-read phase, so loss is judged by Jepsen's own definition (never
//!   read although reads of the partition went past its offset) and the verdict is at best
//!   `unknown`.

use std::collections::HashMap;

use crate::analysis::Analysis;
use crate::checker::Checker;
use crate::elle::{self, Mop, Outcome, Txn};
use crate::expect::Expectations;
use crate::history::{HistoryError, Op, OpType};
use crate::limits;
use kaos_history::F;

/// One EDN value.
#[derive(Debug, Clone, PartialEq)]
pub enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Char(char),
    /// Without the leading colon.
    Keyword(String),
    Symbol(String),
    List(Vec<Edn>),
    Vector(Vec<Edn>),
    Map(Vec<(Edn, Edn)>),
    Set(Vec<Edn>),
    /// `#tag value`, e.g. `#inst "…"` or a record `#jepsen.history.Op{…}`.
    Tagged(String, Box<Edn>),
}

impl Edn {
    /// The value under keyword `key` of a map (or of a tagged map: a record).
    pub fn get(&self, key: &str) -> Option<&Edn> {
        match self {
            Edn::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Edn::Keyword(name) if name == key))
                .map(|(_, v)| v),
            Edn::Tagged(_, inner) => inner.get(key),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Edn::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_keyword(&self) -> Option<&str> {
        match self {
            Edn::Keyword(k) => Some(k),
            _ => None,
        }
    }

    /// The elements of a vector or list.
    pub fn items(&self) -> Option<&[Edn]> {
        match self {
            Edn::Vector(items) | Edn::List(items) => Some(items),
            _ => None,
        }
    }

    fn is_map(&self) -> bool {
        match self {
            Edn::Map(_) => true,
            Edn::Tagged(_, inner) => inner.is_map(),
            _ => false,
        }
    }

    /// The value as JSON (keywords and symbols as strings), for op values kaos does not read.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(*b),
            Edn::Int(n) => Value::from(*n),
            Edn::Float(x) => Value::from(*x),
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => Value::String(s.clone()),
            Edn::Char(c) => Value::String(c.to_string()),
            Edn::List(items) | Edn::Vector(items) | Edn::Set(items) => {
                Value::Array(items.iter().map(Edn::to_json).collect())
            }
            Edn::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (key_text(k), v.to_json()))
                    .collect(),
            ),
            Edn::Tagged(_, inner) => inner.to_json(),
        }
    }
}

fn key_text(key: &Edn) -> String {
    match key {
        Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => s.clone(),
        other => other.to_json().to_string(),
    }
}

/// Reads every top-level EDN form of `text`, each with its 1-based starting line.
pub fn read_edn(text: &str) -> Result<Vec<(usize, Edn)>, HistoryError> {
    let mut reader = Reader {
        s: text,
        b: text.as_bytes(),
        i: 0,
        line: 1,
    };
    let mut forms = Vec::new();
    loop {
        reader.skip_blank()?;
        if reader.i >= reader.b.len() {
            return Ok(forms);
        }
        let line = reader.line;
        match reader.form(0)? {
            Some(form) => forms.push((line, form)),
            None => return Err(reader.error("a closing delimiter without its opening one")),
        }
    }
}

struct Reader<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    line: usize,
}

impl Reader<'_> {
    fn error(&self, reason: impl Into<String>) -> HistoryError {
        let mut at = self.i.min(self.s.len());
        // At the end of the text, the error is about its last form: name the line of its last
        // character, not the empty one after a final newline.
        if at == self.s.len() {
            at = self.s.trim_end().len().saturating_sub(1);
        }
        while !self.s.is_char_boundary(at) {
            at -= 1;
        }
        let line = self.s.as_bytes()[..at]
            .iter()
            .filter(|&&c| c == b'\n')
            .count()
            + 1;
        let start = self.s[..at].rfind('\n').map_or(0, |n| n + 1);
        let end = self.s[start..]
            .find('\n')
            .map_or(self.s.len(), |n| start + n);
        let quote: String = self.s[start..end]
            .chars()
            .take(limits::LINE_QUOTE_CHARS_MAX)
            .collect();
        HistoryError::InvalidLine {
            line_number: line,
            reason: format!("not valid EDN: {}", reason.into()),
            quote,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// Whitespace, commas, comments and `#_` discards.
    fn skip_blank(&mut self) -> Result<(), HistoryError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n' | b',') => {
                    self.bump();
                }
                Some(b';') => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.i += 1;
                    }
                }
                Some(b'#') if self.b.get(self.i + 1) == Some(&b'_') => {
                    self.i += 2;
                    self.skip_blank()?;
                    if self.form(1)?.is_none() {
                        return Err(self.error("#_ discards nothing"));
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// One form; `None` at a closing delimiter (left in place).
    fn form(&mut self, depth: usize) -> Result<Option<Edn>, HistoryError> {
        if depth > limits::EDN_DEPTH_MAX {
            return Err(self.error("nested too deeply"));
        }
        self.skip_blank()?;
        let Some(c) = self.peek() else {
            return Err(self.error("the text ends inside a form"));
        };
        let value = match c {
            b')' | b']' | b'}' => return Ok(None),
            b'(' => Edn::List(self.seq(b')', depth)?),
            b'[' => Edn::Vector(self.seq(b']', depth)?),
            b'{' => {
                let items = self.seq(b'}', depth)?;
                if items.len() % 2 != 0 {
                    return Err(self.error("a map with an odd number of forms"));
                }
                let mut entries = Vec::with_capacity(items.len() / 2);
                let mut items = items.into_iter();
                while let (Some(k), Some(v)) = (items.next(), items.next()) {
                    entries.push((k, v));
                }
                Edn::Map(entries)
            }
            b'"' => Edn::Str(self.string()?),
            b'\\' => {
                self.i += 1;
                let token = self.token();
                let ch = match token {
                    "newline" => '\n',
                    "space" => ' ',
                    "tab" => '\t',
                    "return" => '\r',
                    t => t
                        .chars()
                        .next()
                        .ok_or_else(|| self.error("an empty character"))?,
                };
                Edn::Char(ch)
            }
            b'#' => {
                self.i += 1;
                match self.peek() {
                    Some(b'{') => Edn::Set(self.seq(b'}', depth)?),
                    _ => {
                        let tag = self.token().to_owned();
                        if tag.is_empty() {
                            return Err(self.error("a # without a tag"));
                        }
                        let inner = self
                            .form(depth + 1)?
                            .ok_or_else(|| self.error(format!("#{tag} tags nothing")))?;
                        Edn::Tagged(tag, Box::new(inner))
                    }
                }
            }
            b':' => {
                self.i += 1;
                let name = self.token();
                if name.is_empty() {
                    return Err(self.error("an empty keyword"));
                }
                Edn::Keyword(name.to_owned())
            }
            _ => {
                let token = self.token().to_owned();
                if token.is_empty() {
                    return Err(self.error(format!("unexpected character {:?}", c as char)));
                }
                atom(&token).ok_or_else(|| self.error(format!("cannot read {token:?}")))?
            }
        };
        Ok(Some(value))
    }

    fn seq(&mut self, close: u8, depth: usize) -> Result<Vec<Edn>, HistoryError> {
        self.i += 1; // the opening delimiter
        let mut items = Vec::new();
        loop {
            self.skip_blank()?;
            match self.peek() {
                None => return Err(self.error("the text ends inside a collection")),
                Some(c) if c == close => {
                    self.i += 1;
                    return Ok(items);
                }
                Some(b')' | b']' | b'}') => {
                    return Err(self.error(format!("expected {:?}", close as char)))
                }
                Some(_) => {
                    if let Some(item) = self.form(depth + 1)? {
                        items.push(item);
                    }
                }
            }
        }
    }

    fn token(&mut self) -> &str {
        let start = self.i;
        while let Some(c) = self.peek() {
            if matches!(
                c,
                b' ' | b'\t'
                    | b'\r'
                    | b'\n'
                    | b','
                    | b'('
                    | b')'
                    | b'['
                    | b']'
                    | b'{'
                    | b'}'
                    | b'"'
                    | b';'
            ) {
                break;
            }
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    fn string(&mut self) -> Result<String, HistoryError> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' {
                    break;
                }
                self.bump();
            }
            out.push_str(&self.s[start..self.i]);
            match self.bump() {
                Some(b'"') => return Ok(out),
                Some(b'\\') => {
                    let escaped = match self.bump() {
                        Some(b'n') => '\n',
                        Some(b't') => '\t',
                        Some(b'r') => '\r',
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'u') => {
                            let hex = self.s.get(self.i..self.i + 4).unwrap_or("");
                            let code = u32::from_str_radix(hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| self.error("a bad \\u escape"))?;
                            self.i += 4;
                            code
                        }
                        _ => return Err(self.error("a bad escape in a string")),
                    };
                    out.push(escaped);
                }
                _ => return Err(self.error("the text ends inside a string")),
            }
        }
    }
}

fn atom(token: &str) -> Option<Edn> {
    match token {
        "nil" => return Some(Edn::Nil),
        "true" => return Some(Edn::Bool(true)),
        "false" => return Some(Edn::Bool(false)),
        _ => {}
    }
    let first = token.as_bytes()[0];
    let numeric = first.is_ascii_digit()
        || ((first == b'-' || first == b'+')
            && token.len() > 1
            && token.as_bytes()[1].is_ascii_digit());
    if !numeric {
        return Some(Edn::Symbol(token.to_owned()));
    }
    let digits = token.trim_end_matches(['N', 'M']);
    if let Ok(n) = digits.parse::<i64>() {
        return Some(Edn::Int(n));
    }
    if let Some((a, b)) = digits.split_once('/') {
        let (a, b) = (a.parse::<f64>().ok()?, b.parse::<f64>().ok()?);
        return Some(Edn::Float(a / b));
    }
    digits.parse::<f64>().ok().map(Edn::Float)
}

/// Checks a Jepsen Kafka-workload history (EDN) with the kaos checker: the cycle analysis's
/// defaults, but no realtime order (see [`jepsen_options`]).
pub fn check_edn(text: &str, expect: Expectations) -> Result<Analysis, HistoryError> {
    check_edn_with(text, expect, jepsen_options())
}

/// The cycle analysis's options for a Jepsen history: the defaults without realtime edges.
/// Jepsen writes its histories in real-time order and Elle reads realtime edges from it, but the
/// histories of Jepsen's own tests (kafka_test.clj) list a send after the polls that read it, for
/// brevity: read in real time, each is a read from the future (G1c-realtime) those tests do not
/// mean. Set `realtime` (`kaos check --format jepsen --realtime`) for a history a real test wrote.
pub fn jepsen_options() -> elle::Options {
    elle::Options {
        realtime: false,
        ..elle::Options::default()
    }
}

/// [`check_edn`] with the cycle analysis's options (e.g. ww dependencies, Jepsen's `:ww-deps`).
pub fn check_edn_with(
    text: &str,
    expect: Expectations,
    options: elle::Options,
) -> Result<Analysis, HistoryError> {
    let (ops, notes, txns) = translate_edn(text)?;
    let mut checker = Checker::new(expect);
    for op in &ops {
        checker.observe(op);
    }
    for note in notes {
        checker.note(note);
    }
    checker.note(
        "Jepsen history: there is no final-read phase, so loss is judged by Jepsen's definition (acknowledged, never read, although reads of the partition went past its offset).",
    );
    checker.transactions(txns, TOPIC, options);
    Ok(checker.finish())
}

/// The kaos ops a Jepsen history stands for, and notes about the translation.
pub fn ops_from_edn(text: &str) -> Result<(Vec<Op>, Vec<String>), HistoryError> {
    translate_edn(text).map(|(ops, notes, _)| (ops, notes))
}

/// The kaos ops, the notes, and the transactions (every completed `:send`, `:poll` or `:txn`).
fn translate_edn(text: &str) -> Result<(Vec<Op>, Vec<String>, Vec<Txn>), HistoryError> {
    let forms = read_edn(text)?;
    // A history is one op map per form, or one vector of op maps.
    let ops: Vec<(usize, &Edn)> = match forms.as_slice() {
        [(line, Edn::Vector(items))] if items.iter().all(Edn::is_map) => {
            items.iter().map(|op| (*line, op)).collect()
        }
        _ => forms.iter().map(|(line, op)| (*line, op)).collect(),
    };
    let mut translator = Translator::default();
    for (line, op) in &ops {
        if !op.is_map() {
            return Err(HistoryError::InvalidLine {
                line_number: *line,
                reason: "not a Jepsen op: expected a map like {:type :invoke, :f :send, …}"
                    .to_owned(),
                quote: String::new(),
            });
        }
        translator.scan_values(op);
    }
    translator.packed = translator.value_keys.values().any(|keys| keys.len() > 1);
    for (position, (line, op)) in ops.iter().enumerate() {
        translator.scan_txn(*line, position, op)?;
    }
    translator.prove_commits();
    let mut out = Vec::new();
    for (position, (line, op)) in ops.iter().enumerate() {
        translator.translate(*line, position, op, &mut out)?;
    }
    let mut notes = Vec::new();
    if translator.proven.iter().any(|p| *p) {
        notes.push(
            "Jepsen :info transactions whose send an :ok poll read committed (Jepsen's \
             must-have-committed): their sends count as acknowledged, at the offsets their \
             completion gave or, without one, where an :ok poll read them."
                .to_owned(),
        );
    }
    if translator.packed {
        notes.push(
            "Jepsen values repeat across keys, so message ids are key_number << 32 | value."
                .to_owned(),
        );
    }
    Ok((out, notes, translator.txns))
}

#[derive(Default)]
struct Translator {
    /// Key → partition number.
    keys: Vec<(Edn, i32)>,
    /// Value → the partitions it was sent to or read from.
    value_keys: HashMap<i64, Vec<i32>>,
    packed: bool,
    /// Each completed `:send` / `:poll` / `:txn` op as a transaction, for the cycle analysis.
    txns: Vec<Txn>,
    /// Process name → number, for the transactions.
    processes: HashMap<String, u32>,
    /// Op position → its transaction's place in `txns` (completions of sends, polls and txns).
    txn_at: HashMap<usize, usize>,
    /// Per transaction: an `:info` one that must have committed, since an `:ok` poll read one
    /// of its sends (Jepsen's `must-have-committed?`).
    proven: Vec<bool>,
    /// (partition, id) → the lowest offset an `:ok` poll read it at.
    ok_reads: HashMap<(u32, u64), i64>,
    /// Process name → the position of its open `:send` / `:poll` / `:txn` invoke.
    open_invokes: HashMap<String, usize>,
}

const TOPIC: &str = "jepsen";

impl Translator {
    fn partition(&mut self, key: &Edn) -> i32 {
        if let Some((_, p)) = self.keys.iter().find(|(k, _)| k == key) {
            return *p;
        }
        let p = match key.as_int().and_then(|k| i32::try_from(k).ok()) {
            Some(k) if k >= 0 && !self.keys.iter().any(|(_, p)| *p == k) => k,
            _ => self
                .keys
                .iter()
                .map(|(_, p)| *p + 1)
                .max()
                .unwrap_or(0)
                .max(1 << 20),
        };
        self.keys.push((key.clone(), p));
        p
    }

    fn id(&self, partition: i32, value: i64) -> Option<u64> {
        let value = u64::try_from(value).ok()?;
        if self.packed {
            Some((u64::try_from(partition).ok()? << 32) | (value & 0xFFFF_FFFF))
        } else {
            Some(value)
        }
    }

    fn note_value(&mut self, key: &Edn, value: Option<i64>) {
        let partition = self.partition(key);
        if let Some(v) = value {
            let keys = self.value_keys.entry(v).or_default();
            if !keys.contains(&partition) {
                keys.push(partition);
            }
        }
    }

    /// First pass: which values appear under which keys.
    fn scan_values(&mut self, op: &Edn) {
        let Some(mops) = op.get("value").and_then(Edn::items) else {
            return;
        };
        for mop in mops {
            let Some(parts) = mop_parts(mop) else {
                continue;
            };
            match parts {
                (Some("send"), Some(key), Some(v)) => {
                    self.note_value(key, send_value(v).1);
                }
                (Some("poll"), Some(Edn::Map(by_key)), _) => {
                    for (key, pairs) in by_key {
                        for pair in pairs.items().unwrap_or(&[]) {
                            let value = pair.items().and_then(|p| p.get(1)).and_then(Edn::as_int);
                            self.note_value(key, value);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn translate(
        &mut self,
        line: usize,
        position: usize,
        op: &Edn,
        out: &mut Vec<Op>,
    ) -> Result<(), HistoryError> {
        let head = header(line, position, op)?;
        let value = op.get("value").unwrap_or(&Edn::Nil);
        if head.process == "nemesis" {
            out.push(head.op(nemesis_name(&head.f), nemesis_value(value)));
            return Ok(());
        }
        match head.f.as_str() {
            "send" | "poll" | "txn" => {
                let proven = self.txn_at.get(&position).is_some_and(|&t| self.proven[t]);
                for mop in value.items().unwrap_or(&[]) {
                    if let Some(op) = self.micro_op(&head, mop, proven) {
                        out.push(op);
                    }
                }
            }
            "assign" | "subscribe" => {
                let keys = value.items().unwrap_or(&[]).to_vec();
                let partitions: Vec<i32> = keys.iter().map(|k| self.partition(k)).collect();
                out.push(head.op(
                    &head.f,
                    serde_json::json!({
                        "topic": TOPIC, "partitions": partitions, "keeps_positions": true,
                    }),
                ));
            }
            other => out.push(head.op(other, value.to_json())),
        }
        Ok(())
    }

    /// Second pass: each completed `:send` / `:poll` / `:txn` op as a transaction. Its realtime
    /// stamps are positions in the history, which Jepsen writes in real-time order (Elle's
    /// realtime graph reads that order too): its invoke's, and its completion's when `:ok`.
    fn scan_txn(&mut self, line: usize, position: usize, op: &Edn) -> Result<(), HistoryError> {
        let head = header(line, position, op)?;
        if head.process == "nemesis" || !matches!(head.f.as_str(), "send" | "poll" | "txn") {
            return Ok(());
        }
        if head.kind == OpType::Invoke {
            self.open_invokes.insert(head.process.clone(), position);
            return Ok(());
        }
        let mut txn = self.txn(&head, op.get("value").unwrap_or(&Edn::Nil));
        txn.invoked_ns = self.open_invokes.remove(&head.process).map(|p| p as u64);
        txn.completed_ns = (head.kind == OpType::Ok).then_some(position as u64);
        self.txn_at.insert(position, self.txns.len());
        self.txns.push(txn);
        Ok(())
    }

    /// Which `:info` transactions an `:ok` poll proves committed, and where `:ok` polls read
    /// each message.
    fn prove_commits(&mut self) {
        for txn in self.txns.iter().filter(|t| t.outcome == Outcome::Ok) {
            for mop in &txn.mops {
                if let Mop::Read { key, offset, value } = *mop {
                    let at = self.ok_reads.entry((key, value)).or_insert(offset);
                    *at = (*at).min(offset);
                }
            }
        }
        let ok_reads = &self.ok_reads;
        self.proven = self
            .txns
            .iter()
            .map(|t| {
                t.outcome == Outcome::Info
                    && t.mops.iter().any(|m| {
                        matches!(*m, Mop::Send { key, value, .. }
                            if ok_reads.contains_key(&(key, value)))
                    })
            })
            .collect();
    }

    /// A completed op's micro-ops as a transaction: sends with the offsets their completion gave,
    /// and every record its polls returned.
    fn txn(&mut self, head: &Header, value: &Edn) -> Txn {
        let next = self.processes.len() as u32;
        let process = *self.processes.entry(head.process.clone()).or_insert(next);
        let mut mops = Vec::new();
        for mop in value.items().unwrap_or(&[]) {
            let Some(parts) = mop_parts(mop) else {
                continue;
            };
            match parts {
                (Some("send"), Some(key), Some(v)) => {
                    let partition = self.partition(key);
                    let (offset, value) = send_value(v);
                    if let Some(value) = value.and_then(|v| self.id(partition, v)) {
                        let key = partition as u32;
                        mops.push(Mop::Send { key, value, offset });
                    }
                }
                (Some("poll"), Some(Edn::Map(by_key)), _) => {
                    for (key, pairs) in by_key {
                        let partition = self.partition(key);
                        for pair in pairs.items().unwrap_or(&[]) {
                            let Some([o, v, ..]) = pair.items() else {
                                continue;
                            };
                            let value = v.as_int().and_then(|v| self.id(partition, v));
                            if let (Some(offset), Some(value)) = (o.as_int(), value) {
                                let key = partition as u32;
                                mops.push(Mop::Read { key, offset, value });
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let outcome = match head.kind {
            OpType::Ok => Outcome::Ok,
            OpType::Fail => Outcome::Fail,
            OpType::Info | OpType::Invoke => Outcome::Info,
        };
        Txn {
            index: head.index,
            process,
            outcome,
            mops,
            invoked_ns: None,
            completed_ns: None,
        }
    }

    /// One `[:send k v]` or `[:poll {k [[o v] …]}]` micro-op as a kaos `send` or `poll`. The
    /// sends of a `proven` `:info` transaction are acknowledged (`ok`), at the offset the
    /// completion gave or the one an `:ok` poll read them at. The polls of a `:fail` / `:info`
    /// transaction are `poll` `fail` / `info` ops with their records.
    fn micro_op(&mut self, head: &Header, mop: &Edn, proven: bool) -> Option<Op> {
        match mop_parts(mop)? {
            (Some("send"), Some(key), v) => {
                let partition = self.partition(key);
                let (offset, value) = v.map_or((None, None), send_value);
                let id = value.and_then(|v| self.id(partition, v));
                let mut json = serde_json::json!({ "id": id, "topic": TOPIC });
                let offset = match (proven, offset, id) {
                    (true, None, Some(id)) => self.ok_reads.get(&(partition as u32, id)).copied(),
                    _ => offset,
                };
                let mut op = head.op(F::Send.name(), serde_json::Value::Null);
                if proven {
                    op.kind = OpType::Ok;
                    op.error = None;
                }
                if let (OpType::Ok, Some(offset)) = (op.kind, offset) {
                    json["partition"] = partition.into();
                    json["offset"] = offset.into();
                }
                op.value = json;
                Some(op)
            }
            (Some("poll"), Some(Edn::Map(by_key)), _) if head.kind != OpType::Invoke => {
                let mut records = Vec::new();
                for (key, pairs) in by_key {
                    let partition = self.partition(key);
                    for pair in pairs.items().unwrap_or(&[]) {
                        let Some([o, v, ..]) = pair.items() else {
                            continue;
                        };
                        let Some(offset) = o.as_int() else { continue };
                        let id = v.as_int().and_then(|v| self.id(partition, v));
                        records.push(serde_json::json!({
                            "topic": TOPIC, "partition": partition,
                            "offset": offset, "id": id,
                        }));
                    }
                }
                Some(head.op(F::Poll.name(), serde_json::json!({ "records": records })))
            }
            _ => None,
        }
    }
}

/// A micro-op `[:f key value]` as its keyword, key and value.
fn mop_parts(mop: &Edn) -> Option<(Option<&str>, Option<&Edn>, Option<&Edn>)> {
    let parts = mop.items()?;
    Some((
        parts.first().and_then(Edn::as_keyword),
        parts.get(1),
        parts.get(2),
    ))
}

/// A send's value: `v` (invoke) or `[offset v]` (completion), as (offset, value).
fn send_value(v: &Edn) -> (Option<i64>, Option<i64>) {
    match (v, v.items()) {
        (Edn::Int(v), _) => (None, Some(*v)),
        (_, Some([o, v, ..])) => (o.as_int(), v.as_int()),
        _ => (None, None),
    }
}

/// The fields of a Jepsen op every kaos op made from it shares.
struct Header {
    index: u64,
    time_ns: u64,
    process: String,
    kind: OpType,
    f: String,
    error: Option<String>,
}

impl Header {
    fn op(&self, f: &str, value: serde_json::Value) -> Op {
        Op {
            index: self.index,
            time_ns: self.time_ns,
            process: self.process.clone(),
            kind: self.kind,
            f: f.to_owned(),
            monotonic_ns: None,
            value,
            error: self.error.clone(),
        }
    }
}

/// An op's `:type`, `:f`, `:index`, `:time`, `:process` and `:error`.
fn header(line: usize, position: usize, op: &Edn) -> Result<Header, HistoryError> {
    let bad = |reason: &str| HistoryError::InvalidLine {
        line_number: line,
        reason: format!("not a Jepsen op: {reason}"),
        quote: String::new(),
    };
    let kind = match op.get("type").and_then(Edn::as_keyword) {
        Some("invoke") => OpType::Invoke,
        Some("ok") => OpType::Ok,
        Some("fail") => OpType::Fail,
        Some("info") => OpType::Info,
        _ => return Err(bad("no :type of :invoke, :ok, :fail or :info")),
    };
    let f = match op.get("f") {
        Some(Edn::Keyword(f)) | Some(Edn::Symbol(f)) | Some(Edn::Str(f)) => f.clone(),
        _ => return Err(bad("no :f")),
    };
    let int = |key: &str| {
        op.get(key)
            .and_then(Edn::as_int)
            .and_then(|i| u64::try_from(i).ok())
    };
    let process = match op.get("process") {
        Some(Edn::Int(n)) => format!("jepsen-{n}"),
        Some(Edn::Keyword(k)) | Some(Edn::Symbol(k)) | Some(Edn::Str(k)) => k.clone(),
        _ => "jepsen-unknown".to_owned(),
    };
    let error = op
        .get("error")
        .filter(|e| **e != Edn::Nil)
        .map(|e| match e {
            Edn::Keyword(k) | Edn::Str(k) => k.clone(),
            other => other.to_json().to_string(),
        });
    Ok(Header {
        index: int("index").unwrap_or(position as u64),
        time_ns: int("time").unwrap_or(0),
        process,
        kind,
        f,
        error,
    })
}

/// A nemesis op's name in kaos's vocabulary.
fn nemesis_name(f: &str) -> &str {
    match f {
        "start-partition" => F::Partition.name(),
        "stop-partition" => F::Heal.name(),
        "start" => F::Restart.name(),
        other => other,
    }
}

/// A nemesis op's value: the nodes it names, if any.
fn nemesis_value(value: &Edn) -> serde_json::Value {
    let nodes: Vec<serde_json::Value> = match value {
        Edn::Vector(items) | Edn::List(items) | Edn::Set(items) => {
            items.iter().map(Edn::to_json).collect()
        }
        Edn::Map(entries) => entries.iter().map(|(k, _)| k.to_json()).collect(),
        Edn::Str(s) | Edn::Keyword(s) => vec![serde_json::Value::String(s.clone())],
        _ => Vec::new(),
    };
    if nodes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::json!({ "nodes": nodes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_edn_forms() {
        let forms = read_edn(
            "; a comment\n{:a 1, :b [1 2.5 -3N \"x\\\"y\" \\c nil true] #_ :gone :c #{:k} :d #inst \"2024-01-01\"}\n(1 2)",
        )
        .expect("valid");
        assert_eq!(forms.len(), 2);
        let map = &forms[0].1;
        assert_eq!(map.get("a"), Some(&Edn::Int(1)));
        assert_eq!(
            map.get("b"),
            Some(&Edn::Vector(vec![
                Edn::Int(1),
                Edn::Float(2.5),
                Edn::Int(-3),
                Edn::Str("x\"y".to_owned()),
                Edn::Char('c'),
                Edn::Nil,
                Edn::Bool(true),
            ]))
        );
        assert_eq!(
            map.get("c"),
            Some(&Edn::Set(vec![Edn::Keyword("k".to_owned())]))
        );
        assert!(matches!(map.get("d"), Some(Edn::Tagged(tag, _)) if tag == "inst"));
        assert_eq!(forms[1].0, 3);
    }

    #[test]
    fn odd_input_is_an_error_or_a_symbol_never_a_panic() {
        for text in [
            "{:a é}", "[1 2", "\"é", "#", "#_", ":", "{:a}", "é)", "#{1 2",
        ] {
            let _ = read_edn(text);
            let _ = check_edn(text, Expectations::default());
        }
    }

    #[test]
    fn an_error_at_the_end_of_a_one_line_file_names_line_1_and_quotes_it() {
        for text in [
            "{:type :invoke, :f :send\n",
            "{:type :invoke, :f :send",
            "[{:a 1}\n\n",
        ] {
            let err = read_edn(text).expect_err("cut");
            assert_eq!(err.line_number(), 1, "{text:?}: {err}");
            let message = err.to_string();
            assert!(
                message.contains("(line starts: ") && !message.contains("(line starts: )"),
                "{message}"
            );
        }
        let err = ops_from_edn("1\n").expect_err("not a map");
        assert!(!err.to_string().contains("line starts"), "{err}");
    }

    #[test]
    fn errors_name_the_line() {
        let err = read_edn("{:a 1}\n{:b [1 2}\n").expect_err("bad");
        assert_eq!(err.line_number(), 2);
        assert!(err.to_string().contains("not valid EDN"), "{err}");
        let err = read_edn("{:a 1}\n{:b \"cut").expect_err("cut");
        assert!(err.to_string().contains("ends inside a string"), "{err}");
    }

    #[test]
    fn translates_sends_and_polls() {
        let text = r#"{:index 0 :time 10 :type :invoke :process 0 :f :send :value [[:send 3 7]]}
{:index 1 :time 20 :type :ok :process 0 :f :send :value [[:send 3 [0 7]]]}
{:index 2 :time 30 :type :invoke :process 1 :f :poll :value [[:poll]]}
{:index 3 :time 40 :type :ok :process 1 :f :poll :value [[:poll {3 [[0 7]]}]]}
"#;
        let (ops, notes) = ops_from_edn(text).expect("valid");
        assert!(notes.is_empty());
        let fs: Vec<(&str, OpType)> = ops.iter().map(|o| (o.f.as_str(), o.kind)).collect();
        assert_eq!(
            fs,
            vec![
                ("send", OpType::Invoke),
                ("send", OpType::Ok),
                ("poll", OpType::Ok)
            ]
        );
        assert_eq!(ops[1].value["partition"], 3);
        assert_eq!(ops[1].value["offset"], 0);
        assert_eq!(ops[2].value["records"][0]["id"], 7);
        assert_eq!(ops[2].index, 3);
    }

    #[test]
    fn values_repeated_across_keys_are_packed() {
        let text = "[{:type :ok :process 0 :f :send :value [[:send 0 [0 1]] [:send 1 [0 1]]]}]";
        let (ops, notes) = ops_from_edn(text).expect("valid");
        assert_eq!(notes.len(), 1);
        assert_eq!(ops[0].value["id"], 1);
        assert_eq!(ops[1].value["id"], (1u64 << 32) | 1);
    }
}
