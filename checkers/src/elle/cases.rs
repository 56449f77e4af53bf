//! Cycles and the transaction-level findings as cases of the analysis.

use super::cycles::{Cycle, CycleClass};
use super::txn::{Mop, Outcome, Txn};
use crate::analysis::{AnomalyKind, Case, CycleStep};
use crate::history::Position;

/// The anomaly class of a cycle class.
pub fn anomaly_kind(class: CycleClass) -> AnomalyKind {
    match class {
        CycleClass::G0 => AnomalyKind::G0,
        CycleClass::G1c => AnomalyKind::G1c,
        CycleClass::GSingle => AnomalyKind::GSingle,
        CycleClass::G2Item => AnomalyKind::G2Item,
    }
}

/// A cycle as a case of its class: the explanation as its cause, every transaction's op index,
/// every message id and position of its steps, and the steps themselves.
pub fn case(cycle: &Cycle, topic: &str) -> Case {
    let mut ids: Vec<u64> = Vec::new();
    let mut positions: Vec<Position> = Vec::new();
    let mut op_indexes: Vec<u64> = Vec::new();
    let mut steps = Vec::new();
    for s in &cycle.steps {
        let data = s.key != u32::MAX;
        op_indexes.push(s.from);
        if data {
            for (id, offset) in [s.from_version, s.to_version] {
                if !ids.contains(&id) {
                    ids.push(id);
                }
                let at = position(topic, s.key, offset);
                if offset >= 0 && !positions.contains(&at) {
                    positions.push(at);
                }
            }
        }
        steps.push(CycleStep {
            from_op: s.from,
            to_op: s.to,
            kind: s.kind.to_owned(),
            partition: data.then_some(s.key as i32),
            // A realtime step's stamps (completion, invoke) in place of ids.
            from_id: (data || s.kind == "realtime").then_some(s.from_version.0),
            from_offset: data.then_some(s.from_version.1),
            to_id: (data || s.kind == "realtime").then_some(s.to_version.0),
            to_offset: data.then_some(s.to_version.1),
        });
    }
    Case {
        id: ids.first().copied().unwrap_or(0),
        topic: Some(topic.to_owned()),
        acknowledged_at: None,
        read_at: Vec::new(),
        op_indexes,
        time_s: 0.0,
        faults_nearby: Vec::new(),
        cause: cycle.explanation.clone(),
        sub_kind: cycle.order.map(str::to_owned),
        ids,
        process: None,
        positions,
        nodes: Vec::new(),
        cycle: steps,
        exit: None,
    }
}

/// Jepsen's precommitted reads: a transaction that read its own send (which, at read committed,
/// no consumer may see before the transaction commits), as cases.
pub fn precommitted_read_cases(txns: &[Txn], topic: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    for txn in txns {
        for mop in &txn.mops {
            let Mop::Read { key, offset, value } = *mop else {
                continue;
            };
            let own = txn.mops.iter().any(
                |m| matches!(*m, Mop::Send { key: k, value: v, .. } if k == key && v == value),
            );
            if !own {
                continue;
            }
            cases.push(Case {
                id: value,
                topic: Some(topic.to_owned()),
                acknowledged_at: None,
                read_at: vec![position(topic, key, offset)],
                op_indexes: vec![txn.index],
                time_s: 0.0,
                faults_nearby: Vec::new(),
                cause: format!(
                    "The transaction completed at op {} sent message {value} and read it back at \
                     partition {key} offset {offset} before it committed: a consumer at read \
                     committed must never see a write of a transaction still open.",
                    txn.index
                ),
                sub_kind: None,
                ids: vec![value],
                ..Case::default()
            });
        }
    }
    cases
}

