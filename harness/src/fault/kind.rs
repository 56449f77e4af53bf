//! The fault kinds of a scenario and the actions of the nemesis, each defined once (see the
//! module map in `fault/mod.rs`).

use crate::platform::Capability;
use kaos_history::{FaultKind, OpType, F};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// SIGKILL the target, restart it after `down_s`.
    #[default]
    Kill,
    /// SIGSTOP the target, SIGCONT it after `down_s`: it keeps its sockets and state but answers
    /// nothing, then wakes up believing no time passed (a GC pause, a stalled VM).
    Pause,
    /// Power loss: SIGKILL the broker and drop every write it had not fsynced (its data directory
    /// is served by `kaos lazyfs`), restart it after `down_s`. Needs root and /dev/fuse.
    PowerLoss,
    /// Write 3 to /proc/sys/vm/drop_caches: clean page-cache pages are dropped (dirty ones are
    /// not: this loses nothing, it makes the next reads come from disk). Needs root.
    DropCaches,
    /// Cut the target node off from every other node and from the clients (nftables drops its
    /// packets both ways in its network namespace) for `down_s`, then heal.
    PartitionNode,
    /// Split the nodes (the controller included) in two for `down_s`: the target on the minority
    /// side with others drawn from the seed up to (nodes - 1) / 2 in all (alone with 3 or 4
    /// nodes), the rest on the other; the clients reach both sides.
    PartitionHalves,
    /// Cut the clients off from the target broker (the other nodes still reach it) for `down_s`.
    PartitionClients,
    /// Hold every chunk through the target broker's proxy for `delay_ms` plus up to `jitter_ms`
    /// (in order) on the `links` chosen, for `down_s`.
    Delay,
    /// Reset (RST both ways, buffered bytes lost) every connection through the target broker's
    /// proxy on the `links` chosen, at the start and every `reset_interval_ms` for `down_s`.
    Reset,
    /// The target broker's proxy forwards nothing on the `links` chosen for `down_s`
    /// (connections stay open, bytes vanish).
    Blackhole,
    /// Limit each direction of each connection through the target broker's proxy to
    /// `bandwidth_bytes_per_s` for `down_s`.
    Bandwidth,
    /// The target broker's proxy discards what the broker sends back on the `links` chosen for
    /// `down_s` (requests arrive and are carried out, no answer returns), then resets those
    /// connections: a producer retries every request it had in flight at once.
    DropResponses,
    /// The steps of `nemesis.sequence`, one after the other, as one scheduled event: a double
    /// fault whose order matters (kill a follower, pause the leader, restart the follower, kill
    /// the leader). Each step's target is resolved when that step starts.
    Sequence,
}

/// What a fault needs before the first node starts (Jepsen's nemesis `setup!`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Setup {
    /// The brokers' data directories served by lazyfs.
    pub lazyfs: bool,
    /// The nodes in network namespaces (local) or nftables in their containers (docker).
    pub network: bool,
    /// A proxy in front of each broker.
    pub proxies: bool,
}

impl Setup {
    /// Both needs together.
    pub fn and(self, other: Setup) -> Setup {
        Setup {
            lazyfs: self.lazyfs || other.lazyfs,
            network: self.network || other.network,
            proxies: self.proxies || other.proxies,
        }
    }
}

/// How a fault runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// One action opens the fault (invoke); another, `down_s` later, ends it (teardown). An
    /// instant event has no teardown.
    Window {
        invoke: Action,
        teardown: Option<Action>,
    },
    /// The steps of `nemesis.sequence`, each an action of its own.
    Steps,
}

impl Fault {
    /// Every fault kind, for tests and listings.
    pub const ALL: [Fault; 13] = [
        Fault::Kill,
        Fault::Pause,
        Fault::PowerLoss,
        Fault::DropCaches,
        Fault::PartitionNode,
        Fault::PartitionHalves,
        Fault::PartitionClients,
        Fault::Delay,
        Fault::Reset,
        Fault::Blackhole,
        Fault::Bandwidth,
        Fault::DropResponses,
        Fault::Sequence,
    ];

