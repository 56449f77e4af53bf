//! Run-time invariants of the broker's state, asserted in release builds too (TIGER_STYLE:
//! assert in pairs, right before a write and right after a read).
//!
//! Each check is a pure function of plain numbers that returns a [`Violation`] when the state is
//! wrong; nothing is allocated unless it is. [`enforce`] turns a violation into a stop: it logs
//! the invariant's name, the values and the partition, and exits with [`INVARIANT_EXIT_CODE`]
//! and a `kaos-broker fatal: invariant <name> violated` line on stderr, so that a run reports the
//! broker's crash as what it is rather than a history that lies.
//!
//! | invariant | checked where |
//! |---|---|
//! | [`Invariant::HighWatermarkWithinLog`] | every HW change and every read of HW and LEO together ([`crate::partition`]) |
//! | [`Invariant::OffsetsIncreasing`] | before and after each batch written, on every read plan and read-back ([`crate::log`]) |
//! | [`Invariant::StoredBatchIntact`] | CRC and length of each batch before it is written and after it is read back ([`crate::log`]) |
//! | [`Invariant::LeaderEpochNonDecreasing`] | role changes ([`crate::partition`]), the epoch cache ([`crate::log::epoch`]), elections ([`crate::controller`]) |
//! | [`Invariant::IsrWithinReplicas`] | role changes, ISR changes and wanted ISRs ([`crate::partition`]); the controller's state after every change and at load |
//! | [`Invariant::TruncationNotBelowAcknowledgedHighWatermark`] | a follower's truncations while it follows one leader epoch ([`crate::server::fetcher`]) |
//! | [`Invariant::ProducerSequenceContinuous`] | every idempotent batch a leader records ([`crate::producer`]) |

use std::fmt;

/// Exit code of a broker stopped by a violated invariant (the log's own inconsistencies found
/// elsewhere stop it with [`FATAL_EXIT_CODE`]).
pub const INVARIANT_EXIT_CODE: i32 = 71;

/// Exit code when the broker stops because its own log is inconsistent.
pub const FATAL_EXIT_CODE: i32 = 70;

/// Stops the broker at once: used when the log contradicts itself while serving, so that no
/// wrong offset is ever served. Not a panic: the process exits with [`FATAL_EXIT_CODE`].
pub fn fatal(message: &str) -> ! {
    tracing::error!(message, "fatal: stopping the broker");
    eprintln!("kaos-broker fatal: {message}");
    std::process::exit(FATAL_EXIT_CODE)
}

/// The invariants the broker asserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invariant {
    /// A replica's HW is at most its LEO.
    HighWatermarkWithinLog,
    /// Offsets within a log are contiguous and strictly increasing: each batch starts where the
    /// previous one ended and ends at or after its start.
    OffsetsIncreasing,
    /// A stored batch has the CRC and length it was written with.
    StoredBatchIntact,
    /// A replica's leader epoch, the epoch cache and the controller's elections never go back.
    LeaderEpochNonDecreasing,
    /// Every ISR member is a replica.
    IsrWithinReplicas,
    /// While following one leader epoch, a follower never truncates below an HW it has taken from
    /// that leader (a new epoch may start below it: unclean elections and lost tails).
    TruncationNotBelowAcknowledgedHighWatermark,
    /// A leader records an idempotent producer's batch only where it continues the producer's
    /// sequence (or starts a new epoch at 0), at higher offsets.
    ProducerSequenceContinuous,
    /// Not a property of the state: the crash a test planted with `debug.crash.after.ms`
    /// (`server::broker`), stopping the broker the way a violated invariant does.
    PlantedCrash,
}

