//! From transactions to dependencies: which transactions committed, each partition's version
//! order, and the ww / wr / rw / process / realtime edges with the facts behind each.

use std::collections::HashMap;

use super::graph::{Graph, PROCESS, REALTIME, RW, WR, WW};
use super::txn::{Mop, Outcome, Txn};

/// The facts behind one edge: the partition, and the versions at its two ends (value, offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Why {
    pub key: u32,
    pub from: (u64, i64),
    pub to: (u64, i64),
}

/// The dependency graph over transactions (node `n` is `txns[n]`) and the first facts found for
/// each (from, to, kind).
pub struct Dependencies<'a> {
    pub txns: &'a [Txn],
    pub graph: Graph,
    pub why: HashMap<(u32, u32, u8), Why>,
    /// `Options::realtime_rw`: whether realtime edges may close cycles through rw edges.
    pub realtime_rw: bool,
}

/// A partition's version order: (offset, value) by offset, one value per offset (the first
/// observed: two values at one offset are the rule pass's `inconsistent_offsets`).
type Order = Vec<(i64, u64)>;

/// What to infer.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Infer ww dependencies from each partition's write order. Off by default, as in Jepsen's
    /// Kafka checker (`:ww-deps`): Kafka orders a partition's records, but not concurrent
    /// transactions' writes to several partitions against each other, so a ww cycle (G0) is not
    /// an anomaly Kafka rules out.
    pub ww: bool,
    /// Order each process's transactions (process edges, the `process` sub-kind). Off by default:
    /// a poll returns some prefix of what is there, so a process's poll not seeing what its own
    /// earlier send wrote is fetch lag, not an anomaly, and a poll's rw edge with process order
    /// would call it one.
    pub process: bool,
    /// Order transactions in real time (realtime edges, the `realtime` sub-kind): T1 < T2 when
    /// T1 completed before T2 was invoked, by the transactions' stamps (kaos's clients'
    /// CLOCK_MONOTONIC; transactions without stamps get no such edge). On by default, as
    /// Jepsen's Kafka checker asks Elle for strict serializability: with ww and wr edges a
    /// realtime cycle is impossible in Kafka (a transaction read a write of one that began only
    /// after it ended: G1c-realtime).
    pub realtime: bool,
    /// Let realtime edges close cycles through rw edges too (G-single-realtime,
    /// G2-item-realtime). Off by default: a Kafka consumer reads from a cursor, not a snapshot,
    /// so a poll that began after a write completed and did not return it is fetch lag (the
    /// poll ended early: `max.poll.records`, fetch size), not an anomaly; Jepsen's Kafka checker
    /// draws no rw edges at all. On for readers that must see everything completed before they
    /// began.
    pub realtime_rw: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            ww: false,
            process: false,
            realtime: true,
            realtime_rw: false,
        }
    }
}

/// Consecutive versions of a partition written by one transaction (or by no known one).
#[derive(Debug, Clone, Copy)]
struct Run {
    writer: Option<u32>,
    /// (value, offset) of its first and last version, and the last offset.
    first: (u64, i64),
    last: (u64, i64),
    end: i64,
}