    /// Its name in a scenario file.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::PowerLoss => "power_loss",
            Fault::DropCaches => "drop_caches",
            Fault::PartitionNode => "partition_node",
            Fault::PartitionHalves => "partition_halves",
            Fault::PartitionClients => "partition_clients",
            Fault::Delay => "delay",
            Fault::Reset => "reset",
            Fault::Blackhole => "blackhole",
            Fault::Bandwidth => "bandwidth",
            Fault::DropResponses => "drop_responses",
            Fault::Sequence => "sequence",
        }
    }

    /// What a platform must be able to do to carry this fault out.
    pub fn needs(&self) -> Capability {
        match self {
            Fault::Kill | Fault::Pause => Capability::SignalProcesses,
            Fault::Sequence => Capability::ControlNodes,
            Fault::PowerLoss => Capability::PowerLoss,
            Fault::DropCaches => Capability::DropCaches,
            Fault::PartitionNode | Fault::PartitionHalves | Fault::PartitionClients => {
                Capability::Partitions
            }
            Fault::Delay
            | Fault::Reset
            | Fault::Blackhole
            | Fault::Bandwidth
            | Fault::DropResponses => Capability::LinkFaults,
        }
    }

    /// How it runs: the action that opens it and the one that ends it.
    pub fn protocol(&self) -> Protocol {
        use Action as A;
        let window = |invoke, teardown| Protocol::Window { invoke, teardown };
        match self {
            Fault::Kill => window(A::Kill, Some(A::Restart)),
            Fault::Pause => window(A::Pause, Some(A::Resume)),
            Fault::PowerLoss => window(A::PowerLoss, Some(A::Restart)),
            Fault::DropCaches => window(A::DropCaches, None),
            Fault::PartitionNode => window(A::Partition(Shape::Isolate), Some(A::Heal)),
            Fault::PartitionHalves => window(A::Partition(Shape::Halves), Some(A::Heal)),
            Fault::PartitionClients => window(A::Partition(Shape::CutClients), Some(A::Heal)),
            Fault::Delay => window(A::Link(LinkKind::Delay), Some(A::Heal)),
            Fault::Reset => window(A::Link(LinkKind::Reset), Some(A::Heal)),
            Fault::Blackhole => window(A::Link(LinkKind::Blackhole), Some(A::Heal)),
            Fault::Bandwidth => window(A::Link(LinkKind::Bandwidth), Some(A::Heal)),
            Fault::DropResponses => window(A::Link(LinkKind::DropResponses), Some(A::Heal)),
            Fault::Sequence => Protocol::Steps,
        }
    }

    /// What the platform must set up for it (a sequence's steps add their own).
    pub fn setup(&self) -> Setup {
        match self.protocol() {
            Protocol::Window { invoke, .. } => invoke.setup(),
            Protocol::Steps => Setup::default(),
        }
    }

    /// The window it opens in the history; None for a sequence (its steps open their own).
    pub fn window(&self) -> Option<FaultKind> {
        match self.protocol() {
            Protocol::Window { invoke, .. } => invoke.window(),
            Protocol::Steps => None,
        }
    }

    /// Partitions: namespaces and nftables rules.
    pub fn is_partition(&self) -> bool {
        matches!(
            self.protocol(),
            Protocol::Window {
                invoke: Action::Partition(_),
                ..
            }
        )
    }

    /// Link faults: the proxy in front of each broker.
    pub fn is_link_fault(&self) -> bool {
        self.setup().proxies
    }

    /// Whether it can hit one of the scenario's client processes (a kill or a pause).
    pub fn hits_clients(&self) -> bool {
        matches!(self, Fault::Kill | Fault::Pause)
    }
}

/// The sides a partition cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The target alone against every other node and the clients.
    Isolate,
    /// The target and others drawn from the seed (a minority) against the rest.
    Halves,
    /// The clients against the target broker.
    CutClients,
}

/// What a link fault does to the connections through a broker's proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Delay,
    Reset,
    Blackhole,
    Bandwidth,
    DropResponses,
}

impl LinkKind {
    /// Its name in the `link_fault` op's value (`"fault"`), as the scenario writes it.
    pub fn name(self) -> &'static str {
        match self {
            LinkKind::Delay => "delay",
            LinkKind::Reset => "reset",
            LinkKind::Blackhole => "blackhole",
            LinkKind::Bandwidth => "bandwidth",
            LinkKind::DropResponses => "drop_responses",
        }
    }
}

