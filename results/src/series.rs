//! Plot series computed from the history ops: what the checker's `Analysis` does not carry.
//!
//! Pure and bounded: one pass over the ops, memory independent of the number of messages (only
//! the sends in flight are remembered). Time is cut into buckets of `bucket_s` seconds; the bucket
//! width starts at one second and doubles (merging neighbours exactly) whenever the run outgrows
//! [`limits::PLOT_BUCKETS_MAX`] buckets, so a week-long run and a ten-second one both give at most
//! that many points.
//!
//! - produce latency: a send's `invoke` to its `ok`, matched by process and message id; per bucket
//!   p50 and p99, and a histogram over the whole run. Latencies are counted in log-spaced bins
//!   (eight per doubling, so a bin is 9% wide); a percentile is the upper bound of the bin it falls
//!   in, so it overstates by at most 9%.
//! - consumer throughput: records returned by `poll ok` per second, per consumer process (the
//!   final read excluded).
//! - process spans: for the fault timeline, when each client process was first and last heard
//!   of and how it ended, and the nodes the harness started.

use std::borrow::{Borrow, Cow};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use checkers::{Op, OpType};
use kaos_history::{F, HARNESS, NEMESIS};
use serde::{Deserialize, Serialize};

use crate::limits;

/// Latency bins: bin 0 is under 1 µs, bin `b >= 1` covers `[2^((b-1)/8), 2^(b/8))` µs.
const LATENCY_BINS: usize = 256;
const BINS_PER_DOUBLING: f64 = 8.0;

/// Everything the report plots beyond the checker's per-second counts. `Default` (all empty) is
/// what an older results.json without `plots` reads as: the report says "not recorded".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlotData {
    /// Width of one bucket, seconds (1, 2, 4, …). Bucket `i` covers `[i*bucket_s, (i+1)*bucket_s)`.
    pub bucket_s: f64,
    /// Time of the last op, seconds since start.
    pub duration_s: f64,
    /// Sends whose latency was measured (an `ok` matched to its `invoke`).
    pub latency_count: u64,
    /// Per bucket: median produce latency, milliseconds; `None` where no send completed.
    pub latency_ms_p50: Vec<Option<f64>>,
    /// Per bucket: 99th percentile produce latency, milliseconds.
    pub latency_ms_p99: Vec<Option<f64>>,
    /// Over the whole run: p50, p90, p99 and max produce latency.
    pub latency_ms_overall: Option<LatencySummary>,
    /// The latency distribution: log-spaced bins from the first to the last non-empty one.
    pub latency_histogram: Vec<HistogramBin>,
    /// Records per second returned by consumer polls, one entry per consumer process (the
    /// busiest first; beyond [`limits::PLOT_CONSUMER_LINES_MAX`] they are summed into "others").
    pub consumers: Vec<ProcessRate>,
    /// Nodes the harness started (`node_start` ops) or the nemesis targeted, in order of appearance.
    pub nodes: Vec<NodeSpan>,
    /// Client processes in order of their first op.
    pub processes: Vec<ProcessSpan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// `count` latencies in `[low_ms, high_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HistogramBin {
    pub low_ms: f64,
    pub high_ms: f64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessRate {
    pub process: String,
    pub total: u64,
    /// Per bucket, records per second (the bucket's count divided by `bucket_s`).
    pub per_s: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpan {
    pub node: String,
    /// When the harness first started it (`node_start`), if it said so.
    pub started_s: Option<f64>,
}

/// One client process's life: first and last op, and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessSpan {
    pub process: String,
    pub first_s: f64,
    pub last_s: f64,
    /// The harness's `client_exit` status ("exit status: 0", "signal: 9 (SIGKILL)"), if any.
    pub exit: Option<String>,
    pub exit_success: Option<bool>,
}

impl PlotData {
    /// One pass over the ops of a history.
    pub fn from_ops<I, O>(ops: I) -> PlotData
    where
        I: IntoIterator<Item = O>,
        O: Borrow<Op>,
    {
        let mut builder = PlotBuilder::new();
        for op in ops {
            builder.observe(op.borrow());
        }
        builder.finish()
    }

    /// From the text of a `history.jsonl`; lines that are not ops (a cut last line) are skipped.
    pub fn from_history_text(text: &str) -> PlotData {
        let mut builder = PlotBuilder::new();
        for line in text.lines() {
            builder.observe_line(line);
        }
        builder.finish()
    }

