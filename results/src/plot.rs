//! SVG plots (plotters' SVG backend, inline in the report): per-second series with the fault
//! windows shaded and labelled.

use plotters::prelude::*;

use checkers::FaultWindow;

use crate::limits;

/// One line of a plot.
pub(crate) struct Line<'a> {
    pub label: &'a str,
    pub per_second: &'a [u64],
    pub color: RGBColor,
}

pub(crate) const ACKED: RGBColor = RGBColor(0x2e, 0x7d, 0x32);
pub(crate) const FAILED: RGBColor = RGBColor(0xc6, 0x28, 0x28);
pub(crate) const INFO: RGBColor = RGBColor(0x6d, 0x4c, 0x41);
pub(crate) const POLLED: RGBColor = RGBColor(0x15, 0x65, 0xc0);
/// Fault shading; the report's tests look for this colour.
pub(crate) const FAULT: RGBColor = RGBColor(0xff, 0x8f, 0x00);
pub(crate) const FAULT_OPACITY: f64 = 0.18;

/// An inline `<svg>` of the lines over `[0, duration_s]`, fault windows shaded behind them.
/// On a drawing error, a short HTML note instead (the report is still written).
pub(crate) fn series_svg(
    y_desc: &str,
    lines: &[Line<'_>],
    faults: &[FaultWindow],
    duration_s: f64,
) -> String {
    let mut svg = String::new();
    let drawn = draw(&mut svg, y_desc, lines, faults, duration_s);
    match drawn {
        Ok(()) => svg,
        Err(e) => format!(
            "<p class=\"plot-error\">plot unavailable: {}</p>",
            crate::report::escape(&e)
        ),
    }
}

fn draw(
    svg: &mut String,
    y_desc: &str,
    lines: &[Line<'_>],
    faults: &[FaultWindow],
    duration_s: f64,
) -> Result<(), String> {
    let buckets = lines.iter().map(|l| l.per_second.len()).max().unwrap_or(0);
    let x_max = duration_s.max(buckets as f64).max(1.0);
    let y_top = lines
        .iter()
        .flat_map(|l| l.per_second.iter().copied())
        .max()
        .unwrap_or(0) as f64;
    // Headroom for the labels; at least 5 so that integer ticks are spaced.
    let y_top = (y_top * 1.15).max(5.0);

    let root = SVGBackend::with_string(svg, (limits::PLOT_WIDTH_PX, limits::PLOT_HEIGHT_PX))
        .into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..x_max, 0f64..y_top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc(y_desc)
        .axis_desc_style(("sans-serif", 14))
        .label_style(("sans-serif", 12))
        .y_label_formatter(&|v: &f64| {
            if v.fract() == 0.0 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        })
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| e.to_string())?;

    // Fault windows: shaded rects, instantaneous ones at least a sliver wide, labels staggered.
    let sliver = x_max / f64::from(limits::PLOT_WIDTH_PX) * 2.0;
    for (i, fault) in faults.iter().take(limits::PLOT_FAULTS_MAX).enumerate() {
        let start = fault.start_s.clamp(0.0, x_max);
        let end = fault
            .end_or(duration_s)
            .clamp(start, x_max)
            .max(start + sliver);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(start, 0.0), (end, y_top)],
                FAULT.mix(FAULT_OPACITY).filled(),
            )))
            .map_err(|e| e.to_string())?;
        let label_y = y_top * (0.97 - 0.07 * (i % 3) as f64);
        chart
            .draw_series(std::iter::once(Text::new(
                fault.label(),
                (start, label_y),
                ("sans-serif", 12)
                    .into_font()
                    .color(&RGBColor(0x8a, 0x4b, 0x00)),
            )))
            .map_err(|e| e.to_string())?;
    }

    for line in lines {
        let color = line.color;
        chart
            .draw_series(LineSeries::new(
                line.per_second
                    .iter()
                    .enumerate()
                    .map(|(s, v)| (s as f64 + 0.5, *v as f64)),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(line.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    if lines.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
