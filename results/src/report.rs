//! `report.html`: one self-contained page (inline CSS and SVG, no script, no network).
//!
//! Sections, in order, each with a stable `id` (the tests and other pages link to them):
//! `verdict` (banner), `figures`, `scenario`, `anomaly-classes`, `plots` (`plot-sends`,
//! `plot-latency`, `plot-latency-histogram`, `plot-consumers`, `plot-unseen`, `plot-lag`,
//! `plot-timeline`), `evidence` (`anomaly-<class>` each), `faults`, `counts`, `notes`, `logs`.

use std::fmt::Write as _;

use checkers::{Analysis, Anomaly, AnomalyKind, Case, FaultWindow, Series, Verdict};

use crate::limits;
use crate::page::{self, escape, relative_href};
use crate::plot::{self, Line, Reduce};
use crate::series::PlotData;
use crate::summary::RunSummary;

const FAULT_CAPTION: &str =
    "Shaded: fault windows, from the fault op to its recovery op (or to the end of the run).";

/// Renders the whole page.
pub fn render_report(summary: &RunSummary) -> String {
    let analysis = &summary.analysis;
    let mut html = page::head(&format!(
        "kaos: {} {}",
        summary.scenario_name,
        analysis.verdict.as_str()
    ));
    banner(&mut html, summary);
    html.push_str(
        "<nav class=\"toc\"><a href=\"#scenario\">Scenario</a><a href=\"#anomaly-classes\">Anomalies</a>\
         <a href=\"#plots\">Plots</a><a href=\"#plot-timeline\">Fault timeline</a><a href=\"#evidence\">Evidence</a>\
         <a href=\"#faults\">Faults</a><a href=\"#counts\">Counts</a><a href=\"#notes\">Notes</a><a href=\"#logs\">Logs</a></nav>\n",
    );
    figures_section(&mut html, summary);
    scenario_section(&mut html, summary);
    classes_section(&mut html, analysis);
    plots_section(&mut html, summary);
    evidence_section(&mut html, &analysis.anomalies);
    faults_section(&mut html, &analysis.faults);
    counts_section(&mut html, analysis);
    notes_section(&mut html, &analysis.notes);
    logs_section(&mut html, &summary.logs);
    html.push_str(page::FOOT);
    html
}

/// The one-line headline of a verdict: "INVALID: 3 lost, 1 aborted_read".
pub(crate) fn headline(analysis: &Analysis) -> String {
    match analysis.verdict {
        Verdict::Valid => "VALID: no anomaly the scenario forbids".to_owned(),
        Verdict::Invalid => format!("INVALID: {}", forbidden_summary(analysis)),
        Verdict::Unknown => {
            "UNKNOWN: the history cannot prove the run valid (see the notes)".to_owned()
        }
    }
}

/// "3 lost, 1 aborted_read, acknowledged_min …": the forbidden anomalies and unmet expectations.
pub(crate) fn forbidden_summary(analysis: &Analysis) -> String {
    let forbidden: Vec<String> = analysis
        .forbidden()
        .map(|a| format!("{} {}", a.count, a.kind.as_str()))
        .chain(analysis.unmet.iter().cloned())
        .collect();
    forbidden.join(", ")
}

fn banner(html: &mut String, summary: &RunSummary) {
    let analysis = &summary.analysis;
    let _ = write!(
        html,
        "<header class=\"banner {}\" id=\"verdict\">\n<h1>{}</h1>\n\
         <p>scenario <b>{}</b> · started {} · {:.1} s · seed {}</p>\n</header>\n",
        page::verdict_class(analysis.verdict),
        escape(&headline(analysis)),
        escape(&summary.scenario_name),
        escape(if summary.started_at.is_empty() {
            "(unknown)"
        } else {
            &summary.started_at
        }),
        summary.duration_s,
        summary.seed
    );
}