    /// Whether produce latency was measured.
    pub fn has_latency(&self) -> bool {
        self.latency_count > 0
    }

    /// Whether anything at all was recorded (an empty `PlotData` is a run stored before plots).
    pub fn is_empty(&self) -> bool {
        self.latency_count == 0
            && self.consumers.is_empty()
            && self.processes.is_empty()
            && self.nodes.is_empty()
    }
}

/// The streaming form of [`PlotData::from_ops`]: `observe` each op, then `finish`.
#[derive(Debug)]
pub struct PlotBuilder {
    /// Bucket width in whole seconds, a power of two.
    width_s: u64,
    latency: Vec<Option<Box<[u32; LATENCY_BINS]>>>,
    latency_total: Box<[u64; LATENCY_BINS]>,
    latency_count: u64,
    /// Sends in flight: (process index, message id) → invoke time.
    in_flight: HashMap<(u32, u64), u64, BuildHasherDefault<MixHasher>>,
    process_index: HashMap<String, u32>,
    processes: Vec<ProcessState>,
    /// The process of the previous client op (a cache in front of `process_index`).
    last_process: u32,
    nodes: Vec<NodeSpan>,
    in_final_read: bool,
    last_time_ns: u64,
}

#[derive(Debug)]
struct ProcessState {
    name: String,
    first_ns: u64,
    last_ns: u64,
    /// Records polled per bucket (empty for a process that never polled).
    records: Vec<u64>,
    records_total: u64,
    exit: Option<(String, Option<bool>)>,
}

impl Default for PlotBuilder {
    fn default() -> Self {
        PlotBuilder::new()
    }
}

impl PlotBuilder {
    pub fn new() -> PlotBuilder {
        PlotBuilder {
            width_s: 1,
            latency: Vec::new(),
            latency_total: Box::new([0; LATENCY_BINS]),
            latency_count: 0,
            in_flight: HashMap::default(),
            process_index: HashMap::new(),
            processes: Vec::new(),
            last_process: u32::MAX,
            nodes: Vec::new(),
            in_final_read: false,
            last_time_ns: 0,
        }
    }