/// Jepsen's internal send skip: one transaction's successive sends to a partition landed at
/// offsets with another message between them (known from an ack or a read), as cases.
pub fn int_send_skip_cases(txns: &[Txn], topic: &str) -> Vec<Case> {
    use std::collections::{BTreeMap, HashMap};
    // Every known (partition, offset) → message, and each message's offset.
    let mut at: BTreeMap<(u32, i64), u64> = BTreeMap::new();
    let mut offset_of: HashMap<(u32, u64), i64> = HashMap::new();
    for txn in txns.iter().filter(|t| t.outcome != Outcome::Fail) {
        for mop in &txn.mops {
            let (key, value, offset) = match *mop {
                Mop::Send {
                    key,
                    value,
                    offset: Some(offset),
                } => (key, value, offset),
                Mop::Read { key, offset, value } => (key, value, offset),
                Mop::Send { .. } => continue,
            };
            at.entry((key, offset)).or_insert(value);
            offset_of.entry((key, value)).or_insert(offset);
        }
    }
    let mut cases = Vec::new();
    for txn in txns.iter().filter(|t| t.outcome != Outcome::Fail) {
        let mut last: HashMap<u32, (u64, i64)> = HashMap::new();
        for mop in &txn.mops {
            let Mop::Send { key, value, .. } = *mop else {
                continue;
            };
            let Some(&offset) = offset_of.get(&(key, value)) else {
                continue;
            };
            if let Some((before, before_offset)) = last.insert(key, (value, offset)) {
                // Sends out of order (Jepsen's int-nonmonotonic-send) skip nothing here, and an
                // empty range must not be asked of the map (its start would pass its end).
                if before_offset >= offset {
                    continue;
                }
                let skipped: Vec<(i64, u64)> = at
                    .range((key, before_offset + 1)..(key, offset))
                    .map(|(&(_, o), &v)| (o, v))
                    .collect();
                if !skipped.is_empty() {
                    cases.push(int_send_skip_case(
                        txn,
                        topic,
                        key,
                        (before, before_offset),
                        (value, offset),
                        &skipped,
                    ));
                }
            }
        }
    }
    cases
}

fn int_send_skip_case(
    txn: &Txn,
    topic: &str,
    key: u32,
    before: (u64, i64),
    after: (u64, i64),
    skipped: &[(i64, u64)],
) -> Case {
    let position = |offset| position(topic, key, offset);
    let between: Vec<String> = skipped
        .iter()
        .map(|(o, v)| format!("message {v} at offset {o}"))
        .collect();
    Case {
        id: before.0,
        topic: Some(topic.to_owned()),
        acknowledged_at: None,
        read_at: Vec::new(),
        op_indexes: vec![txn.index],
        time_s: 0.0,
        faults_nearby: Vec::new(),
        cause: format!(
            "The transaction completed at op {} sent message {} (offset {}) and then message {} \
             (offset {}) to partition {key}, but {} lie between them: its sends were not \
             contiguous (another producer's writes interleaved, or a retry moved one).",
            txn.index,
            before.0,
            before.1,
            after.0,
            after.1,
            between.join(", ")
        ),
        sub_kind: None,
        ids: [before.0, after.0]
            .into_iter()
            .chain(skipped.iter().map(|s| s.1))
            .collect(),
        process: None,
        positions: [before.1, after.1]
            .into_iter()
            .chain(skipped.iter().map(|s| s.0))
            .map(position)
            .collect(),
        nodes: Vec::new(),
        cycle: Vec::new(),
        exit: None,
    }
}

