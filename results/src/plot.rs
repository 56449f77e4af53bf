//! SVG plots, inline in the pages: time series with fault windows shaded and labelled, the latency
//! histogram and the comparison scatter (plotters' SVG backend), and the fault timeline (drawn by
//! hand: rows of bars are simpler as plain SVG).
//!
//! Colour meaning is the same everywhere: green acknowledged / valid, red failed / invalid, grey
//! unknown; orange shading is a fault window.

use std::fmt::Write as _;

use plotters::prelude::*;

use checkers::FaultWindow;
use kaos_history::{FaultKind, Timeline};

use crate::limits;
use crate::page::escape;
use crate::series::{HistogramBin, NodeSpan, ProcessSpan};

pub(crate) const GREEN: RGBColor = RGBColor(0x2e, 0x7d, 0x32);
pub(crate) const RED: RGBColor = RGBColor(0xc6, 0x28, 0x28);
pub(crate) const GREY: RGBColor = RGBColor(0x75, 0x75, 0x75);
pub(crate) const BLUE: RGBColor = RGBColor(0x15, 0x65, 0xc0);
pub(crate) const PURPLE: RGBColor = RGBColor(0x6a, 0x1b, 0x9a);
/// Fault shading; the report's tests look for this colour.
pub(crate) const FAULT: RGBColor = RGBColor(0xff, 0x8f, 0x00);
pub(crate) const FAULT_OPACITY: f64 = 0.18;
const FAULT_TEXT: RGBColor = RGBColor(0x8a, 0x4b, 0x00);

/// Lines for several consumers, distinguishable and none of them green, red or grey.
pub(crate) const PALETTE: [RGBColor; 8] = [
    BLUE,
    RGBColor(0x00, 0x83, 0x8f),
    PURPLE,
    RGBColor(0xef, 0x6c, 0x00),
    RGBColor(0x28, 0x35, 0x93),
    RGBColor(0xad, 0x14, 0x57),
    RGBColor(0x55, 0x8b, 0x2f),
    RGBColor(0x4e, 0x34, 0x2e),
];

/// How a line is reduced when it has more buckets than `limits::PLOT_POINTS_MAX`.
#[derive(Clone, Copy)]
pub(crate) enum Reduce {
    /// Rates: the mean of the merged buckets.
    Mean,
    /// Percentiles: the worst of the merged buckets.
    Max,
}

/// One line of a time plot: `values[i]` covers `[i*bucket_s, (i+1)*bucket_s)`; `None` is a gap.
pub(crate) struct Line {
    pub label: String,
    pub values: Vec<Option<f64>>,
    pub bucket_s: f64,
    pub color: RGBColor,
    pub reduce: Reduce,
}

impl Line {
    pub fn counts(label: &str, per_second: &[u64], color: RGBColor) -> Line {
        Line {
            label: label.to_owned(),
            values: per_second.iter().map(|&v| Some(v as f64)).collect(),
            bucket_s: 1.0,
            color,
            reduce: Reduce::Mean,
        }
    }

    /// `(x, y)` points, reduced to at most `limits::PLOT_POINTS_MAX`, `None` splitting segments.
    fn points(&self) -> Vec<Option<(f64, f64)>> {
        let n = self.values.len();
        let k = n.div_ceil(limits::PLOT_POINTS_MAX).max(1);
        self.values
            .chunks(k)
            .enumerate()
            .map(|(i, chunk)| {
                let present = chunk.iter().flatten();
                let y = match self.reduce {
                    Reduce::Mean => {
                        let (sum, count) = present.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
                        (count > 0).then(|| sum / count as f64)
                    }
                    Reduce::Max => present.copied().reduce(f64::max),
                }?;
                let x = (i * k) as f64 * self.bucket_s + chunk.len() as f64 * self.bucket_s / 2.0;
                Some((x, y))
            })
            .collect()
    }
}

/// A tick label with as many decimals as a range of `span` needs to tell ticks apart.
pub(crate) fn fmt_tick(v: f64, span: f64) -> String {
    if span >= 50.0 || span <= 0.0 || !span.is_finite() {
        return fmt_num(v);
    }
    let decimals = (1.0 - span.log10().floor()).clamp(0.0, 4.0) as usize;
    format!("{v:.decimals$}")
}

