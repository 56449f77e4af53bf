//! `cargo bench -p checkers`: checks generated histories of 1M and 10M messages and prints events
//! per second and peak memory (VmHWM from /proc/self/status; reading /proc is the bench's business,
//! never the library's).
//!
//! The history: 4 producers (sync sends: invoke then ok; ids `producer << 40 | sequence` as kaos
//! producers number them) over 8 partitions, 2 consumers polling
//! their 4 partitions each in batches as the log grows, a kill/restart now and then, then a final
//! read of every partition in batches of 500. Planted: one message in 1000 acknowledged but absent
//! (lost, and the consumers' jump over its offset is a poll skip), one in 1000 timed out yet
//! present, one in 5000 failed yet present (aborted read).
//!
//! 1M messages are generated as one text and timed through `check_text` (the peak memory then
//! includes the text). 10M messages would be about 3.5 GB of text, so they are generated and fed
//! in chunks of whole lines (`observe_text`, what `check_text` does line by line) and only the
//! checker's time counts; the peak memory is then the checker's (plus one 16 MB chunk). Each size runs in
//! its own process so that each peak is its own. `KAOS_BENCH_MESSAGES=N` runs one size instead.
//! Events per second are given against wall time and against this thread's CPU time (the
//! machine may be busy with other work). Client lines carry the clients' `monotonic_ns` stamp, as
//! kaos writes them since issue 15; `KAOS_BENCH_STAMPS=0` generates them without (as before).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use checkers::{check_text, observe_text, Checker, Expectations};

const PARTITIONS: u64 = 8;
const PRODUCERS: u64 = 4;
const ROUND: u64 = 256;
const FINAL_BATCH: u64 = 500;
/// Text fed to the checker at a time when streaming.
const CHUNK_BYTES: usize = 16 << 20;

/// The message id of the `n`th message: like kaos producers, the producer number in the high
/// bits and its own sequence in the low bits.
fn message_id(n: u64) -> u64 {
    ((n % PRODUCERS) << 40) | (n / PRODUCERS)
}

