//! `store/index.html`: every stored run, grouped by scenario, newest first, with each scenario's
//! verdict trend (oldest → newest), a link to each report, and the comparison pages found one
//! or two levels down (`<dir>/comparison.html`, and `<matrix>/<start time>/comparison.html` as
//! `kaos matrix` writes them). A run whose `results.json` is
//! missing or unreadable is listed as incomplete with the reason; it never stops the page.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use checkers::Verdict;
use serde::Deserialize;

use crate::error::ResultsError;
use crate::limits;
use crate::page::{self, escape, relative_href};
use crate::run_dir::LATEST_LINK;
use crate::store::write_atomically;

/// One run directory found in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEntry {
    pub scenario: String,
    /// The run directory's name (its start time, `20261127T104343.123Z[-N]`).
    pub name: String,
    pub path: PathBuf,
    pub outcome: RunOutcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    Complete {
        verdict: Verdict,
        started_at: String,
        duration_s: f64,
        acknowledged: u64,
        lost: u64,
        duplicates: u64,
        /// The forbidden anomalies and unmet expectations, "3 lost, 1 aborted_read".
        summary: String,
    },
    /// No readable results.json: the run did not finish, or the file is damaged.
    Incomplete { reason: String },
}

/// Only what the index needs from results.json, so that it reads runs of any version.
#[derive(Deserialize)]
struct Stored {
    #[serde(default)]
    started_at: String,
    #[serde(default)]
    duration_s: f64,
    analysis: StoredAnalysis,
}

#[derive(Deserialize)]
struct StoredAnalysis {
    verdict: Verdict,
    #[serde(default)]
    counts: serde_json::Value,
    #[serde(default)]
    anomalies: Vec<serde_json::Value>,
    #[serde(default)]
    unmet: Vec<String>,
}

/// The runs of a store, scenarios with the newest run first, and each scenario's runs newest
/// first. Entries that are not directories, dot files and the `latest` link are skipped.
pub fn scan_store(store: &Path) -> Result<Vec<Vec<RunEntry>>, ResultsError> {
    let mut scenarios = Vec::new();
    for scenario in sorted_dirs(store)? {
        let runs_dir = store.join(&scenario);
        let mut runs: Vec<RunEntry> = sorted_dirs(&runs_dir)
            .unwrap_or_default()
            .into_iter()
            .filter(|name| !is_comparison_dir(&runs_dir.join(name)))
            .map(|name| {
                let path = runs_dir.join(&name);
                let outcome = read_outcome(&path.join("results.json"));
                RunEntry {
                    scenario: scenario.clone(),
                    name,
                    path,
                    outcome,
                }
            })
            .collect();
        if runs.is_empty() {
            continue;
        }
        runs.sort_by_key(|run| std::cmp::Reverse(run_order_key(&run.name)));
        scenarios.push(runs);
    }
    scenarios.sort_by(|a, b| {
        run_order_key(&b[0].name)
            .cmp(&run_order_key(&a[0].name))
            .then_with(|| a[0].scenario.cmp(&b[0].scenario))
    });
    Ok(scenarios)
}

/// Comparison pages in the store, as hrefs relative to the store, sorted: `<dir>/comparison.html`
/// one level down, and `<matrix>/<start time>/comparison.html` two levels down (where `kaos
/// matrix` writes them, beside nothing else).
pub fn scan_comparisons(store: &Path) -> Vec<String> {
    let mut pages = Vec::new();
    for dir in sorted_dirs(store).unwrap_or_default() {
        if is_comparison_dir(&store.join(&dir)) {
            pages.push(format!("{dir}/comparison.html"));
        }
        for sub in sorted_dirs(&store.join(&dir)).unwrap_or_default() {
            if is_comparison_dir(&store.join(&dir).join(&sub)) {
                pages.push(format!("{dir}/{sub}/comparison.html"));
            }
        }
    }
    pages
}

/// A directory that holds a comparison page and no run's results: not a run.
fn is_comparison_dir(dir: &Path) -> bool {
    dir.join("comparison.html").is_file() && !dir.join("results.json").exists()
}

/// Writes `store/index.html` (atomically) and returns its path.
pub fn write_index(store: &Path) -> Result<PathBuf, ResultsError> {
    let html = render_index(&scan_store(store)?, &scan_comparisons(store));
    let path = store.join("index.html");
    write_atomically(&path, html.as_bytes())?;
    Ok(path)
}

