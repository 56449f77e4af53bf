//! Per strongly connected component, its most severe cycle, classified and explained.

use super::graph::{Graph, PROCESS, REALTIME, RW, WR, WW};
use super::infer::{Dependencies, Why};

/// Adya's classes of dependency cycles, as Elle names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CycleClass {
    /// Write cycle: ww edges only.
    G0,
    /// Circular information flow: ww and wr edges.
    G1c,
    /// Read skew: exactly one rw edge.
    GSingle,
    /// Anti-dependency cycle: two or more rw edges.
    G2Item,
}

impl CycleClass {
    pub fn name(self) -> &'static str {
        match self {
            CycleClass::G0 => "G0",
            CycleClass::G1c => "G1c",
            CycleClass::GSingle => "G-single",
            CycleClass::G2Item => "G2-item",
        }
    }
}

/// One edge of a cycle: transaction `from` precedes `to` because of `kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Op indexes of the two transactions' completions.
    pub from: u64,
    pub to: u64,
    /// `ww`, `wr`, `rw`, `process` or `realtime`.
    pub kind: &'static str,
    /// The partition (`u32::MAX` for a process or realtime edge) and the versions (value, offset)
    /// at each end; for a realtime edge, the first transaction's completion stamp and the
    /// second's invocation stamp (ns) as the values.
    pub key: u32,
    pub from_version: (u64, i64),
    pub to_version: (u64, i64),
}

/// A cycle: its class, the order it needs besides data edges (`process` or `realtime`), its
/// steps (the last returns to the first transaction) and the explanation, one sentence per step
/// then "therefore".
#[derive(Debug, Clone)]
pub struct Cycle {
    pub class: CycleClass,
    /// `Some("process")` or `Some("realtime")`: the cycle needs that order (Elle's `-process`
    /// and `-realtime` variants); `None`: data edges alone.
    pub order: Option<&'static str>,
    pub steps: Vec<Step>,
    pub explanation: String,
}

/// rw edges tried per component when looking for a G-single (each a breadth-first search).
const G_SINGLE_TRIES_MAX: usize = 256;

/// The most severe cycle of each strongly connected component of `deps`: over data edges alone,
/// else with process order, else with realtime order (through rw edges only when
/// `realtime_rw`, see `Options`).
pub fn find_cycles(deps: &Dependencies<'_>) -> Vec<Cycle> {
    let mut out = Vec::new();
    let orders = [
        (0, true),
        (PROCESS, true),
        (PROCESS | REALTIME, deps.realtime_rw),
    ];
    for component in deps.graph.components() {
        let found = orders.into_iter().find_map(|(extra, rw)| {
            most_severe(&deps.graph, &component, extra, rw).map(|(c, p)| (c, p, extra))
        });
        if let Some((class, path, extra)) = found {
            out.push(cycle(deps, class, &path, extra));
        }
    }
    out.sort_by_key(|c| (c.class, c.steps.first().map(|s| s.from)));
    out
}

/// G0, then G1c, G-single and G2-item (the last two only if `rw`): the first class with a
/// cycle in `component` over data edges (and `extra` kinds).
fn most_severe(
    graph: &Graph,
    component: &[u32],
    extra: u8,
    rw: bool,
) -> Option<(CycleClass, Vec<u32>)> {
    if let Some(path) = any_cycle(graph, component, WW | extra) {
        return Some((CycleClass::G0, path));
    }
    if let Some(path) = any_cycle(graph, component, WW | WR | extra) {
        return Some((CycleClass::G1c, path));
    }
    if !rw {
        return None;
    }
    let mut best: Option<Vec<u32>> = None;
    let mut tries = 0;
    'outer: for &a in component {
        for &(b, kinds) in graph.edges(a) {
            if kinds & RW == 0 || component.binary_search(&b).is_err() {
                continue;
            }
            tries += 1;
            if let Some(back) = graph.shortest_path(b, a, WW | WR | extra, component) {
                if best.as_ref().is_none_or(|p| back.len() + 1 < p.len()) {
                    let mut path = vec![a];
                    path.extend(back);
                    best = Some(path);
                }
            }
            if tries >= G_SINGLE_TRIES_MAX {
                break 'outer;
            }
        }
    }
    if let Some(path) = best {
        return Some((CycleClass::GSingle, path));
    }
    any_cycle(graph, component, WW | WR | RW | extra).map(|p| (CycleClass::G2Item, p))
}

