//! Replica divergence, from per-replica dumps of the log taken after a run (our broker only).
//!
//! A dump is JSON lines, one per record, plus one summary line per partition:
//! ```text
//! {"topic":"t","partition":0,"offset":5,"leader_epoch":2,"id":17,"crc_ok":true}
//! {"topic":"t","partition":0,"summary":true,"log_start_offset":0,"log_end_offset":9,"high_watermark":9,"leader_epochs":[[0,0],[2,4]]}
//! ```
//! Pure: the caller reads the files and passes `(node, text)` pairs.
//!
//! Cases (class `replica_divergence`), by `sub_kind`:
//! - `different_records`: two replicas hold records with different ids at one offset below both of
//!   their high watermarks.
//! - `missing_below_hw`: a replica lacks offsets (at or above its log start) that another replica
//!   holds and that the highest high watermark covers; one case per run of consecutive offsets.
//! - `corrupt_record`: a record whose CRC failed, below the highest high watermark.

use std::collections::{BTreeMap, HashMap};

use crate::analysis::Case;
use crate::history::Position;
use crate::limits;

/// A dump line that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("replica dump of {node}, line {line_number}: {reason}")]
pub struct DumpError {
    pub node: String,
    pub line_number: usize,
    pub reason: String,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    node: usize,
    id: Option<u64>,
    epoch: i64,
    crc_ok: bool,
}

#[derive(Debug, Clone, Copy)]
struct Summary {
    log_start: i64,
    hw: i64,
}

#[derive(Default)]
struct PartitionDumps {
    offsets: BTreeMap<i64, Vec<Held>>,
    summaries: HashMap<usize, Summary>,
}

/// The divergence cases between the replicas' dumps; `dumps` holds `(node, dump text)` pairs.
pub fn divergence(dumps: &[(String, &str)]) -> Result<Vec<Case>, DumpError> {
    let mut partitions: BTreeMap<(String, i32), PartitionDumps> = BTreeMap::new();
    for (node, (name, text)) in dumps.iter().enumerate() {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            read_dump_line(&mut partitions, node, line).map_err(|reason| DumpError {
                node: name.clone(),
                line_number: i + 1,
                reason,
            })?;
        }
    }
    let names: Vec<&str> = dumps.iter().map(|(n, _)| n.as_str()).collect();
    let mut cases = Vec::new();
    for ((topic, partition), part) in &partitions {
        let at = PartitionAt {
            topic,
            partition: *partition,
            names: &names,
        };
        partition_cases(&at, part, &mut cases);
    }
    Ok(cases)
}

/// One dump line into `partitions`; the reason it cannot be read, if so.
fn read_dump_line(
    partitions: &mut BTreeMap<(String, i32), PartitionDumps>,
    node: usize,
    line: &str,
) -> Result<(), String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let int = |key: &str| value.get(key).and_then(serde_json::Value::as_i64);
    let topic = value
        .get("topic")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| "no topic".to_owned())?;
    let partition = int("partition")
        .and_then(|p| i32::try_from(p).ok())
        .ok_or_else(|| "no partition".to_owned())?;
    let dumps = partitions.entry((topic.to_owned(), partition)).or_default();
    if value.get("summary").and_then(serde_json::Value::as_bool) == Some(true) {
        let hw = int("high_watermark").ok_or_else(|| "no high_watermark".to_owned())?;
        dumps.summaries.insert(
            node,
            Summary {
                log_start: int("log_start_offset").unwrap_or(0),
                hw,
            },
        );
        return Ok(());
    }
    let offset = int("offset").ok_or_else(|| "no offset".to_owned())?;
    dumps.offsets.entry(offset).or_default().push(Held {
        node,
        id: value.get("id").and_then(serde_json::Value::as_u64),
        epoch: int("leader_epoch").unwrap_or(-1),
        crc_ok: value
            .get("crc_ok")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(true),
    });
    Ok(())
}

/// The partition a case is about, and the nodes' names.
struct PartitionAt<'a> {
    topic: &'a str,
    partition: i32,
    names: &'a [&'a str],
}