impl Invariant {
    /// The name in logs and in the exit message.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::HighWatermarkWithinLog => "high_watermark_within_log",
            Invariant::OffsetsIncreasing => "offsets_increasing",
            Invariant::StoredBatchIntact => "stored_batch_intact",
            Invariant::LeaderEpochNonDecreasing => "leader_epoch_non_decreasing",
            Invariant::IsrWithinReplicas => "isr_within_replicas",
            Invariant::TruncationNotBelowAcknowledgedHighWatermark => {
                "truncation_not_below_acknowledged_high_watermark"
            }
            Invariant::ProducerSequenceContinuous => "producer_sequence_continuous",
            Invariant::PlantedCrash => "planted_crash",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A violated invariant and the state that violates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: Invariant,
    /// The values involved, as `name=value` pairs.
    pub state: String,
}

impl Violation {
    pub fn new(invariant: Invariant, state: String) -> Violation {
        Violation { invariant, state }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant {} violated: {}", self.invariant, self.state)
    }
}

/// Stops the broker when `check` found a violation; `place` names the partition (or the log
/// directory, or the controller). Unit tests panic instead of exiting the test process.
#[inline]
pub fn enforce(check: Result<(), Violation>, place: impl fmt::Display) {
    if let Err(violation) = check {
        violated(&violation, &place)
    }
}

/// Logs `violation` at `place` and stops the broker with [`INVARIANT_EXIT_CODE`].
#[cold]
pub fn violated(violation: &Violation, place: &dyn fmt::Display) -> ! {
    tracing::error!(invariant = violation.invariant.name(), state = %violation.state, place = %place, "invariant violated: stopping the broker");
    let message = format!("{violation} at {place}");
    if cfg!(test) {
        panic!("{message}");
    }
    eprintln!("kaos-broker fatal: {message}");
    std::process::exit(INVARIANT_EXIT_CODE)
}

/// The partition `topic`-`index`, as a place for [`enforce`].
#[derive(Debug, Clone, Copy)]
pub struct PartitionPlace<'a> {
    pub topic: &'a str,
    pub index: i32,
}

impl fmt::Display for PartitionPlace<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "partition {}-{}", self.topic, self.index)
    }
}

/// HW ≤ LEO.
pub fn high_watermark_within_log(
    high_watermark: i64,
    log_end_offset: i64,
) -> Result<(), Violation> {
    if high_watermark <= log_end_offset {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::HighWatermarkWithinLog,
        format!("high_watermark={high_watermark} log_end_offset={log_end_offset}"),
    ))
}

/// A batch of offsets `[base_offset, next_offset)` follows a log whose end is `expected`.
pub fn batch_follows(expected: i64, base_offset: i64, next_offset: i64) -> Result<(), Violation> {
    if base_offset == expected && next_offset > base_offset {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::OffsetsIncreasing,
        format!(
            "expected_base_offset={expected} base_offset={base_offset} next_offset={next_offset}"
        ),
    ))
}

/// After a write that should have moved the LEO to `expected`, it is at `found`.
pub fn log_end_moved_to(expected: i64, found: i64) -> Result<(), Violation> {
    if expected == found {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::OffsetsIncreasing,
        format!("log_end_offset={found} expected_log_end_offset={expected}"),
    ))
}

/// A stored batch: its length field and CRC are those it had when written.
pub fn batch_intact(
    position: u64,
    expected_bytes: usize,
    found_bytes: usize,
    crc_ok: bool,
) -> Result<(), Violation> {
    if expected_bytes == found_bytes && crc_ok {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::StoredBatchIntact,
        format!("position={position} expected_bytes={expected_bytes} found_bytes={found_bytes} crc_ok={crc_ok}"),
    ))
}

/// A leader epoch moves from `current` to `new` only forward (or stays).
pub fn leader_epoch_not_older(current: i32, new: i32) -> Result<(), Violation> {
    if new >= current {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::LeaderEpochNonDecreasing,
        format!("current_leader_epoch={current} new_leader_epoch={new}"),
    ))
}

/// `(epoch, start offset)` entries of an epoch cache: both strictly increasing.
pub fn epoch_entries_increasing(entries: &[(i32, i64)]) -> Result<(), Violation> {
    match entries
        .windows(2)
        .find(|pair| pair[1].0 <= pair[0].0 || pair[1].1 <= pair[0].1)
    {
        None => Ok(()),
        Some(pair) => Err(Violation::new(
            Invariant::LeaderEpochNonDecreasing,
            format!(
                "epoch_cache_entry=({}, {}) followed_by=({}, {})",
                pair[0].0, pair[0].1, pair[1].0, pair[1].1
            ),
        )),
    }
}

