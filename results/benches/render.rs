//! `cargo bench -p results`: a synthetic 10M-message run (20M send ops plus polls) through
//! `PlotBuilder`, a large analysis (every class at the evidence cap, 300 fault windows), then the
//! report, results.json, comparison and index. Prints times and sizes; asserts nothing on time.
//! `KAOS_BENCH_MESSAGES` changes the number of messages.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;
use std::time::{Duration, UNIX_EPOCH};

fn main() {
    let messages: u64 = std::env::var("KAOS_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let seconds = 1000u64;
    println!("synthetic run: {messages} messages over {seconds} s");

    let t = Instant::now();
    let mut builder = results::series::PlotBuilder::new();
    common::feed_large_history(&mut builder, messages, seconds);
    let plots = builder.finish();
    let ops = messages * 2 + messages / 100;
    let plot_time = t.elapsed();
    println!(
        "plot series from {ops} ops: {:.2} s ({:.1} M ops/s), {} buckets of {} s, {} latencies",
        plot_time.as_secs_f64(),
        ops as f64 / plot_time.as_secs_f64() / 1e6,
        plots.latency_ms_p99.len(),
        plots.bucket_s,
        plots.latency_count
    );

    let plots_json = serde_json::to_string(&plots).expect("plots serialise");
    println!(
        "plots in results.json: {:.1} KB",
        plots_json.len() as f64 / 1e3
    );

    // The text path (`write_results` without plots, or `from_history_text`): parse cost per line.
    let text_messages = (messages / 10).max(1);
    let mut text = String::with_capacity(text_messages as usize * 240);
    for id in 0..text_messages {
        let t = id * 100_000;
        text.push_str(&format!(
            "{{\"index\":{},\"time_ns\":{t},\"process\":\"producer-1\",\"type\":\"invoke\",\"f\":\"send\",\"value\":{{\"id\":{id},\"topic\":\"kaos\"}}}}\n",
            2 * id
        ));
        text.push_str(&format!(
            "{{\"index\":{},\"time_ns\":{},\"process\":\"producer-1\",\"type\":\"ok\",\"f\":\"send\",\"value\":{{\"id\":{id},\"topic\":\"kaos\",\"partition\":0,\"offset\":{id}}}}}\n",
            2 * id + 1,
            t + 2_000_000
        ));
    }
    let t = Instant::now();
    let from_text = results::PlotData::from_history_text(&text);
    let text_time = t.elapsed();
    println!(
        "plot series from history text ({} lines, {:.0} MB): {:.2} s ({:.2} M lines/s)",
        text_messages * 2,
        text.len() as f64 / 1e6,
        text_time.as_secs_f64(),
        (text_messages * 2) as f64 / text_time.as_secs_f64() / 1e6
    );
    assert_eq!(from_text.latency_count, text_messages);
    drop(text);

    let analysis = common::large_analysis(messages, seconds as usize, 300);
    let mut summary = common::rich_summary("bench", 1, true);
    summary.analysis = analysis;
    summary.plots = plots;
    summary.duration_s = seconds as f64;

    let t = Instant::now();
    let html = results::render_report(&summary);
    let render = t.elapsed();
    println!(
        "report.html: rendered in {:.0} ms, {:.2} MB",
        render.as_secs_f64() * 1000.0,
        html.len() as f64 / 1e6
    );

    let store = tempfile::tempdir().expect("tempdir");
    let started = UNIX_EPOCH + Duration::from_secs(1_795_776_223);
    let dir = results::RunDir::create(store.path(), "bench", started).expect("run dir");
    let t = Instant::now();
    results::write_results(&dir, &summary).expect("written");
    let written = t.elapsed();
    let size =
        |p: std::path::PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    println!(
        "write_results (results.json + report.html): {:.0} ms; results.json {:.2} MB, report.html {:.2} MB",
        written.as_secs_f64() * 1000.0,
        size(dir.results_path()),
        size(dir.report_path())
    );

    let rows: Vec<results::ComparisonRow> = (0..12)
        .map(|i| results::ComparisonRow {
            label: format!("config {i}"),
            settings: vec![("acks".to_owned(), ["0", "1", "all"][i % 3].to_owned())],
            run_dir: dir.path.clone(),
            summary: summary.clone(),
        })
        .collect();
    let t = Instant::now();
    let comparison =
        results::write_comparison(&store.path().join("matrix"), &rows).expect("comparison");
    println!(
        "comparison.html (12 configurations): {:.0} ms, {:.2} MB",
        t.elapsed().as_secs_f64() * 1000.0,
        size(comparison)
    );
    let t = Instant::now();
    let index = results::write_index(store.path()).expect("index");
    println!(
        "index.html: {:.0} ms, {:.3} MB",
        t.elapsed().as_secs_f64() * 1000.0,
        size(index)
    );
    if let Some(out) = std::env::var_os("KAOS_BENCH_KEEP") {
        std::fs::copy(dir.report_path(), out).expect("keeping the report");
    }
}
