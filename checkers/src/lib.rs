//! Pure analysis of a kaos history: history in, verdict out. No I/O, no async, no threads, so any
//! stored run can be checked again.
//!
//! # Layout
//! - [`history`]: the history format (`docs/history.md`): [`history::Op`], [`history::parse_op`].
//! - `scan`: the fast path, a borrowing scanner for the hot lines (`send`, `poll`, `process`, …);
//!   anything else goes through `serde_json` ([`history::parse_op`]).
//! - `classes`: the anomaly classes from one table ([`AnomalyKind`]: name, meaning, default
//!   [`Allowance`], sub-kinds).
//! - `expect`: what a scenario allows: [`Expectations`], per class.
//! - `checker`: the queue checker's streaming pass: [`Checker::observe`] (or
//!   [`Checker::observe_line`]) each op; memory proportional to messages.
//! - `conclude`: [`Checker::finish`], the per-class evidence and the sentence of cause.
//! - `durability`: the evidence of `lost_commit` and `uncommitted_read` (what a broker
//!   acknowledged and did not keep; what it served at or above the high watermark its reader
//!   recorded, or — without one — served and did not keep).
//! - `analysis`: its output: [`Analysis`] with [`Verdict`], [`Counts`], [`Anomaly`] classes and their
//!   [`Case`]s, [`Series`] for plots and [`FaultWindow`]s.
//! - `pipeline`: a consume-transform-produce pipeline's claim, every input message in the
//!   output topic exactly once (`pipeline_lost`, `pipeline_duplicate`).
//! - [`replicas`]: replica divergence from per-replica dumps.
//! - [`jepsen`]: Jepsen Kafka-workload histories (EDN) read into kaos ops and checked.
//! - `transactions`: a transactional producer's `txn` ops read as their sends and polls, and as
//!   transactions for [`elle`]; which consumers read uncommitted data.
//! - [`elle`]: the dependency graph of transactional histories and its cycles (G0, G1c,
//!   G-single, G2-item, with their `-process` / `-realtime` variants), explained step by step;
//!   intermediate reads (G1b).
//! - [`limits`]: every bound (evidence cap, fault neighbourhood, series length).
//! - [`check_text`]: the whole of a `history.jsonl` text, tolerating a last line cut mid-write.
//!
//! The anomaly classes ([`AnomalyKind::ALL`], defined in `docs/history.md`): `lost`,
//! `read_then_lost`, `producer_loss`, `aborted_read`, `future_read`, `read_before_ack`,
//! `precommitted_read`, `inconsistent_offsets`, `replica_divergence`, `duplicate`,
//! `duplicate_processing`, `pipeline_lost`, `pipeline_duplicate`, `poll_skip`, `nonmonotonic_poll`, `nonmonotonic_send`, `unprocessed`,
//! `lost_commit`, `uncommitted_read`, `unacknowledged_absent`, `unseen`, `int_send_skip`, `g1b`, and the cycles `g0`, `g1c`, `g_single`, `g2_item`.

mod analysis;
mod checker;
mod classes;
mod conclude;
mod durability;
pub mod elle;
mod expect;
pub mod history;
pub mod jepsen;
pub mod limits;
mod pipeline;
pub mod replicas;
mod scan;
mod transactions;

pub use analysis::{
    Analysis, Anomaly, AnomalyKind, Case, Counts, CycleStep, FaultWindow, NodeExit, Series, Verdict,
};
pub use checker::Checker;
pub use expect::{Allowance, Expectations};
pub use history::{HistoryError, Op, OpType, Position};

/// Checks a whole `history.jsonl` text.
///
/// Blank lines are skipped. A last line that is cut (invalid, with no newline after it) is what a
/// harness killed mid-write leaves: it is tolerated and noted. Any other invalid line is an error
/// naming its line number.
pub fn check_text(history: &str, expect: Expectations) -> Result<Analysis, HistoryError> {
    let mut checker = Checker::new(expect);
    observe_text(&mut checker, history)?;
    Ok(checker.finish())
}