    /// Parses and observes one `history.jsonl` line; a line that is not an op is skipped. Only the
    /// fields the plots need are decoded (borrowed where the text allows) rather than a whole
    /// [`Op`] with its `value` tree; a line whose `value` has an unexpected shape falls back to
    /// the full parser.
    pub fn observe_line(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        match serde_json::from_str::<LineOp<'_>>(line) {
            Ok(op) => {
                let value = op.value.unwrap_or_default();
                let nodes: Vec<&str> = value.nodes.iter().flatten().map(|n| n.as_ref()).collect();
                self.observe_event(&Event {
                    time_ns: op.time_ns,
                    process: &op.process,
                    kind: op.kind,
                    f: &op.f,
                    id: value.id,
                    records: value.records.map_or(0, |r| r.len()),
                    node: value.node.as_deref(),
                    nodes,
                    client: value.client.as_deref(),
                    status: value.status.as_deref(),
                    success: value.success,
                });
            }
            Err(_) => {
                if let Ok(op) = checkers::history::parse_op(line, 0) {
                    self.observe(&op);
                }
            }
        }
    }

    pub fn observe(&mut self, op: &Op) {
        let value = &op.value;
        let str_of = |key: &str| value.get(key).and_then(serde_json::Value::as_str);
        let nodes: Vec<&str> = if op.process == NEMESIS {
            value
                .get("nodes")
                .and_then(serde_json::Value::as_array)
                .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        self.observe_event(&Event {
            time_ns: op.time_ns,
            process: &op.process,
            kind: op.kind,
            f: &op.f,
            id: value.get("id").and_then(serde_json::Value::as_u64),
            records: value
                .get("records")
                .and_then(serde_json::Value::as_array)
                .map_or(0, Vec::len),
            node: str_of("node"),
            nodes,
            client: str_of("client"),
            status: str_of("status"),
            success: value.get("success").and_then(serde_json::Value::as_bool),
        });
    }

    fn observe_event(&mut self, op: &Event<'_>) {
        let time_ns = op.time_ns.min(limits::PLOT_TIME_NS_MAX);
        self.last_time_ns = self.last_time_ns.max(time_ns);
        match op.process {
            HARNESS => return self.observe_harness(op, time_ns),
            NEMESIS => return self.observe_nemesis(op),
            _ => {}
        }
        let process = self.process(op.process, time_ns);
        match (F::from_name(op.f), op.kind) {
            (Some(F::Send), OpType::Invoke) => {
                if let Some(id) = op.id {
                    if self.in_flight.len() < limits::PLOT_SENDS_IN_FLIGHT_MAX {
                        self.in_flight.insert((process, id), time_ns);
                    }
                }
            }
            (Some(F::Send), OpType::Ok) => {
                if let Some(invoked) = op.id.and_then(|id| self.in_flight.remove(&(process, id))) {
                    self.record_latency(time_ns, time_ns.saturating_sub(invoked));
                }
            }
            (Some(F::Send), OpType::Fail | OpType::Info) => {
                if let Some(id) = op.id {
                    self.in_flight.remove(&(process, id));
                }
            }
            (Some(F::Poll), OpType::Ok) if !self.in_final_read && op.records > 0 => {
                let n = op.records as u64;
                let bucket = self.bucket(time_ns);
                let state = &mut self.processes[process as usize];
                if state.records.len() <= bucket {
                    state.records.resize(bucket + 1, 0);
                }
                state.records[bucket] += n;
                state.records_total += n;
            }
            _ => {}
        }
    }

    fn observe_harness(&mut self, op: &Event<'_>, time_ns: u64) {
        match F::from_name(op.f) {
            Some(F::FinalRead) => self.in_final_read = op.kind == OpType::Invoke,
            Some(F::NodeStart) => {
                if let Some(node) = op.node {
                    let started = time_ns as f64 / 1e9;
                    match self.nodes.iter_mut().find(|n| n.node == node) {
                        Some(span) => {
                            span.started_s.get_or_insert(started);
                        }
                        None => self.push_node(node, Some(started)),
                    }
                }
            }
            Some(F::ClientExit) => {
                if let Some(client) = op.client {
                    let status = op.status.unwrap_or("exited").to_owned();
                    let index = self.process(client, time_ns);
                    let state = &mut self.processes[index as usize];
                    state.exit = Some((status, op.success));
                    state.last_ns = state.last_ns.max(time_ns);
                }
            }
            _ => {}
        }
    }

    fn observe_nemesis(&mut self, op: &Event<'_>) {
        if let Some(node) = op.node {
            self.note_target(node);
        }
        for node in &op.nodes {
            self.note_target(node);
        }
    }

    /// A nemesis target: a node, unless it names a client process we know.
    fn note_target(&mut self, name: &str) {
        if self.process_index.contains_key(name) || self.nodes.iter().any(|n| n.node == name) {
            return;
        }
        self.push_node(name, None);
    }

    fn push_node(&mut self, node: &str, started_s: Option<f64>) {
        if self.nodes.len() < limits::PLOT_TIMELINE_ROWS_MAX {
            self.nodes.push(NodeSpan {
                node: node.to_owned(),
                started_s,
            });
        }
    }

    /// The index of a client process, created on its first op. Past
    /// `limits::PLOT_PROCESSES_MAX` processes, later ones share the last slot ("others").
    fn process(&mut self, name: &str, time_ns: u64) -> u32 {
        // Most ops come from the process of the op before: skip the map lookup then.
        if let Some(state) = self.processes.get_mut(self.last_process as usize) {
            if state.name == name {
                state.last_ns = state.last_ns.max(time_ns);
                return self.last_process;
            }
        }
        let index = self.process_slow(name, time_ns);
        self.last_process = index;
        index
    }

    fn process_slow(&mut self, name: &str, time_ns: u64) -> u32 {
        if let Some(&index) = self.process_index.get(name) {
            let state = &mut self.processes[index as usize];
            state.last_ns = state.last_ns.max(time_ns);
            return index;
        }
        if self.processes.len() >= limits::PLOT_PROCESSES_MAX {
            let index = (self.processes.len() - 1) as u32;
            let state = &mut self.processes[index as usize];
            state.name = "others".to_owned();
            state.last_ns = state.last_ns.max(time_ns);
            return index;
        }
        let index = self.processes.len() as u32;
        self.processes.push(ProcessState {
            name: name.to_owned(),
            first_ns: time_ns,
            last_ns: time_ns,
            records: Vec::new(),
            records_total: 0,
            exit: None,
        });
        self.process_index.insert(name.to_owned(), index);
        index
    }

    /// The bucket of a time, coarsening all buckets first if it lies beyond the last one allowed.
    fn bucket(&mut self, time_ns: u64) -> usize {
        loop {
            let bucket = (time_ns / 1_000_000_000 / self.width_s) as usize;
            if bucket < limits::PLOT_BUCKETS_MAX {
                return bucket;
            }
            self.coarsen();
        }
    }

    /// Doubles the bucket width, merging each pair of buckets.
    fn coarsen(&mut self) {
        self.width_s *= 2;
        let latency = std::mem::take(&mut self.latency);
        let mut merged: Vec<Option<Box<[u32; LATENCY_BINS]>>> =
            Vec::with_capacity(latency.len() / 2 + 1);
        let mut pairs = latency.into_iter();
        while let Some(first) = pairs.next() {
            let second = pairs.next().flatten();
            merged.push(match (first, second) {
                (Some(mut a), Some(b)) => {
                    for (x, y) in a.iter_mut().zip(b.iter()) {
                        *x = x.saturating_add(*y);
                    }
                    Some(a)
                }
                (a, b) => a.or(b),
            });
        }
        self.latency = merged;
        for state in &mut self.processes {
            state.records = state.records.chunks(2).map(|c| c.iter().sum()).collect();
        }
    }

    fn record_latency(&mut self, time_ns: u64, latency_ns: u64) {
        let bin = latency_bin(latency_ns);
        let bucket = self.bucket(time_ns);
        if self.latency.len() <= bucket {
            self.latency.resize_with(bucket + 1, || None);
        }
        let bins = self.latency[bucket].get_or_insert_with(|| Box::new([0; LATENCY_BINS]));
        bins[bin] = bins[bin].saturating_add(1);
        self.latency_total[bin] += 1;
        self.latency_count += 1;
    }

    pub fn finish(self) -> PlotData {
        let bucket_s = self.width_s as f64;
        let duration_s = self.last_time_ns as f64 / 1e9;
        let buckets = if self.last_time_ns == 0 && self.latency.is_empty() {
            0
        } else {
            ((duration_s / bucket_s).floor() as usize + 1).min(limits::PLOT_BUCKETS_MAX)
        };
        let mut p50 = vec![None; buckets.max(self.latency.len())];
        let mut p99 = p50.clone();
        for (i, bins) in self.latency.iter().enumerate() {
            if let Some(bins) = bins {
                let widened: Vec<u64> = bins.iter().map(|&c| u64::from(c)).collect();
                p50[i] = percentile_ms(&widened, 0.50);
                p99[i] = percentile_ms(&widened, 0.99);
            }
        }
        let total = &self.latency_total[..];
        let overall = (self.latency_count > 0).then(|| LatencySummary {
            p50_ms: percentile_ms(total, 0.50).unwrap_or(0.0),
            p90_ms: percentile_ms(total, 0.90).unwrap_or(0.0),
            p99_ms: percentile_ms(total, 0.99).unwrap_or(0.0),
            max_ms: percentile_ms(total, 1.0).unwrap_or(0.0),
        });
        let histogram = match (
            total.iter().position(|&c| c > 0),
            total.iter().rposition(|&c| c > 0),
        ) {
            (Some(first), Some(last)) => (first..=last)
                .map(|b| {
                    let (low_ms, high_ms) = bin_bounds_ms(b);
                    HistogramBin {
                        low_ms,
                        high_ms,
                        count: total[b],
                    }
                })
                .collect(),
            _ => Vec::new(),
        };

        let mut consumers: Vec<ProcessRate> = self
            .processes
            .iter()
            .filter(|p| p.records_total > 0)
            .map(|p| ProcessRate {
                process: p.name.clone(),
                total: p.records_total,
                per_s: rates(&p.records, buckets, bucket_s),
            })
            .collect();
        consumers.sort_by(|a, b| {
            b.total
                .cmp(&a.total)
                .then_with(|| a.process.cmp(&b.process))
        });
        if consumers.len() > limits::PLOT_CONSUMER_LINES_MAX {
            let rest = consumers.split_off(limits::PLOT_CONSUMER_LINES_MAX - 1);
            let mut sum = ProcessRate {
                process: format!("{} others", rest.len()),
                total: 0,
                per_s: vec![0.0; buckets],
            };
            for r in rest {
                sum.total += r.total;
                for (s, v) in sum.per_s.iter_mut().zip(r.per_s) {
                    *s += v;
                }
            }
            consumers.push(sum);
        }

        let processes = self
            .processes
            .iter()
            .take(limits::PLOT_TIMELINE_ROWS_MAX)
            .map(|p| ProcessSpan {
                process: p.name.clone(),
                first_s: p.first_ns as f64 / 1e9,
                last_s: p.last_ns as f64 / 1e9,
                exit: p.exit.as_ref().map(|(s, _)| s.clone()),
                exit_success: p.exit.as_ref().and_then(|(_, ok)| *ok),
            })
            .collect();

        PlotData {
            bucket_s,
            duration_s,
            latency_count: self.latency_count,
            latency_ms_p50: p50,
            latency_ms_p99: p99,
            latency_ms_overall: overall,
            latency_histogram: histogram,
            consumers,
            nodes: self.nodes,
            processes,
        }
    }
}

