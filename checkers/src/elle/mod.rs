//! Elle-style cycle analysis of transactional Kafka histories (Kingsbury & Alvaro, "Elle:
//! Inferring Isolation Anomalies from Experimental Observations", VLDB 2021; Jepsen's
//! `jepsen.tests.kafka`): transactions in, dependency cycles out.
//!
//! - `infer`: which transactions committed (`ok`, or `info` with a write some poll read), the
//!   version order of each partition from offsets (acks and reads), and the dependency graph:
//!   `ww` (T1 wrote the version just before T2's), `wr` (T2 read T1's write), `rw` (T1's highest
//!   read of a partition is the version just before T2's write), `process` (one process's
//!   transactions in completion order) and `realtime` (T1 completed before T2 was invoked, by
//!   the clients' CLOCK_MONOTONIC stamps; a transitive reduction, as Elle's).
//! - `graph`: a compact directed graph with edge kinds, Tarjan's strongly connected components,
//!   and the shortest cycle through chosen edges by breadth-first search.
//! - `txn`: the input, transactions of micro-ops.
//! - `cycles`: per component the most severe cycle — G0 (only ww), G1c (ww and wr), G-single
//!   (exactly one rw), G2-item (more) — first from data edges alone, then with process edges (the
//!   `process` sub-kind), then with realtime edges (`realtime`; through rw edges only when asked);
//!   each explained step by step.
//! - `cases`: cycles and the transaction-level findings (Jepsen's precommitted read, internal
//!   send skip, Elle's intermediate read G1b, duplicates seen by aborted polls) as cases of the
//!   analysis.
//!
//! Pure and linear in the history apart from the sort of each partition's offsets.

mod cases;
mod cycles;
mod graph;
mod infer;
mod txn;

pub use cases::{
    aborted_poll_duplicate_cases, anomaly_kind, case, int_send_skip_cases, intermediate_read_cases,
    precommitted_read_cases,
};
pub use cycles::{find_cycles, Cycle, CycleClass, Step};
pub use infer::{infer, Dependencies, Options};
pub use txn::{Mop, Outcome, Txn};

use crate::analysis::{Analysis, AnomalyKind};

/// Adds to `analysis` what the transactions show: the cycles (G0, G1c, G-single, G2-item),
/// precommitted reads, internal send skips, intermediate reads (G1b), and duplicates returned by polls of failed or unknown
/// transactions that the per-message pass has not already reported. Keys are partitions of
/// `topic`.
pub fn judge(analysis: &mut Analysis, txns: &[Txn], topic: &str, options: Options) {
    let cycles = find_cycles(&infer(txns, options));
    for kind in [
        AnomalyKind::G0,
        AnomalyKind::G1c,
        AnomalyKind::GSingle,
        AnomalyKind::G2Item,
    ] {
        let cases = cycles
            .iter()
            .filter(|c| anomaly_kind(c.class) == kind)
            .map(|c| case(c, topic))
            .collect();
        analysis.add_cases(kind, cases);
    }
    analysis.add_cases(
        AnomalyKind::PrecommittedRead,
        precommitted_read_cases(txns, topic),
    );
    analysis.add_cases(AnomalyKind::IntSendSkip, int_send_skip_cases(txns, topic));
    analysis.add_cases(AnomalyKind::G1b, intermediate_read_cases(txns, topic));
    let known: Vec<u64> = analysis
        .anomaly(AnomalyKind::Duplicate)
        .map(|a| a.cases.iter().map(|c| c.id).collect())
        .unwrap_or_default();
    analysis.add_cases(
        AnomalyKind::Duplicate,
        aborted_poll_duplicate_cases(txns, topic, &known),
    );
}
