//! `comparison.html`: runs of different configurations side by side, one row each, coloured by
//! whether the scenario's expectation held, and a scatter of loss + duplicates against throughput.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use checkers::{AnomalyKind, Verdict};

use crate::error::ResultsError;
use crate::limits;
use crate::page::{self, escape, relative_href, relative_path};
use crate::plot::{self, ScatterPoint};
use crate::store::write_atomically;
use crate::summary::RunSummary;

/// One configuration of a matrix run: what was varied, and the run it produced.
#[derive(Debug, Clone)]
pub struct ComparisonRow {
    /// A short name for the configuration ("acks=1 idempotence=off").
    pub label: String,
    /// The varied settings, (name, value); each name becomes a column.
    pub settings: Vec<(String, String)>,
    /// The run's directory; the row links to its `report.html`.
    pub run_dir: PathBuf,
    pub summary: RunSummary,
}

/// Writes `dir/comparison.html` (atomically) and returns its path.
pub fn write_comparison(dir: &Path, rows: &[ComparisonRow]) -> Result<PathBuf, ResultsError> {
    std::fs::create_dir_all(dir).map_err(|e| ResultsError::io(dir, e))?;
    let path = dir.join("comparison.html");
    write_atomically(&path, render_comparison(dir, rows).as_bytes())?;
    Ok(path)
}

/// The page, with links relative to `dir` (where it will be written).
pub fn render_comparison(dir: &Path, rows: &[ComparisonRow]) -> String {
    let shown = &rows[..rows.len().min(limits::COMPARISON_ROWS_MAX)];
    let scenario = shown
        .first()
        .map(|r| r.summary.scenario_name.clone())
        .unwrap_or_default();
    let mut html = page::head(&format!("kaos: comparison {scenario}"));
    banner(&mut html, shown);
    configurations_section(&mut html, dir, shown, rows.len() - shown.len());
    tradeoff_section(&mut html, shown);
    html.push_str(page::FOOT);
    html
}

