//! Ops: their types, their names (`f`), the processes of the harness, one line as a value.

use serde::{Deserialize, Serialize};

/// The process name of the nemesis's ops.
pub const NEMESIS: &str = "nemesis";
/// The process name of the harness's own ops (phases, client and node starts).
pub const HARNESS: &str = "harness";

/// A closed set of names written into the history: the enum, `ALL`, `name` and `from_name` from
/// one list, so that a name is written in one place.
macro_rules! names {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The name the history uses.
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The value the history calls `name`.
            pub fn from_name(name: &str) -> Option<$name> {
                match name {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}
pub(crate) use names;

names! {
    /// Jepsen's op types: `invoke`, then `ok` (happened), `fail` (definitely did not happen) or
    /// `info` (unknown).
    pub enum OpType {
        Invoke = "invoke",
        Ok = "ok",
        Fail = "fail",
        Info = "info",
    }
}

impl OpType {
    pub fn is_completion(self) -> bool {
        !matches!(self, OpType::Invoke)
    }
}

impl Serialize for OpType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for OpType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        OpType::from_name(&name).ok_or_else(|| {
            serde::de::Error::unknown_variant(&name, &["invoke", "ok", "fail", "info"])
        })
    }
}

names! {
    /// What an op does: its `f` (the table of `docs/history.md`). A history may hold other names
    /// (kept, ignored by the checker); every name kaos writes is here.
    pub enum F {
        // Producers.
        /// One message handed to the producer library, completed by its delivery.
        Send = "send",
        /// Written to the application's durable outbox.
        Enqueue = "enqueue",
        /// Accepted into the producer library's buffer (an asynchronous `produce()` returned).
        Accept = "accept",
        /// Dropped by the application itself (a full buffer whose policy is to drop).
        Drop = "drop",
        /// One transaction of a transactional producer: its value lists its micro-ops (`send`s,
        /// and `poll`s with their records); `ok` committed, `fail` aborted, `info` unknown.
        Txn = "txn",
        // Consumers and the final reader.
        /// One poll batch; its `ok` carries the records.
        Poll = "poll",
        /// A manual assignment.
        Assign = "assign",
        /// Joining a group.
        Subscribe = "subscribe",
        /// A group's new assignment.
        Rebalance = "rebalance",
        /// The consumer moved its position.
        Seek = "seek",
        /// The application finished processing one message.
        Process = "process",
        /// A committed group offset.
        OffsetCommit = "offset_commit",
        /// What the final read reads up to.
        EndOffsets = "end_offsets",
        // The harness.
        /// The run starts (value: the scenario); also a recovery of Jepsen-style histories.
        Start = "start",
        /// A client process started, with its spec.
        ClientStart = "client_start",
        /// A client process ended.
        ClientExit = "client_exit",
        /// A node started.
        NodeStart = "node_start",
        /// The network the nodes are on.
        Network = "network",
        /// Producers or consumers told to stop.
        StopClients = "stop_clients",
        /// The final read phase.
        FinalRead = "final_read",
        /// After heal: whether every replica is back in the ISR.
        ReplicasInSync = "replicas_in_sync",
        /// A node's log dumped beside the history.
        ReplicaDump = "replica_dump",
        /// The run ends.
        End = "end",
        // The nemesis: fault windows open and close (see `FaultKind`, `Recovery`).
        Kill = "kill",
        PowerLoss = "power_loss",
        Pause = "pause",
        DropCaches = "drop_caches",
        Isolate = "isolate",
        Split = "split",
        CutClients = "cut_clients",
        LinkFault = "link_fault",
        Restart = "restart",
        Resume = "resume",
        Heal = "heal",
        /// Brackets the steps of a `sequence` fault.
        Sequence = "sequence",
        /// The schedule ran late: later faults shifted, the last ones left out.
        ScheduleLate = "schedule_late",
        // Names of other histories (Jepsen's nemesis) that the checker knows as faults.
        Partition = "partition",
        Stop = "stop",
        Crash = "crash",
        Degrade = "degrade",
    }
}

/// The bit that marks a consume-transform-produce pipeline's output message ids: the pipeline
/// writes input message `id`'s output as message `id | PIPELINE_OUTPUT_BIT`, the same id however
/// often the input is processed, so that the output topic shows each input message's copies.
/// Producers' ids stay far below it (blocks of 2^40 per client).
pub const PIPELINE_OUTPUT_BIT: u64 = 1 << 62;

/// The id of the pipeline's output message for input message `input`.
pub const fn pipeline_output_id(input: u64) -> u64 {
    input | PIPELINE_OUTPUT_BIT
}

/// The input message an output message id stands for, if it is a pipeline's output id.
pub const fn pipeline_input_id(id: u64) -> Option<u64> {
    if id & PIPELINE_OUTPUT_BIT != 0 {
        Some(id & !PIPELINE_OUTPUT_BIT)
    } else {
        None
    }
}

