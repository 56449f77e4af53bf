//! The report page and the run directory layout, from a summary built on a real checker analysis.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use checkers::{check_text, Expectations};
use results::{read_results, render_report, write_results, RunDir, RunSummary, LATEST_LINK};

mod common;

fn summary() -> RunSummary {
    common::small_summary()
}

#[test]
fn report_has_banner_plot_anomalies_and_escapes_data() {
    let html = render_report(&summary());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("class=\"banner verdict-invalid\""), "banner");
    assert!(
        html.contains("INVALID: 1 lost, 1 aborted_read"),
        "banner headline"
    );

    // The plot: inline SVG with the fault window shaded (orange, translucent) and labelled.
    assert!(html.contains("<svg"), "inline svg");
    assert!(
        html.contains("opacity=\"0.18\" fill=\"#FF8F00\""),
        "fault shading: translucent orange rect"
    );
    assert!(
        html.contains("kill n1&lt;script&gt;"),
        "escaped fault label in the svg"
    );
    assert!(
        html.contains("\ndrop_caches n2\n</text>"),
        "instantaneous fault label"
    );
    assert!(
        html.contains("seconds since start"),
        "axis text renders without a font feature"
    );

    for class in ["lost", "aborted_read", "duplicate", "unacknowledged_absent"] {
        assert!(
            html.contains(&format!("id=\"anomaly-{class}\"")),
            "section for {class}"
        );
    }
    assert!(
        html.contains("absent from the final read"),
        "a cause sentence"
    );

    // Escaping of everything from data.
    assert!(!html.contains("<script>"), "raw script tag");
    assert!(!html.contains("<b>not bold</b>"));
    assert!(html.contains("acks=1 &lt;b&gt;not bold&lt;/b&gt;"));
    assert!(html.contains("TIMED_OUT &lt;&amp;&gt;"));
    assert!(html.contains("client &quot;p1&quot;"));
    assert!(html.contains("<a href=\"nodes/n1.log\">node n1</a>"));

    assert!(
        html.contains("id=\"scenario\"")
            && html.contains("id=\"counts\"")
            && html.contains("id=\"notes\"")
    );
    assert!(
        !html.contains("http://") && !html.contains("https://")
            || html.contains("xmlns=\"http://www.w3.org/2000/svg\"")
    );
    assert!(!html.contains("<script"), "no script at all");
}

#[test]
fn report_caps_cases_per_class() {
    let mut lines = Vec::new();
    let mut index = 0u64;
    let mut push = |line: String| {
        lines.push(line);
    };
    for id in 0..120u64 {
        push(format!(
            r#"{{"index":{index},"time_ns":{t},"process":"p","type":"invoke","f":"send","value":{{"id":{id},"topic":"kaos"}}}}"#,
            t = id * 1_000_000
        ));
        index += 1;
        push(format!(
            r#"{{"index":{index},"time_ns":{t},"process":"p","type":"ok","f":"send","value":{{"id":{id},"topic":"kaos","partition":0,"offset":{id}}}}}"#,
            t = id * 1_000_000 + 1
        ));
        index += 1;
    }
    push(format!(
        r#"{{"index":{index},"time_ns":200000000,"process":"harness","type":"invoke","f":"final_read"}}"#
    ));
    index += 1;
    push(format!(
        r#"{{"index":{index},"time_ns":300000000,"process":"harness","type":"ok","f":"final_read"}}"#
    ));
    let analysis = check_text(&lines.join("\n"), Expectations::default()).expect("valid");
    let mut summary = summary();
    summary.analysis = analysis;
    let html = render_report(&summary);
    let rows = html.matches("<td class=\"cause\">").count();
    assert_eq!(rows, results::limits::REPORT_CASES_PER_CLASS_MAX);
    assert!(
        html.contains("95 more lost case(s) not shown: 95 more with evidence in results.json"),
        "{html}"
    );
}