fn figures_section(html: &mut String, summary: &RunSummary) {
    let f = summary.key_figures();
    let expect = &summary.analysis.expect;
    let class = |count: u64, allowance: checkers::Allowance| {
        if count == 0 {
            "good"
        } else if allowance == checkers::Allowance::Forbidden {
            "bad"
        } else {
            ""
        }
    };
    html.push_str("<div class=\"figures\" id=\"figures\">\n");
    let mut card = |value: String, label: &str, class: &str| {
        let _ = writeln!(
            html,
            "<div class=\"figure {class}\"><div class=\"value\">{}</div><div class=\"label\">{}</div></div>",
            escape(&value),
            escape(label)
        );
    };
    card(plot::fmt_count(f.acknowledged), "acknowledged sends", "");
    card(
        plot::fmt_count(f.lost),
        "acknowledged, lost",
        class(f.lost, expect.of(AnomalyKind::Lost)),
    );
    card(
        plot::fmt_count(f.unacknowledged_absent),
        "never acknowledged, absent (producer-side loss)",
        class(
            f.unacknowledged_absent,
            expect.of(AnomalyKind::UnacknowledgedAbsent),
        ),
    );
    card(
        plot::fmt_count(f.duplicates),
        "duplicated ids",
        class(f.duplicates, expect.of(AnomalyKind::Duplicate)),
    );
    if let Some(unprocessed) = f.unprocessed {
        card(
            plot::fmt_count(unprocessed),
            "unprocessed behind a committed offset",
            "",
        );
    }
    card(
        plot::fmt_num(f.throughput_acks_per_s),
        "acknowledged per second",
        "",
    );
    card(
        f.latency_ms_p99
            .map_or("—".to_owned(), |v| format!("{} ms", plot::fmt_num(v))),
        "p99 produce latency",
        "",
    );
    html.push_str("</div>\n");
}

/// Settings rows, grouped by the part of the name before the first `.`/`:`/space when the
/// harness prefixes them ("cluster.brokers", "producer-1 acks").
fn scenario_section(html: &mut String, summary: &RunSummary) {
    html.push_str("<section class=\"card\" id=\"scenario\">\n<h2>Scenario</h2>\n<div class=\"scroll\"><table>\n<tbody>\n");
    if summary.settings.is_empty() {
        html.push_str("<tr><td>No settings recorded.</td></tr>\n");
    }
    // Consecutive rows sharing the part of their name before the first `.` ("cluster.brokers",
    // "clients[0].config.acks") go under one heading.
    let mut group: Option<&str> = None;
    for (name, value) in &summary.settings {
        let (prefix, rest) = match name.split_once('.') {
            Some((prefix, rest)) if !prefix.is_empty() && !rest.is_empty() => (Some(prefix), rest),
            _ => (None, name.as_str()),
        };
        if prefix != group {
            if let Some(prefix) = prefix {
                let _ = writeln!(
                    html,
                    "<tr class=\"group\"><th colspan=\"2\">{}</th></tr>",
                    escape(prefix)
                );
            }
            group = prefix;
        }
        let _ = writeln!(
            html,
            "<tr{}><th scope=\"row\">{}</th><td>{}</td></tr>",
            if prefix.is_some() {
                " class=\"in-group\""
            } else {
                ""
            },
            escape(rest),
            escape(value).replace('\n', "<br>")
        );
    }
    html.push_str("</tbody>\n</table></div>\n");
    let expect = &summary.analysis.expect;
    if expect.acknowledged_min > 0 {
        let _ = writeln!(
            html,
            "<p>The scenario expects at least {} acknowledged sends.</p>",
            plot::fmt_count(expect.acknowledged_min)
        );
    }
    if expect.pipeline_output_min_percent > 0 {
        let _ = writeln!(
            html,
            "<p>The scenario expects at least {}% of each pipeline's input to have its output in the final read.</p>",
            expect.pipeline_output_min_percent
        );
    }
    html.push_str("<p class=\"caption\">What the scenario allows of each anomaly class is in <a href=\"#anomaly-classes\">Anomalies by class</a>.</p>\n</section>\n");
}