/// One operation of a history, as one line of `history.jsonl` holds it. Serialising it writes
/// the fields in the order [`crate::line::write_op`] does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// 0, 1, 2, … in file order.
    pub index: u64,
    /// Monotonic nanoseconds since the run started, stamped by the harness.
    pub time_ns: u64,
    /// `producer-1`, `consumer-1`, `final-reader`, `nemesis`, `harness`, …
    pub process: String,
    #[serde(rename = "type")]
    pub kind: OpType,
    /// What kind of op ([`F`] names every one kaos writes; others are kept as they are).
    pub f: String,
    /// The client's CLOCK_MONOTONIC when it wrote the op (nanoseconds since boot: one kernel
    /// clock for every client process on the host, local or beside docker containers), so that
    /// ops of different processes can be ordered finer than the receipt time `time_ns`. Absent
    /// from the harness's own ops and from histories written before issue 15's ordering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monotonic_ns: Option<u64>,
    #[serde(default)]
    pub value: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Op {
    /// The op's name, when it is one kaos knows.
    pub fn name(&self) -> Option<F> {
        F::from_name(&self.f)
    }

    /// An op of an earlier release's vocabulary as the op it meant (reading a stored history):
    /// a [`LEGACY_LINK_FAULT_NAMES`] op becomes the `link_fault` it was, its old name kept as the
    /// value's `"fault"` (as a `link_fault` names its kind) unless the value has one.
    pub fn upgrade_legacy(&mut self) {
        if !LEGACY_LINK_FAULT_NAMES.contains(&self.f.as_str()) {
            return;
        }
        let old = std::mem::replace(&mut self.f, F::LinkFault.name().to_owned());
        match &mut self.value {
            serde_json::Value::Object(map) => {
                map.entry("fault").or_insert(serde_json::Value::String(old));
            }
            serde_json::Value::Null => self.value = serde_json::json!({ "fault": old }),
            _ => {}
        }
    }
}

/// Names earlier releases wrote for link faults, and nothing writes now: before issue 14 a link
/// fault whose target was not found was recorded under its own kind's name (an `invoke` and a
/// `fail` of `delay`, `reset`, `blackhole` or `bandwidth`); every link fault is a `link_fault`
/// now, its kind in the value's `"fault"`. A stored history that has them still reads
/// ([`Op::upgrade_legacy`]).
pub const LEGACY_LINK_FAULT_NAMES: [&str; 4] = ["delay", "reset", "blackhole", "bandwidth"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_reads_back_and_names_are_distinct() {
        for f in F::ALL {
            assert_eq!(F::from_name(f.name()), Some(*f));
        }
        let mut names: Vec<&str> = F::ALL.iter().map(|f| f.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), F::ALL.len());
        assert_eq!(F::from_name("txn"), Some(F::Txn));
        assert_eq!(F::from_name("transaction"), None);
    }

    #[test]
    fn a_legacy_link_fault_name_reads_as_the_link_fault_it_was() {
        // A line as releases before issue 14 wrote it: a delay whose target was not found.
        let line = r#"{"index":7,"time_ns":5,"process":"nemesis","type":"fail","f":"delay","value":{"target":"leader"},"error":"no leader"}"#;
        let mut op: Op = serde_json::from_str(line).expect("an op");
        assert_eq!(op.name(), None, "no variant of F writes it any more");
        op.upgrade_legacy();
        assert_eq!(op.name(), Some(F::LinkFault));
        assert_eq!(op.value["fault"], "delay");
        assert_eq!(op.value["target"], "leader");
        let mut bare: Op = serde_json::from_str(
            r#"{"index":8,"time_ns":6,"process":"nemesis","type":"invoke","f":"blackhole"}"#,
        )
        .expect("an op");
        bare.upgrade_legacy();
        assert_eq!(
            (bare.f.as_str(), &bare.value),
            ("link_fault", &serde_json::json!({"fault": "blackhole"}))
        );
        for name in LEGACY_LINK_FAULT_NAMES {
            assert_eq!(F::from_name(name), None, "{name}");
        }
    }

    #[test]
    fn pipeline_output_ids_map_back_to_their_input() {
        let input = 3 * (1u64 << 40) + 17;
        let out = pipeline_output_id(input);
        assert_ne!(out, input);
        assert_eq!(pipeline_input_id(out), Some(input));
        assert_eq!(pipeline_input_id(input), None);
        assert_eq!(
            pipeline_output_id(out),
            out,
            "processing twice gives the same id"
        );
    }

    #[test]
    fn op_types_read_their_names_only() {
        let ok: OpType = serde_json::from_str("\"ok\"").expect("ok");
        assert_eq!(ok, OpType::Ok);
        let err = serde_json::from_str::<OpType>("\"maybe\"").expect_err("unknown");
        assert!(err.to_string().contains("maybe"), "{err}");
        assert_eq!(
            serde_json::to_string(&OpType::Info).expect("json"),
            "\"info\""
        );
    }
}