impl PartitionAt<'_> {
    fn name(&self, node: usize) -> &str {
        self.names.get(node).copied().unwrap_or("?")
    }

    fn position(&self, offset: i64) -> Position {
        Position {
            topic: self.topic.to_owned(),
            partition: self.partition,
            offset,
        }
    }

    /// A case at `offsets` of this partition, seen on `nodes`.
    fn case(
        &self,
        sub: &str,
        ids: Vec<u64>,
        offsets: Vec<i64>,
        nodes: Vec<String>,
        cause: String,
    ) -> Case {
        Case {
            id: ids.first().copied().unwrap_or(0),
            topic: Some(self.topic.to_owned()),
            acknowledged_at: None,
            read_at: Vec::new(),
            op_indexes: Vec::new(),
            time_s: 0.0,
            faults_nearby: Vec::new(),
            cause,
            sub_kind: Some(sub.to_owned()),
            ids,
            process: None,
            positions: offsets.into_iter().map(|o| self.position(o)).collect(),
            nodes,
            cycle: Vec::new(),
            exit: None,
        }
    }
}

/// Runs of missing offsets per node: (first, last, an id another replica holds there).
type MissingRuns = BTreeMap<usize, Vec<(i64, i64, Option<u64>)>>;

/// The divergence cases of one partition.
fn partition_cases(at: &PartitionAt<'_>, part: &PartitionDumps, cases: &mut Vec<Case>) {
    let Some(max_hw) = part.summaries.values().map(|s| s.hw).max() else {
        return; // no summary: nothing says what the replicas promised
    };
    let mut missing: MissingRuns = BTreeMap::new();
    for (&offset, held) in &part.offsets {
        different_records_case(at, part, offset, held, cases);
        if offset < max_hw {
            for h in held.iter().filter(|h| !h.crc_ok) {
                let cause = format!(
                    "{} holds a record whose CRC fails at partition {} offset {offset}, below the high watermark {max_hw}: a torn or corrupted write that recovery did not truncate.",
                    at.name(h.node),
                    at.partition
                );
                let mut case = at.case(
                    "corrupt_record",
                    Vec::new(),
                    vec![offset],
                    vec![at.name(h.node).to_owned()],
                    cause,
                );
                case.id = h.id.unwrap_or(0);
                cases.push(case);
            }
            let other_id = held.iter().find_map(|h| h.id);
            for (&node, summary) in &part.summaries {
                if offset < summary.log_start || held.iter().any(|h| h.node == node) {
                    continue;
                }
                let runs = missing.entry(node).or_default();
                match runs.last_mut() {
                    Some(run) if run.1 + 1 == offset => run.1 = offset,
                    _ => runs.push((offset, offset, other_id)),
                }
            }
        }
    }
    missing_cases(at, part, max_hw, missing, cases);
}