/// A count with thousands separators: 9800000 → "9,800,000".
pub(crate) fn fmt_count(n: u64) -> String {
    let digits = n.to_string();
    let head = match digits.len() % 3 {
        0 => 3,
        r => r,
    };
    let mut out = digits[..head].to_owned();
    for group in digits.as_bytes()[head..].chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(group).unwrap_or_default());
    }
    out
}

/// A number for an axis or a table: 1234567 → "1.23M", 0.5 → "0.5".
pub(crate) fn fmt_num(v: f64) -> String {
    let a = v.abs();
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    if a >= 1e9 {
        format!("{}G", trim(format!("{:.2}", v / 1e9)))
    } else if a >= 1e6 {
        format!("{}M", trim(format!("{:.2}", v / 1e6)))
    } else if a >= 1e4 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        trim(format!("{v:.1}"))
    } else {
        trim(format!("{v:.3}"))
    }
}

fn or_note(drawn: Result<(), String>, svg: String) -> String {
    match drawn {
        Ok(()) => svg,
        Err(e) => format!(
            "<p class=\"plot-error\">plot unavailable: {}</p>",
            escape(&e)
        ),
    }
}

/// An inline `<svg>` of the lines over `[0, duration_s]`, fault windows shaded behind them.
/// On a drawing error, a short HTML note instead (the page is still written).
pub(crate) fn time_svg(
    y_desc: &str,
    lines: &[Line],
    faults: &[FaultWindow],
    duration_s: f64,
) -> String {
    let mut svg = String::new();
    let drawn = draw_time(&mut svg, y_desc, lines, faults, duration_s);
    or_note(drawn, svg)
}

