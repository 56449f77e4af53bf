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

#[test]
fn comparison_has_one_row_per_configuration_with_its_figures() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("matrix");
    let mut fast = with_figures(Verdict::Invalid, 7, 2, 1, 25_000);
    fast.plots.latency_ms_overall = Some(results::series::LatencySummary {
        p50_ms: 1.0,
        p90_ms: 2.0,
        p99_ms: 4.5,
        max_ms: 9.0,
    });
    let rows = vec![
        ComparisonRow {
            label: "acks=1".to_owned(),
            settings: vec![("acks".to_owned(), "1".to_owned())],
            run_dir: work.path().join("store/s/r1"),
            summary: fast,
        },
        ComparisonRow {
            label: "acks=all <idem>".to_owned(),
            settings: vec![
                ("acks".to_owned(), "all".to_owned()),
                ("enable.idempotence".to_owned(), "true".to_owned()),
            ],
            run_dir: work.path().join("store/s/r2"),
            summary: with_figures(Verdict::Valid, 0, 0, 0, 12_000),
        },
        ComparisonRow {
            label: "acks=0".to_owned(),
            settings: vec![("acks".to_owned(), "0".to_owned())],
            run_dir: work.path().join("store/s/r3"),
            summary: with_figures(Verdict::Unknown, 0, 0, 0, 0),
        },
    ];
    let path = results::write_comparison(&dir, &rows).expect("written");
    assert_eq!(path, dir.join("comparison.html"));
    let html = std::fs::read_to_string(&path).expect("page");
    let found = config_rows(&html);
    assert_eq!(found.len(), 3, "one row per configuration");
    assert!(found[0].starts_with("row-invalid"), "{}", found[0]);
    assert!(found[1].starts_with("row-valid"));
    assert!(found[2].starts_with("row-unknown"));
    // configuration, verdict, acks, enable.idempotence, acknowledged loss, producer-side loss,
    // duplicates, unprocessed, throughput, p99.
    let first = cells(found[0]);
    assert_eq!(first.len(), 10);
    assert_eq!(first[0], "acks=1");
    assert_eq!(first[1], "invalid");
    assert_eq!(&first[2..4], ["1", "—"]);
    assert_eq!(
        &first[4..7],
        ["7", "2", "1"],
        "loss, producer-side loss, duplicates"
    );
    assert_eq!(first[8], "2500", "25000 acks over 10 s");
    assert_eq!(first[9], "4.5", "p99 ms");
    let second = cells(found[1]);
    assert_eq!(second[0], "acks=all &lt;idem&gt;", "escaped label");
    assert_eq!(second[1], "valid");
    assert_eq!(&second[2..4], ["all", "true"]);
    assert_eq!(second[8], "1200");
    assert_eq!(second[9], "—", "no latency measured");
    assert_eq!(cells(found[2])[1], "unknown");
    // Relative links to each run's report.
    assert!(
        found[0].contains("href=\"../store/s/r1/report.html\""),
        "{}",
        found[0]
    );
    // The scatter: one dot per configuration.
    assert!(html.contains("id=\"plot-scatter\"") && html.contains("<svg"));
    assert_eq!(html.matches("<circle").count(), 3);
    assert!(html.contains("http-equiv=\"Content-Security-Policy\""));
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
        !html.contains("id=\"scenario-matrix-acks\""),
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
