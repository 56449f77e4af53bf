//! `comparison.html`, for a person who must choose settings: what each configuration of a matrix
//! loses, over its seeds. It leads with heatmaps of acknowledged loss and of unprocessed
//! messages over the two main varied settings (a panel per value of the others), then the table:
//! one row per configuration with a compact configuration column, its runs' verdicts, and each
//! count as the median over the seeds with its range; then loss + duplicates against throughput.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use checkers::{AnomalyKind, Verdict};

use crate::error::ResultsError;
use crate::heatmap::{self, Panel, Stat};
use crate::limits;
use crate::page::{self, escape, relative_href, relative_path};
use crate::plot::{self, ScatterPoint};
use crate::store::write_atomically;
use crate::summary::{KeyFigures, RunSummary};

/// One run of a matrix: the configuration (what was varied) and the run it produced. Runs with
/// the same settings are one configuration run with several seeds.
#[derive(Debug, Clone)]
pub struct ComparisonRow {
    /// A short name for the configuration ("acks=1 idempotence=off").
    pub label: String,
    /// The varied settings, (name, value), in the matrix's order.
    pub settings: Vec<(String, String)>,
    /// The run's directory; the page links to its `report.html`.
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
    let configs = configurations(shown);
    let keys = Keys::of(&configs);
    let scenario = shown
        .first()
        .map(|r| r.summary.scenario_name.clone())
        .unwrap_or_default();
    let mut html = page::head(&format!("kaos: comparison {scenario}"));
    banner(&mut html, shown, &configs);
    charts_section(&mut html, &configs, &keys);
    configurations_section(&mut html, dir, &configs, &keys, rows.len() - shown.len());
    tradeoff_section(&mut html, &configs, &keys);
    html.push_str(page::FOOT);
    html
}

/// A configuration and its runs (one per seed, in seed order).
struct Config<'a> {
    settings: &'a [(String, String)],
    runs: Vec<&'a ComparisonRow>,
    figures: Vec<KeyFigures>,
}

impl Config<'_> {
    /// Invalid if a run was, else unknown if a run was, else valid.
    fn verdict(&self) -> Verdict {
        let has = |v| self.runs.iter().any(|r| r.summary.analysis.verdict == v);
        if has(Verdict::Invalid) {
            Verdict::Invalid
        } else if has(Verdict::Unknown) {
            Verdict::Unknown
        } else {
            Verdict::Valid
        }
    }

    fn stat(&self, figure: impl Fn(&KeyFigures) -> Option<f64>) -> Option<Stat> {
        Stat::of(&self.figures.iter().filter_map(figure).collect::<Vec<_>>())
    }

    fn value(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Runs grouped by their settings, in order of first appearance.
fn configurations(rows: &[ComparisonRow]) -> Vec<Config<'_>> {
    let mut configs: Vec<Config<'_>> = Vec::new();
    for row in rows {
        match configs
            .iter_mut()
            .find(|c| c.settings == row.settings.as_slice())
        {
            Some(c) => c.runs.push(row),
            None => configs.push(Config {
                settings: &row.settings,
                runs: vec![row],
                figures: Vec::new(),
            }),
        }
    }
    for c in &mut configs {
        c.runs.sort_by_key(|r| r.summary.seed);
        c.figures = c.runs.iter().map(|r| r.summary.key_figures()).collect();
    }
    configs
}

/// The varied settings: full names, short names for the page, their values in order of
/// appearance, and which two span the heatmaps (the rest make its panels).
struct Keys {
    full: Vec<String>,
    short: Vec<String>,
    values: Vec<Vec<String>>,
    /// Indices into `full`: the heatmaps' rows (none with a single varied setting) and columns.
    row: Option<usize>,
    col: Option<usize>,
    /// The other settings that take more than one value: one panel per combination.
    panels: Vec<usize>,
}

