//! The comparison page, the index page and the JUnit file.

mod common;

use std::path::Path;

use checkers::Verdict;
use results::{junit, ComparisonRow, JunitCase, RunSummary};

/// A summary whose figures are set by hand.
fn with_figures(
    verdict: Verdict,
    lost: u64,
    unacked: u64,
    duplicates: u64,
    acked: u64,
) -> RunSummary {
    let mut summary = common::small_summary();
    summary.duration_s = 10.0;
    summary.analysis.verdict = verdict;
    summary.analysis.counts.lost = lost;
    summary.analysis.counts.unacknowledged_absent = unacked;
    summary.analysis.counts.duplicates = duplicates;
    summary.analysis.counts.sends_ok = acked;
    summary.plots = results::PlotData::default();
    summary
}

/// The `<tr class="config …">` rows of a comparison page.
fn config_rows(html: &str) -> Vec<&str> {
    html.split("<tr class=\"config ")
        .skip(1)
        .map(|r| &r[..r.find("</tr>").expect("row end")])
        .collect()
}

/// The text of the `<td>` cells of a row.
fn cells(row: &str) -> Vec<String> {
    row.split("<td")
        .skip(1)
        .map(|c| {
            let c = &c[c.find('>').expect("cell") + 1..c.find("</td>").expect("cell end")];
            // Strip tags.
            let mut text = String::new();
            let mut in_tag = false;
            for ch in c.chars() {
                match ch {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    ch if !in_tag => text.push(ch),
                    _ => {}
                }
            }
            text
        })
        .collect()
}

/// A run of a configuration with one seed.
fn run_of(
    settings: &[(&str, &str)],
    seed: u64,
    dir: std::path::PathBuf,
    summary: RunSummary,
) -> ComparisonRow {
    let mut summary = summary;
    summary.seed = seed;
    ComparisonRow {
        label: settings
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
        settings: settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        run_dir: dir,
        summary,
    }
}

#[test]
fn comparison_has_one_row_per_configuration_with_the_median_and_range_of_its_seeds() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("matrix");
    let mut fast = with_figures(Verdict::Invalid, 7265, 2, 1, 25_000);
    fast.plots.latency_ms_overall = Some(results::series::LatencySummary {
        p50_ms: 1.0,
        p90_ms: 2.0,
        p99_ms: 4.5,
        max_ms: 9.0,
    });
    let acks1 = [("clients[0].config.acks", "1")];
    let idem = [
        ("clients[0].config.acks", "all"),
        ("clients[0].config.\"enable.idempotence\"", "true"),
    ];
    let store = work.path().join("store/s");
    let rows = vec![
        // acks=1 over three seeds, listed out of seed order: 38, 7265 and 100 lost.
        run_of(&acks1, 12, store.join("r2"), fast),
        run_of(
            &acks1,
            11,
            store.join("r1"),
            with_figures(Verdict::Valid, 38, 0, 0, 20_000),
        ),
        run_of(
            &acks1,
            13,
            store.join("r3"),
            with_figures(Verdict::Valid, 100, 0, 3, 15_000),
        ),
        run_of(
            &idem,
            11,
            store.join("r4"),
            with_figures(Verdict::Valid, 0, 0, 0, 12_000),
        ),
        run_of(
            &[("clients[0].config.acks", "0")],
            11,
            store.join("r5"),
            with_figures(Verdict::Unknown, 0, 0, 0, 0),
        ),
    ];
    let path = results::write_comparison(&dir, &rows).expect("written");
    assert_eq!(path, dir.join("comparison.html"));
    let html = std::fs::read_to_string(&path).expect("page");
    let found = config_rows(&html);
    assert_eq!(found.len(), 3, "one row per configuration, not per run");
    assert!(
        found[0].starts_with("row-invalid"),
        "one invalid seed makes the row invalid"
    );
    assert!(found[1].starts_with("row-valid"));
    assert!(found[2].starts_with("row-unknown"));
    // #, configuration, runs, acknowledged loss, producer-side loss, duplicates, unprocessed,
    // throughput, p99.
    let first = cells(found[0]);
    assert_eq!(first.len(), 9, "{first:?}");
    assert_eq!(
        first[1].trim(),
        "acks=1",
        "the short name of the varied setting"
    );
    assert!(first[2].contains("2/3 valid"), "{}", first[2]);
    assert!(
        first[2].contains("11 12 13"),
        "seeds in order: {}",
        first[2]
    );
    assert_eq!(first[3], "100 (38–7265)", "median and range of the loss");
    assert_eq!(first[4], "0 (0–2)");
    assert_eq!(first[5], "1 (0–3)");
    assert_eq!(first[7], "2000 (1500–2500)", "acks/s over 10 s");
    assert_eq!(first[8], "4.5", "p99 ms measured in one run");
    let second = cells(found[1]);
    assert_eq!(second[1].trim(), "acks=all enable.idempotence=true");
    assert_eq!(second[3], "0", "one seed: no range");
    assert_eq!(second[8], "—", "no latency measured");
    // The full name of each setting is its title; no column repeats it.
    assert!(found[1].contains("title=\"clients[0].config.&quot;enable.idempotence&quot;\""));
    assert!(
        !html.contains("<th>clients[0]"),
        "no column per full setting name"
    );
    // Relative links to each seed's report, in seed order.
    let r1 = found[0]
        .find("href=\"../store/s/r1/report.html\"")
        .expect("seed 11");
    let r2 = found[0]
        .find("href=\"../store/s/r2/report.html\"")
        .expect("seed 12");
    assert!(r1 < r2);
    assert!(found[0].contains("class=\"s-invalid\" href=\"../store/s/r2/"));
    // The chart leads: a heatmap of the loss over acks (no other setting takes two values).
    let charts = html.find("id=\"charts\"").expect("charts");
    assert!(charts < html.find("id=\"configurations\"").expect("table"));
    assert!(html.contains("id=\"heatmap-lost\""));
    assert_eq!(
        html.matches("<svg class=\"heatmap\"").count(),
        1,
        "one panel"
    );
    assert!(html.contains(">100</text>") && html.contains(">38–7265</text>"));
    assert!(
        !html.contains("id=\"heatmap-unprocessed\""),
        "no consumer processed anything"
    );
    // The scatter: one dot per configuration.
    assert!(html.contains("id=\"plot-scatter\"") && html.contains("<svg"));
    assert_eq!(html.matches("<circle").count(), 3);
    assert!(html.contains("http-equiv=\"Content-Security-Policy\""));
}

