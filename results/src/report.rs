//! `report.html`: one self-contained page (inline CSS and SVG, no script, no network).

use std::fmt::Write as _;

use checkers::{Anomaly, Case, Counts, FaultWindow, Verdict};

use crate::limits;
use crate::plot::{self, Line};
use crate::summary::RunSummary;

/// HTML-escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px; padding: 0 16px 48px; color: #222; }
h1 { margin: 0; font-size: 28px; letter-spacing: 0.04em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
.banner { color: #fff; padding: 18px 22px; margin: 16px 0; border-radius: 6px; }
.banner p { margin: 6px 0 0; }
.verdict-valid { background: #2e7d32; }
.verdict-invalid { background: #c62828; }
.verdict-unknown { background: #616161; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.forbidden { color: #c62828; font-weight: bold; }
.allowed { color: #616161; }
.cause { max-width: 480px; }
.more { font-style: italic; color: #555; }
.caption { font-size: 13px; color: #555; margin-top: 0; }
svg { max-width: 100%; height: auto; }
code { font-size: 13px; }
"#;

const FAULT_CAPTION: &str =
    "<p class=\"caption\">Shaded: fault windows, from the fault op to the recovery op (or to the end), labelled with the fault and its target.</p>\n";

/// Renders the whole page.
pub fn render_report(summary: &RunSummary) -> String {
    let analysis = &summary.analysis;
    let mut html = String::new();
    let verdict = analysis.verdict.as_str();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>kaos: {} {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&summary.scenario_name),
        verdict
    );
    banner(&mut html, summary);
    settings_section(&mut html, summary);
    counts_section(&mut html, &analysis.counts);
    plots_section(&mut html, summary);
    anomalies_section(&mut html, &analysis.anomalies);
    faults_section(&mut html, &analysis.faults);
    notes_section(&mut html, &analysis.notes);
    logs_section(&mut html, &summary.logs);
    html.push_str("</body>\n</html>\n");
    html
}

fn banner(html: &mut String, summary: &RunSummary) {
    let analysis = &summary.analysis;
    let headline = match analysis.verdict {
        Verdict::Valid => "VALID: no anomaly the scenario forbids".to_owned(),
        Verdict::Invalid => {
            let forbidden: Vec<String> = analysis
                .forbidden()
                .map(|a| format!("{} {}", a.count, a.kind.as_str()))
                .chain(analysis.unmet.iter().cloned())
                .collect();
            format!("INVALID: {}", forbidden.join(", "))
        }
        Verdict::Unknown => {
            "UNKNOWN: the history cannot prove the run valid (see the notes)".to_owned()
        }
    };
    let _ = write!(
        html,
        "<header class=\"banner verdict-{}\" id=\"verdict\">\n<h1>{}</h1>\n\
         <p>scenario <b>{}</b> · started {} · {:.1} s · seed {}</p>\n</header>\n",
        analysis.verdict.as_str(),
        escape(&headline),
        escape(&summary.scenario_name),
        escape(&summary.started_at),
        summary.duration_s,
        summary.seed
    );
}

fn settings_section(html: &mut String, summary: &RunSummary) {
    html.push_str("<section id=\"settings\">\n<h2>Settings</h2>\n<table>\n");
    for (name, value) in &summary.settings {
        let _ = writeln!(
            html,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(value)
        );
    }
    let expect = &summary.analysis.expect;
    for (name, allowance) in [
        ("expect: lost", expect.lost),
        ("expect: duplicates", expect.duplicates),
        (
            "expect: unacknowledged_absent",
            expect.unacknowledged_absent,
        ),
        ("expect: aborted_read", expect.aborted_read),
    ] {
        let _ = writeln!(
            html,
            "<tr><th>{name}</th><td class=\"{0}\">{0}</td></tr>",
            allowance.as_str()
        );
    }
    html.push_str("</table>\n</section>\n");
}

fn counts_section(html: &mut String, counts: &Counts) {
    let rows: [(&str, u64); 18] = [
        ("sends invoked (message ids)", counts.sends_invoked),
        ("sends acknowledged (ok)", counts.sends_ok),
        ("sends failed (fail)", counts.sends_fail),
        (
            "sends with unknown outcome (info, incl. open)",
            counts.sends_info,
        ),
        ("… of which still open at the end", counts.sends_open),
        ("sends without a message id", counts.sends_without_id),
        ("polls (ok)", counts.polls_ok),
        ("records polled by consumers", counts.records_polled),
        ("records in the final read", counts.final_read_records),
        (
            "distinct ids in the final read",
            counts.final_read_distinct_ids,
        ),
        ("records without a message id", counts.records_without_id),
        ("ids read that no send mentions", counts.unknown_ids_read),
        ("lost", counts.lost),
        ("unacknowledged absent", counts.unacknowledged_absent),
        ("duplicates", counts.duplicates),
        (
            "recovered (not acknowledged, yet in the final read)",
            counts.recovered,
        ),
        ("aborted reads (failed, yet read)", counts.aborted_read),
        ("history ops", counts.ops),
    ];
    html.push_str("<section id=\"counts\">\n<h2>Counts</h2>\n<table>\n");
    for (name, value) in rows {
        let _ = writeln!(
            html,
            "<tr><th>{}</th><td class=\"num\">{value}</td></tr>",
            escape(name)
        );
    }
    html.push_str("</table>\n</section>\n");
}

fn plots_section(html: &mut String, summary: &RunSummary) {
    let analysis = &summary.analysis;
    let series = &analysis.series;
    let duration_s = series.duration_s.max(summary.duration_s);
    html.push_str("<section id=\"throughput\">\n<h2>Sends per second</h2>\n");
    html.push_str(&plot::series_svg(
        "sends per second",
        &[
            Line {
                label: "acknowledged",
                per_second: &series.sends_ok,
                color: plot::ACKED,
            },
            Line {
                label: "failed",
                per_second: &series.sends_fail,
                color: plot::FAILED,
            },
            Line {
                label: "info (unknown)",
                per_second: &series.sends_info,
                color: plot::INFO,
            },
        ],
        &analysis.faults,
        duration_s,
    ));
    html.push_str(FAULT_CAPTION);
    html.push_str("\n<h2>Records polled by consumers per second</h2>\n");
    html.push_str(&plot::series_svg(
        "records per second",
        &[Line {
            label: "polled",
            per_second: &series.records_polled,
            color: plot::POLLED,
        }],
        &analysis.faults,
        duration_s,
    ));
    html.push_str(FAULT_CAPTION);
    if analysis.faults.len() > limits::PLOT_FAULTS_MAX {
        let _ = writeln!(
            html,
            "<p class=\"more\">The plots shade the first {} of {} fault windows.</p>",
            limits::PLOT_FAULTS_MAX,
            analysis.faults.len()
        );
    }
    html.push_str("</section>\n");
}

fn anomalies_section(html: &mut String, anomalies: &[Anomaly]) {
    html.push_str("<section id=\"anomalies\">\n<h2>Anomalies</h2>\n");
    if anomalies.is_empty() {
        html.push_str("<p>None found.</p>\n");
    }
    for anomaly in anomalies {
        let kind = anomaly.kind.as_str();
        let _ = write!(
            html,
            "<section class=\"anomaly\" id=\"anomaly-{kind}\">\n<h3>{kind}: {count} <span class=\"{allowance}\">({allowance})</span></h3>\n<p>{description}</p>\n",
            count = anomaly.count,
            allowance = anomaly.allowance.as_str(),
            description = escape(anomaly.kind.description())
        );
        html.push_str(
            "<table>\n<tr><th>message id</th><th>time</th><th>acknowledged at</th><th>read at</th>\
             <th>faults within ±2 s</th><th>op indexes</th><th>likely cause</th></tr>\n",
        );
        for case in anomaly
            .cases
            .iter()
            .take(limits::REPORT_CASES_PER_CLASS_MAX)
        {
            case_row(html, case);
        }
        html.push_str("</table>\n");
        let shown = anomaly.cases.len().min(limits::REPORT_CASES_PER_CLASS_MAX) as u64;
        let more = anomaly.count.saturating_sub(shown);
        if more > 0 {
            let in_json = anomaly.cases.len() as u64 - shown;
            let _ = writeln!(
                html,
                "<p class=\"more\">{more} more {kind} case(s) not shown: {in_json} more with evidence in results.json{}.</p>",
                if anomaly.cases_omitted > 0 {
                    format!(", {} counted only", anomaly.cases_omitted)
                } else {
                    String::new()
                }
            );
        }
        html.push_str("</section>\n");
    }
    html.push_str("</section>\n");
}

fn case_row(html: &mut String, case: &Case) {
    let acknowledged = case
        .acknowledged_at
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "—".to_owned());
    let read: Vec<String> = case.read_at.iter().map(|p| p.to_string()).collect();
    let read = if read.is_empty() {
        "—".to_owned()
    } else {
        read.join("; ")
    };
    let faults = if case.faults_nearby.is_empty() {
        "none".to_owned()
    } else {
        case.faults_nearby.join("; ")
    };
    let indexes: Vec<String> = case.op_indexes.iter().map(u64::to_string).collect();
    let _ = writeln!(
        html,
        "<tr><td class=\"num\">{}</td><td class=\"num\">{:.3} s</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"cause\">{}</td></tr>",
        case.id,
        case.time_s,
        escape(&acknowledged),
        escape(&read),
        escape(&faults),
        escape(&indexes.join(", ")),
        escape(&case.cause)
    );
}

fn faults_section(html: &mut String, faults: &[FaultWindow]) {
    html.push_str("<section id=\"faults\">\n<h2>Faults</h2>\n");
    if faults.is_empty() {
        html.push_str("<p>No faults were injected.</p>\n</section>\n");
        return;
    }
    html.push_str("<table>\n<tr><th>fault</th><th>target</th><th>from</th><th>until</th><th>op index</th></tr>\n");
    for fault in faults {
        let until = match fault.end_s {
            Some(end) => format!("{end:.2} s"),
            None => "never recovered".to_owned(),
        };
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{:.2} s</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&fault.kind),
            escape(&fault.target),
            fault.start_s,
            escape(&until),
            fault.op_index
        );
    }
    html.push_str("</table>\n</section>\n");
}

fn notes_section(html: &mut String, notes: &[String]) {
    html.push_str("<section id=\"notes\">\n<h2>Notes</h2>\n");
    if notes.is_empty() {
        html.push_str("<p>None.</p>\n");
    } else {
        html.push_str("<ul>\n");
        for note in notes {
            let _ = writeln!(html, "<li>{}</li>", escape(note));
        }
        html.push_str("</ul>\n");
    }
    html.push_str("</section>\n");
}

fn logs_section(html: &mut String, logs: &[(String, String)]) {
    html.push_str("<section id=\"logs\">\n<h2>Logs</h2>\n");
    if logs.is_empty() {
        html.push_str("<p>None recorded.</p>\n");
    } else {
        html.push_str("<ul>\n");
        for (label, path) in logs {
            let _ = writeln!(
                html,
                "<li><a href=\"{}\">{}</a> <code>{}</code></li>",
                escape(&relative_href(path)),
                escape(label),
                escape(path)
            );
        }
        html.push_str("</ul>\n");
    }
    html.push_str("</section>\n");
}

/// A log path as a link relative to the report: never a URL scheme (`javascript:`…) or absolute.
fn relative_href(path: &str) -> String {
    let looks_like_scheme = path
        .split('/')
        .next()
        .is_some_and(|first| first.contains(':'));
    let encoded: String = path
        .chars()
        .map(|c| match c {
            ' ' => "%20".to_owned(),
            '#' => "%23".to_owned(),
            '?' => "%3F".to_owned(),
            '%' => "%25".to_owned(),
            c => c.to_string(),
        })
        .collect();
    if looks_like_scheme || path.starts_with('/') {
        format!("./{}", encoded.trim_start_matches('/'))
    } else {
        encoded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn log_links_stay_relative() {
        assert_eq!(relative_href("nodes/n1.log"), "nodes/n1.log");
        assert_eq!(
            relative_href("javascript:alert(1)"),
            "./javascript:alert(1)"
        );
        assert_eq!(relative_href("/etc/passwd"), "./etc/passwd");
        assert_eq!(relative_href("clients/p 1#x.log"), "clients/p%201%23x.log");
    }
}
