//! The end-to-end claim of a consume-transform-produce pipeline (`workloads::pipeline`): every
//! input message the pipeline's group committed past is in the output topic, and once. The
//! pipeline writes input message `id`'s output as message `kaos_history::pipeline_output_id(id)`,
//! the same id however often it processes the input, so the output topic's final read shows each
//! input's copies:
//! - `pipeline_lost`: an input message in the final read of the input topic, below the offset
//!   the pipeline's group committed for its partition (an `offset_commit` ok: a committed
//!   transaction's offsets, or an at-least-once commit), whose output the final read of the
//!   output topic lacks;
//! - `pipeline_duplicate`: an input message whose output the final read of the output topic
//!   holds at two or more positions.
//!
//! Pipelines are known from their `client_start` specs (`pipeline.output_topic`, the consumer's
//! topic and `group.id`). Both classes need a completed final read.

use crate::analysis::{Anomaly, AnomalyKind, Case};
use crate::checker::{flag, ms_seconds, seconds, Checker, Msg};
use crate::limits;
use kaos_history::{pipeline_input_id, pipeline_output_id};

/// One pipeline client's topics and group, as its spec says.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Pipeline {
    input: String,
    output: String,
    group: String,
    transactional: bool,
}

/// Found cases of one class: the exact count and the evidence kept (up to the cap).
#[derive(Default)]
struct Found {
    count: u64,
    cases: Vec<Case>,
}

impl Found {
    fn push(&mut self, case: impl FnOnce() -> Case) {
        self.count += 1;
        if self.cases.len() < limits::CASES_PER_CLASS_MAX {
            self.cases.push(case());
        }
    }

    fn into_anomaly(self, kind: AnomalyKind, checker: &Checker) -> Option<Anomaly> {
        (self.count > 0).then(|| Anomaly {
            kind,
            allowance: kind.allowance(&checker.expect),
            count: self.count,
            cases_omitted: self.count - self.cases.len() as u64,
            cases: self.cases,
        })
    }
}

/// The final read's positions of a message: (pk, offset).
fn final_positions(msg: &Msg) -> Vec<(u32, i64)> {
    let mut at = Vec::new();
    if msg.has(flag::FINAL_AT_FIRST) {
        at.push((msg.read_pk, msg.read_offset));
    }
    at.extend(
        msg.others()
            .iter()
            .filter(|r| r.in_final)
            .map(|r| (r.pk, r.offset)),
    );
    at
}

impl Checker {
    /// The history's pipelines (from `client_start` specs), each once.
    fn pipelines(&self) -> Vec<Pipeline> {
        let mut found: Vec<Pipeline> = self
            .client_specs
            .values()
            .filter_map(|spec| {
                let p = spec.get("pipeline")?;
                let text = |v: Option<&serde_json::Value>| v?.as_str().map(str::to_owned);
                Some(Pipeline {
                    input: text(spec.get("topic"))?,
                    output: text(p.get("output_topic"))?,
                    group: text(spec.pointer("/config/group.id"))?,
                    transactional: p.get("transactional")?.as_bool()?,
                })
            })
            .collect();
        found.sort();
        found.dedup();
        found
    }

    /// The highest offset `group` committed for partition `pk`, if any.
    fn group_committed(&self, group: &str, pk: u32) -> Option<i64> {
        self.committed
            .iter()
            .filter(|((g, p), _)| *p == pk && self.names.name(*g) == group)
            .map(|(_, &offset)| offset)
            .max()
    }