#[test]
fn comparison_heatmaps_span_the_two_main_settings_with_a_panel_per_other_value() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut rows = Vec::new();
    let mut n = 0;
    for flush in ["0", "1"] {
        for acks in ["0", "1", "all"] {
            for commit in ["auto", "before_processing", "after_processing"] {
                if acks == "0" && commit == "after_processing" {
                    continue; // left out, as a [[skip]] would
                }
                for seed in [101, 102] {
                    n += 1;
                    let mut s = with_figures(Verdict::Valid, n * 100, 0, 0, 1_000);
                    s.analysis.counts.processed = 10;
                    s.analysis.counts.unprocessed = if commit == "auto" { 5 + seed % 2 } else { 0 };
                    rows.push(run_of(
                        &[
                            ("clients[0].config.acks", acks),
                            ("clients[1].processing.commit", commit),
                            ("cluster.settings.\"flush.messages\"", flush),
                        ],
                        seed,
                        work.path().join(format!("r{n}")),
                        s,
                    ));
                }
            }
        }
    }
    let html = results::comparison::render_comparison(work.path(), &rows);
    assert_eq!(config_rows(&html).len(), 16);
    // Two counts × two flush policies.
    assert_eq!(html.matches("<svg class=\"heatmap\"").count(), 4);
    assert!(html.contains("id=\"heatmap-unprocessed\""));
    for title in ["flush.messages=0</text>", "flush.messages=1</text>"] {
        assert_eq!(html.matches(title).count(), 2, "{title}");
    }
    // Rows acks, columns commit: 3 × 3 cells a panel, one of them not run.
    assert_eq!(html.matches("<rect class=\"cell").count(), 4 * 9);
    assert_eq!(html.matches("class=\"cell none\"").count(), 4);
    assert!(html.contains(">acks ↓</text>") && html.contains(">commit</text>"));
    // Auto commit lost 5 and 6 messages over its seeds: median 5.5.
    assert!(html.contains(">5.5</text>") && html.contains(">5–6</text>"));
}

