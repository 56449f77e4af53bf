//! The cases of the two classes about what a broker claimed and did not keep: `lost_commit` (a
//! group resumed below an offset it had committed with an acknowledged OffsetCommit) and
//! `uncommitted_read` (a consumer was served a record that was not committed: at or above the
//! high watermark its client recorded with it, or — for reads without one — read before its ack
//! and gone from the final read). The streaming pass (`checker`) and `conclude` find them; this
//! module words their evidence.

use crate::analysis::{Case, FaultWindow};
use crate::checker::{ms_seconds, seconds, AboveHighWatermark, Checker, LostCommit, Reset};
use crate::conclude::{FinalAt, UnsureRead};
use crate::limits;

impl Checker {
    /// A start below the group's latest acknowledged commit: the commit and the start, and the
    /// faults that began between them (from `FAULT_NEARBY_S` before the commit).
    pub(crate) fn lost_commit_case(&self, lost: &LostCommit, duration_s: f64) -> Case {
        let commit_s = seconds(lost.commit.time_ns);
        let start_s = seconds(lost.time_ns);
        let between: Vec<&FaultWindow> = self
            .faults
            .iter()
            .filter(|w| w.start_s >= commit_s - limits::FAULT_NEARBY_S && w.start_s <= start_s)
            .collect();
        let nearby = if between.is_empty() {
            self.faults_near(start_s, duration_s)
        } else {
            between
        };
        let group = match self.names.name(lost.group) {
            "" => "(unnamed)",
            g => g,
        };
        let partition = self.partition_of(lost.pk);
        let how = match lost.after {
            Reset::Seek => "a seek after an assignment, from the committed offsets it fetched",
            Reset::Committed => "its first read after an assignment",
        };
        let cause = format!(
            "Group {group} committed offset {} for partition {partition} (op {}, by {}, at \
             {commit_s:.2} s; the commit was acknowledged) and committed no lower offset since, \
             yet {} started reading partition {partition} at offset {} (op {}, {how}, at \
             {start_s:.2} s): an acknowledged commit was lost — the coordinator answered the \
             OffsetCommit before its __consumer_offsets record was replicated and then failed, \
             or a new coordinator loaded an offsets log without it; {}.",
            lost.commit.offset,
            lost.commit.index,
            self.names.name(lost.commit.process),
            self.names.name(lost.process),
            lost.start,
            lost.index,
            self.fault_clause(&nearby)
        );
        let mut case = self.base_case(0, None, start_s, &nearby, cause);
        case.sub_kind = Some(
            match lost.after {
                Reset::Seek => "seek",
                Reset::Committed => "first_poll",
            }
            .to_owned(),
        );
        case.process = Some(self.names.name(lost.process).to_owned());
        case.positions = vec![self.position_of(lost.pk, lost.commit.offset)];
        case.read_at = vec![self.position_of(lost.pk, lost.start)];
        case.op_indexes = vec![lost.commit.index, lost.index];
        case
    }

    /// A consumer read of a record not acknowledged there, which the final read does not hold:
    /// `final_id` is the message the final read has at that offset, None when it ends before.
    pub(crate) fn uncommitted_read_case(
        &self,
        read: &UnsureRead,
        final_id: Option<u64>,
        duration_s: f64,
    ) -> Case {
        let msg = self.msg(read.id);
        let time_s = ms_seconds(read.time_ms);
        let nearby = self.faults_near(time_s, duration_s);
        let partition = self.partition_of(read.pk);
        let (sub, now) = match final_id {
            Some(other) => (
                "overwritten",
                format!("the final read holds message {other} at that offset"),
            ),
            None => (
                "truncated",
                "the final read ends before that offset".to_owned(),
            ),
        };
        let cause = format!(
            "A consumer read message {} at partition {partition} offset {} (op {}, at \
             {time_s:.2} s) before the message was acknowledged there, and {now}: the broker \
             served a record that was not yet committed (above the high watermark), and the \
             log lost it when its leader changed{}; {}.",
            read.id,
            read.offset,
            read.index,
            self.scenario_clause(),
            self.fault_clause(&nearby)
        );
        let mut case = self.base_case(read.id, msg, time_s, &nearby, cause);
        case.sub_kind = Some(sub.to_owned());
        case.positions = vec![self.position_of(read.pk, read.offset)];
        case.ids = std::iter::once(read.id).chain(final_id).collect();
        if !case.op_indexes.contains(&read.index) {
            case.op_indexes.push(read.index);
            case.op_indexes.sort_unstable();
        }
        case
    }

    /// A consumer read at or above the high watermark its client recorded with the record: the
    /// broker served an uncommitted record. `then` is what the final read holds there.
    pub(crate) fn above_high_watermark_case(
        &self,
        read: &AboveHighWatermark,
        then: FinalAt,
        duration_s: f64,
    ) -> Case {
        let id = read.id.unwrap_or(0);
        let msg = read.id.and_then(|id| self.msg(id));
        let time_s = ms_seconds(read.time_ms);
        let nearby = self.faults_near(time_s, duration_s);
        let partition = self.partition_of(read.pk);
        let what = match read.id {
            Some(id) => format!("message {id}"),
            None => "a record without a message id".to_owned(),
        };
        let acked = match msg {
            Some(m) if m.acked_offset().is_some() && m.ack_ms <= read.time_ms => {
                ", after its producer's ack"
            }
            Some(m) if m.acked_offset().is_some() => ", before its producer's ack",
            Some(_) => ", never acknowledged",
            None => "",
        };
        let later = match then {
            FinalAt::Unknown => String::new(),
            FinalAt::Same => {
                "; the final read holds it there (it was committed later, but a consumer may \
                 only be served records below the high watermark)"
                    .to_owned()
            }
            FinalAt::Other(Some(other)) => {
                format!(
                    "; the final read holds message {other} at that offset: the record was lost"
                )
            }
            FinalAt::Other(None) => {
                "; the final read holds a record without an id at that offset".to_owned()
            }
            FinalAt::Ends => {
                "; the final read ends before that offset: the record was lost".to_owned()
            }
            FinalAt::Skipped => "; the final read has no record at that offset".to_owned(),
        };
        let cause = format!(
            "A consumer ({}) read {what} at partition {partition} offset {} (op {}, at \
             {time_s:.2} s{acked}) while its client's high watermark for the partition, from the \
             Fetch responses it had received, was {}: the broker served a record at or above the \
             high watermark, not yet committed{later}{}; {}.",
            self.names.name(read.process),
            read.offset,
            read.index,
            read.high_watermark,
            self.scenario_clause(),
            self.fault_clause(&nearby)
        );
        let mut case = self.base_case(id, msg, time_s, &nearby, cause);
        case.sub_kind = Some("above_high_watermark".to_owned());
        case.process = Some(self.names.name(read.process).to_owned());
        case.positions = vec![self.position_of(read.pk, read.offset)];
        if let FinalAt::Other(Some(other)) = then {
            case.ids = read.id.into_iter().chain(Some(other)).collect();
        }
        if !case.op_indexes.contains(&read.index) {
            case.op_indexes.push(read.index);
            case.op_indexes.sort_unstable();
        }
        case
    }
}