/// Infers the dependency graph of `txns`.
pub fn infer(txns: &[Txn], options: Options) -> Dependencies<'_> {
    let committed = committed(txns);
    let mut writer: HashMap<(u32, u64), u32> = HashMap::new();
    let mut orders: HashMap<u32, Order> = HashMap::new();
    for (n, txn) in txns.iter().enumerate() {
        if !committed[n] && txn.outcome != Outcome::Ok {
            continue;
        }
        for mop in &txn.mops {
            match *mop {
                Mop::Send { key, value, offset } if committed[n] => {
                    writer.entry((key, value)).or_insert(n as u32);
                    if let Some(offset) = offset {
                        orders.entry(key).or_default().push((offset, value));
                    }
                }
                Mop::Read { key, offset, value } => {
                    orders.entry(key).or_default().push((offset, value))
                }
                Mop::Send { .. } => {}
            }
        }
    }
    // Each value's first offset only (a later one is a duplicate, the rule pass's), then runs of
    // consecutive versions by one writer: a transaction's own successive sends are one step of
    // the order, as Elle treats a transaction's external write.
    let mut position: HashMap<(u32, u64), usize> = HashMap::new();
    let mut runs: HashMap<u32, Vec<Run>> = HashMap::new();
    for (key, order) in &mut orders {
        order.sort_unstable();
        order.dedup_by_key(|e| e.0);
        let mut seen = std::collections::HashSet::new();
        order.retain(|e| seen.insert(e.1));
        let key_runs = runs.entry(*key).or_default();
        for (i, &(offset, value)) in order.iter().enumerate() {
            position.insert((*key, value), i);
            let w = writer.get(&(*key, value)).copied();
            match key_runs.last_mut() {
                Some(run) if w.is_some() && run.writer == w => run.last = (value, offset),
                _ => key_runs.push(Run {
                    writer: w,
                    first: (value, offset),
                    last: (value, offset),
                    end: offset,
                }),
            }
            if let Some(run) = key_runs.last_mut() {
                run.end = offset;
            }
        }
    }
    let mut edges = Edges::default();
    if options.ww {
        for (key, key_runs) in &runs {
            for pair in key_runs.windows(2) {
                if let (Some(a), Some(b)) = (pair[0].writer, pair[1].writer) {
                    edges.add(
                        a,
                        b,
                        WW,
                        Why {
                            key: *key,
                            from: pair[0].last,
                            to: pair[1].first,
                        },
                    );
                }
            }
        }
    }
    for (n, txn) in txns.iter().enumerate() {
        if txn.outcome == Outcome::Ok {
            read_edges(
                n as u32, txn, &writer, &runs, &orders, &position, &mut edges,
            );
        }
    }
    if options.process {
        process_edges(txns, &committed, &mut edges);
    }
    if options.realtime {
        realtime_edges(txns, &committed, &mut edges);
    }
    Dependencies {
        txns,
        graph: Graph::new(txns.len(), edges.list),
        why: edges.why,
        realtime_rw: options.realtime_rw,
    }
}

#[derive(Default)]
struct Edges {
    list: Vec<(u32, u32, u8)>,
    why: HashMap<(u32, u32, u8), Why>,
}

impl Edges {
    fn add(&mut self, a: u32, b: u32, kind: u8, why: Why) {
        if a == b {
            return;
        }
        if let std::collections::hash_map::Entry::Vacant(e) = self.why.entry((a, b, kind)) {
            e.insert(why);
            self.list.push((a, b, kind));
        }
    }
}

/// `ok` transactions, and `info` ones whose write some `ok` or `info` poll read (so it committed,
/// or that read was of an aborted write).
fn committed(txns: &[Txn]) -> Vec<bool> {
    let mut read: std::collections::HashSet<(u32, u64)> = std::collections::HashSet::new();
    for txn in txns.iter().filter(|t| t.outcome != Outcome::Fail) {
        for mop in &txn.mops {
            if let Mop::Read { key, value, .. } = *mop {
                read.insert((key, value));
            }
        }
    }
    txns.iter()
        .map(|t| match t.outcome {
            Outcome::Ok => true,
            Outcome::Fail => false,
            Outcome::Info => t.mops.iter().any(
                |m| matches!(*m, Mop::Send { key, value, .. } if read.contains(&(key, value))),
            ),
        })
        .collect()
}