/// The overall verdict and how many configurations held the expectation.
fn banner(html: &mut String, shown: &[ComparisonRow]) {
    let count = |v: Verdict| {
        shown
            .iter()
            .filter(|r| r.summary.analysis.verdict == v)
            .count()
    };
    let (valid, invalid, unknown) = (
        count(Verdict::Valid),
        count(Verdict::Invalid),
        count(Verdict::Unknown),
    );
    let overall = if invalid > 0 {
        Verdict::Invalid
    } else if unknown > 0 {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    let _ = write!(
        html,
        "<header class=\"banner {}\" id=\"verdict\">\n<h1>Comparison: {} configuration{}</h1>\n\
         <p>{valid} held the expectation (valid) · {invalid} broke it (invalid) · {unknown} unknown</p>\n</header>\n",
        page::verdict_class(overall),
        shown.len(),
        if shown.len() == 1 { "" } else { "s" },
    );
}

/// The table of configurations, one row each; `hidden` more were not shown.
fn configurations_section(html: &mut String, dir: &Path, shown: &[ComparisonRow], hidden: usize) {
    // Columns: every varied setting, in order of first appearance.
    let mut columns: Vec<&str> = Vec::new();
    for row in shown {
        for (name, _) in &row.settings {
            if !columns.contains(&name.as_str()) {
                columns.push(name);
            }
        }
    }
    html.push_str("<section class=\"card\" id=\"configurations\">\n<h2>Configurations</h2>\n<div class=\"scroll\"><table class=\"wide\">\n<thead><tr><th>configuration</th><th>verdict</th>");
    for column in &columns {
        // A setting name may break after its dots ("enable.<wbr>idempotence").
        let _ = write!(html, "<th>{}</th>", escape(column).replace('.', ".<wbr>"));
    }
    html.push_str(
        "<th class=\"num\">acknowledged loss</th><th class=\"num\">producer-side loss</th><th class=\"num\">duplicates</th>\
         <th class=\"num\">unprocessed</th><th class=\"num\">throughput (acks/s)</th><th class=\"num\">p99 latency (ms)</th></tr></thead>\n<tbody>\n",
    );
    for row in shown {
        configuration_row(html, dir, row, &columns);
    }
    html.push_str("</tbody>\n</table></div>\n");
    if hidden > 0 {
        let _ = writeln!(
            html,
            "<p class=\"more\">{hidden} more configurations not shown.</p>"
        );
    }
    html.push_str("<p class=\"caption\">Green rows held the scenario's expectation (valid), red rows broke it (invalid), grey rows are unknown. \
                   Acknowledged loss: acknowledged sends absent from the final read. Producer-side loss: sends never acknowledged and absent from the final read, plus messages the application accepted that were never written. \
                   Red figures are anomalies the scenario forbids.</p>\n</section>\n");
}

/// One configuration: its link and verdict, its settings by column, its key figures.
fn configuration_row(html: &mut String, dir: &Path, row: &ComparisonRow, columns: &[&str]) {
    let f = row.summary.key_figures();
    let verdict = row.summary.analysis.verdict;
    let href = relative_href(&relative_path(dir, &row.run_dir.join("report.html")));
    let _ = write!(
            html,
            "<tr class=\"config row-{}\"><td><a href=\"{}\">{}</a></td><td><span class=\"pill {}\">{}</span></td>",
            verdict.as_str(),
            escape(&href),
            escape(&row.label),
            page::verdict_class(verdict),
            verdict.as_str()
        );
    for column in columns {
        let value = row
            .settings
            .iter()
            .find(|(name, _)| name == column)
            .map_or("—", |(_, v)| v.as_str());
        let _ = write!(html, "<td>{}</td>", escape(value));
    }
    let expect = &row.summary.analysis.expect;
    let cell = |n: u64, allowance: checkers::Allowance| {
        let class = if n > 0 && allowance == checkers::Allowance::Forbidden {
            " bad"
        } else {
            ""
        };
        format!("<td class=\"num{class}\">{n}</td>")
    };
    let _ = writeln!(
        html,
        "{}{}{}<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
        cell(f.lost, expect.of(AnomalyKind::Lost)),
        cell(
            f.producer_side_loss,
            expect.of(AnomalyKind::UnacknowledgedAbsent)
        ),
        cell(f.duplicates, expect.of(AnomalyKind::Duplicate)),
        f.unprocessed.map_or("—".to_owned(), |n| n.to_string()),
        plot::fmt_num(f.throughput_acks_per_s),
        f.latency_ms_p99.map_or("—".to_owned(), plot::fmt_num),
    );
}

/// The scatter of loss + duplicates against throughput, and its numbered legend.
fn tradeoff_section(html: &mut String, shown: &[ComparisonRow]) {
    let points: Vec<ScatterPoint> = shown
        .iter()
        .map(|row| {
            let f = row.summary.key_figures();
            ScatterPoint {
                label: row.label.clone(),
                x: f.throughput_acks_per_s,
                y: (f.lost + f.producer_side_loss + f.duplicates) as f64,
                color: match row.summary.analysis.verdict {
                    Verdict::Valid => plot::GREEN,
                    Verdict::Invalid => plot::RED,
                    Verdict::Unknown => plot::GREY,
                },
            }
        })
        .collect();
    html.push_str("<section class=\"card\" id=\"tradeoff\">\n<h2>Loss and duplicates against throughput</h2>\n<figure class=\"plot\" id=\"plot-scatter\">\n");
    html.push_str(&plot::scatter_svg(
        "throughput, acknowledged sends per second",
        "lost + producer-side loss + duplicates",
        &points,
    ));
    html.push_str("<figcaption>One dot per configuration, coloured by verdict (green valid, red invalid, grey unknown). Down and to the right is better.</figcaption>\n</figure>\n<ol class=\"legend\">\n");
    for (row, point) in shown.iter().zip(&points) {
        let _ = writeln!(
            html,
            "<li><span class=\"pill {}\">{}</span> {} · {} acks/s · {} lost + producer-side loss + duplicates</li>",
            page::verdict_class(row.summary.analysis.verdict),
            row.summary.analysis.verdict.as_str(),
            escape(&row.label),
            plot::fmt_num(point.x),
            plot::fmt_num(point.y)
        );
    }
    html.push_str("</ol>\n</section>\n");
}
