//! The anomaly classes, from one table: per class its name (in `results.json`, fixtures and a
//! scenario's `[expect]` table alike), its meaning, its default expectation and its sub-kinds.
//! Adding a class is one row here; the compiler then asks `conclude` how to find it and
//! `Counts::class_mut` where to count it. Definitions in `docs/history.md`.

use serde::{Deserialize, Serialize};

/// Whether an anomaly class may occur in a valid run.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Allowance {
    /// May occur; reported, does not make the run invalid.
    Allowed,
    /// Makes the run invalid when it occurs.
    Forbidden,
    /// Must occur: the scenario demonstrates this anomaly, and a run without it is invalid (the
    /// scenario failed to reproduce what it claims).
    Required,
}

impl Allowance {
    pub fn as_str(self) -> &'static str {
        match self {
            Allowance::Allowed => "allowed",
            Allowance::Forbidden => "forbidden",
            Allowance::Required => "required",
        }
    }
}

macro_rules! anomaly_classes {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $name:literal, $default:ident, [$($sub:literal),*],
            $meaning:literal;
    )*) => {
        /// The anomaly classes the checker knows, in report order.
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        pub enum AnomalyKind {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)*
        }

        impl AnomalyKind {
            /// How many classes there are.
            pub const COUNT: usize = [$($name),*].len();

            /// Every class, in report order.
            pub const ALL: [AnomalyKind; Self::COUNT] = [$(AnomalyKind::$variant),*];

            /// The class's one name: results.json, fixtures, the `[expect]` key.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(AnomalyKind::$variant => $name,)*
                }
            }

            /// What the class means, in one line, for reports.
            pub fn description(self) -> &'static str {
                match self {
                    $(AnomalyKind::$variant => $meaning,)*
                }
            }

            /// Its expectation when a scenario does not say.
            pub fn default_allowance(self) -> Allowance {
                match self {
                    $(AnomalyKind::$variant => Allowance::$default,)*
                }
            }

            /// The finer kinds a case of this class may name (`Case::sub_kind`).
            pub fn sub_kinds(self) -> &'static [&'static str] {
                match self {
                    $(AnomalyKind::$variant => &[$($sub),*],)*
                }
            }
        }
    };
}