/// A `history.jsonl` read as bytes, as text: a line that is not UTF-8 (a corrupted byte) is
/// blanked, so that the rest is checked with every line number unchanged, and its number is
/// returned. Borrows the bytes when they are all UTF-8 (the usual case).
pub fn history_text(bytes: &[u8]) -> (std::borrow::Cow<'_, str>, Vec<usize>) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return (std::borrow::Cow::Borrowed(text), Vec::new());
    }
    let mut text = String::with_capacity(bytes.len());
    let mut bad = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            text.push('\n');
        }
        match std::str::from_utf8(line) {
            Ok(line) => text.push_str(line),
            Err(_) => bad.push(i + 1),
        }
    }
    (std::borrow::Cow::Owned(text), bad)
}

/// The note for the lines [`history_text`] blanked.
pub fn non_utf8_note(lines: &[usize]) -> Option<String> {
    let shown: Vec<String> = lines
        .iter()
        .take(limits::LINES_NAMED_MAX)
        .map(usize::to_string)
        .collect();
    let more = lines.len().saturating_sub(limits::LINES_NAMED_MAX);
    (!lines.is_empty()).then(|| {
        format!(
            "history line(s) {}{} not valid UTF-8 (a corrupted byte): skipped, the rest was checked; a skipped op may hide or fake an anomaly.",
            shown.join(", "),
            if more > 0 { format!(" and {more} more are") } else if lines.len() > 1 { " are".to_owned() } else { " is".to_owned() }
        )
    })
}