impl Keys {
    fn of(configs: &[Config<'_>]) -> Keys {
        let mut full: Vec<String> = Vec::new();
        let mut values: Vec<Vec<String>> = Vec::new();
        for (key, value) in configs.iter().flat_map(|c| c.settings.iter()) {
            let i = match full.iter().position(|k| k == key) {
                Some(i) => i,
                None => {
                    full.push(key.clone());
                    values.push(Vec::new());
                    full.len() - 1
                }
            };
            if !values[i].contains(value) {
                values[i].push(value.clone());
            }
        }
        let short = short_names(&full);
        // The two settings with the most values (the earlier on a tie) span the heatmaps.
        let mut by_size: Vec<usize> = (0..full.len()).filter(|&i| values[i].len() > 1).collect();
        by_size.sort_by_key(|&i| (std::cmp::Reverse(values[i].len()), i));
        let (row, col) = match by_size.as_slice() {
            [] => (None, (!full.is_empty()).then_some(0)),
            [only] => (None, Some(*only)),
            [a, b, ..] => (Some(*a.min(b)), Some(*a.max(b))),
        };
        let panels = by_size
            .into_iter()
            .filter(|&i| Some(i) != row && Some(i) != col)
            .collect::<Vec<_>>();
        let mut panels = panels;
        panels.sort_unstable();
        Keys {
            full,
            short,
            values,
            row,
            col,
            panels,
        }
    }
}

/// A setting's name as the page shows it: the last part of its path (`clients[0].config.acks` →
/// `acks`, `cluster.settings."flush.messages"` → `flush.messages`), or the whole path when two
/// settings would share a short name.
fn short_names(full: &[String]) -> Vec<String> {
    let last = |key: &str| -> String {
        let k = key.trim_end();
        if let Some(q) = k.chars().last().filter(|c| *c == '"' || *c == '\'') {
            let inner = &k[..k.len() - 1];
            if let Some(start) = inner.rfind(q) {
                return inner[start + 1..].to_owned();
            }
        }
        k.rsplit(['.', ']']).next().unwrap_or(k).to_owned()
    };
    let short: Vec<String> = full.iter().map(|k| last(k)).collect();
    short
        .iter()
        .zip(full)
        .map(|(s, f)| {
            if s.is_empty() || short.iter().filter(|t| *t == s).count() > 1 {
                f.clone()
            } else {
                s.clone()
            }
        })
        .collect()
}

/// The overall verdict, configurations and runs, and how many held the expectation.
fn banner(html: &mut String, shown: &[ComparisonRow], configs: &[Config<'_>]) {
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
    let held = configs
        .iter()
        .filter(|c| c.verdict() == Verdict::Valid)
        .count();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let _ = write!(
        html,
        "<header class=\"banner {}\" id=\"verdict\">\n<h1>Comparison: {} configuration{}, {} run{}</h1>\n\
         <p>Runs: {valid} held the expectation (valid) · {invalid} broke it (invalid) · {unknown} unknown. \
         Configurations valid in every run: {held} of {}.</p>\n</header>\n",
        page::verdict_class(overall),
        configs.len(),
        plural(configs.len()),
        shown.len(),
        plural(shown.len()),
        configs.len(),
    );
}

/// The heatmaps: acknowledged loss, and unprocessed messages when a consumer processes.
fn charts_section(html: &mut String, configs: &[Config<'_>], keys: &Keys) {
    let Some(col) = keys.col else {
        return;
    };
    html.push_str("<section class=\"card\" id=\"charts\">\n<h2>What each setting loses</h2>\n");
    let lost = |f: &KeyFigures| Some(f.lost as f64);
    let unprocessed = |f: &KeyFigures| f.unprocessed.map(|n| n as f64);
    // Unprocessed messages mean something only where a consumer processes.
    let processing = configs
        .iter()
        .flat_map(|c| &c.runs)
        .any(|r| r.summary.analysis.counts.processed > 0);
    for (id, title, figure, shown) in [
        (
            "heatmap-lost",
            "Acknowledged loss: acknowledged sends absent from the final read",
            &lost as &dyn Fn(&KeyFigures) -> Option<f64>,
            true,
        ),
        (
            "heatmap-unprocessed",
            "Unprocessed: messages behind a committed offset never processed",
            &unprocessed,
            processing,
        ),
    ] {
        if !shown {
            continue;
        }
        let panels = panels(configs, keys, col, figure);
        if panels
            .iter()
            .all(|p| p.cells.iter().flatten().all(Option::is_none))
        {
            continue;
        }
        let scale_max = panels
            .iter()
            .flat_map(|p| p.cells.iter().flatten().flatten())
            .map(|s| s.median)
            .fold(0.0, f64::max);
        let _ = write!(
            html,
            "<h3>{}</h3>\n<div class=\"heatmaps\" id=\"{id}\">\n",
            escape(title)
        );
        for panel in &panels {
            html.push_str("<figure class=\"heatmap\">\n");
            html.push_str(&heatmap::heatmap_svg(panel, scale_max));
            html.push_str("</figure>\n");
        }
        html.push_str("</div>\n");
    }
    let _ = writeln!(
        html,
        "<p class=\"caption\">Each cell is a configuration: the median over its {} and, under it, the lowest and highest. \
         Pale green is none; darker red is more, on a log scale shared by the panels of a count. \
         \"not run\": the matrix leaves that combination out.</p>\n</section>",
        if configs.iter().any(|c| c.runs.len() > 1) {
            "seeds"
        } else {
            "run (one seed: no range)"
        }
    );
}

/// One panel per combination of the panel settings' values (those some configuration has),
/// at most `limits::COMPARISON_PANELS_MAX`.
fn panels(
    configs: &[Config<'_>],
    keys: &Keys,
    col: usize,
    figure: &dyn Fn(&KeyFigures) -> Option<f64>,
) -> Vec<Panel> {
    let mut combos: Vec<Vec<(usize, &str)>> = vec![Vec::new()];
    for &k in &keys.panels {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                keys.values[k].iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((k, v.as_str()));
                    c
                })
            })
            .collect();
    }
    let rows: Vec<Option<&str>> = match keys.row {
        Some(r) => keys.values[r].iter().map(|v| Some(v.as_str())).collect(),
        None => vec![None],
    };
    let mut out = Vec::new();
    for combo in combos {
        let matches = |c: &Config<'_>| {
            combo
                .iter()
                .all(|&(k, v)| c.value(&keys.full[k]) == Some(v))
        };
        if !configs.iter().any(matches) {
            continue;
        }
        let cells = rows
            .iter()
            .map(|row| {
                keys.values[col]
                    .iter()
                    .map(|cv| {
                        configs
                            .iter()
                            .find(|c| {
                                matches(c)
                                    && c.value(&keys.full[col]) == Some(cv)
                                    && row.is_none_or(|rv| {
                                        keys.row.is_some_and(|r| c.value(&keys.full[r]) == Some(rv))
                                    })
                            })
                            .and_then(|c| c.stat(figure))
                    })
                    .collect()
            })
            .collect();
        let title = if combo.is_empty() {
            "every configuration".to_owned()
        } else {
            combo
                .iter()
                .map(|&(k, v)| format!("{}={v}", keys.short[k]))
                .collect::<Vec<_>>()
                .join(" · ")
        };
        out.push(Panel {
            title,
            row_key: keys.row.map(|r| keys.short[r].clone()),
            rows: rows.iter().flatten().map(|s| (*s).to_owned()).collect(),
            col_key: keys.short[col].clone(),
            cols: keys.values[col].clone(),
            cells,
        });
        if out.len() == limits::COMPARISON_PANELS_MAX {
            break;
        }
    }
    out
}

