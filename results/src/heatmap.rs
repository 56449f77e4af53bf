//! The comparison's heatmaps: one count (acknowledged loss, unprocessed messages) over two varied
//! settings, a panel per value of the others, drawn by hand as SVG (a grid of labelled
//! rectangles is simpler as plain SVG than through plotters). Each cell shows the median over the
//! configuration's seeds and, under it, the range; its colour grows with the median on a log
//! scale shared by every panel of the count, so that panels compare; zero is pale green.

use std::fmt::Write as _;

use crate::page::escape;
use crate::plot::fmt_num;

/// A configuration's count over its seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Stat {
    /// Median and range of `values`; none when there are none.
    pub fn of(values: &[f64]) -> Option<Stat> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stat {
            median,
            min: v[0],
            max: v[n - 1],
            runs: n,
        })
    }

    /// "12" for one run or equal runs, else "12 (3–40)".
    pub fn text(&self) -> String {
        self.with_range(|range| format!(" ({range})"))
    }

    /// As [`Stat::text`], the range on a line of its own under the median (a table cell).
    pub fn html(&self) -> String {
        self.with_range(|range| format!(" <span class=\"range\">({range})</span>"))
    }

    fn with_range(&self, range: impl Fn(String) -> String) -> String {
        let median = fmt_num(self.median);
        if self.runs > 1 && self.min < self.max {
            median + &range(format!("{}–{}", fmt_num(self.min), fmt_num(self.max)))
        } else {
            median
        }
    }
}

/// One panel: rows × columns of cells (none where the matrix has no such configuration).
pub(crate) struct Panel {
    /// What the panel holds fixed ("enable.idempotence=false · flush.messages=0").
    pub title: String,
    /// The setting over the rows and its values (none: a single row).
    pub row_key: Option<String>,
    pub rows: Vec<String>,
    pub col_key: String,
    pub cols: Vec<String>,
    /// `cells[r][c]`.
    pub cells: Vec<Vec<Option<Stat>>>,
}

const LABEL_W: f64 = 132.0;
const COL_W: f64 = 116.0;
const ROW_H: f64 = 46.0;
const TOP: f64 = 58.0;

/// The panel as an SVG; `scale_max` is the largest median of this count over every panel.
pub(crate) fn heatmap_svg(panel: &Panel, scale_max: f64) -> String {
    let rows = panel.rows.len().max(1);
    let width = LABEL_W + COL_W * panel.cols.len() as f64 + 8.0;
    let height = TOP + ROW_H * rows as f64 + 8.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"heatmap\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" role=\"img\">\n\
         <text x=\"4\" y=\"16\" font-size=\"13\" font-weight=\"600\">{}</text>\n\
         <text x=\"{}\" y=\"34\" font-size=\"11\" fill=\"#5f6b76\">{}</text>\n",
        escape(&panel.title),
        LABEL_W,
        escape(&panel.col_key)
    );
    if let Some(key) = &panel.row_key {
        let _ = writeln!(
            svg,
            "<text x=\"4\" y=\"{}\" font-size=\"11\" fill=\"#5f6b76\">{} ↓</text>",
            TOP - 6.0,
            escape(key)
        );
    }
    for (c, col) in panel.cols.iter().enumerate() {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
            LABEL_W + COL_W * (c as f64 + 0.5),
            TOP - 6.0,
            escape(&clip(col, 16))
        );
    }
    for r in 0..rows {
        let y = TOP + ROW_H * r as f64;
        let label = panel.rows.get(r).map(String::as_str).unwrap_or("");
        let _ = writeln!(
            svg,
            "<text x=\"4\" y=\"{}\" font-size=\"12\">{}</text>",
            y + ROW_H / 2.0 + 4.0,
            escape(&clip(label, 18))
        );
        for c in 0..panel.cols.len() {
            let x = LABEL_W + COL_W * c as f64;
            let cell = panel
                .cells
                .get(r)
                .and_then(|row| row.get(c))
                .copied()
                .flatten();
            heat_cell(&mut svg, x, y, cell, scale_max);
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// One rectangle with its median and range, or a grey "not run" where there is no configuration.
fn heat_cell(svg: &mut String, x: f64, y: f64, cell: Option<Stat>, scale_max: f64) {
    let (w, h) = (COL_W - 4.0, ROW_H - 4.0);
    let Some(stat) = cell else {
        let _ = writeln!(
            svg,
            "<rect class=\"cell none\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"#f1f2f4\" stroke=\"#e3e6ea\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#8a949c\" text-anchor=\"middle\">not run</text>",
            x + w / 2.0,
            y + h / 2.0 + 4.0
        );
        return;
    };
    let (fill, ink) = colour(stat.median, scale_max);
    let _ = write!(
        svg,
        "<rect class=\"cell\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"3\" fill=\"{fill}\"><title>{}: median (lowest–highest) of {} run{}</title></rect>\
         <text x=\"{}\" y=\"{}\" font-size=\"15\" font-weight=\"600\" fill=\"{ink}\" text-anchor=\"middle\">{}</text>",
        stat.text(),
        stat.runs,
        if stat.runs == 1 { "" } else { "s" },
        x + w / 2.0,
        y + if stat.runs > 1 { 19.0 } else { 26.0 },
        fmt_num(stat.median)
    );
    if stat.runs > 1 {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{ink}\" text-anchor=\"middle\">{}–{}</text>",
            x + w / 2.0,
            y + 34.0,
            fmt_num(stat.min),
            fmt_num(stat.max)
        );
    }
    svg.push('\n');
}

/// The fill for a median and the text colour that reads on it: pale green for zero, then pale
/// orange to dark red on a log scale up to `scale_max`.
fn colour(median: f64, scale_max: f64) -> (String, &'static str) {
    if median <= 0.0 {
        return ("#e8f5e9".to_owned(), "#1b5e20");
    }
    let t = if scale_max > 0.0 {
        ((1.0 + median).ln() / (1.0 + scale_max).ln()).clamp(0.0, 1.0)
    } else {
        1.0
    };
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
    let (r, g, b) = (mix(0xff, 0xb7), mix(0xe0, 0x1c), mix(0xb2, 0x1c));
    (
        format!("#{r:02x}{g:02x}{b:02x}"),
        if t > 0.55 { "#ffffff" } else { "#1f2328" },
    )
}

fn clip(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(chars - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ranges() {
        let s = Stat::of(&[38.0, 7265.0, 100.0]).expect("stat");
        assert_eq!((s.median, s.min, s.max, s.runs), (100.0, 38.0, 7265.0, 3));
        assert_eq!(s.text(), "100 (38–7265)");
        assert_eq!(s.html(), "100 <span class=\"range\">(38–7265)</span>");
        assert_eq!(Stat::of(&[1.0, 4.0]).expect("two").median, 2.5);
        assert_eq!(Stat::of(&[5.0]).expect("one").text(), "5");
        assert!(Stat::of(&[]).is_none());
    }

    #[test]
    fn zero_is_green_and_more_is_darker() {
        assert_eq!(colour(0.0, 100.0).0, "#e8f5e9");
        let (low, _) = colour(1.0, 10_000.0);
        let (high, ink) = colour(10_000.0, 10_000.0);
        assert_eq!(high, "#b71c1c");
        assert_eq!(ink, "#ffffff");
        assert!(low > high, "{low} is paler than {high}");
    }
}
