//! What a platform can do: the scenario loader asks each platform ([`super::can`]) for what
//! each fault kind and `sequence` step needs.

/// What a platform can do to the nodes and network of a run. Each fault kind and `sequence` step
/// names the one it needs (`Fault::needs`, `StepKind::needs` in `scenario`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// SIGKILL and SIGSTOP/SIGCONT a target process (a node, or the scenario's own clients).
    SignalProcesses,
    /// Kill, pause, resume and restart the run's own nodes (what `sequence` steps do).
    ControlNodes,
    /// Serve brokers' data directories from lazyfs and cut their power.
    PowerLoss,
    /// Drop the host's page cache.
    DropCaches,
    /// Partition nodes from each other and from the clients.
    Partitions,
    /// Delay, reset, blackhole or throttle a broker's connections (its proxy).
    LinkFaults,
    /// The `isolate` and `heal` steps of a sequence.
    IsolateSteps,
}
