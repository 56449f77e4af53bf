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
use crate::checker::{flag, ms_seconds, Checker, Msg};
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

    /// Adds `pipeline_lost` and `pipeline_duplicate` to `anomalies` (in report order).
    pub(crate) fn pipeline_anomalies(&self, anomalies: &mut Vec<Anomaly>, duration_s: f64) {
        let pipelines = self.pipelines();
        if pipelines.is_empty() || !self.final_read.completed {
            return;
        }
        let (mut lost, mut duplicate) = (Found::default(), Found::default());
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
            let output_in_final = self
                .msg(pipeline_output_id(msg.id))
                .is_some_and(|o| o.has(flag::IN_FINAL));
            if output_in_final {
                continue;
            }
            for (pk, offset) in final_positions(msg) {
                let topic = self.topic_of(pk);
                for p in pipelines.iter().filter(|p| p.input == topic) {
                    match self.group_committed(&p.group, pk) {
                        Some(committed) if offset < committed => {
                            lost.push(|| self.lost_case(msg, pk, offset, committed, p, duration_s))
                        }
                        _ => {}
                    }
                }
            }
        }
        anomalies.extend(lost.into_anomaly(AnomalyKind::PipelineLost, self));
        anomalies.extend(duplicate.into_anomaly(AnomalyKind::PipelineDuplicate, self));
        anomalies.sort_by_key(|a| a.kind);
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