/// Subdirectory names (not links, not dot names), sorted.
fn sorted_dirs(dir: &Path) -> Result<Vec<String>, ResultsError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| ResultsError::io(dir, e))? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == LATEST_LINK {
            continue;
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// `20261127T104343.123Z-12` → ("20261127T104343.123Z", 12): the start time, then the suffix
/// as a number, so that `-10` sorts after `-9`.
fn run_order_key(name: &str) -> (String, u64) {
    match name.rsplit_once('-') {
        Some((stamp, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            (stamp.to_owned(), n.parse().unwrap_or(0))
        }
        _ => (name.to_owned(), 1),
    }
}

fn read_outcome(path: &Path) -> RunOutcome {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return RunOutcome::Incomplete {
                reason: "no results.json: the run did not finish (or is still running)".to_owned(),
            }
        }
        Err(e) => {
            return RunOutcome::Incomplete {
                reason: format!("results.json unreadable: {e}"),
            }
        }
    };
    match serde_json::from_str::<Stored>(&text) {
        Ok(stored) => {
            let count = |key: &str| {
                stored
                    .analysis
                    .counts
                    .get(key)
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0)
            };
            let mut summary: Vec<String> = stored
                .analysis
                .anomalies
                .iter()
                .filter(|a| {
                    a.get("allowance").and_then(serde_json::Value::as_str) == Some("forbidden")
                })
                .filter_map(|a| {
                    Some(format!(
                        "{} {}",
                        a.get("count")?.as_u64()?,
                        a.get("kind")?.as_str()?
                    ))
                })
                .collect();
            summary.extend(stored.analysis.unmet.iter().cloned());
            RunOutcome::Complete {
                verdict: stored.analysis.verdict,
                started_at: stored.started_at,
                duration_s: stored.duration_s,
                acknowledged: count("sends_ok"),
                lost: count("lost"),
                duplicates: count("duplicates"),
                summary: summary.join(", "),
            }
        }
        Err(e) => RunOutcome::Incomplete {
            reason: format!("results.json is not valid: {e}"),
        },
    }
}

fn verdict_name(outcome: &RunOutcome) -> &'static str {
    match outcome {
        RunOutcome::Complete { verdict, .. } => verdict.as_str(),
        RunOutcome::Incomplete { .. } => "incomplete",
    }
}

/// The page for scanned runs and comparison pages; links are relative to the store.
pub fn render_index(scenarios: &[Vec<RunEntry>], comparisons: &[String]) -> String {
    let mut html = page::head("kaos: runs");
    let all = scenarios.iter().flatten();
    let total = all.clone().count();
    let failing: Vec<&str> = scenarios
        .iter()
        .filter(|runs| {
            matches!(
                runs[0].outcome,
                RunOutcome::Complete {
                    verdict: Verdict::Invalid,
                    ..
                }
            )
        })
        .map(|runs| runs[0].scenario.as_str())
        .collect();
    let banner = if failing.is_empty() {
        "verdict-valid"
    } else {
        "verdict-invalid"
    };
    let _ = write!(
        html,
        "<header class=\"banner {banner}\" id=\"verdict\">\n<h1>kaos runs</h1>\n<p>{total} run{} of {} scenario{} · latest run invalid: {}</p>\n</header>\n",
        if total == 1 { "" } else { "s" },
        scenarios.len(),
        if scenarios.len() == 1 { "" } else { "s" },
        if failing.is_empty() { "none".to_owned() } else { escape(&failing.join(", ")) }
    );
    if scenarios.is_empty() {
        html.push_str("<section class=\"card\"><p>No runs stored yet.</p></section>\n");
    }
    scenarios_section(&mut html, scenarios, comparisons);
    for runs in scenarios {
        scenario_section(&mut html, runs);
    }
    html.push_str(page::FOOT);
    html
}

/// The table of scenarios (latest verdict, trend) and the list of comparison pages.
fn scenarios_section(html: &mut String, scenarios: &[Vec<RunEntry>], comparisons: &[String]) {
    html.push_str("<section class=\"card\" id=\"scenarios\">\n<h2>Scenarios</h2>\n<table>\n<thead><tr><th>scenario</th><th>latest</th><th>trend (oldest → newest)</th><th class=\"num\">runs</th></tr></thead>\n<tbody>\n");
    for runs in scenarios {
        let scenario = &runs[0].scenario;
        let _ = writeln!(
            html,
            "<tr><td><a href=\"#scenario-{}\">{}</a></td><td><span class=\"pill verdict-{latest}\">{latest}</span></td><td>{}</td><td class=\"num\">{}</td></tr>",
            escape(&anchor(scenario)),
            escape(scenario),
            trend(runs),
            runs.len(),
            latest = verdict_name(&runs[0].outcome),
        );
    }
    html.push_str("</tbody>\n</table>\n<p class=\"caption\">Squares: one per run, green valid, red invalid, grey unknown, white incomplete; each links to its report.</p>\n</section>\n");
    if !comparisons.is_empty() {
        html.push_str("<section class=\"card\" id=\"comparisons\">\n<h2>Comparisons</h2>\n<ul>\n");
        for href in comparisons {
            let _ = writeln!(
                html,
                "<li><a href=\"{}\">{}</a></li>",
                escape(&relative_href(href)),
                escape(href.trim_end_matches("/comparison.html"))
            );
        }
        html.push_str("</ul>\n</section>\n");
    }
}