    /// Adds `pipeline_lost` and `pipeline_duplicate` to `anomalies` (in report order); returns a
    /// note when input messages of the final read have no output and lie at or above the offset
    /// the group committed (the pipeline never processed them: those classes cannot judge them).
    pub(crate) fn pipeline_anomalies(
        &self,
        anomalies: &mut Vec<Anomaly>,
        duration_s: f64,
    ) -> Option<String> {
        let pipelines = self.pipelines();
        if pipelines.is_empty() || !self.final_read.completed {
            return None;
        }
        let (mut lost, mut duplicate) = (Found::default(), Found::default());
        let (mut inputs, mut unprocessed) = (0u64, 0u64);
        for msg in self.msgs.iter() {
            if let Some(input) = pipeline_input_id(msg.id) {
                let at = final_positions(msg);
                if at.len() >= 2 {
                    let pipeline = pipelines.iter().find(|p| {
                        at.iter()
                            .any(|&(pk, _)| self.topic_of(pk) == p.output.as_str())
                    });
                    duplicate.push(|| self.duplicate_case(input, &at, pipeline, duration_s));
                }
                continue;
            }
            if !msg.has(flag::IN_FINAL) {
                continue;
            }
            let at = final_positions(msg);
            let is_input = |&(pk, _): &(u32, i64)| {
                let topic = self.topic_of(pk);
                pipelines.iter().any(|p| p.input == topic)
            };
            if !at.iter().any(is_input) {
                continue;
            }
            inputs += 1;
            let output_in_final = self
                .msg(pipeline_output_id(msg.id))
                .is_some_and(|o| o.has(flag::IN_FINAL));
            if output_in_final {
                continue;
            }
            let mut judged = false;
            for (pk, offset) in at {
                let topic = self.topic_of(pk);
                for p in pipelines.iter().filter(|p| p.input == topic) {
                    match self.group_committed(&p.group, pk) {
                        Some(committed) if offset < committed => {
                            judged = true;
                            lost.push(|| self.lost_case(msg, pk, offset, committed, p, duration_s))
                        }
                        _ => {}
                    }
                }
            }
            if !judged {
                unprocessed += 1;
            }
        }
        anomalies.extend(lost.into_anomaly(AnomalyKind::PipelineLost, self));
        anomalies.extend(duplicate.into_anomaly(AnomalyKind::PipelineDuplicate, self));
        anomalies.sort_by_key(|a| a.kind);
        (unprocessed > 0).then(|| {
            format!(
                "{unprocessed} input message(s) in the final read have no output and lie at or above the offset the pipeline's group committed: the pipeline never processed them (it stalled, or stopped before its input drained), so pipeline_lost and pipeline_duplicate say nothing about them (the pipeline's claim was checked for the other inputs, {} of {inputs}).",
                inputs - unprocessed
            )
        })
    }

    /// `[expect] pipeline_output_min_percent`, per pipeline: what it did not meet, with when the
    /// pipeline last made progress (its group's last offset commit, a transaction it began and
    /// never completed) and when the last fault ended. Needs a completed final read.
    pub(crate) fn pipeline_progress_unmet(&self) -> Vec<String> {
        let min = u64::from(self.expect.pipeline_output_min_percent);
        if min == 0 || !self.final_read.completed {
            return Vec::new();
        }
        let mut unmet = Vec::new();
        for p in self.pipelines() {
            let (mut inputs, mut through) = (0u64, 0u64);
            for msg in self.msgs.iter() {
                if pipeline_input_id(msg.id).is_some()
                    || !msg.has(flag::IN_FINAL)
                    || !final_positions(msg)
                        .iter()
                        .any(|&(pk, _)| self.topic_of(pk) == p.input)
                {
                    continue;
                }
                inputs += 1;
                let output = self.msg(pipeline_output_id(msg.id));
                if output.is_some_and(|o| o.has(flag::IN_FINAL)) {
                    through += 1;
                }
            }
            if through * 100 >= inputs * min {
                continue;
            }
            unmet.push(format!(
                "expected at least {min}% of the {inputs} input messages in the final read of {} \
                 to have their output in the final read of {} (pipeline group {}), found {through} \
                 ({:.1}%): the pipeline stopped making progress; {}",
                p.input,
                p.output,
                p.group,
                through as f64 * 100.0 / inputs as f64,
                self.progress_clause(&p)
            ));
        }
        unmet
    }