fn draw_time(
    svg: &mut String,
    y_desc: &str,
    lines: &[Line],
    faults: &[FaultWindow],
    duration_s: f64,
) -> Result<(), String> {
    let points: Vec<Vec<Option<(f64, f64)>>> = lines.iter().map(Line::points).collect();
    let x_end = lines
        .iter()
        .map(|l| l.values.len() as f64 * l.bucket_s)
        .fold(duration_s, f64::max)
        .max(1.0);
    let y_max = points
        .iter()
        .flatten()
        .flatten()
        .map(|p| p.1)
        .fold(0.0, f64::max);
    // Headroom for the legend and fault labels.
    let y_top = if y_max > 0.0 { y_max * 1.25 } else { 1.0 };

    let root = SVGBackend::with_string(svg, (limits::PLOT_WIDTH_PX, limits::PLOT_HEIGHT_PX))
        .into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_end, 0f64..y_top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc(y_desc)
        .axis_desc_style(("sans-serif", 14))
        .label_style(("sans-serif", 12))
        .x_label_formatter(&|v: &f64| fmt_num(*v))
        .y_label_formatter(&|v: &f64| fmt_num(*v))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(|e| e.to_string())?;

    shade_faults(&mut chart, faults, duration_s, x_end, y_top)?;

    for (line, points) in lines.iter().zip(&points) {
        let color = line.color;
        let mut labelled = false;
        for segment in points.split(Option::is_none) {
            let segment: Vec<(f64, f64)> = segment.iter().flatten().copied().collect();
            if segment.is_empty() {
                continue;
            }
            let series = if segment.len() == 1 {
                chart.draw_series(std::iter::once(Circle::new(segment[0], 2, color.filled())))
            } else {
                chart.draw_series(std::iter::once(PathElement::new(
                    segment,
                    color.stroke_width(2),
                )))
            }
            .map_err(|e| e.to_string())?;
            if !labelled {
                labelled = true;
                series.label(line.label.as_str()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
                });
            }
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn shade_faults(
    chart: &mut Chart<'_, '_>,
    faults: &[FaultWindow],
    duration_s: f64,
    x_end: f64,
    y_top: f64,
) -> Result<(), String> {
    let label = faults.len() <= limits::PLOT_FAULT_LABELS_MAX;
    // Instantaneous faults are at least a sliver wide.
    let sliver = x_end / f64::from(limits::PLOT_WIDTH_PX) * 2.0;
    for (start, end) in fault_spans(faults, duration_s, x_end, sliver) {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(start, 0.0), (end, y_top)],
                FAULT.mix(FAULT_OPACITY).filled(),
            )))
            .map_err(|e| e.to_string())?;
    }
    if label {
        for (i, fault) in faults.iter().enumerate() {
            let label_y = y_top * (0.98 - 0.06 * (i % 3) as f64);
            chart
                .draw_series(std::iter::once(Text::new(
                    fault.label(),
                    (fault.start_s.clamp(0.0, x_end), label_y),
                    ("sans-serif", 12).into_font().color(&FAULT_TEXT),
                )))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The shaded spans of the fault windows: each window on its own while there are at most
/// `limits::PLOT_FAULTS_MAX`; beyond that, overlapping and nearby windows merged (the gap allowed
/// doubling) until at most that many spans remain, so that every fault stays shaded.
pub(crate) fn fault_spans(
    faults: &[FaultWindow],
    duration_s: f64,
    x_end: f64,
    sliver: f64,
) -> Vec<(f64, f64)> {
    let mut spans: Vec<(f64, f64)> = faults
        .iter()
        .map(|f| {
            let start = f.start_s.clamp(0.0, x_end);
            (
                start,
                f.end_or(duration_s).clamp(start, x_end).max(start + sliver),
            )
        })
        .collect();
    if spans.len() <= limits::PLOT_FAULTS_MAX {
        return spans;
    }
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut gap = 0.0;
    loop {
        let mut merged: Vec<(f64, f64)> = Vec::with_capacity(spans.len());
        for &(start, end) in &spans {
            match merged.last_mut() {
                Some(last) if start <= last.1 + gap => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        if merged.len() <= limits::PLOT_FAULTS_MAX {
            return merged;
        }
        gap = if gap == 0.0 { sliver } else { gap * 2.0 };
    }
}

/// The latency distribution: bars over a log-scaled x axis (milliseconds).
pub(crate) fn histogram_svg(bins: &[HistogramBin]) -> String {
    let mut svg = String::new();
    let drawn = draw_histogram(&mut svg, bins);
    or_note(drawn, svg)
}

fn draw_histogram(svg: &mut String, bins: &[HistogramBin]) -> Result<(), String> {
    let lg = |ms: f64| ms.max(1e-3).log10();
    let (Some(first), Some(last)) = (bins.first(), bins.last()) else {
        return Err("no latencies".to_owned());
    };
    let x0 = lg(first.low_ms).floor();
    let x1 = lg(last.high_ms).ceil().max(x0 + 1.0);
    let total: u64 = bins.iter().map(|b| b.count).sum();
    let y_max = bins
        .iter()
        .map(|b| b.count as f64 / total.max(1) as f64 * 100.0)
        .fold(0.0, f64::max);
    let root = SVGBackend::with_string(svg, (limits::PLOT_WIDTH_PX, limits::PLOT_HEIGHT_PX))
        .into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, 0f64..(y_max * 1.15).max(1.0))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("produce latency, ms (log scale)")
        .y_desc("% of acknowledged sends")
        .axis_desc_style(("sans-serif", 14))
        .label_style(("sans-serif", 12))
        .x_labels(((x1 - x0) as usize + 1).min(12))
        .x_label_formatter(&|v: &f64| {
            if (v - v.round()).abs() < 1e-9 {
                fmt_num(10f64.powf(v.round()))
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v: &f64| fmt_num(*v))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(bins.iter().filter(|b| b.count > 0).map(|b| {
            Rectangle::new(
                [
                    (lg(b.low_ms), 0.0),
                    (lg(b.high_ms), b.count as f64 / total as f64 * 100.0),
                ],
                BLUE.mix(0.8).filled(),
            )
        }))
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

/// One configuration on the comparison scatter, drawn as a dot numbered by its position.
pub(crate) struct ScatterPoint {
    /// Listed by the page beside the plot, not drawn.
    pub label: String,
    pub x: f64,
    pub y: f64,
    pub color: RGBColor,
}

/// Loss + duplicates against throughput, one labelled dot per configuration.
pub(crate) fn scatter_svg(x_desc: &str, y_desc: &str, points: &[ScatterPoint]) -> String {
    let mut svg = String::new();
    let drawn = draw_scatter(&mut svg, x_desc, y_desc, points);
    or_note(drawn, svg)
}

fn draw_scatter(
    svg: &mut String,
    x_desc: &str,
    y_desc: &str,
    points: &[ScatterPoint],
) -> Result<(), String> {
    let (x_min, x_max) = points.iter().fold((f64::INFINITY, 0f64), |(lo, hi), p| {
        (lo.min(p.x), hi.max(p.x))
    });
    let x_min = if x_min.is_finite() { x_min } else { 0.0 };
    // Zoom on the configurations (throughputs are often close), centred, with a margin.
    let span = (x_max - x_min).max(x_max * 0.02).max(1e-6);
    let (x0, x1) = if x_max > 0.0 {
        ((x_min - span * 0.25).max(0.0), x_max + span * 0.25)
    } else {
        (0.0, 1.0)
    };
    let y_max = points.iter().map(|p| p.y).fold(0.0, f64::max);
    let y_top = if y_max > 0.0 { y_max * 1.25 } else { 1.0 };
    let root = SVGBackend::with_string(svg, (limits::PLOT_WIDTH_PX, 380)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, 0f64..y_top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style(("sans-serif", 14))
        .label_style(("sans-serif", 12))
        .x_label_formatter(&|v: &f64| fmt_tick(*v, x1 - x0))
        .y_label_formatter(&|v: &f64| fmt_num(*v))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, p) in points.iter().enumerate() {
        let color = p.color;
        // A number beside each dot (the page lists what each number is): long labels of
        // neighbouring configurations would print over each other.
        let _ = &p.label;
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((p.x, p.y))
                    + Circle::new((0, 0), 6, color.filled())
                    + Text::new(
                        format!("{}", i + 1),
                        (9, -16),
                        ("sans-serif", 14).into_font().color(&BLACK),
                    ),
            ))
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

/// What a row of the timeline shows for a fault kind (a `FaultWindow`'s op name): (legend text,
/// fill colour). A name kaos does not know as a fault is drawn as an event.
fn state_of(kind: &str) -> (&'static str, &'static str) {
    let row = FaultKind::from_name(kind).map_or(Timeline::Event, FaultKind::timeline);
    (row.name(), timeline_fill(row))
}

fn timeline_fill(row: Timeline) -> &'static str {
    match row {
        Timeline::Killed => "#37474f",
        Timeline::PowerLost => "#6a1b9a",
        Timeline::Paused => "#f9a825",
        Timeline::CutOff => "#1565c0",
        Timeline::DegradedLink => "#64b5f6",
        Timeline::Event => "#ff8f00",
    }
}

const UP_FILL: &str = "#c8e6c9";

/// One row of the fault timeline: a node or a client process and when it was up.
struct TimelineRow<'a> {
    name: &'a str,
    from_s: f64,
    to_s: f64,
    ended: Option<String>,
    is_node: bool,
}

/// Where the timeline draws: the margins, the row sizes and the x scale.
struct TimelineGeometry {
    width: f64,
    left: f64,
    top: f64,
    row_h: f64,
    bar_h: f64,
    plot_w: f64,
    /// The last second on the x axis (at least 1).
    x_end: f64,
    duration_s: f64,
    axis_y: f64,
}

impl TimelineGeometry {
    fn new(rows: usize, duration_s: f64) -> TimelineGeometry {
        let width = f64::from(limits::PLOT_WIDTH_PX);
        let (left, right, top, row_h) = (150.0, 16.0, 8.0, 24.0);
        TimelineGeometry {
            width,
            left,
            top,
            row_h,
            bar_h: 14.0,
            plot_w: width - left - right,
            x_end: duration_s.max(1.0),
            duration_s,
            axis_y: top + rows as f64 * row_h + 4.0,
        }
    }

    /// The x of second `s`, clamped to the axis.
    fn x(&self, s: f64) -> f64 {
        self.left + s.clamp(0.0, self.x_end) / self.x_end * self.plot_w
    }
}

/// The fault timeline: one row per node and per client process, from when it was up to when it
/// ended, with its fault windows drawn over it and instantaneous events as ticks.
pub(crate) fn timeline_svg(
    nodes: &[NodeSpan],
    processes: &[ProcessSpan],
    faults: &[FaultWindow],
    duration_s: f64,
    logs: &[(String, String)],
) -> String {
    let rows = timeline_rows(nodes, processes, faults, duration_s);
    let g = TimelineGeometry::new(rows.len(), duration_s);
    let (width, height) = (g.width, g.axis_y + 64.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{width}\" height=\"{height}\" fill=\"#fff\"/>\n"
    );
    for (i, row) in rows.iter().enumerate() {
        timeline_row(&mut svg, &g, i, row, faults, logs);
    }
    timeline_axis(&mut svg, &g);
    timeline_legend(&mut svg, &g);
    svg.push_str("</svg>\n");
    svg
}

/// The nodes, then the targets only fault windows name (a history without `node_start` ops),
/// then the client processes; at most `2 × PLOT_TIMELINE_ROWS_MAX`.
fn timeline_rows<'a>(
    nodes: &'a [NodeSpan],
    processes: &'a [ProcessSpan],
    faults: &'a [FaultWindow],
    duration_s: f64,
) -> Vec<TimelineRow<'a>> {
    let mut rows: Vec<TimelineRow<'_>> = nodes
        .iter()
        .map(|n| TimelineRow {
            name: &n.node,
            from_s: n.started_s.unwrap_or(0.0),
            to_s: duration_s,
            ended: None,
            is_node: true,
        })
        .collect();
    let mut extra: Vec<&str> = Vec::new();
    for f in faults {
        for target in f.target.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let known = rows.iter().any(|r| r.name == target)
                || processes.iter().any(|p| p.process == target)
                || extra.contains(&target);
            if !known {
                extra.push(target);
            }
        }
    }
    rows.extend(extra.into_iter().map(|name| TimelineRow {
        name,
        from_s: 0.0,
        to_s: duration_s,
        ended: None,
        is_node: true,
    }));
    rows.extend(processes.iter().map(|p| TimelineRow {
        name: &p.process,
        from_s: p.first_s,
        to_s: p.last_s,
        ended: p.exit.clone(),
        is_node: false,
    }));
    rows.truncate(limits::PLOT_TIMELINE_ROWS_MAX * 2);
    rows
}

/// Row `i`: its label (a link to its log), its up bar, its faults and how it ended.
fn timeline_row(
    svg: &mut String,
    g: &TimelineGeometry,
    i: usize,
    row: &TimelineRow<'_>,
    faults: &[FaultWindow],
    logs: &[(String, String)],
) {
    let y = g.top + i as f64 * g.row_h;
    let bar_y = y + (g.row_h - g.bar_h) / 2.0;
    if i % 2 == 1 {
        let _ = writeln!(
            svg,
            "<rect x=\"0\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\"/>",
            g.width, g.row_h
        );
    }
    timeline_label(svg, g, y, row, logs);
    let (x0, x1) = (g.x(row.from_s), g.x(row.to_s).max(g.x(row.from_s) + 1.0));
    let title = match &row.ended {
        Some(status) => format!(
            "{}: {:.2} s to {:.2} s, {status}",
            row.name, row.from_s, row.to_s
        ),
        None => format!("{}: up from {:.2} s", row.name, row.from_s),
    };
    let _ = writeln!(
        svg,
        "<rect x=\"{x0:.1}\" y=\"{bar_y:.1}\" width=\"{:.1}\" height=\"{}\" fill=\"{UP_FILL}\"><title>{}</title></rect>",
        x1 - x0,
        g.bar_h,
        escape(&title)
    );
    for f in faults.iter().take(limits::PLOT_TIMELINE_FAULTS_MAX) {
        if f.target.split(',').map(str::trim).any(|t| t == row.name) {
            timeline_fault(svg, g, bar_y, row, f);
        }
    }
    if let Some(status) = &row.ended {
        let failed = !status.contains("status: 0");
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{}\" font-size=\"11\">{}</text>",
            (x1 + 8.0).min(g.width - 120.0),
            y + g.row_h / 2.0 + 4.0,
            if failed { "#c62828" } else { "#555" },
            escape(status)
        );
    }
}