/// Elle's G1b, intermediate reads (`elle.list-append/g1b-cases`, with a Kafka partition as the
/// key): a committed (`ok`) transaction's highest read of a partition — the state of it the
/// transaction observed last, as its rw edges read it — is a message another transaction sent
/// there before sending that partition more. Elle asks the same of a read's last element; the
/// writer may have any outcome (an aborted one is also an `aborted_read`), and a transaction's
/// reads of its own sends are not intermediate reads.
pub fn intermediate_read_cases(txns: &[Txn], topic: &str) -> Vec<Case> {
    use std::collections::{BTreeMap, HashMap};
    // (partition, message) → (writer, the writer's last send to that partition: value, offset).
    let mut intermediate: HashMap<(u32, u64), (usize, u64, Option<i64>)> = HashMap::new();
    for (n, txn) in txns.iter().enumerate() {
        let mut last: HashMap<u32, (u64, Option<i64>)> = HashMap::new();
        let mut earlier: Vec<(u32, u64)> = Vec::new();
        for mop in &txn.mops {
            if let Mop::Send { key, value, offset } = *mop {
                if let Some((before, _)) = last.insert(key, (value, offset)) {
                    earlier.push((key, before));
                }
            }
        }
        for (key, value) in earlier {
            let (last_value, last_offset) = last[&key];
            intermediate
                .entry((key, value))
                .or_insert((n, last_value, last_offset));
        }
    }
    if intermediate.is_empty() {
        return Vec::new();
    }
    let mut cases = Vec::new();
    for (n, txn) in txns.iter().enumerate() {
        if txn.outcome != Outcome::Ok {
            continue;
        }
        let mut highest: BTreeMap<u32, (i64, u64)> = BTreeMap::new();
        for mop in &txn.mops {
            if let Mop::Read { key, offset, value } = *mop {
                let top = highest.entry(key).or_insert((offset, value));
                if offset > top.0 {
                    *top = (offset, value);
                }
            }
        }
        for (key, (offset, value)) in highest {
            let Some(&(w, last_value, last_offset)) = intermediate.get(&(key, value)) else {
                continue;
            };
            if w == n {
                continue;
            }
            let writer = &txns[w];
            let last_at = last_offset.map_or(String::new(), |o| format!(" (offset {o})"));
            let mut positions = vec![position(topic, key, offset)];
            positions.extend(last_offset.map(|o| position(topic, key, o)));
            cases.push(Case {
                id: value,
                topic: Some(topic.to_owned()),
                acknowledged_at: None,
                read_at: vec![position(topic, key, offset)],
                op_indexes: vec![writer.index, txn.index],
                time_s: 0.0,
                faults_nearby: Vec::new(),
                cause: format!(
                    "The transaction completed at op {} read partition {key} up to offset \
                     {offset}, message {value}, which the transaction completed at op {} sent \
                     before its later send of message {last_value}{last_at} to the same \
                     partition: it observed that transaction's writes to partition {key} in part \
                     (an intermediate read, Elle's G1b). A Kafka poll is a cursor read that may \
                     end anywhere, even inside a committed transaction; the transaction's other \
                     writes are not lost for it.",
                    txn.index, writer.index
                ),
                sub_kind: None,
                ids: vec![value, last_value],
                process: None,
                positions,
                nodes: Vec::new(),
                cycle: Vec::new(),
                exit: None,
            });
        }
    }
    cases
}

/// Duplicates seen only by polls of transactions that failed or crashed (the streaming pass reads
/// `ok` polls only): a committed send acknowledged at one offset and returned at another by such
/// a poll, as Jepsen counts them ("a poller must never return bad information, whatever happens
/// to its transaction"). `known` are ids the streaming pass already reported.
pub fn aborted_poll_duplicate_cases(txns: &[Txn], topic: &str, known: &[u64]) -> Vec<Case> {
    use std::collections::HashMap;
    let mut acked: HashMap<(u32, u64), (i64, u64)> = HashMap::new();
    for txn in txns.iter().filter(|t| t.outcome == Outcome::Ok) {
        for mop in &txn.mops {
            if let Mop::Send {
                key,
                value,
                offset: Some(offset),
            } = *mop
            {
                acked.entry((key, value)).or_insert((offset, txn.index));
            }
        }
    }
    let mut cases = Vec::new();
    for txn in txns.iter().filter(|t| t.outcome != Outcome::Ok) {
        for mop in &txn.mops {
            let Mop::Read { key, offset, value } = *mop else {
                continue;
            };
            let Some(&(at, send_index)) = acked.get(&(key, value)) else {
                continue;
            };
            if at == offset || known.contains(&value) || cases.iter().any(|c: &Case| c.id == value)
            {
                continue;
            }
            cases.push(Case {
                id: value,
                topic: Some(topic.to_owned()),
                acknowledged_at: Some(position(topic, key, at)),
                read_at: vec![position(topic, key, offset)],
                op_indexes: vec![send_index, txn.index],
                time_s: 0.0,
                faults_nearby: Vec::new(),
                cause: format!(
                    "Acknowledged at partition {key} offset {at} (op {send_index}) but returned at \
                     offset {offset} by a poll of the transaction that ended without committing at \
                     op {}: the message is in the log twice, whatever became of that transaction.",
                    txn.index
                ),
                sub_kind: Some("acknowledged_elsewhere".to_owned()),
                ids: Vec::new(),
                ..Case::default()
            });
        }
    }
    cases
}

/// Partition `key` of `topic` at `offset`.
fn position(topic: &str, key: u32, offset: i64) -> Position {
    Position {
        topic: topic.to_owned(),
        partition: key as i32,
        offset,
    }
}