/// A fast hasher for the in-flight map's integer keys (ids are not chosen by an adversary; the
/// map is bounded by `limits::PLOT_SENDS_IN_FLIGHT_MAX` anyway).
#[derive(Default)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        // splitmix64's finaliser: every input bit reaches every output bit.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(29) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// What the builder needs of one op, however it was read.
struct Event<'a> {
    time_ns: u64,
    process: &'a str,
    kind: OpType,
    f: &'a str,
    /// `value.id` (a send's message id).
    id: Option<u64>,
    /// `value.records.len()` (a poll's records).
    records: usize,
    /// `value.node`, `value.nodes` (nemesis targets, `node_start`).
    node: Option<&'a str>,
    nodes: Vec<&'a str>,
    /// `value.client`, `value.status`, `value.success` (`client_exit`).
    client: Option<&'a str>,
    status: Option<&'a str>,
    success: Option<bool>,
}

/// One history line, decoding only what the plots use.
#[derive(Deserialize)]
struct LineOp<'a> {
    time_ns: u64,
    #[serde(borrow)]
    process: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: OpType,
    #[serde(borrow)]
    f: Cow<'a, str>,
    #[serde(default, borrow)]
    value: Option<LineValue<'a>>,
}

#[derive(Default, Deserialize)]
struct LineValue<'a> {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    records: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default, borrow)]
    node: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    nodes: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    client: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(default)]
    success: Option<bool>,
}