/// One thing the nemesis does, recorded as one op (invoke, then its completion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// SIGKILL a node (or a client process).
    Kill,
    /// SIGKILL a broker and drop its unsynced writes (lazyfs).
    PowerLoss,
    /// SIGSTOP.
    Pause,
    /// SIGCONT.
    Resume,
    /// Start a node that is down and wait until it answers.
    Restart,
    /// Start a node that is down, not waiting for it to answer (a sequence's `start` step).
    Start,
    Partition(Shape),
    Link(LinkKind),
    /// Lift every partition and link fault.
    Heal,
    /// Drop the host's clean page cache.
    DropCaches,
}

impl Action {
    /// The op it is recorded as.
    pub fn op(self) -> F {
        match self {
            Action::Kill => F::Kill,
            Action::PowerLoss => F::PowerLoss,
            Action::Pause => F::Pause,
            Action::Resume => F::Resume,
            Action::Restart | Action::Start => F::Restart,
            Action::Partition(Shape::Isolate) => F::Isolate,
            Action::Partition(Shape::Halves) => F::Split,
            Action::Partition(Shape::CutClients) => F::CutClients,
            Action::Link(_) => F::LinkFault,
            Action::Heal => F::Heal,
            Action::DropCaches => F::DropCaches,
        }
    }

    /// The fault window it opens in the history (None for the actions that close windows).
    pub fn window(self) -> Option<FaultKind> {
        match self {
            Action::Kill => Some(FaultKind::Kill),
            Action::PowerLoss => Some(FaultKind::PowerLoss),
            Action::Pause => Some(FaultKind::Pause),
            Action::Partition(Shape::Isolate) => Some(FaultKind::Isolate),
            Action::Partition(Shape::Halves) => Some(FaultKind::Split),
            Action::Partition(Shape::CutClients) => Some(FaultKind::CutClients),
            Action::Link(_) => Some(FaultKind::LinkFault),
            Action::DropCaches => Some(FaultKind::DropCaches),
            Action::Resume | Action::Restart | Action::Start | Action::Heal => None,
        }
    }

    /// How a failure to do it is recorded: `info` when it may have happened all the same (a
    /// signal whose answer was lost), `fail` when it certainly did not.
    pub fn error_type(self) -> OpType {
        match self {
            Action::Kill
            | Action::PowerLoss
            | Action::Pause
            | Action::Partition(_)
            | Action::Link(_) => OpType::Info,
            Action::Resume
            | Action::Restart
            | Action::Start
            | Action::Heal
            | Action::DropCaches => OpType::Fail,
        }
    }

    /// What the platform must set up for it.
    pub fn setup(self) -> Setup {
        match self {
            Action::PowerLoss => Setup {
                lazyfs: true,
                ..Setup::default()
            },
            Action::Partition(_) | Action::Heal => Setup {
                network: true,
                ..Setup::default()
            },
            Action::Link(_) => Setup {
                network: true,
                proxies: true,
                ..Setup::default()
            },
            Action::Kill
            | Action::Pause
            | Action::Resume
            | Action::Restart
            | Action::Start
            | Action::DropCaches => Setup::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fault_opens_the_window_its_op_names_and_its_teardown_closes_it() {
        for fault in Fault::ALL {
            let Protocol::Window { invoke, teardown } = fault.protocol() else {
                assert_eq!(fault, Fault::Sequence);
                continue;
            };
            let kind = fault.window().expect("a fault window");
            assert_eq!(kind.op(), invoke.op(), "{fault:?}");
            match teardown {
                Some(end) => {
                    let closes = kaos_history::Recovery::from_name(end.op().name())
                        .expect("a teardown is a recovery op");
                    assert!(
                        closes.closes(kind),
                        "{fault:?}: {end:?} does not close {kind}"
                    );
                }
                None => assert!(!kind.is_lasting(), "{fault:?} has no teardown"),
            }
            let named: Fault =
                serde_json::from_value(serde_json::json!(fault.name())).expect("its name parses");
            assert_eq!(named, fault);
        }
    }

    #[test]
    fn setups_follow_from_the_actions() {
        assert!(Fault::PowerLoss.setup().lazyfs);
        assert!(Fault::PartitionHalves.is_partition() && !Fault::PartitionHalves.is_link_fault());
        assert!(Fault::Reset.is_link_fault() && Fault::Reset.setup().network);
        assert_eq!(Fault::Kill.setup(), Setup::default());
        assert_eq!(Fault::Sequence.setup(), Setup::default());
    }
}