/// The row's name and kind; a link to its log, the log whose file is named after it.
fn timeline_label(
    svg: &mut String,
    g: &TimelineGeometry,
    y: f64,
    row: &TimelineRow<'_>,
    logs: &[(String, String)],
) {
    let kind = if row.is_node { "node" } else { "client" };
    let label = format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#333\">{} <tspan fill=\"#888\">{kind}</tspan></text>",
        g.left - 8.0,
        y + g.row_h / 2.0 + 4.0,
        escape(row.name)
    );
    let log = logs.iter().find(|(_, path)| {
        std::path::Path::new(path)
            .file_stem()
            .and_then(|s| s.to_str())
            == Some(row.name)
    });
    match log {
        Some((_, path)) => {
            let _ = writeln!(
                svg,
                "<a href=\"{}\"><title>log of {}</title>{label}</a>",
                escape(&crate::page::relative_href(path)),
                escape(row.name)
            );
        }
        None => svg.push_str(&label),
    }
}

/// One fault window over a row's bar: a span, or a tick for an instantaneous event.
fn timeline_fault(
    svg: &mut String,
    g: &TimelineGeometry,
    bar_y: f64,
    row: &TimelineRow<'_>,
    f: &FaultWindow,
) {
    let (state, fill) = state_of(&f.kind);
    // A client process killed is gone: its row ends there (a restarted client is a new
    // process, with its own row).
    let end = if row.is_node {
        f.end_or(g.duration_s)
    } else {
        f.end_or(g.duration_s)
            .min(row.to_s.max(f.start_s + g.x_end / 200.0))
    };
    let title = match f.end_s {
        Some(e) if e > f.start_s => {
            format!("{} {}: {:.2} s to {e:.2} s", f.kind, row.name, f.start_s)
        }
        Some(_) => format!("{} {} at {:.2} s", f.kind, row.name, f.start_s),
        None => format!(
            "{} {} from {:.2} s, never recovered",
            f.kind, row.name, f.start_s
        ),
    };
    if end > f.start_s {
        let (fx0, fx1) = (g.x(f.start_s), g.x(end));
        let _ = writeln!(
            svg,
            "<rect class=\"state-{}\" x=\"{fx0:.1}\" y=\"{bar_y:.1}\" width=\"{:.1}\" height=\"{}\" fill=\"{fill}\"><title>{}</title></rect>",
            state.replace(' ', "-"),
            (fx1 - fx0).max(1.5),
            g.bar_h,
            escape(&title)
        );
    } else {
        let fx = g.x(f.start_s);
        let _ = writeln!(
            svg,
            "<path d=\"M{fx:.1} {:.1} l-4 -6 h8 z\" fill=\"{fill}\"><title>{}</title></path>",
            bar_y,
            escape(&title)
        );
    }
}