fn rates(counts: &[u64], buckets: usize, bucket_s: f64) -> Vec<f64> {
    let mut out: Vec<f64> = counts.iter().map(|&c| c as f64 / bucket_s).collect();
    out.resize(buckets.max(counts.len()), 0.0);
    out
}

fn latency_bin(latency_ns: u64) -> usize {
    let us = latency_ns as f64 / 1000.0;
    if us < 1.0 {
        return 0;
    }
    (1 + (us.log2() * BINS_PER_DOUBLING).floor() as usize).min(LATENCY_BINS - 1)
}

/// `[low, high)` of a bin, milliseconds, rounded to the nanosecond (short in results.json).
fn bin_bounds_ms(bin: usize) -> (f64, f64) {
    if bin == 0 {
        return (0.0, 0.001);
    }
    let ms = |exponent: usize| {
        let us = 2f64.powf(exponent as f64 / BINS_PER_DOUBLING);
        (us * 1000.0).round() / 1e6
    };
    (ms(bin - 1), ms(bin))
}

/// The upper bound (ms) of the bin holding the `q` quantile, `None` for no data.
fn percentile_ms(bins: &[u64], q: f64) -> Option<f64> {
    let n: u64 = bins.iter().sum();
    if n == 0 {
        return None;
    }
    let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
    let mut seen = 0;
    for (bin, &count) in bins.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return Some(bin_bounds_ms(bin).1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(index: u64, time_ms: u64, process: &str, kind: &str, f: &str, value: &str) -> String {
        format!(
            r#"{{"index":{index},"time_ns":{},"process":"{process}","type":"{kind}","f":"{f}","value":{value}}}"#,
            time_ms * 1_000_000
        )
    }

    #[test]
    fn latency_is_matched_per_process_and_id() {
        let text = [
            op(
                0,
                0,
                "harness",
                "info",
                "node_start",
                r#"{"node":"n1","pid":1}"#,
            ),
            op(1, 100, "p1", "invoke", "send", r#"{"id":1}"#),
            // Same id, another process: its own invoke.
            op(2, 150, "p2", "invoke", "send", r#"{"id":1}"#),
            op(
                3,
                110,
                "p1",
                "ok",
                "send",
                r#"{"id":1,"partition":0,"offset":0}"#,
            ),
            op(
                4,
                1150,
                "p2",
                "ok",
                "send",
                r#"{"id":1,"partition":0,"offset":1}"#,
            ),
            op(5, 1200, "p1", "invoke", "send", r#"{"id":2}"#),
            op(6, 1300, "p1", "info", "send", r#"{"id":2}"#),
            op(7, 1400, "c1", "ok", "poll", r#"{"records":[{},{},{}]}"#),
            op(8, 1500, "nemesis", "ok", "kill", r#"{"node":"n2"}"#),
            op(9, 2000, "harness", "invoke", "final_read", "null"),
            op(10, 2100, "reader", "ok", "poll", r#"{"records":[{},{}]}"#),
            op(11, 2200, "harness", "ok", "final_read", "null"),
            op(
                12,
                2300,
                "harness",
                "info",
                "client_exit",
                r#"{"client":"c1","status":"exit status: 0","success":true}"#,
            ),
        ]
        .join("\n");
        let plots = PlotData::from_history_text(&text);
        assert_eq!(plots.latency_count, 2);
        assert_eq!(plots.bucket_s, 1.0);
        // 10 ms in bucket 0, 1000 ms in bucket 1 (upper bin bounds: within 9%).
        let p50_0 = plots.latency_ms_p50[0].expect("bucket 0");
        assert!((10.0..=10.9).contains(&p50_0), "{p50_0}");
        let p99_1 = plots.latency_ms_p99[1].expect("bucket 1");
        assert!((1000.0..=1090.0).contains(&p99_1), "{p99_1}");
        let overall = plots.latency_ms_overall.expect("overall");
        assert!(overall.max_ms >= 1000.0 && overall.p50_ms < 11.0);
        assert_eq!(
            plots.latency_histogram.iter().map(|b| b.count).sum::<u64>(),
            2
        );
        // The final read is not consumer throughput.
        assert_eq!(plots.consumers.len(), 1);
        assert_eq!(plots.consumers[0].process, "c1");
        assert_eq!(plots.consumers[0].total, 3);
        assert_eq!(plots.consumers[0].per_s[1], 3.0);
        let nodes: Vec<&str> = plots.nodes.iter().map(|n| n.node.as_str()).collect();
        assert_eq!(nodes, ["n1", "n2"]);
        let c1 = plots
            .processes
            .iter()
            .find(|p| p.process == "c1")
            .expect("c1");
        assert_eq!(c1.exit.as_deref(), Some("exit status: 0"));
        assert_eq!(c1.last_s, 2.3);
    }

    #[test]
    fn buckets_coarsen_to_stay_bounded() {
        let mut ops = Vec::new();
        let seconds = limits::PLOT_BUCKETS_MAX as u64 * 3;
        for s in 0..seconds {
            ops.push(op(
                2 * s,
                s * 1000,
                "p",
                "invoke",
                "send",
                &format!(r#"{{"id":{s}}}"#),
            ));
            ops.push(op(
                2 * s + 1,
                s * 1000 + 5,
                "p",
                "ok",
                "send",
                &format!(r#"{{"id":{s}}}"#),
            ));
        }
        let plots = PlotData::from_history_text(&ops.join("\n"));
        assert_eq!(plots.bucket_s, 4.0);
        assert!(plots.latency_ms_p99.len() <= limits::PLOT_BUCKETS_MAX);
        assert_eq!(plots.latency_count, seconds);
        assert!(plots.latency_ms_p99.iter().all(Option::is_some));
    }

    #[test]
    fn an_empty_history_is_empty() {
        let plots = PlotData::from_history_text("");
        assert!(plots.is_empty());
        assert!(plots.latency_ms_p50.is_empty());
        assert_eq!(plots, PlotData::from_ops(Vec::<Op>::new()));
    }

    #[test]
    fn percentiles_round_up_to_the_bin() {
        assert_eq!(percentile_ms(&[0, 0], 0.5), None);
        assert_eq!(latency_bin(0), 0);
        assert_eq!(latency_bin(1000), 1);
        let (low, high) = bin_bounds_ms(latency_bin(5_000_000));
        assert!(low <= 5.0 && 5.0 < high && high / low < 1.1);
    }
}