#[test]
fn run_dir_layout_and_latest_link() {
    let store = tempfile::tempdir().expect("tempdir");
    let t1 = UNIX_EPOCH + Duration::from_millis(1_795_776_223_123);
    let first = RunDir::create(store.path(), "kill-leader", t1).expect("first run");
    assert_eq!(
        first.path,
        store
            .path()
            .join("kill-leader")
            .join("20261127T104343.123Z")
    );
    assert!(first.nodes_dir().is_dir() && first.clients_dir().is_dir());
    assert_eq!(first.history_path(), first.path.join("history.jsonl"));
    assert_eq!(first.scenario_path(), first.path.join("scenario.toml"));
    assert_eq!(first.results_path(), first.path.join("results.json"));
    assert_eq!(first.report_path(), first.path.join("report.html"));

    let latest = store.path().join(LATEST_LINK);
    let target = std::fs::read_link(&latest).expect("latest is a link");
    assert!(target.is_relative(), "{}", target.display());
    assert_eq!(
        target,
        Path::new("kill-leader").join("20261127T104343.123Z")
    );

    // Same scenario, same millisecond: a suffixed directory, and latest moves to it.
    let second = RunDir::create(store.path(), "kill-leader", t1).expect("second run");
    assert_eq!(
        second.path,
        store
            .path()
            .join("kill-leader")
            .join("20261127T104343.123Z-2")
    );
    // Another scenario, later.
    let third = RunDir::create(store.path(), "pause-follower", t1 + Duration::from_secs(60))
        .expect("third run");
    let target = std::fs::read_link(&latest).expect("latest is a link");
    assert_eq!(
        target,
        Path::new("pause-follower").join("20261127T104443.123Z")
    );
    assert_eq!(
        std::fs::canonicalize(&latest).expect("resolves"),
        std::fs::canonicalize(&third.path).expect("exists")
    );
    // No temporary links left behind.
    let leftovers: Vec<_> = std::fs::read_dir(store.path())
        .expect("store")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty());

    let opened = RunDir::open(&second.path).expect("opens");
    assert_eq!(opened, second);
    assert!(RunDir::open(&second.path.join("missing")).is_err());
}

#[test]
fn bad_scenario_names_are_refused() {
    let store = tempfile::tempdir().expect("tempdir");
    for name in ["", "..", "latest", "a/b", ".hidden"] {
        assert!(
            RunDir::create(store.path(), name, SystemTime::now()).is_err(),
            "{name:?}"
        );
    }
}

#[test]
fn write_results_stores_json_and_html() {
    let store = tempfile::tempdir().expect("tempdir");
    let dir = RunDir::create(store.path(), "kill-leader", SystemTime::now()).expect("run dir");
    let summary = summary();
    write_results(&dir, &summary).expect("written");
    let back = read_results(&dir).expect("read back");
    assert_eq!(back.analysis.counts, summary.analysis.counts);
    assert_eq!(back.settings, summary.settings);
    let json = std::fs::read_to_string(dir.results_path()).expect("results.json");
    assert!(
        json.contains("\n  \"scenario_name\": \"kill-leader\""),
        "pretty"
    );
    assert!(json.contains("\"verdict\": \"invalid\""));
    let html = std::fs::read_to_string(dir.report_path()).expect("report.html");
    assert!(html.contains("verdict-invalid"));
    if std::env::var_os("KAOS_KEEP_REPORT").is_some() {
        let _ = std::fs::copy(
            dir.report_path(),
            std::env::temp_dir().join("kaos-sample-report.html"),
        );
    }
}

/// The figure with `id`, from its opening tag to `</figure>`.
fn figure<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<figure class=\"plot\" id=\"{id}\">"))
        .unwrap_or_else(|| panic!("figure {id} missing"));
    let end = html[start..].find("</figure>").expect("figure closed") + start;
    &html[start..end]
}

#[test]
fn report_of_a_rich_run_has_every_plot_and_anomaly_section() {
    let summary = common::rich_summary("rich", 7, true);
    let html = render_report(&summary);
    assert!(
        html.contains("http-equiv=\"Content-Security-Policy\""),
        "csp"
    );
    for id in [
        "plot-sends",
        "plot-latency",
        "plot-latency-histogram",
        "plot-consumers",
        "plot-timeline",
    ] {
        assert!(figure(&html, id).contains("<svg"), "{id} is drawn");
    }
    // Unseen messages and realtime lag: drawn when the checker's series carry them.
    let series = serde_json::to_value(&summary.analysis.series).expect("series");
    for (id, key) in [("plot-unseen", "unseen"), ("plot-lag", "lag")] {
        let recorded = series
            .as_object()
            .expect("object")
            .iter()
            .any(|(k, v)| k.contains(key) && v.as_array().is_some_and(|a| !a.is_empty()));
        let fig = figure(&html, id);
        if recorded {
            assert!(fig.contains("<svg"), "{id} drawn");
        } else {
            assert!(fig.contains("not recorded in this run"), "{id}: {fig}");
        }
    }
    // The timeline: a row per node and client process, fault states coloured.
    let timeline = figure(&html, "plot-timeline");
    for row in [
        "n1 <tspan",
        "n2 <tspan",
        "n3 <tspan",
        "producer-1 <tspan",
        "consumer-1 <tspan",
        "consumer-2 <tspan",
    ] {
        assert!(timeline.contains(row), "timeline row {row}");
    }
    for state in ["state-killed", "state-paused", "state-cut-off"] {
        assert!(timeline.contains(state), "timeline state {state}");
    }
    assert!(
        timeline.contains("signal: 9 (SIGKILL)"),
        "the killed consumer's exit"
    );
    assert!(
        timeline.contains("<a href=\"nodes/n2.log\">"),
        "node rows link to their logs"
    );
    assert!(
        timeline.contains("<a href=\"clients/consumer-1.log\">"),
        "client rows link to their logs"
    );
    // Latency percentiles in the caption, legend lines.
    assert!(figure(&html, "plot-latency").contains("Whole run: p50"));
    assert!(summary.plots.latency_count > 5000);
    // Every anomaly class that occurred has its evidence section; the class table lists all.
    assert!(!summary.analysis.anomalies.is_empty());
    for anomaly in &summary.analysis.anomalies {
        let kind = anomaly.kind.as_str();
        assert!(
            html.contains(&format!("id=\"anomaly-{kind}\"")),
            "evidence for {kind}"
        );
    }
    for kind in checkers::AnomalyKind::ALL {
        assert!(
            html.contains(&results::escape(kind.description())),
            "class row for {}",
            kind.as_str()
        );
    }
    assert!(html.contains("id=\"figures\"") && html.contains("p99 produce latency"));
    assert!(!html.contains("<script"), "no script");
}