fn fate(id: u64) -> u64 {
    (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 5000
}

fn lost(id: u64) -> bool {
    fate(id) % 1000 == 0
}

/// Generates the history in chunks of whole lines.
struct Generator {
    messages: u64,
    next_id: u64,
    index: u64,
    time_ns: u64,
    /// Next offset each consumer reads per partition (consumer c owns partitions p % 2 == c).
    consumed: [u64; PARTITIONS as usize],
    phase: u8,
    final_partition: u64,
    final_offset: u64,
    killed: bool,
    events: u64,
    /// Client lines carry `monotonic_ns`.
    stamps: bool,
}

/// Where the generated clients' CLOCK_MONOTONIC stands when the run starts (an uptime of hours).
const CLOCK_ORIGIN_NS: u64 = 7_000_000_000_000;

impl Generator {
    fn new(messages: u64) -> Self {
        Generator {
            messages,
            next_id: 0,
            index: 0,
            time_ns: 0,
            consumed: [0; PARTITIONS as usize],
            phase: 0,
            final_partition: 0,
            final_offset: 0,
            killed: false,
            events: 0,
            stamps: std::env::var("KAOS_BENCH_STAMPS").map_or(true, |v| v != "0"),
        }
    }

    fn line(&mut self, out: &mut String, process: &str, kind: &str, f: &str, value: &str) {
        self.time_ns += 5_000;
        self.events += 1;
        let _ = write!(
            out,
            r#"{{"index":{},"time_ns":{},"process":"{process}","type":"{kind}","f":"{f}""#,
            self.index, self.time_ns
        );
        // A client's own CLOCK_MONOTONIC stamp, as kaos clients write it (the harness's ops
        // have none); `KAOS_BENCH_STAMPS=0` writes histories as before the stamps.
        if self.stamps && process != "harness" && process != "nemesis" {
            let _ = write!(
                out,
                r#","monotonic_ns":{}"#,
                CLOCK_ORIGIN_NS + self.time_ns - 1_000
            );
        }
        let _ = writeln!(out, r#","value":{value}}}"#);
        self.index += 1;
    }

    fn records(&mut self, out: &mut String, process: &str, partition: u64, from: u64, to: u64) {
        let mut value = String::with_capacity(64 * (to - from) as usize + 16);
        value.push_str(r#"{"records":["#);
        let mut first = true;
        for offset in from..to {
            let id = message_id(offset * PARTITIONS + partition);
            if lost(id) {
                continue;
            }
            if !first {
                value.push(',');
            }
            first = false;
            self.events += 1;
            let _ = write!(
                value,
                r#"{{"topic":"kaos","partition":{partition},"offset":{offset},"id":{id}}}"#
            );
        }
        value.push_str("]}");
        self.line(out, process, "ok", "poll", &value);
    }

    /// Appends whole lines until `out` holds about `bytes_max` bytes; false when the history is
    /// complete.
    fn fill(&mut self, out: &mut String, bytes_max: usize) -> bool {
        while out.len() < bytes_max {
            match self.phase {
                0 => {
                    self.line(out, "harness", "ok", "start", r#"{"scenario":"bench"}"#);
                    self.phase = 1;
                }
                1 => {
                    let end = (self.next_id + ROUND).min(self.messages);
                    for n in self.next_id..end {
                        let producer = ["producer-0", "producer-1", "producer-2", "producer-3"]
                            [(n % PRODUCERS) as usize];
                        let partition = n % PARTITIONS;
                        let offset = n / PARTITIONS;
                        let id = message_id(n);
                        self.line(
                            out,
                            producer,
                            "invoke",
                            "send",
                            &format!(r#"{{"id":{id},"topic":"kaos"}}"#),
                        );
                        let f = fate(id);
                        if f % 1000 == 1 {
                            let v = format!(
                                r#"{{"id":{id},"topic":"kaos"}},"error":"REQUEST_TIMED_OUT""#
                            );
                            self.line(out, producer, "info", "send", &v);
                        } else if f == 2 {
                            let v = format!(
                                r#"{{"id":{id},"topic":"kaos"}},"error":"NOT_ENOUGH_REPLICAS""#
                            );
                            self.line(out, producer, "fail", "send", &v);
                        } else {
                            let v = format!(
                                r#"{{"id":{id},"topic":"kaos","partition":{partition},"offset":{offset}}}"#
                            );
                            self.line(out, producer, "ok", "send", &v);
                        }
                    }
                    self.next_id = end;
                    // Each consumer polls what its partitions now hold (up to the last full row).
                    let written = self.next_id / PARTITIONS;
                    for partition in 0..PARTITIONS {
                        let from = self.consumed[partition as usize];
                        if written > from {
                            let consumer = if partition % 2 == 0 {
                                "consumer-0"
                            } else {
                                "consumer-1"
                            };
                            self.records(out, consumer, partition, from, written);
                            self.consumed[partition as usize] = written;
                        }
                    }
                    if (self.next_id / ROUND) % 400 == 0 {
                        let f = if self.killed { "restart" } else { "kill" };
                        self.killed = !self.killed;
                        self.line(out, "nemesis", "ok", f, r#"{"node":"n1"}"#);
                    }
                    if self.next_id == self.messages {
                        if self.killed {
                            self.line(out, "nemesis", "ok", "restart", r#"{"node":"n1"}"#);
                        }
                        self.line(out, "harness", "invoke", "final_read", "null");
                        self.phase = 2;
                    }
                }
                2 => {
                    let end_offset =
                        (self.messages + PARTITIONS - 1 - self.final_partition) / PARTITIONS;
                    let to = (self.final_offset + FINAL_BATCH).min(end_offset);
                    if to > self.final_offset {
                        self.records(
                            out,
                            "final-reader",
                            self.final_partition,
                            self.final_offset,
                            to,
                        );
                    }
                    self.final_offset = to;
                    if to >= end_offset {
                        self.final_partition += 1;
                        self.final_offset = 0;
                    }
                    if self.final_partition == PARTITIONS {
                        self.line(out, "harness", "ok", "final_read", "null");
                        self.phase = 3;
                    }
                }
                _ => return false,
            }
        }
        true
    }
}

/// CPU time of this thread (user + system), from /proc: on a loaded machine it is the fairer
/// measure of the checker's own cost than wall time.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command name: state is field 3, utime 14 and stime 15 (1-based, whole line).
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

fn peak_rss_mb() -> Option<f64> {
    rss_mb("VmHWM:")
}

fn rss_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn report(
    label: &str,
    messages: u64,
    ops: u64,
    events: u64,
    (elapsed, cpu): (Duration, Duration),
    analysis: &checkers::Analysis,
) {
    let secs = elapsed.as_secs_f64();
    let cpu_secs = cpu.as_secs_f64().max(0.01);
    let found: Vec<String> = analysis
        .anomalies
        .iter()
        .map(|a| format!("{} {}", a.kind.as_str(), a.count))
        .collect();
    println!(
        "{label}: {messages} messages, {ops} ops, {events} events (ops + records read) in {secs:.2} s \
         wall, {cpu_secs:.2} s CPU: {:.2} M events/s wall ({:.2} M/s CPU), {:.2} M ops/s wall; \
         peak RSS {:.0} MB; verdict {}; {}",
        events as f64 / secs / 1e6,
        events as f64 / cpu_secs / 1e6,
        ops as f64 / secs / 1e6,
        peak_rss_mb().unwrap_or(f64::NAN),
        analysis.verdict.as_str(),
        found.join(", ")
    );
}

/// The whole text in memory, through `check_text`.
fn whole(messages: u64) {
    let mut generator = Generator::new(messages);
    let mut text = String::new();
    while generator.fill(&mut text, usize::MAX) {}
    let repeat: usize = std::env::var("KAOS_BENCH_REPEAT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    for _ in 1..repeat {
        let _ = check_text(&text, Expectations::default());
    }
    let (started, cpu) = (Instant::now(), cpu_time());
    let analysis = check_text(&text, Expectations::default()).expect("a valid history");
    let elapsed = (started.elapsed(), cpu_time() - cpu);
    report(
        "check_text",
        messages,
        analysis.counts.ops,
        generator.events,
        elapsed,
        &analysis,
    );
}

/// Generated and fed in chunks; only the checker's time counts.
fn streamed(messages: u64) {
    let mut generator = Generator::new(messages);
    let mut checker = Checker::new(Expectations::default());
    let mut chunk = String::new();
    let (mut elapsed, mut cpu) = (Duration::ZERO, Duration::ZERO);
    loop {
        chunk.clear();
        let more = generator.fill(&mut chunk, CHUNK_BYTES);
        let (started, cpu_started) = (Instant::now(), cpu_time());
        observe_text(&mut checker, &chunk).expect("a valid history");
        elapsed += started.elapsed();
        cpu += cpu_time() - cpu_started;
        if !more {
            break;
        }
    }
    println!(
        "streamed  : before finish: RSS {:.0} MB (peak so far {:.0} MB)",
        rss_mb("VmRSS:").unwrap_or(f64::NAN),
        peak_rss_mb().unwrap_or(f64::NAN)
    );
    let (started, cpu_started) = (Instant::now(), cpu_time());
    let analysis = checker.finish();
    let finish = started.elapsed();
    elapsed += finish;
    cpu += cpu_time() - cpu_started;
    println!("streamed  : finish took {:.2} s wall", finish.as_secs_f64());
    let elapsed = (elapsed, cpu);
    report(
        "streamed  ",
        messages,
        analysis.counts.ops,
        generator.events,
        elapsed,
        &analysis,
    );
}

fn main() {
    // One size per process, so that each peak RSS is that run's own: the parent re-runs this
    // binary with `KAOS_BENCH_ONE=whole:N` or `streamed:N`.
    if let Ok(one) = std::env::var("KAOS_BENCH_ONE") {
        let (mode, n) = one.split_once(':').unwrap_or(("streamed", "10000"));
        let n: u64 = n.parse().unwrap_or(10_000);
        if mode == "whole" {
            whole(n);
        } else {
            streamed(n);
        }
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then run a small size.
    let benching = std::env::args().any(|a| a == "--bench");
    let runs: Vec<String> = match std::env::var("KAOS_BENCH_MESSAGES").ok() {
        Some(n) => vec![format!("whole:{n}"), format!("streamed:{n}")],
        None if benching => vec![
            "whole:1000000".to_owned(),
            "streamed:1000000".to_owned(),
            "streamed:10000000".to_owned(),
        ],
        None => {
            streamed(10_000);
            return;
        }
    };
    let exe = std::env::current_exe().expect("the bench binary");
    for run in runs {
        let status = std::process::Command::new(&exe)
            .env("KAOS_BENCH_ONE", &run)
            .status()
            .expect("runs itself");
        assert!(status.success(), "{run} failed");
    }
}
