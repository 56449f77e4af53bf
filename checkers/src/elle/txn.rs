//! The input of the cycle analysis: transactions of micro-operations.

/// One micro-operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mop {
    /// A send of `value` to partition `key`, and the offset its ack (or a read) gave it.
    Send {
        key: u32,
        value: u64,
        offset: Option<i64>,
    },
    /// One record a poll returned.
    Read { key: u32, offset: i64, value: u64 },
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Info,
    Fail,
}

/// One transaction: a completed op whose value is a list of micro-ops.
#[derive(Debug, Clone)]
pub struct Txn {
    /// The completion's op index.
    pub index: u64,
    /// The client process (for process edges).
    pub process: u32,
    pub outcome: Outcome,
    pub mops: Vec<Mop>,
    /// When the client invoked it and saw it complete, on a clock every process shares (kaos's
    /// clients stamp CLOCK_MONOTONIC; for Jepsen's histories, the history's order): the
    /// realtime order. `None` where the history has no stamp (an older history), or for the
    /// completion of a transaction whose outcome is unknown.
    pub invoked_ns: Option<u64>,
    pub completed_ns: Option<u64>,
}
