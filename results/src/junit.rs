//! JUnit XML for CI systems: one `<testcase>` per scenario or configuration. A valid run passes,
//! an invalid one is a `<failure>` carrying its anomaly summary, an unknown one an `<error>`.

use std::fmt::Write as _;
use std::path::Path;

use checkers::Verdict;

use crate::error::ResultsError;
use crate::limits;
use crate::store::write_atomically;
use crate::summary::RunSummary;

/// One test case: a scenario, or one configuration of a matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct JunitCase {
    pub name: String,
    /// Groups cases in CI views, e.g. the scenario name of a matrix.
    pub classname: String,
    pub verdict: Verdict,
    pub time_s: f64,
    /// One line: the forbidden anomalies ("3 lost, 1 aborted_read") or why it is unknown.
    pub message: String,
    /// The body of a failure or error: more lines, such as each anomaly's first cause and the
    /// report's path.
    pub details: String,
}

impl JunitCase {
    /// The case of one run; `report` (the report's path) is named in the details.
    pub fn from_summary(name: &str, summary: &RunSummary, report: Option<&Path>) -> JunitCase {
        let analysis = &summary.analysis;
        let message = match analysis.verdict {
            Verdict::Valid => String::new(),
            Verdict::Invalid => crate::report::forbidden_summary(analysis),
            Verdict::Unknown => analysis
                .notes
                .first()
                .cloned()
                .unwrap_or_else(|| "the history cannot prove the run valid".to_owned()),
        };
        let mut details = String::new();
        for anomaly in analysis.forbidden() {
            let _ = writeln!(
                details,
                "{} {}: {}",
                anomaly.count,
                anomaly.kind.as_str(),
                anomaly.kind.description()
            );
            if let Some(case) = anomaly.cases.first() {
                let _ = writeln!(details, "  e.g. message {}: {}", case.id, case.cause);
            }
        }
        for unmet in &analysis.unmet {
            let _ = writeln!(details, "unmet: {unmet}");
        }
        for note in analysis.notes.iter().take(5) {
            let _ = writeln!(details, "note: {note}");
        }
        if let Some(report) = report {
            let _ = writeln!(details, "report: {}", report.display());
        }
        JunitCase {
            name: name.to_owned(),
            classname: summary.scenario_name.clone(),
            verdict: analysis.verdict,
            time_s: summary.duration_s,
            message,
            details,
        }
    }
}

/// Writes the JUnit XML file (atomically).
pub fn write_junit(path: &Path, suite: &str, cases: &[JunitCase]) -> Result<(), ResultsError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| ResultsError::io(parent, e))?;
    }
    write_atomically(path, render_junit(suite, cases).as_bytes())
}

/// The XML text.
pub fn render_junit(suite: &str, cases: &[JunitCase]) -> String {
    let failures = cases
        .iter()
        .filter(|c| c.verdict == Verdict::Invalid)
        .count();
    let errors = cases
        .iter()
        .filter(|c| c.verdict == Verdict::Unknown)
        .count();
    let time_s: f64 = cases.iter().map(|c| c.time_s.max(0.0)).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = format!(
        "tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{time_s:.3}\"",
        cases.len()
    );
    let _ = writeln!(xml, "<testsuites name=\"{}\" {counts}>", xml_escape(suite));
    let _ = writeln!(xml, "  <testsuite name=\"{}\" {counts}>", xml_escape(suite));
    for case in cases {
        let _ = write!(
            xml,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
            xml_escape(&case.name),
            xml_escape(&case.classname),
            case.time_s.max(0.0)
        );
        let element = match case.verdict {
            Verdict::Valid => {
                xml.push_str("/>\n");
                continue;
            }
            Verdict::Invalid => "failure",
            Verdict::Unknown => "error",
        };
        let message: String = case
            .message
            .chars()
            .take(limits::JUNIT_MESSAGE_CHARS_MAX)
            .collect();
        let _ = write!(
            xml,
            ">\n      <{element} message=\"{}\" type=\"{}\">{}</{element}>\n    </testcase>\n",
            xml_escape(&message),
            case.verdict.as_str(),
            xml_escape(&case.details)
        );
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// Escapes text for XML content and attributes; drops characters XML 1.0 cannot carry.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_drops_invalid_characters() {
        assert_eq!(
            xml_escape("a<b>&\"'\u{1}"),
            "a&lt;b&gt;&amp;&quot;&apos;\u{FFFD}"
        );
    }
}