#[test]
fn a_run_without_plot_data_says_not_recorded() {
    let mut summary = summary();
    summary.plots = results::PlotData::default();
    summary.analysis.series = checkers::Series::default();
    let html = render_report(&summary);
    for id in [
        "plot-sends",
        "plot-latency",
        "plot-latency-histogram",
        "plot-consumers",
        "plot-unseen",
        "plot-lag",
    ] {
        assert!(
            figure(&html, id).contains("not recorded in this run"),
            "{id}"
        );
    }
}

#[test]
fn write_results_computes_plots_from_the_stored_history() {
    let store = tempfile::tempdir().expect("tempdir");
    let dir = RunDir::create(store.path(), "rich", SystemTime::now()).expect("run dir");
    let history = common::rich_history(3, false);
    std::fs::write(dir.history_path(), &history).expect("history");
    let mut summary = common::rich_summary("rich", 3, false);
    let expected = summary.plots.clone();
    summary.plots = results::PlotData::default();
    write_results(&dir, &summary).expect("written");
    let back = read_results(&dir).expect("read back");
    // Equal up to the last bit of a float through JSON.
    assert_eq!(back.plots.latency_count, expected.latency_count);
    assert_eq!(back.plots.consumers, expected.consumers);
    assert_eq!(back.plots.processes, expected.processes);
    assert_eq!(
        back.plots.latency_ms_p99.len(),
        expected.latency_ms_p99.len()
    );
    for (a, b) in back
        .plots
        .latency_ms_p99
        .iter()
        .zip(&expected.latency_ms_p99)
    {
        assert!(
            a.zip(*b).is_none_or(|(a, b)| (a - b).abs() < 1e-9),
            "{a:?} {b:?}"
        );
    }
    // A results.json from before `plots` existed still reads.
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.results_path()).expect("json"))
            .expect("json");
    json.as_object_mut().expect("object").remove("plots");
    std::fs::write(dir.results_path(), json.to_string()).expect("rewrite");
    assert!(read_results(&dir).expect("old format").plots.is_empty());
}

#[test]
fn plots_from_text_and_from_ops_agree() {
    let text = common::rich_history(5, true)
        + r#"{"index":99999,"time_ns":34000000000,"process":"nemesis","type":"ok","f":"kill","value":{"node":17}}"#
        + "\n";
    let ops: Vec<checkers::Op> = text
        .lines()
        .map(|l| checkers::history::parse_op(l, 0).expect("an op"))
        .collect();
    let from_ops = results::PlotData::from_ops(&ops);
    assert_eq!(results::PlotData::from_history_text(&text), from_ops);
    assert_eq!(results::PlotData::from_ops(ops.iter().cloned()), from_ops);
    assert_eq!(from_ops.duration_s, 34.0, "the odd line still counts");
}

#[test]
fn a_large_run_renders_a_small_page() {
    // A 10M-message analysis over 1000 s with 300 fault windows, and plot series over the same
    // span (fed fewer messages: the series are bucketed, their size does not depend on it).
    let mut builder = results::series::PlotBuilder::new();
    common::feed_large_history(&mut builder, 100_000, 1000);
    let mut summary = common::rich_summary("large", 1, true);
    summary.analysis = common::large_analysis(10_000_000, 1000, 300);
    summary.plots = builder.finish();
    summary.duration_s = 1000.0;
    let html = render_report(&summary);
    assert!(html.len() < 2_000_000, "{} bytes", html.len());
    assert_eq!(
        html.matches("<td class=\"cause\">").count(),
        4 * results::limits::REPORT_CASES_PER_CLASS_MAX
    );
    assert!(html.contains("249975 more lost case(s) not shown: 975 more with evidence in results.json, 249000 counted only"));
    assert!(html.contains("300 fault windows: the plots merge nearby ones"));
    assert!(html.contains("200 more fault windows in results.json"));

    // A week of per-second series: reduced to a bounded number of points.
    let week = 7 * 24 * 3600;
    summary.analysis = common::large_analysis(10_000_000, week, 10);
    let html = render_report(&summary);
    assert!(html.len() < 2_000_000, "{} bytes", html.len());
}