/// Writes a run with a results.json into `store/scenario/name`.
fn stored_run(store: &Path, scenario: &str, name: &str, verdict: Verdict) {
    let dir = store.join(scenario).join(name);
    std::fs::create_dir_all(&dir).expect("dir");
    let mut summary = with_figures(
        verdict,
        u64::from(verdict == Verdict::Invalid) * 4,
        0,
        0,
        100,
    );
    summary.scenario_name = scenario.to_owned();
    results::write_results(&results::RunDir::open(&dir).expect("dir"), &summary).expect("written");
}

#[test]
fn index_lists_runs_newest_first_and_survives_broken_results() {
    let store = tempfile::tempdir().expect("tempdir");
    let s = store.path();
    stored_run(s, "kill-leader", "20261127T100000.000Z", Verdict::Valid);
    stored_run(s, "kill-leader", "20261127T110000.000Z", Verdict::Invalid);
    stored_run(s, "kill-leader", "20261127T110000.000Z-2", Verdict::Valid);
    stored_run(
        s,
        "kill-leader",
        "20261127T110000.000Z-10",
        Verdict::Unknown,
    );
    stored_run(s, "pause", "20261126T090000.000Z", Verdict::Valid);
    // Broken: not JSON, JSON of the wrong shape, missing, and an unreadable directory entry.
    let broken = s.join("kill-leader/20261127T120000.000Z");
    std::fs::create_dir_all(&broken).expect("dir");
    std::fs::write(broken.join("results.json"), "{not json").expect("write");
    let wrong = s.join("kill-leader/20261127T123000.000Z");
    std::fs::create_dir_all(&wrong).expect("dir");
    std::fs::write(wrong.join("results.json"), "[1, 2]").expect("write");
    std::fs::create_dir_all(s.join("pause/20261126T100000.000Z")).expect("dir");
    std::fs::write(s.join("kill-leader/stray-file"), "x").expect("a stray file");
    std::fs::create_dir_all(s.join("matrix-acks")).expect("dir");
    std::fs::write(s.join("matrix-acks/comparison.html"), "<!DOCTYPE html>").expect("a comparison");
    // Where `kaos matrix` writes them: <matrix>/<start time>/comparison.html.
    let matrix_run = s.join("acks-commit/20261127T130000.000Z");
    std::fs::create_dir_all(&matrix_run).expect("dir");
    std::fs::write(matrix_run.join("comparison.html"), "<!DOCTYPE html>").expect("a comparison");
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        "kill-leader/20261127T110000.000Z",
        s.join(results::LATEST_LINK),
    )
    .expect("latest");

    let path = results::write_index(s).expect("index written");
    assert_eq!(path, s.join("index.html"));
    let html = std::fs::read_to_string(&path).expect("page");
    let runs: Vec<String> = html
        .split("<tr class=\"run ")
        .skip(1)
        .map(|r| cells(&r[..r.find("</tr>").expect("row end")])[0].clone())
        .collect();
    assert_eq!(
        runs,
        [
            "20261127T123000.000Z",
            "20261127T120000.000Z",
            "20261127T110000.000Z-10",
            "20261127T110000.000Z-2",
            "20261127T110000.000Z",
            "20261127T100000.000Z",
            "20261126T100000.000Z",
            "20261126T090000.000Z",
        ],
        "grouped by scenario (newest scenario first), newest run first"
    );
    assert_eq!(html.matches("<tr class=\"run row-incomplete\"").count(), 3);
    assert!(
        html.contains("<a href=\"matrix-acks/comparison.html\">matrix-acks</a>"),
        "comparison pages listed"
    );
    assert!(
        html.contains(
            "<a href=\"acks-commit/20261127T130000.000Z/comparison.html\">acks-commit/20261127T130000.000Z</a>"
        ),
        "a matrix's comparison pages listed, two levels down"
    );
    assert!(
        !html.contains("id=\"scenario-matrix-acks\"")
            && !html.contains("id=\"scenario-acks-commit\""),
        "a comparison directory is no scenario"
    );
    assert!(html.contains("results.json is not valid"), "the reason");
    assert!(html.contains("no results.json"), "the reason");
    // Links to the reports that exist.
    assert!(html.contains("href=\"kill-leader/20261127T110000.000Z-2/report.html\""));
    assert!(!html.contains("href=\"kill-leader/20261127T120000.000Z/report.html\""));
    // The trend, oldest → newest: valid, invalid, valid, unknown, incomplete, incomplete.
    let trend_start = html.find("<span class=\"trend\">").expect("trend");
    let trend = &html[trend_start..trend_start + html[trend_start..].find("</td>").expect("end")];
    let order: Vec<&str> = trend
        .split("class=\"verdict-")
        .skip(1)
        .map(|t| &t[..t.find('"').expect("q")])
        .collect();
    assert_eq!(
        order,
        [
            "valid",
            "invalid",
            "valid",
            "unknown",
            "incomplete",
            "incomplete"
        ]
    );

    // An empty store, and a store that does not exist.
    let empty = tempfile::tempdir().expect("tempdir");
    let html =
        std::fs::read_to_string(results::write_index(empty.path()).expect("empty")).expect("page");
    assert!(html.contains("No runs stored yet."));
    assert!(results::write_index(&empty.path().join("missing")).is_err());
}

