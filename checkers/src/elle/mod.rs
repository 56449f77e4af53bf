//! Elle-style cycle analysis of transactional Kafka histories (Kingsbury & Alvaro, "Elle:
//! Inferring Isolation Anomalies from Experimental Observations", VLDB 2021; Jepsen's
//! `jepsen.tests.kafka`): transactions in, dependency cycles out.
//!
//! - `infer`: which transactions committed (`ok`, or `info` with a write some poll read), the
//!   version order of each partition from offsets (acks and reads), and the dependency graph:
//!   `ww` (T1 wrote the version just before T2's), `wr` (T2 read T1's write), `rw` (T1's highest
//!   read of a partition is the version just before T2's write) and `process` (one process's
//!   transactions in completion order).
//! - `graph`: a compact directed graph with edge kinds, Tarjan's strongly connected components,
//!   and the shortest cycle through chosen edges by breadth-first search.
//! - `txn`: the input, transactions of micro-ops.
//! - `cycles`: per component the most severe cycle — G0 (only ww), G1c (ww and wr), G-single
//!   (exactly one rw), G2-item (more) — first from data edges alone, then with process edges (the
//!   `process` sub-kind); each explained step by step.
//! - `cases`: cycles and the transaction-level findings (Jepsen's precommitted read, internal
//!   send skip, duplicates seen by aborted polls) as cases of the analysis.
//!
//! Pure and linear in the history apart from the sort of each partition's offsets.

mod cases;
mod cycles;
mod graph;
mod infer;
mod txn;

pub use cases::{
    aborted_poll_duplicate_cases, anomaly_kind, case, int_send_skip_cases, precommitted_read_cases,
};
pub use cycles::{find_cycles, Cycle, CycleClass, Step};
pub use infer::{infer, Dependencies, Options};
pub use txn::{Mop, Outcome, Txn};