/// A shortest cycle through some node of `component` over edges of `kinds`: through the first
/// node of the first component of the subgraph those edges form.
fn any_cycle(graph: &Graph, component: &[u32], kinds: u8) -> Option<Vec<u32>> {
    let local = |n: u32| component.binary_search(&n).ok().map(|i| i as u32);
    let mut edges = Vec::new();
    for (i, &a) in component.iter().enumerate() {
        for &(b, k) in graph.edges(a) {
            if k & kinds != 0 {
                if let Some(j) = local(b) {
                    edges.push((i as u32, j, k & kinds));
                }
            }
        }
    }
    let sub = Graph::new(component.len(), edges);
    let first = sub.components().into_iter().next()?;
    let start = first[0];
    let path = sub.shortest_path(start, start, kinds, &first)?;
    Some(path.into_iter().map(|i| component[i as usize]).collect())
}

/// The cycle `path` (first node repeated last) with each step's kind chosen by severity: ww, then
/// wr, then rw, then process, then realtime (of the `extra` kinds the search used).
fn cycle(deps: &Dependencies<'_>, class: CycleClass, path: &[u32], extra: u8) -> Cycle {
    let mut steps = Vec::new();
    let mut used = 0u8;
    for pair in path.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let kinds = deps.graph.kinds(a, b);
        let allowed = match class {
            CycleClass::G0 => WW,
            CycleClass::G1c => WW | WR,
            CycleClass::GSingle | CycleClass::G2Item => WW | WR | RW,
        };
        let (bit, kind) = [
            (WW, "ww"),
            (WR, "wr"),
            (RW, "rw"),
            (PROCESS, "process"),
            (REALTIME, "realtime"),
        ]
        .into_iter()
        .find(|(bit, _)| kinds & bit & (allowed | extra) != 0)
        .unwrap_or((PROCESS, "process"));
        used |= bit;
        let why = deps.why.get(&(a, b, bit)).copied().unwrap_or(Why {
            key: u32::MAX,
            from: (0, -1),
            to: (0, -1),
        });
        steps.push(Step {
            from: deps.txns[a as usize].index,
            to: deps.txns[b as usize].index,
            kind,
            key: why.key,
            from_version: why.from,
            to_version: why.to,
        });
    }
    let order = if used & REALTIME != 0 {
        Some("realtime")
    } else if used & PROCESS != 0 {
        Some("process")
    } else {
        None
    };
    let explanation = explain(class, order, &steps);
    Cycle {
        class,
        order,
        steps,
        explanation,
    }
}

/// Elle's way: each step as the facts that order two transactions, then the contradiction.
pub fn explain(class: CycleClass, order: Option<&str>, steps: &[Step]) -> String {
    // T1, T2, … in order of appearance, with the op index the first time.
    let mut names: Vec<u64> = Vec::new();
    let mut name = |index: u64| match names.iter().position(|&n| n == index) {
        Some(at) => format!("T{}", at + 1),
        None => {
            names.push(index);
            format!("T{} (op {index})", names.len())
        }
    };
    let mut sentences = Vec::new();
    for s in steps {
        let (a, b) = (name(s.from), name(s.to));
        let ((va, oa), (vb, ob)) = (s.from_version, s.to_version);
        let p = s.key;
        // Short names after the first mention: "T1".
        let short = |n: &str| n.split(' ').next().unwrap_or_default().to_owned();
        let (sa, sb) = (short(&a), short(&b));
        sentences.push(match s.kind {
            "ww" => format!(
                "{a} sent message {va} to partition {p} at offset {oa}, and {b} sent message {vb} at the next offset {ob}, so {sa} < {sb} (ww)"
            ),
            "wr" => format!("{b} read {a}'s message {va} at partition {p} offset {ob}, so {sa} < {sb} (wr)"),
            "rw" => format!(
                "{a} read partition {p} up to offset {oa} (message {va}) and did not see {b}'s message {vb} at the next offset {ob}, so {sa} < {sb} (rw)"
            ),
            "realtime" => format!(
                "{a} completed (client clock {va} ns) before {b} was invoked ({vb} ns), so {sa} < {sb} (realtime)"
            ),
            _ => format!("{a} completed before {b} in the same process, so {sa} < {sb} (process)"),
        });
    }
    let first = steps.first().map(|s| name(s.from)).unwrap_or_default();
    let first = first.split(' ').next().unwrap_or_default().to_owned();
    format!(
        "{}; therefore {first} < {first}: a cycle, {}{}.",
        sentences.join("; "),
        class.name(),
        order.map(|o| format!("-{o}")).unwrap_or_default()
    )
}