/// One scenario's runs, newest first, at most `INDEX_RUNS_PER_SCENARIO_MAX`.
fn scenario_section(html: &mut String, runs: &[RunEntry]) {
    let scenario = &runs[0].scenario;
    let _ = write!(
        html,
        "<section class=\"card scenario\" id=\"scenario-{}\">\n<h2>{}</h2>\n<p>{}</p>\n<div class=\"scroll\"><table>\n\
         <thead><tr><th>run</th><th>verdict</th><th class=\"num\">duration</th><th class=\"num\">acknowledged</th><th class=\"num\">lost</th><th class=\"num\">duplicates</th><th>forbidden anomalies, or why incomplete</th></tr></thead>\n<tbody>\n",
        escape(&anchor(scenario)),
        escape(scenario),
        trend(runs)
    );
    for run in runs.iter().take(limits::INDEX_RUNS_PER_SCENARIO_MAX) {
        run_row(html, run);
    }
    html.push_str("</tbody>\n</table></div>\n");
    if runs.len() > limits::INDEX_RUNS_PER_SCENARIO_MAX {
        let _ = writeln!(
            html,
            "<p class=\"more\">{} older runs not listed.</p>",
            runs.len() - limits::INDEX_RUNS_PER_SCENARIO_MAX
        );
    }
    html.push_str("</section>\n");
}

/// One run: its link (when it has a report), verdict and figures, or why it is incomplete.
fn run_row(html: &mut String, run: &RunEntry) {
    let href = relative_href(&format!("{}/{}/report.html", run.scenario, run.name));
    let has_report = run.path.join("report.html").is_file();
    let name = if has_report {
        format!("<a href=\"{}\">{}</a>", escape(&href), escape(&run.name))
    } else {
        escape(&run.name)
    };
    match &run.outcome {
        RunOutcome::Complete {
            verdict,
            duration_s,
            acknowledged,
            lost,
            duplicates,
            summary,
            ..
        } => {
            let _ = writeln!(
                html,
                "<tr class=\"run row-{v}\"><td>{name}</td><td><span class=\"pill verdict-{v}\">{v}</span></td><td class=\"num\">{duration_s:.1} s</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                crate::plot::fmt_count(*acknowledged),
                crate::plot::fmt_count(*lost),
                crate::plot::fmt_count(*duplicates),
                escape(if summary.is_empty() { "—" } else { summary }),
                v = verdict.as_str(),
            );
        }
        RunOutcome::Incomplete { reason } => {
            let _ = writeln!(
                html,
                "<tr class=\"run row-incomplete\"><td>{name}</td><td><span class=\"pill verdict-incomplete\">incomplete</span></td><td class=\"num\">—</td><td class=\"num\">—</td><td class=\"num\">—</td><td class=\"num\">—</td><td class=\"muted\">{}</td></tr>",
                escape(reason)
            );
        }
    }
}

/// The verdict trend of one scenario's runs (given newest first), drawn oldest → newest.
fn trend(runs: &[RunEntry]) -> String {
    let mut out = String::from("<span class=\"trend\">");
    for run in runs.iter().take(limits::INDEX_TREND_MAX).rev() {
        let v = verdict_name(&run.outcome);
        let title = format!("{}: {v}", run.name);
        if run.path.join("report.html").is_file() {
            let href = relative_href(&format!("{}/{}/report.html", run.scenario, run.name));
            let _ = write!(
                out,
                "<a class=\"verdict-{v}\" href=\"{}\" title=\"{}\"></a>",
                escape(&href),
                escape(&title)
            );
        } else {
            let _ = write!(
                out,
                "<span class=\"verdict-{v}\" title=\"{}\"></span>",
                escape(&title)
            );
        }
    }
    out.push_str("</span>");
    out
}

/// A scenario name as a fragment id: letters, digits, `-` and `_` kept, the rest `_`.
fn anchor(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_sort_numerically() {
        let mut names = vec![
            "20261127T104343.123Z-10",
            "20261127T104343.123Z",
            "20261127T104343.123Z-2",
            "20261128T000000.000Z",
        ];
        names.sort_by_key(|n| run_order_key(n));
        assert_eq!(
            names,
            [
                "20261127T104343.123Z",
                "20261127T104343.123Z-2",
                "20261127T104343.123Z-10",
                "20261128T000000.000Z"
            ]
        );
    }
}
