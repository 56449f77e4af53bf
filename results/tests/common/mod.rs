//! Fixture runs shared by the integration tests: small hand-written histories checked by the real
//! checker, and a synthetic 40-second run with faults, latency and consumers.
#![allow(dead_code)]

use checkers::{check_text, Expectations};
use results::{PlotData, RunSummary};
use serde_json::json;

/// A history with every anomaly class of the first checker, a kill window of a node whose name
/// needs escaping, and an instantaneous fault.
pub fn small_history() -> String {
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

pub fn summary_of(name: &str, history: &str, duration_s: f64) -> RunSummary {
    let analysis = check_text(history, Expectations::default()).expect("valid history");
    RunSummary {
        scenario_name: name.to_owned(),
        started_at: "2026-11-27T10:43:43.123Z".to_owned(),
        duration_s,
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
        plots: PlotData::from_history_text(history),
    }
}

pub fn small_summary() -> RunSummary {
    summary_of("kill-leader", &small_history(), 6.2)
}

/// A deterministic pseudo-random sequence (an LCG): fixtures need variety, not quality.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A 40-second run: three nodes, a producer at 200 sends/s, two consumers (the first killed by the
/// nemesis and replaced), a kill, a pause, a partition and a drop of the page cache. With
/// `lossy`, acknowledged sends just before the kill are missing from the final read and a few
/// messages are duplicated.
pub fn rich_history(seed: u64, lossy: bool) -> String {
    let mut rng = Lcg(seed);
    let mut events: Vec<(u64, serde_json::Value)> = Vec::new();
    let ms = |t: f64| (t * 1e6) as u64;
    let mut push = |t_ms: f64,
                    process: &str,
                    kind: &str,
                    f: &str,
                    value: serde_json::Value,
                    error: Option<&str>| {
        let mut op =
            json!({"time_ns": ms(t_ms), "process": process, "type": kind, "f": f, "value": value});
        if let Some(e) = error {
            op["error"] = json!(e);
        }
        events.push((ms(t_ms), op));
    };
    push(
        0.0,
        "harness",
        "invoke",
        "start",
        json!({"scenario": "rich"}),
        None,
    );
    for (i, node) in ["n1", "n2", "n3"].iter().enumerate() {
        push(
            20.0 + i as f64,
            "harness",
            "info",
            "node_start",
            json!({"node": node, "pid": 100 + i}),
            None,
        );
    }
    push(100.0, "harness", "ok", "start", json!({}), None);
    let faults = [
        ("kill", "restart", "n2", 8000.0, 11000.0),
        ("pause", "resume", "n3", 15000.0, 17000.0),
        ("partition", "heal", "n1", 22000.0, 25000.0),
    ];
    for (f, recover, node, from, to) in faults {
        push(from, "nemesis", "invoke", f, json!({"node": node}), None);
        push(from + 1.0, "nemesis", "ok", f, json!({"node": node}), None);
        push(
            to,
            "nemesis",
            "invoke",
            recover,
            json!({"node": node}),
            None,
        );
        push(
            to + 1.0,
            "nemesis",
            "ok",
            recover,
            json!({"node": node}),
            None,
        );
    }
    push(
        27000.0,
        "nemesis",
        "ok",
        "drop_caches",
        json!({"node": "n2"}),
        None,
    );
    push(
        20000.0,
        "nemesis",
        "ok",
        "kill",
        json!({"node": "consumer-1"}),
        None,
    );

    let mut acked: Vec<(u64, f64, i64)> = Vec::new(); // id, ack time, offset
    let mut offset = 0i64;
    let mut id = 1u64;
    let mut t = 150.0;
    while t < 30000.0 {
        let in_kill = (8000.0..11000.0).contains(&t);
        let in_pause = (15000.0..17000.0).contains(&t);
        push(
            t,
            "producer-1",
            "invoke",
            "send",
            json!({"id": id, "topic": "kaos"}),
            None,
        );
        let base = if in_kill {
            150.0
        } else if in_pause {
            60.0
        } else {
            2.0
        };
        let latency = base * (1.0 + 3.0 * rng.next() * rng.next());
        let r = rng.next();
        if in_kill && r < 0.2 {
            push(
                t + 500.0,
                "producer-1",
                "info",
                "send",
                json!({"id": id, "topic": "kaos"}),
                Some("REQUEST_TIMED_OUT"),
            );
        } else if in_kill && r < 0.3 {
            push(
                t + latency,
                "producer-1",
                "fail",
                "send",
                json!({"id": id, "topic": "kaos"}),
                Some("NOT_ENOUGH_REPLICAS"),
            );
        } else {
            push(
                t + latency,
                "producer-1",
                "ok",
                "send",
                json!({"id": id, "topic": "kaos", "partition": 0, "offset": offset}),
                None,
            );
            acked.push((id, t + latency, offset));
            offset += 1;
        }
        id += 1;
        t += 5.0;
    }
    // Consumers poll every 100 ms what was acknowledged since their last poll.
    let mut next = 0usize;
    let mut t = 200.0;
    while t < 31000.0 {
        let process = if t < 20000.0 {
            "consumer-1"
        } else if t >= 21000.0 {
            "consumer-2"
        } else {
            ""
        };
        if !process.is_empty() {
            let mut records = Vec::new();
            while next < acked.len() && acked[next].1 <= t {
                records.push(json!({"topic": "kaos", "partition": 0, "offset": acked[next].2, "id": acked[next].0}));
                next += 1;
            }
            if !records.is_empty() {
                push(t, process, "invoke", "poll", serde_json::Value::Null, None);
                push(
                    t + 1.0,
                    process,
                    "ok",
                    "poll",
                    json!({"records": records}),
                    None,
                );
            }
        } else {
            // The gap between the two consumers: what was acked then is read later.
        }
        t += 100.0;
    }
    push(
        20000.5,
        "harness",
        "info",
        "client_exit",
        json!({"client": "consumer-1", "status": "signal: 9 (SIGKILL)", "success": false}),
        None,
    );
    push(
        31500.0,
        "harness",
        "info",
        "client_exit",
        json!({"client": "producer-1", "status": "exit status: 0", "success": true}),
        None,
    );
    push(
        32000.0,
        "harness",
        "invoke",
        "final_read",
        json!({"topic": "kaos"}),
        None,
    );
    let mut records: Vec<serde_json::Value> = acked
        .iter()
        .filter(|(_, at, _)| !(lossy && (7900.0..8000.0).contains(at)))
        .map(|(id, _, off)| json!({"topic": "kaos", "partition": 0, "offset": off, "id": id}))
        .collect();
    if lossy {
        for (k, (id, _, _)) in acked.iter().take(3).enumerate() {
            records.push(
                json!({"topic": "kaos", "partition": 0, "offset": offset + k as i64, "id": id}),
            );
        }
    }
    for (k, chunk) in records.chunks(500).enumerate() {
        push(
            32100.0 + k as f64,
            "final-reader",
            "invoke",
            "poll",
            serde_json::Value::Null,
            None,
        );
        push(
            32100.5 + k as f64,
            "final-reader",
            "ok",
            "poll",
            json!({"records": chunk}),
            None,
        );
    }
    push(
        33000.0,
        "harness",
        "ok",
        "final_read",
        json!({"topic": "kaos"}),
        None,
    );
    push(
        33100.0,
        "harness",
        "info",
        "client_exit",
        json!({"client": "consumer-2", "status": "exit status: 0", "success": true}),
        None,
    );
    push(33200.0, "harness", "ok", "end", json!({"ok": true}), None);

    events.sort_by_key(|(t, _)| *t);
    let mut out = String::new();
    for (index, (_, mut op)) in events.into_iter().enumerate() {
        op["index"] = json!(index);
        out.push_str(&op.to_string());
        out.push('\n');
    }
    out
}

pub fn rich_summary(name: &str, seed: u64, lossy: bool) -> RunSummary {
    let mut summary = summary_of(name, &rich_history(seed, lossy), 33.2);
    summary.settings = vec![
        ("cluster".to_owned(), "3 brokers, replication factor 3, min.insync.replicas 2".to_owned()),
        ("producer-1".to_owned(), "async, 200 sends/s, acks=all, enable.idempotence=true".to_owned()),
        ("consumer-1".to_owned(), "subscribe, enable.auto.commit=false, offset_commit after processing".to_owned()),
        ("faults".to_owned(), "kill n2 8–11 s; pause n3 15–17 s; partition n1 22–25 s; drop_caches n2 27 s; kill consumer-1 20 s".to_owned()),
    ];
    summary.logs = vec![
        ("node n1".to_owned(), "nodes/n1.log".to_owned()),
        ("node n2".to_owned(), "nodes/n2.log".to_owned()),
        ("node n3".to_owned(), "nodes/n3.log".to_owned()),
        ("producer-1".to_owned(), "clients/producer-1.log".to_owned()),
        ("consumer-1".to_owned(), "clients/consumer-1.log".to_owned()),
    ];
    summary
}

/// Pages a demo store is made of, as written by [`demo_store`].
pub struct DemoStore {
    pub report: std::path::PathBuf,
    pub comparison: std::path::PathBuf,
    pub index: std::path::PathBuf,
}

/// A store with two scenarios: `kill-leader` with a run per configuration of a small matrix
/// (acks × idempotence) plus an unfinished run and one whose results.json is damaged, and
/// `pause-follower` with a valid and an invalid run; its comparison page and its index.
pub fn demo_store(store: &std::path::Path) -> DemoStore {
    use std::time::{Duration, UNIX_EPOCH};
    let t0 = UNIX_EPOCH + Duration::from_millis(1_795_776_223_123);
    let mut rows = Vec::new();
    let mut first_report = None;
    let configs = [
        ("acks=1", "false", true),
        ("acks=all", "false", true),
        ("acks=all", "true", false),
    ];
    for (i, (acks, idempotence, lossy)) in configs.iter().enumerate() {
        let dir = results::RunDir::create(
            store,
            "kill-leader",
            t0 + Duration::from_secs(60 * i as u64),
        )
        .expect("run dir");
        let mut summary = rich_summary("kill-leader", 11 + i as u64, *lossy);
        summary
            .settings
            .push(("acks".to_owned(), (*acks).to_owned()));
        summary
            .settings
            .push(("enable.idempotence".to_owned(), (*idempotence).to_owned()));
        results::write_results(&dir, &summary).expect("results");
        first_report.get_or_insert_with(|| dir.report_path());
        rows.push(results::ComparisonRow {
            label: format!("{acks} idempotence={idempotence}"),
            settings: vec![
                ("acks".to_owned(), (*acks).to_owned()),
                ("enable.idempotence".to_owned(), (*idempotence).to_owned()),
            ],
            run_dir: dir.path.clone(),
            summary,
        });
    }
    // An unfinished run, and one with a damaged results.json.
    let unfinished = results::RunDir::create(store, "kill-leader", t0 + Duration::from_secs(600))
        .expect("run dir");
    std::fs::write(unfinished.history_path(), "").expect("history");
    let damaged = results::RunDir::create(store, "kill-leader", t0 + Duration::from_secs(660))
        .expect("run dir");
    std::fs::write(damaged.results_path(), "{\"scenario_name\": \"kill-le").expect("damaged");
    for (i, lossy) in [false, true].into_iter().enumerate() {
        let dir = results::RunDir::create(
            store,
            "pause-follower",
            t0 + Duration::from_secs(120 + 60 * i as u64),
        )
        .expect("run dir");
        let summary = rich_summary("pause-follower", 21 + i as u64, lossy);
        results::write_results(&dir, &summary).expect("results");
    }
    let comparison =
        results::write_comparison(&store.join("matrix-kill-leader"), &rows).expect("comparison");
    let index = results::write_index(store).expect("index");
    DemoStore {
        report: first_report.expect("a report"),
        comparison,
        index,
    }
}

/// The analysis of a large run, built directly (from JSON, so that fields a newer checker adds
/// take their defaults): `messages` sends over `seconds`, every anomaly class at the evidence cap,
/// `faults` fault windows over three nodes.
pub fn large_analysis(messages: u64, seconds: usize, faults: usize) -> checkers::Analysis {
    let per_s = messages / seconds as u64;
    let cases = |kind: &str, n: usize| -> Vec<serde_json::Value> {
        (0..n)
            .map(|i| {
                json!({
                    "id": i as u64 * 7919,
                    "topic": "kaos",
                    "acknowledged_at": {"topic": "kaos", "partition": (i % 12) as i32, "offset": i as i64 * 31},
                    "read_at": [{"topic": "kaos", "partition": (i % 12) as i32, "offset": i as i64 * 31 + 1}],
                    "op_indexes": [i as u64 * 2, i as u64 * 2 + 1, i as u64 * 2 + 77],
                    "time_s": (i % seconds) as f64 + 0.25,
                    "faults_nearby": [format!("kill n{} at {:.2} s (until {:.2} s)", i % 3 + 1, i as f64, i as f64 + 1.5)],
                    "cause": format!("{kind}: acknowledged at {i}.25 s at partition {} offset {}, absent from the final read; node n{} was killed 0.4 s before, and the follower that became leader had not fetched it.", i % 12, i * 31, i % 3 + 1),
                })
            })
            .collect()
    };
    let cap = checkers::limits::CASES_PER_CLASS_MAX;
    let anomaly = |kind: &str, allowance: &str, count: u64| json!({"kind": kind, "allowance": allowance, "count": count, "cases": cases(kind, cap), "cases_omitted": count - cap as u64});
    let windows: Vec<serde_json::Value> = (0..faults)
        .map(|i| {
            let kind = ["kill", "pause", "partition", "power_loss"][i % 4];
            let start = (i * seconds / faults.max(1)) as f64 + 0.5;
            json!({"kind": kind, "target": format!("n{}", i % 3 + 1), "start_s": start, "end_s": start + 2.0, "op_index": i as u64 * 1000})
        })
        .collect();
    let series = |v: u64| vec![v; seconds];
    let value = json!({
        "verdict": "invalid",
        "counts": {
            "ops": messages * 2 + messages / 100, "sends_invoked": messages, "sends_ok": messages - messages / 50,
            "sends_fail": messages / 100, "sends_info": messages / 100, "sends_open": 0, "sends_without_id": 0,
            "polls_ok": messages / 100, "records_polled": messages, "final_read_records": messages,
            "final_read_distinct_ids": messages - 250_000, "records_without_id": 0, "unknown_ids_read": 0,
            "lost": 250_000, "unacknowledged_absent": 120_000, "duplicates": 50_000, "recovered": 3, "aborted_read": 2_000,
        },
        "unmet": [],
        "anomalies": [
            anomaly("lost", "forbidden", 250_000),
            anomaly("aborted_read", "forbidden", 2_000),
            anomaly("duplicate", "allowed", 50_000),
            anomaly("unacknowledged_absent", "allowed", 120_000),
        ],
        "series": {
            "duration_s": seconds as f64,
            "sends_ok": series(per_s), "sends_fail": series(per_s / 100), "sends_info": series(per_s / 100),
            "records_polled": series(per_s),
            // Series of the extended checker (ignored by a checker without them).
            "unseen": (0..seconds as u64).map(|i| per_s / 10 + (i * 7919) % (per_s / 5 + 1)).collect::<Vec<_>>(),
            "lag_ms_p50": (0..seconds as u64).map(|i| 5 + i % 7).collect::<Vec<_>>(),
            "lag_ms_p99": (0..seconds as u64).map(|i| 40 + (i * 31) % 50).collect::<Vec<_>>(),
            "lag_ms_max": (0..seconds as u64).map(|i| 90 + (i * 17) % 400).collect::<Vec<_>>(),
        },
        "faults": windows,
        "notes": (0..200).map(|i| format!("note {i}")).collect::<Vec<_>>(),
        "expect": {"lost": "forbidden", "duplicates": "allowed", "unacknowledged_absent": "allowed", "aborted_read": "forbidden", "acknowledged_min": 0},
    });
    serde_json::from_value(value).expect("a valid analysis")
}

/// Feeds `messages` sends (invoke and ok, three producers, latency varying) and consumer polls of
/// 100 records to `builder`, over `seconds`. One op value is reused and mutated in place, so the
/// cost measured is the builder's.
pub fn feed_large_history(builder: &mut results::series::PlotBuilder, messages: u64, seconds: u64) {
    use checkers::{Op, OpType};
    let producers = ["producer-1", "producer-2", "producer-3"];
    let mut send = Op {
        index: 0,
        time_ns: 0,
        process: String::new(),
        kind: OpType::Invoke,
        f: "send".to_owned(),
        monotonic_ns: None,
        value: json!({"id": 0, "topic": "kaos", "partition": 0, "offset": 0}),
        error: None,
    };
    let records: Vec<serde_json::Value> = (0..100)
        .map(|i| json!({"topic": "kaos", "partition": 0, "offset": i, "id": i}))
        .collect();
    let poll = Op {
        index: 0,
        time_ns: 0,
        process: "consumer-1".to_owned(),
        kind: OpType::Ok,
        f: "poll".to_owned(),
        monotonic_ns: None,
        value: json!({ "records": records }),
        error: None,
    };
    let mut poll = poll;
    let step_ns = seconds * 1_000_000_000 / messages.max(1);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut index = 0u64;
    for id in 0..messages {
        let t = id * step_ns;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let latency_ns = 500_000 + rng % 20_000_000;
        send.process.clear();
        send.process.push_str(producers[(id % 3) as usize]);
        send.value["id"] = json!(id);
        send.index = index;
        send.time_ns = t;
        send.kind = OpType::Invoke;
        builder.observe(&send);
        send.index = index + 1;
        send.time_ns = t + latency_ns;
        send.kind = OpType::Ok;
        builder.observe(&send);
        index += 2;
        if id % 100 == 99 {
            poll.index = index;
            poll.time_ns = t + latency_ns + 1_000_000;
            builder.observe(&poll);
            index += 1;
        }
    }
}