/// The table of configurations, one row each; `hidden` more runs were not shown.
fn configurations_section(
    html: &mut String,
    dir: &Path,
    configs: &[Config<'_>],
    keys: &Keys,
    hidden: usize,
) {
    html.push_str("<section class=\"card\" id=\"configurations\">\n<h2>Configurations</h2>\n<div class=\"scroll\"><table class=\"wide\">\n\
                   <thead><tr><th>#</th><th>configuration</th><th>runs (seeds)</th>\
                   <th class=\"num\">acknowledged loss</th><th class=\"num\">producer-side loss</th><th class=\"num\">duplicates</th>\
                   <th class=\"num\">unprocessed</th><th class=\"num\">throughput (acks/s)</th><th class=\"num\">p99 latency (ms)</th></tr></thead>\n<tbody>\n");
    for (i, config) in configs.iter().enumerate() {
        configuration_row(html, dir, i + 1, config, keys);
    }
    html.push_str("</tbody>\n</table></div>\n");
    if hidden > 0 {
        let _ = writeln!(html, "<p class=\"more\">{hidden} more runs not shown.</p>");
    }
    html.push_str("<p class=\"caption\">Each count is the median over the configuration's seeds, with the lowest and highest in brackets. \
                   A row is green when every run held the scenario's expectation (valid), red when one broke it (invalid), grey when one is unknown; each seed links to its run's report. \
                   Acknowledged loss: acknowledged sends absent from the final read. Producer-side loss: sends never acknowledged and absent from the final read, plus messages the application accepted that were never written. \
                   Red figures are anomalies a run's scenario forbids.</p>\n</section>\n");
}

/// One configuration: its number, settings, runs, and each count's median and range.
fn configuration_row(html: &mut String, dir: &Path, n: usize, config: &Config<'_>, keys: &Keys) {
    let verdict = config.verdict();
    let _ = write!(
        html,
        "<tr class=\"config row-{}\"><td class=\"num\">{n}</td><td class=\"settings\">",
        verdict.as_str()
    );
    for (key, value) in config.settings {
        let short = keys
            .full
            .iter()
            .position(|k| k == key)
            .map_or(key.as_str(), |i| keys.short[i].as_str());
        let _ = write!(
            html,
            "<span class=\"setting\" title=\"{}\">{}={}</span> ",
            escape(key),
            escape(short),
            escape(value)
        );
    }
    let valid = config
        .runs
        .iter()
        .filter(|r| r.summary.analysis.verdict == Verdict::Valid)
        .count();
    let _ = write!(
        html,
        "</td><td><span class=\"pill {}\">{}</span> {valid}/{} valid<br><span class=\"seeds\">",
        page::verdict_class(verdict),
        verdict.as_str(),
        config.runs.len()
    );
    for run in &config.runs {
        let href = relative_href(&relative_path(dir, &run.run_dir.join("report.html")));
        let _ = write!(
            html,
            "<a class=\"s-{}\" href=\"{}\" title=\"{}\">{}</a> ",
            run.summary.analysis.verdict.as_str(),
            escape(&href),
            escape(&run.label),
            run.summary.seed
        );
    }
    html.push_str("</span></td>");
    let forbidden_hit = |kind: AnomalyKind, n: fn(&KeyFigures) -> u64| {
        config.runs.iter().zip(&config.figures).any(|(r, f)| {
            n(f) > 0 && r.summary.analysis.expect.of(kind) == checkers::Allowance::Forbidden
        })
    };
    let cell = |stat: Option<Stat>, bad: bool| {
        let class = if bad { " bad" } else { "" };
        format!(
            "<td class=\"num{class}\">{}</td>",
            stat.map_or("—".to_owned(), |s| s.html())
        )
    };
    let _ = writeln!(
        html,
        "{}{}{}{}{}{}</tr>",
        cell(
            config.stat(|f| Some(f.lost as f64)),
            forbidden_hit(AnomalyKind::Lost, |f| f.lost)
        ),
        cell(
            config.stat(|f| Some(f.producer_side_loss as f64)),
            forbidden_hit(AnomalyKind::UnacknowledgedAbsent, |f| f.producer_side_loss)
        ),
        cell(
            config.stat(|f| Some(f.duplicates as f64)),
            forbidden_hit(AnomalyKind::Duplicate, |f| f.duplicates)
        ),
        cell(config.stat(|f| f.unprocessed.map(|n| n as f64)), false),
        cell(config.stat(|f| Some(f.throughput_acks_per_s)), false),
        cell(config.stat(|f| f.latency_ms_p99), false),
    );
}

/// The scatter of loss + duplicates against throughput (medians), and its numbered legend.
fn tradeoff_section(html: &mut String, configs: &[Config<'_>], keys: &Keys) {
    let median = |c: &Config<'_>, f: &dyn Fn(&KeyFigures) -> f64| {
        c.stat(|k| Some(f(k))).map_or(0.0, |s| s.median)
    };
    let points: Vec<ScatterPoint> = configs
        .iter()
        .map(|c| ScatterPoint {
            label: compact_label(c, keys),
            x: median(c, &|f| f.throughput_acks_per_s),
            y: median(c, &|f| {
                (f.lost + f.producer_side_loss + f.duplicates) as f64
            }),
            color: match c.verdict() {
                Verdict::Valid => plot::GREEN,
                Verdict::Invalid => plot::RED,
                Verdict::Unknown => plot::GREY,
            },
        })
        .collect();
    html.push_str("<section class=\"card\" id=\"tradeoff\">\n<h2>Loss and duplicates against throughput</h2>\n<figure class=\"plot\" id=\"plot-scatter\">\n");
    html.push_str(&plot::scatter_svg(
        "throughput, acknowledged sends per second (median)",
        "lost + producer-side loss + duplicates (median)",
        &points,
    ));
    html.push_str("<figcaption>One dot per configuration (the medians over its seeds), numbered as in the table and coloured by verdict (green valid, red invalid, grey unknown). Down and to the right is better.</figcaption>\n</figure>\n<ol class=\"legend\">\n");
    for (c, point) in configs.iter().zip(&points) {
        let _ = writeln!(
            html,
            "<li><span class=\"pill {}\">{}</span> {} · {} acks/s · {} lost + producer-side loss + duplicates</li>",
            page::verdict_class(c.verdict()),
            c.verdict().as_str(),
            escape(&point.label),
            plot::fmt_num(point.x),
            plot::fmt_num(point.y)
        );
    }
    html.push_str("</ol>\n</section>\n");
}

/// "acks=all commit=after_processing flush.messages=1".
fn compact_label(config: &Config<'_>, keys: &Keys) -> String {
    config
        .settings
        .iter()
        .map(|(k, v)| {
            let short = keys
                .full
                .iter()
                .position(|f| f == k)
                .map_or(k.as_str(), |i| keys.short[i].as_str());
            format!("{short}={v}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_the_last_part_unless_two_share_it() {
        let full = [
            "clients[0].config.acks",
            "clients[0].config.\"enable.idempotence\"",
            "clients[1].processing.commit",
            "cluster.settings.'flush.messages'",
            "a.x",
            "b.x",
        ]
        .map(str::to_owned);
        assert_eq!(
            short_names(&full),
            [
                "acks",
                "enable.idempotence",
                "commit",
                "flush.messages",
                "a.x",
                "b.x"
            ]
        );
    }
}
