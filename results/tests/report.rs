//! The report page and the run directory layout, from a summary built on a real checker analysis.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use checkers::{check_text, Expectations};
use results::{read_results, render_report, write_results, RunDir, RunSummary, LATEST_LINK};

/// A history with every anomaly class, a kill window of a node whose name needs escaping, and an
/// instantaneous fault.
fn history() -> String {
    let lines = [
        r#"{"index":0,"time_ns":0,"process":"harness","type":"invoke","f":"start"}"#,
        r#"{"index":1,"time_ns":1000000000,"process":"producer-1","type":"invoke","f":"send","value":{"id":1,"topic":"kaos"}}"#,
        r#"{"index":2,"time_ns":1100000000,"process":"producer-1","type":"ok","f":"send","value":{"id":1,"topic":"kaos","partition":0,"offset":0}}"#,
        r#"{"index":3,"time_ns":2000000000,"process":"producer-1","type":"invoke","f":"send","value":{"id":2,"topic":"kaos"}}"#,
        r#"{"index":4,"time_ns":2100000000,"process":"producer-1","type":"ok","f":"send","value":{"id":2,"topic":"kaos","partition":0,"offset":1}}"#,
        r#"{"index":5,"time_ns":2200000000,"process":"nemesis","type":"ok","f":"kill","value":{"node":"n1<script>"}}"#,
        r#"{"index":6,"time_ns":3000000000,"process":"producer-1","type":"invoke","f":"send","value":{"id":3,"topic":"kaos"}}"#,
        r#"{"index":7,"time_ns":4000000000,"process":"producer-1","type":"info","f":"send","value":{"id":3,"topic":"kaos"},"error":"TIMED_OUT <&>"}"#,
        r#"{"index":8,"time_ns":4100000000,"process":"producer-1","type":"invoke","f":"send","value":{"id":4,"topic":"kaos"}}"#,
        r#"{"index":9,"time_ns":4200000000,"process":"producer-1","type":"fail","f":"send","value":{"id":4,"topic":"kaos"},"error":"NOT_ENOUGH_REPLICAS"}"#,
        r#"{"index":10,"time_ns":4300000000,"process":"consumer-1","type":"ok","f":"poll","value":{"records":[{"topic":"kaos","partition":0,"offset":0,"id":1},{"topic":"kaos","partition":0,"offset":3,"id":1}]}}"#,
        r#"{"index":11,"time_ns":5000000000,"process":"nemesis","type":"ok","f":"restart","value":{"node":"n1<script>"}}"#,
        r#"{"index":12,"time_ns":5500000000,"process":"nemesis","type":"ok","f":"drop_caches","value":{"node":"n2"}}"#,
        r#"{"index":13,"time_ns":6000000000,"process":"harness","type":"invoke","f":"final_read"}"#,
        r#"{"index":14,"time_ns":6100000000,"process":"final-reader","type":"ok","f":"poll","value":{"records":[{"topic":"kaos","partition":0,"offset":0,"id":1},{"topic":"kaos","partition":0,"offset":2,"id":4},{"topic":"kaos","partition":0,"offset":3,"id":1}]}}"#,
        r#"{"index":15,"time_ns":6200000000,"process":"harness","type":"ok","f":"final_read"}"#,
    ];
    lines.join("\n") + "\n"
}

fn summary() -> RunSummary {
    let analysis = check_text(&history(), Expectations::default()).expect("valid history");
    RunSummary {
        scenario_name: "kill-leader".to_owned(),
        started_at: "2026-11-27T10:43:43.123Z".to_owned(),
        duration_s: 6.2,
        seed: 42,
        settings: vec![
            (
                "cluster".to_owned(),
                "3 brokers, replication factor 3".to_owned(),
            ),
            ("producer".to_owned(), "acks=1 <b>not bold</b>".to_owned()),
        ],
        logs: vec![
            ("node n1".to_owned(), "nodes/n1.log".to_owned()),
            (
                "client \"p1\"".to_owned(),
                "clients/producer-1.log".to_owned(),
            ),
        ],
        analysis,
    }
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
        html.contains("id=\"settings\"")
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
        html.contains("70 more lost case(s) not shown: 70 more with evidence in results.json"),
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