/// Feeds a `history.jsonl` text (or a chunk of one that ends at a line end) to `checker`, with the
/// tolerance of [`check_text`] for a cut last line. Line numbers count from 1 in `history`.
pub fn observe_text(checker: &mut Checker, history: &str) -> Result<(), HistoryError> {
    let ends_with_newline = history.ends_with('\n');
    let mut records = Vec::new();
    let mut lines = Lines { text: history }.enumerate().peekable();
    let mut truncated_at = None;
    while let Some((i, line)) = lines.next() {
        let line_number = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        match checker.observe_line_with(line, line_number, &mut records) {
            Ok(()) => {}
            Err(_) if lines.peek().is_none() && !ends_with_newline => {
                truncated_at = Some(line_number)
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(line_number) = truncated_at {
        checker.note(format!(
            "history truncated at line {line_number} (the harness stopped mid-write); the cut line was ignored."
        ));
    }
    Ok(())
}

/// `str::lines` with the `memchr` crate's faster search for the line ends.
struct Lines<'a> {
    text: &'a str,
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        if self.text.is_empty() {
            return None;
        }
        let (line, rest) = match memchr::memchr(b'\n', self.text.as_bytes()) {
            Some(at) => (&self.text[..at], &self.text[at + 1..]),
            None => (self.text, ""),
        };
        self.text = rest;
        Some(line.strip_suffix('\r').unwrap_or(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEND: &str = r#"{"index":0,"time_ns":0,"process":"p","type":"invoke","f":"send","value":{"id":1,"topic":"t"}}"#;

    #[test]
    fn a_line_that_is_not_utf8_is_blanked_and_named() {
        let bytes = [
            SEND.as_bytes(),
            b"\n{\"bad\xff\"}\n",
            SEND.as_bytes(),
            b"\n",
        ]
        .concat();
        let (text, bad) = history_text(&bytes);
        assert_eq!(bad, vec![2]);
        assert_eq!(text.lines().nth(1), Some(""));
        assert_eq!(text.lines().nth(2), Some(SEND));
        assert!(matches!(
            history_text(SEND.as_bytes()).0,
            std::borrow::Cow::Borrowed(_)
        ));
        let note = non_utf8_note(&bad).expect("a note");
        assert!(
            note.starts_with("history line(s) 2 is not valid UTF-8"),
            "{note}"
        );
        let many: Vec<usize> = (1..=12).collect();
        assert!(non_utf8_note(&many)
            .expect("a note")
            .contains("10 and 2 more are"));
        assert_eq!(non_utf8_note(&[]), None);
    }

    #[test]
    fn a_cut_last_line_is_noted() {
        let text = format!("{SEND}\n{{\"index\":1,\"time_ns\":5,\"proc");
        let analysis = check_text(&text, Expectations::default()).expect("tolerated");
        assert_eq!(analysis.counts.ops, 1);
        assert!(analysis
            .notes
            .iter()
            .any(|n| n.contains("history truncated at line 2 (the harness stopped mid-write)")));
    }

    #[test]
    fn an_invalid_last_line_with_a_newline_is_an_error() {
        let text = format!("{SEND}\n{{\"index\":1,\"time_ns\":5,\"proc\n");
        let err = check_text(&text, Expectations::default()).expect_err("not a cut line");
        assert_eq!(err.line_number(), 2);
    }

    #[test]
    fn blank_lines_are_skipped() {
        let text = format!("\n{SEND}\n\n");
        let analysis = check_text(&text, Expectations::default()).expect("valid");
        assert_eq!(analysis.counts.ops, 1);
        assert_eq!(analysis.counts.sends_invoked, 1);
    }

    #[test]
    fn an_empty_history_is_unknown() {
        let analysis = check_text("", Expectations::default()).expect("valid");
        assert_eq!(analysis.verdict, Verdict::Unknown);
        assert!(analysis.series.sends_ok.is_empty());
    }

    #[test]
    fn an_older_results_json_still_reads() {
        // An analysis as the first release wrote it: no new counts, series, case or expect fields.
        let old = r#"{"verdict":"invalid","counts":{"ops":3,"sends_invoked":1,"sends_ok":1,
            "sends_fail":0,"sends_info":0,"sends_open":0,"sends_without_id":0,"polls_ok":0,
            "records_polled":0,"final_read_records":0,"final_read_distinct_ids":0,
            "records_without_id":0,"unknown_ids_read":0,"lost":1,"unacknowledged_absent":0,
            "duplicates":0,"recovered":0,"aborted_read":0},
            "anomalies":[{"kind":"lost","allowance":"forbidden","count":1,"cases_omitted":0,
              "cases":[{"id":1,"topic":"t","acknowledged_at":null,"read_at":[],"op_indexes":[0],
                "time_s":0.0,"faults_nearby":[],"cause":"…"}]}],
            "series":{"duration_s":1.0,"sends_ok":[1],"sends_fail":[0],"sends_info":[0],"records_polled":[0]},
            "faults":[],"notes":[],
            "expect":{"lost":"forbidden","duplicates":"allowed","unacknowledged_absent":"allowed","aborted_read":"forbidden","acknowledged_min":0}}"#;
        let analysis: Analysis = serde_json::from_str(old).expect("reads");
        assert_eq!(analysis.counts.lost, 1);
        assert_eq!(analysis.counts.poll_skip, 0);
        assert_eq!(analysis.anomalies[0].cases[0].sub_kind, None);
        assert!(analysis.series.unseen.is_empty());
        assert_eq!(
            analysis.expect.of(AnomalyKind::PollSkip),
            Allowance::Forbidden
        );
        assert_eq!(
            analysis.expect.of(AnomalyKind::Duplicate),
            Allowance::Allowed
        );
    }

    #[test]
    fn analysis_round_trips_through_json() {
        let analysis = check_text(SEND, Expectations::default()).expect("valid");
        let json = serde_json::to_string(&analysis).expect("serialises");
        assert!(json.contains("\"verdict\":\"unknown\""), "{json}");
        let back: Analysis = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back.counts, analysis.counts);
    }
}