    /// When pipeline `p` last made progress, what it left open, and when the last fault ended.
    fn progress_clause(&self, p: &Pipeline) -> String {
        let group = |g: u32| self.names.name(g) == p.group;
        let last_commit = self
            .last_commit
            .iter()
            .filter(|((g, _), _)| group(*g))
            .map(|(_, c)| c.time_ns)
            .max();
        let mut parts = vec![match last_commit {
            Some(ns) => format!("its group's last offset commit at {:.1} s", seconds(ns)),
            None => "its group never committed an offset".to_owned(),
        }];
        // Only a transaction begun after that commit can be what held the pipeline up (an
        // instance SIGKILLed earlier leaves its last one open too).
        let mut open: Vec<(u64, u32)> = self
            .txn_open_since
            .iter()
            .filter(|(process, &ns)| {
                ns >= last_commit.unwrap_or(0)
                    && self.process_group.get(process).is_some_and(|&g| group(g))
            })
            .map(|(&process, &ns)| (ns, process))
            .collect();
        open.sort_unstable();
        parts.extend(open.iter().map(|&(ns, process)| {
            format!(
                "{} began a transaction at {:.1} s that never completed",
                self.names.name(process),
                seconds(ns)
            )
        }));
        let last_fault_end = self
            .faults
            .iter()
            .map(|w| w.end_or(seconds(self.last_time_ns)))
            .max_by(f64::total_cmp);
        parts.push(match last_fault_end {
            Some(s) => format!("the last fault ended at {s:.1} s"),
            None => "no fault was injected".to_owned(),
        });
        parts.join("; ")
    }

    fn topic_of(&self, pk: u32) -> &str {
        self.pks
            .get(pk as usize)
            .map_or("?", |&(topic, _)| self.names.name(topic))
    }

    fn lost_case(
        &self,
        msg: &Msg,
        pk: u32,
        offset: i64,
        committed: i64,
        p: &Pipeline,
        duration_s: f64,
    ) -> Case {
        let time_s = ms_seconds(msg.read_ms);
        let nearby = self.faults_near(time_s, duration_s);
        let how = if p.transactional {
            "its input offsets were committed without its output: the transaction that \
             committed them (send_offsets_to_transaction) did not make its writes visible \
             with them — a marker missing on an output partition, or the offsets applied \
             before or without the transaction's commit"
        } else {
            "the application committed its input offsets although the output was not written"
        };
        let cause = format!(
            "Input message {} sits at partition {} offset {offset} of {}, below offset \
             {committed} that the pipeline's group {} committed, yet its output (message {}) \
             is not in the final read of {}: {how}; {}.",
            msg.id,
            self.partition_of(pk),
            p.input,
            p.group,
            pipeline_output_id(msg.id),
            p.output,
            self.fault_clause(&nearby)
        );
        let mut case = self.base_case(msg.id, Some(msg), time_s, &nearby, cause);
        case.positions = vec![self.position_of(pk, offset)];
        case.ids = vec![msg.id, pipeline_output_id(msg.id)];
        case
    }