fn classes_section(html: &mut String, analysis: &Analysis) {
    html.push_str(
        "<section class=\"card\" id=\"anomaly-classes\">\n<h2>Anomalies by class</h2>\n<table>\n\
         <thead><tr><th>class</th><th>meaning</th><th>scenario</th><th class=\"num\">count</th><th>outcome</th></tr></thead>\n<tbody>\n",
    );
    let mut kinds: Vec<AnomalyKind> = AnomalyKind::ALL.to_vec();
    for a in &analysis.anomalies {
        if !kinds.contains(&a.kind) {
            kinds.push(a.kind);
        }
    }
    for kind in kinds {
        let anomaly = analysis.anomaly(kind);
        let allowance = anomaly.map_or_else(|| kind.allowance(&analysis.expect), |a| a.allowance);
        let count = anomaly.map_or(0, |a| a.count);
        let (class, outcome) = match (count, allowance) {
            (0, checkers::Allowance::Required) => {
                ("bad", "required, yet absent: makes the run invalid")
            }
            (0, _) => ("zero", "none"),
            (_, checkers::Allowance::Required) => {
                ("allowed", "required by the scenario, which demonstrates it")
            }
            (_, checkers::Allowance::Forbidden) => ("bad", "forbidden: makes the run invalid"),
            (_, checkers::Allowance::Allowed) => ("allowed", "allowed by the scenario"),
        };
        let name = if count > 0 {
            format!("<a href=\"#anomaly-{0}\">{0}</a>", kind.as_str())
        } else {
            kind.as_str().to_owned()
        };
        let _ = writeln!(
            html,
            "<tr class=\"{}\"><td>{name}</td><td>{}</td><td class=\"{}\">{}</td><td class=\"num {class}\">{}</td><td class=\"{class}\">{outcome}</td></tr>",
            if count == 0 { "zero" } else { "occurred" },
            escape(kind.description()),
            allowance.as_str(),
            allowance.as_str(),
            plot::fmt_count(count),
        );
    }
    html.push_str("</tbody>\n</table>\n");
    if !analysis.unmet.is_empty() {
        html.push_str("<p class=\"bad\">Unmet expectations:</p>\n<ul>\n");
        for unmet in &analysis.unmet {
            let _ = writeln!(html, "<li class=\"bad\">{}</li>", escape(unmet));
        }
        html.push_str("</ul>\n");
    }
    html.push_str("</section>\n");
}

fn figure(html: &mut String, id: &str, title: &str, body: &str, caption: &str) {
    let _ = write!(
        html,
        "<figure class=\"plot\" id=\"{id}\">\n<h3>{}</h3>\n{body}",
        escape(title)
    );
    if !caption.is_empty() && !body.contains("class=\"not-recorded\"") {
        let _ = writeln!(html, "<figcaption>{caption}</figcaption>");
    }
    html.push_str("</figure>\n");
}

fn not_recorded(what: &str) -> String {
    format!(
        "<div class=\"not-recorded\">{}: not recorded in this run.</div>\n",
        escape(what)
    )
}

/// What every time plot of a run's page shares: the series, the fault windows shaded behind
/// them, and the x range.
struct PlotContext<'a> {
    series: &'a Series,
    plots: &'a PlotData,
    faults: &'a [FaultWindow],
    duration_s: f64,
}

fn plots_section(html: &mut String, summary: &RunSummary) {
    let analysis = &summary.analysis;
    let series = &analysis.series;
    let plots = &summary.plots;
    let context = PlotContext {
        series,
        plots,
        faults: &analysis.faults,
        duration_s: series
            .duration_s
            .max(summary.duration_s)
            .max(plots.duration_s),
    };
    html.push_str("<section class=\"card\" id=\"plots\">\n<h2>Plots</h2>\n");
    if context.faults.len() > limits::PLOT_FAULTS_MAX {
        let _ = writeln!(
            html,
            "<p class=\"more\">{} fault windows: the plots merge nearby ones into at most {} shaded spans.</p>",
            context.faults.len(),
            limits::PLOT_FAULTS_MAX
        );
    }
    sends_figure(html, &context);
    latency_figures(html, &context);
    consumers_figure(html, &context);
    unseen_and_lag_figures(html, &context);
    timeline_figure(html, &context, &summary.logs);
    html.push_str("</section>\n");
}

fn sends_figure(html: &mut String, context: &PlotContext<'_>) {
    let series = context.series;
    let sends = if series.sends_ok.is_empty()
        && series.sends_fail.is_empty()
        && series.sends_info.is_empty()
    {
        not_recorded("sends")
    } else {
        plot::time_svg(
            "sends per second",
            &[
                Line::counts("acknowledged (ok)", &series.sends_ok, plot::GREEN),
                Line::counts("failed (fail)", &series.sends_fail, plot::RED),
                Line::counts("unknown (info)", &series.sends_info, plot::GREY),
            ],
            context.faults,
            context.duration_s,
        )
    };
    figure(
        html,
        "plot-sends",
        "Sends per second: acknowledged, failed, unknown",
        &sends,
        &format!("By the time each send completed. {FAULT_CAPTION}"),
    );
}