/// `different_records`: replicas holding different ids at `offset`, below their high watermarks.
fn different_records_case(
    at: &PartitionAt<'_>,
    part: &PartitionDumps,
    offset: i64,
    held: &[Held],
    cases: &mut Vec<Case>,
) {
    let hw_of = |node: usize| part.summaries.get(&node).map(|s| s.hw);
    let below: Vec<&Held> = held
        .iter()
        .filter(|h| hw_of(h.node).is_some_and(|hw| offset < hw))
        .collect();
    let mut ids: Vec<Option<u64>> = below.iter().map(|h| h.id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() < 2 {
        return;
    }
    let described: Vec<String> = below
        .iter()
        .map(|h| {
            format!(
                "{} holds {} (leader epoch {}, high watermark {})",
                at.name(h.node),
                h.id.map_or_else(
                    || "a record without id".to_owned(),
                    |i| format!("message {i}")
                ),
                h.epoch,
                hw_of(h.node).unwrap_or(-1)
            )
        })
        .collect();
    let ids: Vec<u64> = ids.iter().flatten().copied().collect();
    let cause = format!(
        "At partition {} offset {offset}, below the high watermarks: {}; the replicas' logs forked, so a leader change kept a record another replica had overwritten (high-watermark truncation or an unclean election).",
        at.partition,
        described.join("; ")
    );
    let nodes = below.iter().map(|h| at.name(h.node).to_owned()).collect();
    cases.push(at.case("different_records", ids, vec![offset], nodes, cause));
}

/// `missing_below_hw`: one case per run of offsets a replica lacks.
fn missing_cases(
    at: &PartitionAt<'_>,
    part: &PartitionDumps,
    max_hw: i64,
    missing: MissingRuns,
    cases: &mut Vec<Case>,
) {
    for (node, runs) in missing {
        let summary = part.summaries.get(&node).copied().unwrap_or(Summary {
            log_start: 0,
            hw: -1,
        });
        for (first, last, id) in runs {
            let range = if first == last {
                format!("offset {first}")
            } else {
                format!("offsets {first} to {last}")
            };
            let cause = format!(
                "{} lacks partition {} {range}, which another replica holds and the highest high watermark ({max_hw}) covers (its own high watermark is {}): it truncated records the partition had committed, or never caught up.",
                at.name(node),
                at.partition,
                summary.hw
            );
            let offsets = (first..=last).take(limits::SKIPPED_EVIDENCE_MAX).collect();
            let mut case = at.case(
                "missing_below_hw",
                id.into_iter().collect(),
                offsets,
                vec![at.name(node).to_owned()],
                cause,
            );
            case.id = id.unwrap_or(0);
            cases.push(case);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N1: &str = r#"{"topic":"t","partition":0,"offset":0,"leader_epoch":0,"id":1,"crc_ok":true}
{"topic":"t","partition":0,"offset":1,"leader_epoch":0,"id":2,"crc_ok":true}
{"topic":"t","partition":0,"offset":2,"leader_epoch":1,"id":3,"crc_ok":true}
{"topic":"t","partition":0,"summary":true,"log_start_offset":0,"log_end_offset":3,"high_watermark":3,"leader_epochs":[[0,0],[1,2]]}
"#;

    #[test]
    fn identical_replicas_do_not_diverge() {
        let cases = divergence(&[("n1".to_owned(), N1), ("n2".to_owned(), N1)]).expect("valid");
        assert!(cases.is_empty(), "{cases:#?}");
    }

    #[test]
    fn a_fork_below_both_high_watermarks_and_a_missing_offset() {
        let n2 = N1.replace(
            r#""offset":2,"leader_epoch":1,"id":3"#,
            r#""offset":2,"leader_epoch":0,"id":9"#,
        );
        let n3 = r#"{"topic":"t","partition":0,"offset":0,"leader_epoch":0,"id":1,"crc_ok":false}
{"topic":"t","partition":0,"summary":true,"log_start_offset":0,"log_end_offset":1,"high_watermark":1,"leader_epochs":[[0,0]]}"#;
        let cases = divergence(&[
            ("n1".to_owned(), N1),
            ("n2".to_owned(), n2.as_str()),
            ("n3".to_owned(), n3),
        ])
        .expect("valid");
        let kinds: Vec<(&str, Vec<String>)> = cases
            .iter()
            .map(|c| (c.sub_kind.as_deref().unwrap_or(""), c.nodes.clone()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("corrupt_record", vec!["n3".to_owned()]),
                ("different_records", vec!["n1".to_owned(), "n2".to_owned()]),
                ("missing_below_hw", vec!["n3".to_owned()]),
            ]
        );
        assert_eq!(cases[1].ids, vec![3, 9]);
        assert!(
            cases[2].cause.contains("offsets 1 to 2"),
            "{}",
            cases[2].cause
        );
    }

    #[test]
    fn a_bad_line_names_the_node_and_line() {
        let err = divergence(&[("n1".to_owned(), "{\"topic\":\"t\"}\n")]).expect_err("bad");
        assert_eq!(err.line_number, 1);
        assert!(err.to_string().contains("n1"), "{err}");
    }
}