anomaly_classes! {
    /// Acknowledged (or of unknown outcome yet read) and absent from the final read, or never
    /// read although reads went past its offset.
    Lost = "lost", Forbidden, ["unread", "absent", "unknown_outcome_read"],
        "acknowledged (or of unknown outcome yet read) and absent from the final read, or never read although reads went past its offset";
    /// Read by a consumer, absent from the final read.
    ReadThenLost = "read_then_lost", Forbidden, [],
        "read by a consumer, absent from the final read";
    /// Accepted by the application (enqueue or accept ok), never written to the log.
    ProducerLoss = "producer_loss", Forbidden, ["never_sent", "sent", "dropped"],
        "accepted by the application (enqueue or accept ok), never written to the log";
    /// The send failed (definitely not written, or its transaction aborted), yet the message was
    /// read (by a reader at read_committed, for a transaction's message): Jepsen's G1a.
    AbortedRead = "aborted_read", Forbidden, [],
        "the send failed (definitely not written, or its transaction aborted), yet the message was read";
    /// A `read_uncommitted` consumer read a message whose transaction aborted: what that
    /// isolation level permits (Adya's G1a at PL-1), never seen by `read_committed` readers.
    AbortedReadUncommitted = "aborted_read_uncommitted", Allowed, [],
        "a read_uncommitted consumer read a message whose transaction aborted (what read_uncommitted permits)";
    /// Read by a poll that completed before the message's send was invoked.
    FutureRead = "future_read", Forbidden, [],
        "read by a poll that completed before the message's send was invoked";
    /// Read before its send was acknowledged (kaos's; Jepsen's precommitted read is
    /// `precommitted_read`). Named `precommitted_read` in results written before issue 15.
    ReadBeforeAck = "read_before_ack", Allowed, [],
        "read before its send was acknowledged";
    /// A transaction read its own send before it committed (Jepsen's precommitted read: consumers
    /// at read committed must never see an uncommitted write).
    PrecommittedRead = "precommitted_read", Forbidden, [],
        "a transaction read its own send before it committed (Jepsen's precommitted read)";
    /// Two different messages observed at one topic, partition and offset.
    InconsistentOffsets = "inconsistent_offsets", Forbidden, [],
        "two different messages observed at one topic, partition and offset";
    /// Replicas hold different records (or miss records) below the high watermark.
    ReplicaDivergence = "replica_divergence", Forbidden,
        ["different_records", "missing_below_hw", "corrupt_record"],
        "replicas hold different records (or miss records) below the high watermark";
    /// One message id read at two or more distinct positions, or acknowledged at one and read
    /// at another.
    Duplicate = "duplicate", Allowed, ["read_twice", "acknowledged_elsewhere"],
        "one message id read at two or more distinct positions, or acknowledged at one and read at another";
    /// One message processed two or more times.
    DuplicateProcessing = "duplicate_processing", Allowed, [],
        "one message processed two or more times";
    /// An input message of a consume-transform-produce pipeline below the offset its group
    /// committed, whose output the final read of the output topic lacks.
    PipelineLost = "pipeline_lost", Forbidden, [],
        "an input message the pipeline's group committed past, whose output is not in the output topic";
    /// An input message of a pipeline whose output the output topic holds more than once.
    PipelineDuplicate = "pipeline_duplicate", Allowed, [],
        "an input message whose output the pipeline wrote to the output topic more than once";
    /// A consumer jumped over offsets that hold messages.
    PollSkip = "poll_skip", Forbidden,
        ["within_poll", "between_polls", "after_assignment", "after_seek"],
        "a consumer jumped over offsets that hold messages";
    /// A consumer read a partition backwards.
    NonmonotonicPoll = "nonmonotonic_poll", Forbidden,
        ["within_poll", "between_polls", "below_committed", "below_seek"],
        "a consumer read a partition backwards";
    /// One producer's acknowledged offsets out of its send order.
    NonmonotonicSend = "nonmonotonic_send", Allowed, ["within_transaction", "between_sends"],
        "one producer's acknowledged offsets out of its send order";
    /// Below an offset the group committed, never processed.
    Unprocessed = "unprocessed", Forbidden, [],
        "below an offset the group committed, never processed";
    /// Acknowledged, never read, at an offset below the log start offset the final read found:
    /// deleted by retention (or DeleteRecords) before any consumer read it, as Kafka promises.
    RetentionDeleted = "retention_deleted", Allowed, ["unread"],
        "acknowledged and never read, below the log start offset the final read found: deleted by retention before any consumer read it";
    /// Acknowledged, absent from the final read, on a compacted topic whose final read holds a
    /// later record with the message's key at a higher offset of its partition: the log cleaner
    /// removed it as superseded, as Kafka's compaction promises (the latest record of a key
    /// stays; losing it is `lost`).
    Compacted = "compacted", Allowed, ["superseded"],
        "acknowledged, absent from the final read of a compacted topic, which holds a later record with its key at a higher offset: removed by compaction as superseded";
    /// A group started reading a partition (a seek, or the first poll after an assignment)
    /// below an offset it had committed with an acknowledged OffsetCommit, and had committed no
    /// lower offset since: the coordinator lost the commit.
    LostCommit = "lost_commit", Forbidden, ["seek", "first_poll"],
        "a group started reading below an offset it had committed (acknowledged) and never committed lower since";
    /// A consumer was served a record that was not committed: at or above the high watermark
    /// its client recorded with the record (`above_high_watermark`); or, for a read without one,
    /// read before its send was acknowledged while the final read holds another record at that
    /// position or none (`truncated`, `overwritten`). Distinct from `read_before_ack`: a record
    /// below the high watermark, or one that stays where it was read.
    UncommittedRead = "uncommitted_read", Forbidden, ["above_high_watermark", "truncated", "overwritten"],
        "a consumer was served a record not yet committed: at or above the high watermark its client recorded with it, or (without one) read before its ack and gone from the final read";
    /// Never acknowledged, never read, absent from the final read.
    UnacknowledgedAbsent = "unacknowledged_absent", Allowed, [],
        "never acknowledged, never read, absent from the final read";
    /// Acknowledged and never returned by any poll by the end of a run without a completed final
    /// read (Jepsen's `unseen` at the end of its history); with one, such a message is `lost`.
    Unseen = "unseen", Allowed, [],
        "acknowledged and never returned by any poll by the end of a run without a completed final read";
    /// One transaction's successive sends to a partition with another message between them
    /// (Jepsen's int-send-skip).
    IntSendSkip = "int_send_skip", Allowed, [],
        "one transaction's successive sends to a partition landed with another message between them";
    /// Elle's G1b, intermediate read: a transaction's last read of a partition is a message
    /// another transaction sent there before a further send of its own to that partition (it
    /// saw that transaction's writes in part). Allowed: a Kafka poll is a cursor read that may
    /// end anywhere (`max.poll.records`, fetch size), even inside a committed transaction.
    G1b = "g1b", Allowed, [],
        "a transaction's last read of a partition is another transaction's intermediate send there (Elle's G1b)";
    /// A cycle of write-write dependencies between transactions (Adya's G0, found by `elle`).
    G0 = "g0", Forbidden, ["process", "realtime"],
        "transactions whose writes are ordered both ways: a cycle of ww dependencies (G0)";
    /// A cycle of write-write and write-read dependencies (G1c).
    G1c = "g1c", Forbidden, ["process", "realtime"],
        "circular information flow between transactions: a cycle of ww and wr dependencies (G1c)";
    /// A dependency cycle with exactly one read-write anti-dependency (G-single, read skew).
    GSingle = "g_single", Forbidden, ["process", "realtime"],
        "a dependency cycle with exactly one rw anti-dependency: read skew (G-single)";
    /// A dependency cycle with two or more read-write anti-dependencies (G2-item).
    G2Item = "g2_item", Forbidden, ["process", "realtime"],
        "a dependency cycle with two or more rw anti-dependencies (G2-item)";
    /// A node exited on its own outside any fault (a crash, a failed assertion): the history's
    /// `crash` ops. Forbidden, a broker's own stop (exit 71: an invariant; 70: its log
    /// contradicts itself) makes the run invalid, any other end (a signal, another code) leaves
    /// it at best unknown (what it meant to verify was cut short).
    NodeCrash = "node_crash", Forbidden, ["invariant", "fatal", "other"],
        "a node exited on its own outside any fault (a crash, a failed assertion)";
}

impl AnomalyKind {
    /// The class named `name` (its `as_str`).
    pub fn from_name(name: &str) -> Option<AnomalyKind> {
        AnomalyKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Its place in [`AnomalyKind::ALL`] (and in per-class arrays).
    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_declaration_order_and_names_read_back() {
        for (i, kind) in AnomalyKind::ALL.into_iter().enumerate() {
            assert_eq!(kind.index(), i);
            assert_eq!(AnomalyKind::from_name(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).expect("json");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(AnomalyKind::from_name("duplicates"), None);
    }
}