/// Produce latency over time (p50, p99) and its distribution.
fn latency_figures(html: &mut String, context: &PlotContext<'_>) {
    let plots = context.plots;
    let latency = if plots.has_latency() {
        let line = |label: &str, values: &[Option<f64>], color| Line {
            label: label.to_owned(),
            values: values.to_vec(),
            bucket_s: plots.bucket_s,
            color,
            reduce: Reduce::Max,
        };
        plot::time_svg(
            "produce latency, ms",
            &[
                line("p50", &plots.latency_ms_p50, plot::BLUE),
                line("p99", &plots.latency_ms_p99, plot::PURPLE),
            ],
            context.faults,
            context.duration_s,
        )
    } else {
        not_recorded("produce latency")
    };
    let latency_caption = match plots.latency_ms_overall {
        Some(l) => format!(
            "From each send's invoke to its ok, per {} s bucket, by completion time. Whole run: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms (bins 9% wide; values are bin upper bounds). {FAULT_CAPTION}",
            plot::fmt_num(plots.bucket_s),
            plot::fmt_num(l.p50_ms),
            plot::fmt_num(l.p90_ms),
            plot::fmt_num(l.p99_ms),
            plot::fmt_num(l.max_ms)
        ),
        None => String::new(),
    };
    figure(
        html,
        "plot-latency",
        "Produce latency over time (p50, p99)",
        &latency,
        &latency_caption,
    );
    let histogram = if plots.latency_histogram.is_empty() {
        not_recorded("produce latency")
    } else {
        plot::histogram_svg(&plots.latency_histogram)
    };
    figure(
        html,
        "plot-latency-histogram",
        "Produce latency distribution",
        &histogram,
        &format!("{} acknowledged sends measured.", plots.latency_count),
    );
}

fn consumers_figure(html: &mut String, context: &PlotContext<'_>) {
    let (plots, series) = (context.plots, context.series);
    let consumers = if !plots.consumers.is_empty() {
        let lines: Vec<Line> = plots
            .consumers
            .iter()
            .zip(plot::PALETTE.iter().cycle())
            .map(|(c, color)| Line {
                label: c.process.clone(),
                values: active_span(&c.per_s),
                bucket_s: plots.bucket_s,
                color: *color,
                reduce: Reduce::Mean,
            })
            .collect();
        plot::time_svg(
            "records polled per second",
            &lines,
            context.faults,
            context.duration_s,
        )
    } else if !series.records_polled.is_empty() {
        plot::time_svg(
            "records polled per second",
            &[Line::counts(
                "all consumers",
                &series.records_polled,
                plot::BLUE,
            )],
            context.faults,
            context.duration_s,
        )
    } else {
        not_recorded("consumer throughput")
    };
    figure(
        html,
        "plot-consumers",
        "Consumer throughput",
        &consumers,
        &format!("Records returned by consumer polls, per consumer process; the final read is excluded. {FAULT_CAPTION}"),
    );
}

/// The unseen-messages and realtime-lag plots, from the series' extra keys.
fn unseen_and_lag_figures(html: &mut String, context: &PlotContext<'_>) {
    let extra = extra_series(context.series);
    for (id, title, what, matcher, y_desc) in [
        (
            "plot-unseen",
            "Unseen messages over time",
            "unseen messages over time",
            "unseen",
            "acknowledged, not yet read",
        ),
        (
            "plot-lag",
            "Realtime lag",
            "realtime lag",
            "lag",
            "realtime lag, ms",
        ),
    ] {
        let lines = extra_lines(&extra, matcher);
        let body = if lines.iter().any(|l| l.values.iter().any(Option::is_some)) {
            plot::time_svg(y_desc, &lines, context.faults, context.duration_s)
        } else {
            not_recorded(what)
        };
        let caption = match matcher {
            "unseen" => format!("Messages acknowledged by the end of each second and not yet read by any consumer. {FAULT_CAPTION}"),
            _ => format!("Time from a message's ack to its first read by a consumer, for the messages first read in each second. {FAULT_CAPTION}"),
        };
        figure(html, id, title, &body, &caption);
    }
}