/// The time axis with its ticks and title.
fn timeline_axis(svg: &mut String, g: &TimelineGeometry) {
    let (left, axis_y) = (g.left, g.axis_y);
    let _ = writeln!(
        svg,
        "<line x1=\"{left}\" y1=\"{axis_y}\" x2=\"{:.1}\" y2=\"{axis_y}\" stroke=\"#999\"/>",
        left + g.plot_w
    );
    let step = nice_step(g.x_end / 10.0);
    let mut t = 0.0;
    while t <= g.x_end + 1e-9 {
        let tx = g.x(t);
        let _ = writeln!(
            svg,
            "<line x1=\"{tx:.1}\" y1=\"{axis_y}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#999\"/><text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            axis_y + 4.0,
            axis_y + 16.0,
            fmt_num(t)
        );
        t += step;
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#333\" font-size=\"13\">seconds since start</text>",
        left + g.plot_w / 2.0,
        axis_y + 32.0
    );
}

/// The legend below the axis: up, then each fault state's colour.
fn timeline_legend(svg: &mut String, g: &TimelineGeometry) {
    let mut lx = g.left;
    let ly = g.axis_y + 44.0;
    let rows = Timeline::ALL.iter().map(|row| match row {
        Timeline::Event => ("instant event (drop caches…)", timeline_fill(*row)),
        Timeline::Killed
        | Timeline::PowerLost
        | Timeline::Paused
        | Timeline::CutOff
        | Timeline::DegradedLink => (row.name(), timeline_fill(*row)),
    });
    for (label, fill) in std::iter::once(("up / running", UP_FILL)).chain(rows) {
        let _ = writeln!(
            svg,
            "<rect x=\"{lx:.1}\" y=\"{ly:.1}\" width=\"12\" height=\"12\" fill=\"{fill}\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#333\">{label}</text>",
            lx + 16.0,
            ly + 10.0
        );
        lx += 22.0 + label.len() as f64 * 6.6;
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(12.0), "12");
        assert_eq!(fmt_num(12.25), "12.2");
        assert_eq!(fmt_num(1500.0), "1500");
        assert_eq!(fmt_num(25_000.0), "25k");
        assert_eq!(fmt_num(1_234_567.0), "1.23M");
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_count(9_800_000), "9,800,000");
    }

    #[test]
    fn long_lines_are_reduced() {
        let line = Line {
            label: "x".to_owned(),
            values: (0..9_600).map(|v| Some(f64::from(v % 2))).collect(),
            bucket_s: 1.0,
            color: BLUE,
            reduce: Reduce::Mean,
        };
        let points = line.points();
        assert!(points.len() <= limits::PLOT_POINTS_MAX);
        assert!(points.iter().flatten().all(|p| (p.1 - 0.5).abs() < 1e-9));
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(0.3), 0.5);
    }
}