/// wr: the writer of each version `n` read; rw: `n`'s highest read of a partition and the writer
/// of the version after it.
fn read_edges(
    n: u32,
    txn: &Txn,
    writer: &HashMap<(u32, u64), u32>,
    runs: &HashMap<u32, Vec<Run>>,
    orders: &HashMap<u32, Order>,
    position: &HashMap<(u32, u64), usize>,
    edges: &mut Edges,
) {
    let mut highest: HashMap<u32, (i64, u64)> = HashMap::new();
    for mop in &txn.mops {
        let Mop::Read { key, offset, value } = *mop else {
            continue;
        };
        if let Some(&w) = writer.get(&(key, value)) {
            let at = send_offset(orders, position, key, value).unwrap_or(offset);
            edges.add(
                w,
                n,
                WR,
                Why {
                    key,
                    from: (value, at),
                    to: (value, offset),
                },
            );
        }
        let top = highest.entry(key).or_insert((offset, value));
        if offset > top.0 {
            *top = (offset, value);
        }
    }
    for (key, (offset, value)) in highest {
        let Some(key_runs) = runs.get(&key) else {
            continue;
        };
        let i = key_runs.partition_point(|r| r.end < offset);
        let Some(next) = key_runs.get(i + 1) else {
            continue;
        };
        if let Some(w) = next.writer {
            edges.add(
                n,
                w,
                RW,
                Why {
                    key,
                    from: (value, offset),
                    to: next.first,
                },
            );
        }
    }
}

fn send_offset(
    orders: &HashMap<u32, Order>,
    position: &HashMap<(u32, u64), usize>,
    key: u32,
    value: u64,
) -> Option<i64> {
    let i = *position.get(&(key, value))?;
    orders.get(&key)?.get(i).map(|e| e.0)
}

/// process: each process's committed transactions, in completion order.
fn process_edges(txns: &[Txn], committed: &[bool], edges: &mut Edges) {
    let mut last: HashMap<u32, u32> = HashMap::new();
    let mut order: Vec<u32> = (0..txns.len() as u32).collect();
    order.sort_by_key(|&n| txns[n as usize].index);
    for n in order {
        let txn = &txns[n as usize];
        if !committed[n as usize] {
            continue;
        }
        if let Some(prev) = last.insert(txn.process, n) {
            let why = Why {
                key: u32::MAX,
                from: (0, -1),
                to: (0, -1),
            };
            edges.add(prev, n, PROCESS, why);
        }
    }
}

/// realtime: T1 → T2 when T1 completed before T2 was invoked (stamps), as a transitive
/// reduction (Elle's `realtime-graph`): in time order, every completed transaction not yet
/// followed by another completion is linked to each new invocation; a completion then retires
/// the transactions linked to it. Transactions whose outcome is unknown have no completion.
fn realtime_edges(txns: &[Txn], committed: &[bool], edges: &mut Edges) {
    // (time, 0 = invoke before a completion at the same instant: no order between them, node)
    let mut events: Vec<(u64, u8, u32)> = Vec::new();
    for (n, txn) in txns.iter().enumerate() {
        if !committed[n] {
            continue;
        }
        if let Some(at) = txn.invoked_ns {
            events.push((at, 0, n as u32));
        }
        if let (Some(at), Outcome::Ok) = (txn.completed_ns, txn.outcome) {
            events.push((at, 1, n as u32));
        }
    }
    if events.iter().all(|e| e.1 == 0) {
        return;
    }
    events.sort_unstable();
    let mut frontier: Vec<u32> = Vec::new();
    // The frontier transactions linked to each invoked, not yet completed, transaction.
    let mut linked: HashMap<u32, Vec<u32>> = HashMap::new();
    for (_, kind, n) in events {
        if kind == 0 {
            for &a in &frontier {
                let why = Why {
                    key: u32::MAX,
                    from: (txns[a as usize].completed_ns.unwrap_or(0), -1),
                    to: (txns[n as usize].invoked_ns.unwrap_or(0), -1),
                };
                edges.add(a, n, REALTIME, why);
            }
            linked.insert(n, frontier.clone());
        } else {
            if let Some(before) = linked.remove(&n) {
                frontier.retain(|a| !before.contains(a));
            }
            frontier.push(n);
        }
    }
}