#[test]
fn junit_counts_and_parses() {
    let work = tempfile::tempdir().expect("tempdir");
    let path = work.path().join("ci/junit.xml");
    let invalid = common::small_summary();
    assert_eq!(invalid.analysis.verdict, Verdict::Invalid);
    let mut unknown = with_figures(Verdict::Unknown, 0, 0, 0, 0);
    unknown.analysis.notes = vec!["no final read: loss \"not\" checked <&>".to_owned()];
    let cases = vec![
        JunitCase::from_summary(
            "kill-leader acks=1",
            &invalid,
            Some(Path::new("store/x/report.html")),
        ),
        JunitCase::from_summary(
            "kill-leader acks=all",
            &with_figures(Verdict::Valid, 0, 0, 0, 10),
            None,
        ),
        JunitCase::from_summary("pause <follower> & \"co\"", &unknown, None),
        JunitCase {
            name: "control\u{1}char".to_owned(),
            classname: "c".to_owned(),
            verdict: Verdict::Valid,
            time_s: 1.5,
            message: String::new(),
            details: String::new(),
        },
    ];
    junit::write_junit(&path, "kaos nightly", &cases).expect("written");
    let xml = std::fs::read_to_string(&path).expect("xml");

    // Well-formed: quick-xml reads it to the end; count the elements and the suite's attributes.
    let mut reader = quick_xml::Reader::from_str(&xml);
    reader.config_mut().check_end_names = true;
    let (mut testcases, mut failures, mut errors) = (0, 0, 0);
    let mut suite_attrs = std::collections::HashMap::new();
    let mut failure_message = String::new();
    let mut elements = 0;
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).expect("utf-8");
                match name.as_str() {
                    "testcase" => testcases += 1,
                    "failure" => {
                        failures += 1;
                        let attr = e
                            .try_get_attribute("message")
                            .expect("attr")
                            .expect("message");
                        failure_message = attr.unescape_value().expect("unescapes").into_owned();
                    }
                    "error" => errors += 1,
                    "testsuite" => {
                        for a in e.attributes() {
                            let a = a.expect("attribute");
                            suite_attrs.insert(
                                String::from_utf8(a.key.as_ref().to_vec()).expect("utf-8"),
                                a.unescape_value().expect("value").into_owned(),
                            );
                        }
                    }
                    _ => {}
                }
                elements += 1;
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert!(elements >= 6, "testsuites, testsuite, 4 testcases and more");
    assert_eq!((testcases, failures, errors), (4, 1, 1));
    assert_eq!(suite_attrs["tests"], "4");
    assert_eq!(suite_attrs["failures"], "1");
    assert_eq!(suite_attrs["errors"], "1");
    assert_eq!(suite_attrs["name"], "kaos nightly");
    assert_eq!(
        suite_attrs["time"],
        format!("{:.3}", 6.2 + 10.0 + 10.0 + 1.5)
    );
    // The forbidden anomalies of the run, as many classes as the checker finds in it.
    let expected: Vec<String> = invalid
        .analysis
        .forbidden()
        .map(|a| format!("{} {}", a.count, a.kind.as_str()))
        .collect();
    assert!(
        failure_message.starts_with("1 lost, 1 aborted_read"),
        "{failure_message}"
    );
    assert_eq!(failure_message, expected.join(", "));
    assert!(xml.contains("pause &lt;follower&gt; &amp; &quot;co&quot;"));
    assert!(xml.contains("report: store/x/report.html"));
    assert!(!xml.contains('\u{1}'));
}
