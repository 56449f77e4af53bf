//! Faults as the history names them: the op that opens a fault's window, the ops that close it,
//! its row on the report's timeline and the words an explanation uses.

use crate::op::{names, F};

names! {
    /// A fault that an op of the nemesis starts, by the name of that op.
    pub enum FaultKind {
        /// SIGKILL; the window lasts until the node restarts.
        Kill = "kill",
        /// SIGKILL and every unsynced write dropped (lazyfs).
        PowerLoss = "power_loss",
        /// A stopped node (Jepsen's nemesis).
        Stop = "stop",
        /// A crashed node (Jepsen's nemesis).
        Crash = "crash",
        /// SIGSTOP until `resume` (or a `restart`: the paused process is gone).
        Pause = "pause",
        /// A network partition (Jepsen's `:start-partition`).
        Partition = "partition",
        /// One node cut off from the others and the clients (`partition_node`).
        Isolate = "isolate",
        /// The nodes split in two (`partition_halves`).
        Split = "split",
        /// The clients cut off from one broker (`partition_clients`).
        CutClients = "cut_clients",
        /// Delay, bandwidth, reset or blackhole on a broker's proxy.
        LinkFault = "link_fault",
        /// A degraded network (other histories).
        Degrade = "degrade",
        /// Clean page-cache pages dropped: an instant event, no window.
        DropCaches = "drop_caches",
    }
}

names! {
    /// An op of the nemesis that closes fault windows.
    pub enum Recovery {
        Restart = "restart",
        /// Jepsen's nemesis `:start` (kaos writes `restart`).
        Start = "start",
        Resume = "resume",
        Heal = "heal",
    }
}

names! {
    /// The rows of the report's timeline a fault window is drawn as (the report picks colours).
    pub enum Timeline {
        Killed = "killed",
        PowerLost = "power lost",
        Paused = "paused",
        CutOff = "cut off",
        DegradedLink = "degraded link",
        /// An instant event or a fault of another name.
        Event = "event",
    }
}

impl FaultKind {
    /// The op that opens the window.
    pub fn op(self) -> F {
        match self {
            FaultKind::Kill => F::Kill,
            FaultKind::PowerLoss => F::PowerLoss,
            FaultKind::Stop => F::Stop,
            FaultKind::Crash => F::Crash,
            FaultKind::Pause => F::Pause,
            FaultKind::Partition => F::Partition,
            FaultKind::Isolate => F::Isolate,
            FaultKind::Split => F::Split,
            FaultKind::CutClients => F::CutClients,
            FaultKind::LinkFault => F::LinkFault,
            FaultKind::Degrade => F::Degrade,
            FaultKind::DropCaches => F::DropCaches,
        }
    }

    /// The ops that close its window; none for an instant event.
    pub fn closed_by(self) -> &'static [Recovery] {
        match self {
            FaultKind::Kill | FaultKind::PowerLoss | FaultKind::Stop | FaultKind::Crash => {
                &[Recovery::Restart, Recovery::Start]
            }
            // A restarted node is a new process: a pause of the one killed ends with it.
            FaultKind::Pause => &[Recovery::Restart, Recovery::Start, Recovery::Resume],
            FaultKind::Partition
            | FaultKind::Isolate
            | FaultKind::Split
            | FaultKind::CutClients
            | FaultKind::LinkFault
            | FaultKind::Degrade => &[Recovery::Heal],
            FaultKind::DropCaches => &[],
        }
    }

    /// Whether it lasts until a recovery op (else it is an instant event).
    pub fn is_lasting(self) -> bool {
        !self.closed_by().is_empty()
    }

    /// Its row on the timeline.
    pub fn timeline(self) -> Timeline {
        match self {
            FaultKind::Kill | FaultKind::Stop | FaultKind::Crash => Timeline::Killed,
            FaultKind::PowerLoss => Timeline::PowerLost,
            FaultKind::Pause => Timeline::Paused,
            FaultKind::Partition
            | FaultKind::Isolate
            | FaultKind::Split
            | FaultKind::CutClients => Timeline::CutOff,
            FaultKind::LinkFault | FaultKind::Degrade => Timeline::DegradedLink,
            FaultKind::DropCaches => Timeline::Event,
        }
    }

    /// What happened to its target, for an explanation: "node n1 {was killed} at 12.43 s".
    pub fn explained(self) -> &'static str {
        match self {
            FaultKind::Kill => "was killed",
            FaultKind::Crash => "crashed",
            FaultKind::Stop => "was stopped",
            FaultKind::PowerLoss => "lost power (unsynced writes gone)",
            FaultKind::Pause => "was paused",
            FaultKind::Partition
            | FaultKind::Isolate
            | FaultKind::Split
            | FaultKind::CutClients => "was cut off by a network partition",
            FaultKind::LinkFault | FaultKind::Degrade => "had a degraded network link",
            FaultKind::DropCaches => "had its page cache dropped",
        }
    }
}

impl Recovery {
    /// Whether it closes windows of `kind`.
    pub fn closes(self, kind: FaultKind) -> bool {
        kind.closed_by().contains(&self)
    }

    /// Whether, naming no target (or none with an open window), it closes every window it can:
    /// the `heal` at the end of the timed phase lifts every network fault.
    pub fn closes_all_when_untargeted(self) -> bool {
        match self {
            Recovery::Heal => true,
            Recovery::Restart | Recovery::Start | Recovery::Resume => false,
        }
    }

    /// Whether closing nothing is odd (a `restart` of a node no fault took down): a `heal` or a
    /// `start` is routinely recorded with nothing to close.
    pub fn expects_a_window(self) -> bool {
        match self {
            Recovery::Restart | Recovery::Resume => true,
            Recovery::Start | Recovery::Heal => false,
        }
    }
}

/// Who or what a nemesis op targets: `value.node`, else `value.nodes` joined by commas, else the
/// value itself (empty for null).
pub fn fault_target(value: &serde_json::Value) -> String {
    if let Some(node) = value.get("node").and_then(serde_json::Value::as_str) {
        return node.to_owned();
    }
    if let Some(nodes) = value.get("nodes").and_then(serde_json::Value::as_array) {
        let names: Vec<String> = nodes
            .iter()
            .map(|n| n.as_str().map_or_else(|| n.to_string(), str::to_owned))
            .collect();
        return names.join(",");
    }
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_is_opened_by_its_own_op_and_recovery_names_are_ops() {
        for kind in FaultKind::ALL {
            assert_eq!(kind.op().name(), kind.name());
            for recovery in kind.closed_by() {
                assert!(recovery.closes(*kind));
                assert!(F::from_name(recovery.name()).is_some(), "{recovery}");
            }
        }
        assert!(!FaultKind::DropCaches.is_lasting());
        assert!(Recovery::Restart.closes(FaultKind::Pause));
        assert!(!Recovery::Heal.closes(FaultKind::Kill));
    }

    #[test]
    fn targets() {
        assert_eq!(fault_target(&serde_json::json!({"node":"n1"})), "n1");
        assert_eq!(
            fault_target(&serde_json::json!({"nodes":["n1","n2"]})),
            "n1,n2"
        );
        assert_eq!(fault_target(&serde_json::Value::Null), "");
    }
}