    fn duplicate_case(
        &self,
        input: u64,
        at: &[(u32, i64)],
        pipeline: Option<&Pipeline>,
        duration_s: f64,
    ) -> Case {
        let output = self.msg(pipeline_output_id(input));
        let time_s = output.map_or(0.0, |m| ms_seconds(m.invoke_ms));
        let nearby = self.faults_near(time_s, duration_s);
        let listed: Vec<String> = at
            .iter()
            .map(|&(pk, offset)| format!("partition {} offset {offset}", self.partition_of(pk)))
            .collect();
        let how = match pipeline {
            Some(p) if p.transactional => {
                "with exactly-once transactions a second copy means that a transaction whose \
                 input offsets did not commit still made its output visible (a zombie that \
                 was not fenced, or an abort that did not reach every partition)"
            }
            _ => {
                "at least once: the output was written and the process died (or failed) \
                 before it committed the input offsets, so the input was read and processed \
                 again"
            }
        };
        let cause = format!(
            "Input message {input}'s output (message {}) is {} times in the final read of the \
             output topic, at {}: {how}; {}.",
            pipeline_output_id(input),
            at.len(),
            listed.join(", "),
            self.fault_clause(&nearby)
        );
        let mut case = self.base_case(input, self.msg(input), time_s, &nearby, cause);
        case.positions = at
            .iter()
            .map(|&(pk, offset)| self.position_of(pk, offset))
            .collect();
        case.ids = vec![input, pipeline_output_id(input)];
        case
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::{AnomalyKind, Verdict};
    use crate::Expectations;
    use kaos_history::pipeline_output_id;

    /// A pipeline history: input messages 1..=`inputs` at partition 0 offsets 0.., the group's
    /// commit at `committed`, and the final read of the output holding each id of `outputs` at
    /// the next offset (an id twice is written twice).
    fn history(inputs: u64, committed: i64, outputs: &[u64]) -> String {
        history_with(inputs, committed, outputs, false)
    }

    /// [`history`], and with `open_txn` a transaction the pipeline began after its commit and
    /// never completed.
    fn history_with(inputs: u64, committed: i64, outputs: &[u64], open_txn: bool) -> String {
        let mut lines = vec![
            r#"{"index":0,"time_ns":0,"process":"harness","type":"info","f":"client_start","value":{"client":"consumer-1","spec":{"kind":"consumer","bootstrap":"b","topic":"in","config":{"group.id":"g"},"pipeline":{"output_topic":"out","transactional":true,"message_size_bytes":100}}}}"#.to_string(),
        ];
        let mut index = 1;
        let mut line = |process: &str, kind: &str, f: &str, value: String| {
            let l = format!(
                r#"{{"index":{index},"time_ns":{},"process":"{process}","type":"{kind}","f":"{f}","value":{value}}}"#,
                index * 1_000_000
            );
            index += 1;
            l
        };
        for id in 1..=inputs {
            let offset = id - 1;
            lines.push(line(
                "producer-1",
                "invoke",
                "send",
                format!(r#"{{"id":{id},"topic":"in"}}"#),
            ));
            lines.push(line(
                "producer-1",
                "ok",
                "send",
                format!(r#"{{"id":{id},"topic":"in","partition":0,"offset":{offset}}}"#),
            ));
        }
        lines.push(line(
            "consumer-1",
            "ok",
            "offset_commit",
            format!(r#"{{"group":"g","topic":"in","partition":0,"offset":{committed}}}"#),
        ));
        if open_txn {
            lines.push(line(
                "consumer-1",
                "invoke",
                "txn",
                r#"{"commit":true,"mops":[{"f":"poll"}]}"#.into(),
            ));
        }
        lines.push(line("harness", "invoke", "final_read", "null".into()));
        let read: Vec<String> = (1..=inputs)
            .map(|id| {
                format!(
                    r#"{{"topic":"in","partition":0,"offset":{},"id":{id}}}"#,
                    id - 1
                )
            })
            .collect();
        lines.push(line(
            "final-reader",
            "ok",
            "poll",
            format!(r#"{{"records":[{}]}}"#, read.join(",")),
        ));
        let written: Vec<String> = outputs
            .iter()
            .enumerate()
            .map(|(offset, &id)| {
                format!(
                    r#"{{"topic":"out","partition":0,"offset":{offset},"id":{}}}"#,
                    pipeline_output_id(id)
                )
            })
            .collect();
        lines.push(line(
            "final-reader-output",
            "ok",
            "poll",
            format!(r#"{{"records":[{}]}}"#, written.join(",")),
        ));
        lines.push(line("harness", "ok", "final_read", "null".into()));
        lines.join("\n")
    }

    fn count(analysis: &crate::Analysis, kind: AnomalyKind) -> u64 {
        analysis.anomaly(kind).map_or(0, |a| a.count)
    }

    #[test]
    fn every_committed_input_once_in_the_output_is_valid() {
        let a =
            crate::check_text(&history(3, 3, &[1, 2, 3]), Expectations::default()).expect("checks");
        assert_eq!(count(&a, AnomalyKind::PipelineLost), 0);
        assert_eq!(count(&a, AnomalyKind::PipelineDuplicate), 0);
        assert_eq!(a.verdict, Verdict::Valid, "{:?}", a.notes);
    }

    #[test]
    fn a_committed_input_without_output_is_lost_and_one_written_twice_is_a_duplicate() {
        let a =
            crate::check_text(&history(3, 3, &[1, 2, 2]), Expectations::default()).expect("checks");
        let lost = a.anomaly(AnomalyKind::PipelineLost).expect("pipeline_lost");
        assert_eq!(lost.count, 1);
        assert_eq!(lost.cases[0].id, 3);
        assert!(
            lost.cases[0].cause.contains("below offset 3"),
            "{}",
            lost.cases[0].cause
        );
        assert_eq!(
            a.verdict,
            Verdict::Invalid,
            "pipeline_lost is forbidden by default"
        );
        let dup = a
            .anomaly(AnomalyKind::PipelineDuplicate)
            .expect("pipeline_duplicate");
        assert_eq!((dup.count, dup.cases[0].id), (1, 2));
        assert_eq!(dup.cases[0].positions.len(), 2);
        assert_eq!(dup.cases[0].ids, vec![2, pipeline_output_id(2)]);
    }

    #[test]
    fn an_input_above_the_committed_offset_may_still_lack_its_output() {
        // Offset 2 (message 3) is not committed: the pipeline has not finished it.
        let a =
            crate::check_text(&history(3, 2, &[1, 2]), Expectations::default()).expect("checks");
        assert_eq!(count(&a, AnomalyKind::PipelineLost), 0);
        // Valid, but the report says the pipeline's claim covered 2 of the 3 inputs.
        let unprocessed = |a: &crate::Analysis| {
            a.notes
                .iter()
                .find(|n| n.contains("have no output and lie at or above"))
                .cloned()
        };
        let note = unprocessed(&a).expect("a note on the unprocessed input");
        assert!(
            note.starts_with("1 input message(s)") && note.contains("2 of 3"),
            "{note}"
        );
        // Every input through the pipeline: no such note.
        let a =
            crate::check_text(&history(3, 3, &[1, 2, 3]), Expectations::default()).expect("checks");
        assert_eq!(unprocessed(&a), None, "{:?}", a.notes);
    }

    fn with_output_min(percent: u8) -> Expectations {
        let mut expect = Expectations::default();
        expect.pipeline_output_min_percent = percent;
        expect
    }

    #[test]
    fn a_pipeline_that_stalled_fails_its_progress_requirement_and_says_when_it_stopped() {
        // 10 inputs, 3 through: lost and duplicates are absent, only progress can catch it.
        let a = crate::check_text(&history_with(10, 3, &[1, 2, 3], true), with_output_min(90))
            .expect("checks");
        assert_eq!(count(&a, AnomalyKind::PipelineLost), 0);
        assert_eq!(count(&a, AnomalyKind::PipelineDuplicate), 0);
        assert_eq!(a.verdict, Verdict::Invalid);
        assert_eq!(a.unmet.len(), 1, "{:?}", a.unmet);
        let unmet = &a.unmet[0];
        for part in [
            "expected at least 90% of the 10 input messages in the final read of in",
            "output in the final read of out (pipeline group g), found 3 (30.0%)",
            "its group's last offset commit at 0.0 s",
            "consumer-1 began a transaction at 0.0 s that never completed",
            "no fault was injected",
        ] {
            assert!(unmet.contains(part), "{part:?} not in {unmet}");
        }
        // The same history without the requirement: valid, as before it existed.
        let a = crate::check_text(
            &history_with(10, 3, &[1, 2, 3], true),
            Expectations::default(),
        )
        .expect("checks");
        assert_eq!(a.verdict, Verdict::Valid, "{:?}", a.unmet);
    }

    #[test]
    fn a_pipeline_that_kept_up_meets_its_progress_requirement() {
        let a = crate::check_text(
            &history(10, 9, &[1, 2, 3, 4, 5, 6, 7, 8, 9]),
            with_output_min(90),
        )
        .expect("checks");
        assert!(a.unmet.is_empty(), "{:?}", a.unmet);
        assert_eq!(a.verdict, Verdict::Valid);
        let a = crate::check_text(
            &history(10, 8, &[1, 2, 3, 4, 5, 6, 7, 8]),
            with_output_min(90),
        )
        .expect("checks");
        assert!(a.unmet[0].contains("found 8 (80.0%)"), "{:?}", a.unmet);
    }

    #[test]
    fn without_a_pipeline_spec_nothing_is_judged() {
        let text = history(3, 3, &[1]).replace(
            r#","pipeline":{"output_topic":"out","transactional":true,"message_size_bytes":100}"#,
            "",
        );
        let a = crate::check_text(&text, Expectations::default()).expect("checks");
        assert_eq!(count(&a, AnomalyKind::PipelineLost), 0);
    }
}