/// The lines of the extra series whose key contains `matcher`, percentiles in their natural
/// order (p50, p90, p99, then max).
fn extra_lines(extra: &[(String, Vec<Option<f64>>)], matcher: &str) -> Vec<Line> {
    let mut found: Vec<&(String, Vec<Option<f64>>)> = extra
        .iter()
        .filter(|(key, _)| key.contains(matcher))
        .collect();
    let rank = |key: &str| {
        ["p50", "p90", "p99", "max"]
            .iter()
            .position(|p| key.ends_with(p))
            .unwrap_or(9)
    };
    found.sort_by_key(|(key, _)| rank(key));
    let colors = [plot::BLUE, plot::PURPLE, plot::PALETTE[1], plot::PALETTE[4]];
    found
        .iter()
        .zip(colors.iter().cycle())
        .map(|((key, values), color)| Line {
            label: key
                .trim_start_matches("lag_ms_")
                .trim_start_matches("lag_")
                .replace('_', " "),
            values: values.clone(),
            bucket_s: 1.0,
            color: *color,
            reduce: if key.contains("lag") {
                Reduce::Max
            } else {
                Reduce::Mean
            },
        })
        .collect()
}

fn timeline_figure(html: &mut String, context: &PlotContext<'_>, logs: &[(String, String)]) {
    let plots = context.plots;
    let timeline =
        if plots.nodes.is_empty() && plots.processes.is_empty() && context.faults.is_empty() {
            not_recorded("node and client process states")
        } else {
            plot::timeline_svg(
                &plots.nodes,
                &plots.processes,
                context.faults,
                context.duration_s,
                logs,
            )
        };
    figure(
        html,
        "plot-timeline",
        "Fault timeline",
        &timeline,
        "One row per node and client process: when it was up, and when it was killed, paused, cut off or lost power (from the fault windows and the history's process ops). Hover a bar for its times.",
    );
}

fn active_span(per_s: &[f64]) -> Vec<Option<f64>> {
    let first = per_s.iter().position(|&v| v > 0.0);
    let last = per_s.iter().rposition(|&v| v > 0.0);
    per_s
        .iter()
        .enumerate()
        .map(|(i, &v)| match (first, last) {
            (Some(a), Some(b)) if (a..=b).contains(&i) => Some(v),
            _ => None,
        })
        .collect()
}

/// Series fields of the checker's `Series` beyond the send and poll counts (such as unseen
/// messages over time or realtime lag), found by name so that a newer checker's series show up
/// without this crate naming them: every array of numbers (or nulls), one value per second.
fn extra_series(series: &Series) -> Vec<(String, Vec<Option<f64>>)> {
    const KNOWN: [&str; 5] = [
        "duration_s",
        "sends_ok",
        "sends_fail",
        "sends_info",
        "records_polled",
    ];
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(series) else {
        return Vec::new();
    };
    map.into_iter()
        .filter(|(key, _)| !KNOWN.contains(&key.as_str()))
        .filter_map(|(key, value)| {
            let array = value.as_array()?;
            let values: Option<Vec<Option<f64>>> = array
                .iter()
                .map(|v| match v {
                    serde_json::Value::Null => Some(None),
                    v => v.as_f64().map(Some),
                })
                .collect();
            Some((key, values?))
        })
        .collect()
}

fn evidence_section(html: &mut String, anomalies: &[Anomaly]) {
    html.push_str("<section class=\"card\" id=\"evidence\">\n<h2>Evidence</h2>\n");
    if anomalies.is_empty() {
        html.push_str("<p>No anomaly found.</p>\n");
    }
    for anomaly in anomalies {
        let kind = anomaly.kind.as_str();
        let allowance = anomaly.allowance.as_str();
        let forbidden = anomaly.allowance == checkers::Allowance::Forbidden;
        let _ = write!(
            html,
            "<section class=\"anomaly\" id=\"anomaly-{kind}\">\n<details{}>\n<summary>{kind}: {count} <span class=\"{allowance}\">({allowance})</span></summary>\n<p>{description}</p>\n",
            if forbidden { " open" } else { "" },
            count = anomaly.count,
            description = escape(anomaly.kind.description())
        );
        html.push_str(
            "<div class=\"scroll\"><table>\n<thead><tr><th>message id</th><th>time</th><th>acknowledged at</th><th>read at</th>\
             <th>faults within ±2 s</th><th>op indexes</th><th>likely cause</th></tr></thead>\n<tbody>\n",
        );
        for case in anomaly
            .cases
            .iter()
            .take(limits::REPORT_CASES_PER_CLASS_MAX)
        {
            case_row(html, case);
        }
        html.push_str("</tbody>\n</table></div>\n");
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
        html.push_str("</details>\n</section>\n");
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
        escape(&case.cause) + &crate::cycle::cycle_svg(case).unwrap_or_default()
    );
}

