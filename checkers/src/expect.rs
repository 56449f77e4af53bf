//! What a scenario allows: each anomaly class is `allowed` or `forbidden`.

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

/// The expected outcome of a scenario, read from its `[expect]` table, e.g.
/// `[expect]\nlost = "forbidden"\nduplicates = "allowed"`. Missing keys take their defaults (the
/// table in `docs/history.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Expectations {
    /// Acknowledged (or unknown-outcome yet read) messages absent from the final read, or never read although reads went past their offset. Default: forbidden.
    pub lost: Allowance,
    /// Read by a consumer, then absent from the final read. Default: forbidden.
    pub read_then_lost: Allowance,
    /// Accepted by the application (enqueue/accept ok), never written to the log. Default: forbidden.
    pub producer_loss: Allowance,
    /// One message id at two or more positions in the log. Default: allowed.
    pub duplicates: Allowance,
    /// One message processed two or more times (at-least-once delivery). Default: allowed.
    pub duplicate_processing: Allowance,
    /// Sends never acknowledged, never read, absent from the final read. Default: allowed.
    pub unacknowledged_absent: Allowance,
    /// Sends that failed (definitely not written) yet were read. Default: forbidden.
    pub aborted_read: Allowance,
    /// A read that completed before the send was invoked (impossible). Default: forbidden.
    pub future_read: Allowance,
    /// A read that completed before the send was acknowledged (the ack was in flight). Default: allowed.
    pub precommitted_read: Allowance,
    /// Two different messages at one topic, partition and offset. Default: forbidden.
    pub inconsistent_offsets: Allowance,
    /// Replicas disagree (or miss records) below the high watermark. Default: forbidden.
    pub replica_divergence: Allowance,
    /// A consumer skipped offsets holding messages inside one assignment generation. Default: forbidden.
    pub poll_skip: Allowance,
    /// A consumer read a partition backwards inside one assignment generation. Default: forbidden.
    pub nonmonotonic_poll: Allowance,
    /// One producer's acknowledged offsets out of its send order in a partition. Default: allowed.
    pub nonmonotonic_send: Allowance,
    /// Below an offset the group committed, never processed. Default: forbidden.
    pub unprocessed: Allowance,
    /// Liveness: the run must acknowledge at least this many sends. Default: 0 (no requirement).
    pub acknowledged_min: u64,
    /// A kaos run in which a producer acknowledged nothing, or a consumer read nothing while sends
    /// were acknowledged, verified nothing about that client: its verdict is `unknown` unless the
    /// scenario sets this (it means to show such a client). Default: false.
    pub idle_clients_allowed: bool,
}

impl Default for Expectations {
    fn default() -> Self {
        Expectations {
            lost: Allowance::Forbidden,
            read_then_lost: Allowance::Forbidden,
            producer_loss: Allowance::Forbidden,
            duplicates: Allowance::Allowed,
            duplicate_processing: Allowance::Allowed,
            unacknowledged_absent: Allowance::Allowed,
            aborted_read: Allowance::Forbidden,
            future_read: Allowance::Forbidden,
            precommitted_read: Allowance::Allowed,
            inconsistent_offsets: Allowance::Forbidden,
            replica_divergence: Allowance::Forbidden,
            poll_skip: Allowance::Forbidden,
            nonmonotonic_poll: Allowance::Forbidden,
            nonmonotonic_send: Allowance::Allowed,
            unprocessed: Allowance::Forbidden,
            acknowledged_min: 0,
            idle_clients_allowed: false,
        }
    }
}

impl Expectations {
    /// Every class allowed: list anomalies without judging (useful for Jepsen histories).
    pub fn allow_all() -> Self {
        Expectations {
            lost: Allowance::Allowed,
            read_then_lost: Allowance::Allowed,
            producer_loss: Allowance::Allowed,
            duplicates: Allowance::Allowed,
            duplicate_processing: Allowance::Allowed,
            unacknowledged_absent: Allowance::Allowed,
            aborted_read: Allowance::Allowed,
            future_read: Allowance::Allowed,
            precommitted_read: Allowance::Allowed,
            inconsistent_offsets: Allowance::Allowed,
            replica_divergence: Allowance::Allowed,
            poll_skip: Allowance::Allowed,
            nonmonotonic_poll: Allowance::Allowed,
            nonmonotonic_send: Allowance::Allowed,
            unprocessed: Allowance::Allowed,
            acknowledged_min: 0,
            idle_clients_allowed: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Scenario {
        expect: Expectations,
    }

    #[test]
    fn reads_a_toml_expect_table_with_defaults() {
        let scenario: Scenario =
            toml::from_str("[expect]\nduplicates = \"forbidden\"\n").expect("valid table");
        assert_eq!(scenario.expect.duplicates, Allowance::Forbidden);
        assert_eq!(scenario.expect.lost, Allowance::Forbidden);
        assert_eq!(scenario.expect.unacknowledged_absent, Allowance::Allowed);
        assert_eq!(scenario.expect.acknowledged_min, 0);
        let scenario: Scenario =
            toml::from_str("[expect]\nacknowledged_min = 5\n").expect("valid table");
        assert_eq!(scenario.expect.acknowledged_min, 5);
    }

    #[test]
    fn reads_the_new_classes_and_keeps_jepsen_like_defaults() {
        let scenario: Scenario = toml::from_str(
            "[expect]\npoll_skip = \"allowed\"\nproducer_loss = \"allowed\"\nduplicate_processing = \"forbidden\"\n",
        )
        .expect("valid table");
        assert_eq!(scenario.expect.poll_skip, Allowance::Allowed);
        assert_eq!(scenario.expect.producer_loss, Allowance::Allowed);
        assert_eq!(scenario.expect.duplicate_processing, Allowance::Forbidden);
        let d = Expectations::default();
        for forbidden in [
            d.lost,
            d.read_then_lost,
            d.producer_loss,
            d.aborted_read,
            d.future_read,
            d.inconsistent_offsets,
            d.replica_divergence,
            d.poll_skip,
            d.nonmonotonic_poll,
            d.unprocessed,
        ] {
            assert_eq!(forbidden, Allowance::Forbidden);
        }
        for allowed in [
            d.duplicates,
            d.duplicate_processing,
            d.precommitted_read,
            d.nonmonotonic_send,
            d.unacknowledged_absent,
        ] {
            assert_eq!(allowed, Allowance::Allowed);
        }
    }

    #[test]
    fn rejects_unknown_keys_and_values() {
        assert!(toml::from_str::<Scenario>("[expect]\nlsot = \"allowed\"\n").is_err());
        assert!(toml::from_str::<Scenario>("[expect]\nlost = \"maybe\"\n").is_err());
    }
}
