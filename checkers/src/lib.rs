//! Pure analysis of a kaos history: history in, verdict out. No I/O, no async, no threads, so any
//! stored run can be checked again.
//!
//! # Layout
//! - [`history`]: the history format (`docs/history.md`): [`history::Op`], [`history::parse_op`].
//! - `expect`: what a scenario allows: [`Expectations`], [`Allowance`].
//! - `checker`: the queue checker, one pass: [`Checker::observe`] each op, then [`Checker::finish`].
//! - `analysis`: its output: [`Analysis`] with [`Verdict`], [`Counts`], [`Anomaly`] classes and their
//!   [`Case`]s, [`Series`] for plots and [`FaultWindow`]s.
//! - [`limits`]: every bound (evidence cap, fault neighbourhood, series length).
//! - [`check_text`]: the whole of a `history.jsonl` text, tolerating a last line cut mid-write.
//!
//! The anomaly classes: `lost` (acknowledged, absent from the final read), `aborted_read` (failed,
//! yet read), `duplicate` (one id at two or more positions), `unacknowledged_absent` (never
//! acknowledged, absent from the final read).

mod analysis;
mod checker;
mod expect;
pub mod history;
pub mod limits;

pub use analysis::{Analysis, Anomaly, AnomalyKind, Case, Counts, FaultWindow, Series, Verdict};
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
    let ends_with_newline = history.ends_with('\n');
    let mut lines = history.lines().enumerate().peekable();
    let mut truncated_at = None;
    while let Some((i, line)) = lines.next() {
        let line_number = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        match history::parse_op(line, line_number) {
            Ok(op) => checker.observe(&op),
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
    Ok(checker.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEND: &str = r#"{"index":0,"time_ns":0,"process":"p","type":"invoke","f":"send","value":{"id":1,"topic":"t"}}"#;

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
    fn analysis_round_trips_through_json() {
        let analysis = check_text(SEND, Expectations::default()).expect("valid");
        let json = serde_json::to_string(&analysis).expect("serialises");
        assert!(json.contains("\"verdict\":\"unknown\""), "{json}");
        let back: Analysis = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back.counts, analysis.counts);
    }
}