/// ISR ⊆ replicas.
pub fn isr_within_replicas(isr: &[i32], replicas: &[i32]) -> Result<(), Violation> {
    if isr.iter().all(|member| replicas.contains(member)) {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::IsrWithinReplicas,
        format!("isr={isr:?} replicas={replicas:?}"),
    ))
}

/// A follower truncating to `log_end_offset` while following the leader epoch in which it took
/// `acknowledged_high_watermark` from the leader (-1: none taken yet).
pub fn truncation_not_below_acknowledged(
    log_end_offset: i64,
    acknowledged_high_watermark: i64,
) -> Result<(), Violation> {
    if log_end_offset >= acknowledged_high_watermark {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::TruncationNotBelowAcknowledgedHighWatermark,
        format!(
            "truncated_to={log_end_offset} acknowledged_high_watermark={acknowledged_high_watermark}"
        ),
    ))
}

/// What a producer's state holds before a leader records its next batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerLast {
    pub epoch: i16,
    /// The last sequence and last offset of its newest kept batch, if any.
    pub last: Option<(i32, i64)>,
}

/// A leader records producer `producer_id`'s batch of `epoch` with sequences from `first_sequence`
/// at offsets from `first_offset`: it continues `previous` (none: an unknown producer, KIP-360).
pub fn sequence_continues(
    producer_id: i64,
    previous: Option<ProducerLast>,
    epoch: i16,
    first_sequence: i32,
    first_offset: i64,
) -> Result<(), Violation> {
    let Some(previous) = previous else {
        return Ok(());
    };
    let continues = match previous.last {
        _ if epoch > previous.epoch => first_sequence == 0,
        _ if epoch < previous.epoch => false,
        None => true,
        Some((last_sequence, last_offset)) => {
            first_sequence == crate::wire::batch::increment_sequence(last_sequence, 1)
                && first_offset > last_offset
        }
    };
    if continues {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::ProducerSequenceContinuous,
        format!(
            "producer_id={producer_id} epoch={epoch} first_sequence={first_sequence} first_offset={first_offset} previous={previous:?}"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_watermark_above_the_log_end_is_refused() {
        assert_eq!(high_watermark_within_log(5, 5), Ok(()));
        assert_eq!(high_watermark_within_log(0, 7), Ok(()));
        let violation = high_watermark_within_log(8, 7).expect_err("HW > LEO");
        assert_eq!(violation.invariant, Invariant::HighWatermarkWithinLog);
        assert_eq!(
            violation.to_string(),
            "invariant high_watermark_within_log violated: high_watermark=8 log_end_offset=7"
        );
    }

    #[test]
    fn a_batch_that_does_not_follow_the_log_end_is_refused() {
        assert_eq!(batch_follows(10, 10, 11), Ok(()));
        for (expected, base, next) in [(10, 9, 11), (10, 11, 12), (10, 10, 10), (10, 10, 3)] {
            let violation = batch_follows(expected, base, next).expect_err("not following");
            assert_eq!(
                violation.invariant,
                Invariant::OffsetsIncreasing,
                "{base} {next}"
            );
        }
        assert_eq!(log_end_moved_to(12, 12), Ok(()));
        assert_eq!(
            log_end_moved_to(12, 11).map_err(|v| v.invariant),
            Err(Invariant::OffsetsIncreasing)
        );
    }

    #[test]
    fn a_batch_read_back_with_another_length_or_crc_is_refused() {
        assert_eq!(batch_intact(0, 70, 70, true), Ok(()));
        assert_eq!(
            batch_intact(0, 70, 69, true).map_err(|v| v.invariant),
            Err(Invariant::StoredBatchIntact)
        );
        assert_eq!(
            batch_intact(0, 70, 70, false).map_err(|v| v.invariant),
            Err(Invariant::StoredBatchIntact)
        );
    }

    #[test]
    fn a_leader_epoch_going_back_is_refused() {
        assert_eq!(leader_epoch_not_older(3, 3), Ok(()));
        assert_eq!(leader_epoch_not_older(-1, 0), Ok(()));
        assert_eq!(
            leader_epoch_not_older(3, 2).map_err(|v| v.invariant),
            Err(Invariant::LeaderEpochNonDecreasing)
        );
        assert_eq!(epoch_entries_increasing(&[(0, 0), (2, 5), (3, 9)]), Ok(()));
        assert_eq!(epoch_entries_increasing(&[]), Ok(()));
        for bad in [
            [(2, 0), (2, 5)],
            [(2, 5), (1, 9)],
            [(1, 5), (2, 5)],
            [(1, 5), (2, 4)],
        ] {
            assert_eq!(
                epoch_entries_increasing(&bad).map_err(|v| v.invariant),
                Err(Invariant::LeaderEpochNonDecreasing),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_isr_member_that_is_not_a_replica_is_refused() {
        assert_eq!(isr_within_replicas(&[1, 3], &[1, 2, 3]), Ok(()));
        assert_eq!(isr_within_replicas(&[], &[1]), Ok(()));
        let violation = isr_within_replicas(&[1, 4], &[1, 2, 3]).expect_err("4 is no replica");
        assert_eq!(violation.invariant, Invariant::IsrWithinReplicas);
        assert!(violation.state.contains("isr=[1, 4]"), "{violation}");
    }

    #[test]
    fn a_truncation_below_the_acknowledged_high_watermark_is_refused() {
        assert_eq!(truncation_not_below_acknowledged(5, -1), Ok(()));
        assert_eq!(truncation_not_below_acknowledged(5, 5), Ok(()));
        assert_eq!(
            truncation_not_below_acknowledged(4, 5).map_err(|v| v.invariant),
            Err(Invariant::TruncationNotBelowAcknowledgedHighWatermark)
        );
    }

    #[test]
    fn a_recorded_sequence_that_does_not_continue_is_refused() {
        let last = |epoch, last| Some(ProducerLast { epoch, last });
        assert_eq!(sequence_continues(9, None, 0, 57, 3), Ok(()));
        assert_eq!(
            sequence_continues(9, last(0, Some((4, 10))), 0, 5, 11),
            Ok(())
        );
        assert_eq!(
            sequence_continues(9, last(0, Some((4, 10))), 1, 0, 11),
            Ok(())
        );
        assert_eq!(sequence_continues(9, last(0, None), 0, 7, 11), Ok(()));
        assert_eq!(
            sequence_continues(9, last(0, Some((i32::MAX, 10))), 0, 0, 11),
            Ok(()),
            "sequences wrap"
        );
        for (previous, epoch, first, offset) in [
            (last(0, Some((4, 10))), 0, 6, 11), // a gap
            (last(0, Some((4, 10))), 0, 4, 11), // a repeat
            (last(0, Some((4, 10))), 0, 5, 10), // offsets going back
            (last(0, Some((4, 10))), 1, 5, 11), // a new epoch not at 0
            (last(2, Some((4, 10))), 1, 0, 11), // an older epoch
        ] {
            assert_eq!(
                sequence_continues(9, previous, epoch, first, offset).map_err(|v| v.invariant),
                Err(Invariant::ProducerSequenceContinuous),
                "{previous:?} {epoch} {first} {offset}"
            );
        }
    }

    #[test]
    #[should_panic(
        expected = "invariant isr_within_replicas violated: isr=[2] replicas=[1] at partition t-0"
    )]
    fn enforce_stops_on_a_violation_naming_the_partition() {
        enforce(
            isr_within_replicas(&[1], &[1]),
            PartitionPlace {
                topic: "t",
                index: 0,
            },
        );
        enforce(
            isr_within_replicas(&[2], &[1]),
            PartitionPlace {
                topic: "t",
                index: 0,
            },
        );
    }
}