fn faults_section(html: &mut String, faults: &[FaultWindow]) {
    html.push_str("<section class=\"card\" id=\"faults\">\n<h2>Faults</h2>\n");
    if faults.is_empty() {
        html.push_str("<p>No faults were injected.</p>\n</section>\n");
        return;
    }
    html.push_str("<table>\n<thead><tr><th>fault</th><th>target</th><th class=\"num\">from</th><th class=\"num\">until</th><th class=\"num\">op index</th></tr></thead>\n<tbody>\n");
    for fault in faults.iter().take(limits::REPORT_FAULT_ROWS_MAX) {
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
    html.push_str("</tbody>\n</table>\n");
    if faults.len() > limits::REPORT_FAULT_ROWS_MAX {
        let _ = writeln!(
            html,
            "<p class=\"more\">{} more fault windows in results.json.</p>",
            faults.len() - limits::REPORT_FAULT_ROWS_MAX
        );
    }
    html.push_str("</section>\n");
}

/// Every count of the analysis (taken from its JSON form, so that counts a newer checker adds
/// show up too), with a readable name for the known ones.
fn counts_section(html: &mut String, analysis: &Analysis) {
    let label = |key: &str| -> Option<&'static str> {
        Some(match key {
            "ops" => "history ops",
            "sends_invoked" => "sends invoked (message ids)",
            "sends_ok" => "sends acknowledged (ok)",
            "sends_fail" => "sends failed (fail)",
            "sends_info" => "sends with unknown outcome (info, incl. open)",
            "sends_open" => "… of which still open at the end",
            "sends_without_id" => "sends without a message id",
            "polls_ok" => "polls (ok)",
            "records_polled" => "records polled by consumers",
            "final_read_records" => "records in the final read",
            "final_read_distinct_ids" => "distinct ids in the final read",
            "records_without_id" => "records without a message id",
            "unknown_ids_read" => "ids read that no send mentions",
            "lost" => "lost",
            "unacknowledged_absent" => "unacknowledged absent",
            "duplicates" => "duplicates",
            "recovered" => "recovered (not acknowledged, yet in the final read)",
            "aborted_read" => "aborted reads (failed, yet read)",
            _ => return None,
        })
    };
    html.push_str("<section class=\"card\" id=\"counts\">\n<h2>Counts</h2>\n<table>\n<tbody>\n");
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&analysis.counts) {
        for (key, value) in map {
            let name = label(&key).map_or_else(|| key.replace('_', " "), str::to_owned);
            let value = value
                .as_u64()
                .map_or_else(|| value.to_string(), plot::fmt_count);
            let _ = writeln!(
                html,
                "<tr><th scope=\"row\">{}</th><td class=\"num\">{}</td></tr>",
                escape(&name),
                escape(&value)
            );
        }
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
}

fn notes_section(html: &mut String, notes: &[String]) {
    html.push_str("<section class=\"card\" id=\"notes\">\n<h2>Notes</h2>\n");
    if notes.is_empty() {
        html.push_str("<p>None.</p>\n");
    } else {
        html.push_str("<ul>\n");
        for note in notes.iter().take(limits::REPORT_NOTES_MAX) {
            let _ = writeln!(html, "<li>{}</li>", escape(note));
        }
        html.push_str("</ul>\n");
        if notes.len() > limits::REPORT_NOTES_MAX {
            let _ = writeln!(
                html,
                "<p class=\"more\">{} more notes in results.json.</p>",
                notes.len() - limits::REPORT_NOTES_MAX
            );
        }
    }
    html.push_str("</section>\n");
}

fn logs_section(html: &mut String, logs: &[(String, String)]) {
    html.push_str("<section class=\"card\" id=\"logs\">\n<h2>Logs</h2>\n");
    if logs.is_empty() {
        html.push_str("<p>None recorded.</p>\n");
    } else {
        html.push_str("<ul>\n");
        for (label, path) in logs.iter().take(limits::REPORT_LOGS_MAX) {
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
