//! The cases of the two classes about what a broker claimed and did not keep: `lost_commit` (a
//! group resumed below an offset it had committed with an acknowledged OffsetCommit) and
//! `uncommitted_read` (a consumer was served a record that was never committed). The streaming
//! pass (`checker`) and `conclude` find them; this module words their evidence.

use crate::analysis::{Case, FaultWindow};
use crate::checker::{ms_seconds, seconds, Checker, LostCommit, Reset};
use crate::conclude::UnsureRead;
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
}
