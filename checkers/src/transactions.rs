//! A transactional producer's `txn` ops (`docs/history.md`): one op per transaction whose value
//! lists its micro-ops. The per-message rules read each `send` micro-op as a send (invoked with the
//! transaction, completed as it completed: committed sends are acknowledged at their offsets,
//! aborted ones failed, unknown ones info) and each `poll` micro-op as a poll; the cycle analysis
//! (`elle`) reads the completed transaction as a whole.

use crate::checker::{flag, Checker, Meta};
use crate::elle::{Mop, Outcome, Txn};
use crate::history::{self, Flat, OpType};

/// The micro-ops of a `txn` value (`{"mops": [...]}`), each with its `f`.
fn mops(value: &serde_json::Value) -> impl Iterator<Item = (&str, &serde_json::Value)> {
    value
        .get("mops")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| Some((m.get("f")?.as_str()?, m)))
}

impl Checker {
    /// One `txn` op: its sends and polls through the per-message rules, and (completed) the
    /// transaction for the cycle analysis.
    pub(crate) fn on_txn(&mut self, meta: &Meta<'_>, value: &serde_json::Value) {
        let invoke = meta.kind == OpType::Invoke;
        if invoke {
            self.txn_open_since.insert(meta.process, meta.time_ns);
        } else {
            self.txn_open_since.remove(&meta.process);
        }
        if invoke {
            match meta.monotonic_ns {
                Some(ns) => self.txn_invoked.insert(meta.process, ns),
                None => self.txn_invoked.remove(&meta.process),
            };
        }
        let mut elle_mops = Vec::new();
        for (f, mop) in mops(value) {
            match f {
                "send" => {
                    let flat = history::flat_of(mop);
                    let topic = flat.topic.as_deref().map(|t| self.topic_id(t));
                    if invoke {
                        self.on_send_invoke(meta, flat.id, topic);
                        if let Some(id) = flat.id {
                            let slot = self.slot(id, meta.index);
                            self.msgs.get_mut(slot).flags |= flag::TXN;
                        }
                    } else {
                        self.on_send_completion(meta, &flat, topic);
                        self.note_txn_topic(flat.topic.as_deref());
                        if !self.is_txn_topic(flat.topic.as_deref()) {
                            continue;
                        }
                        if let (Some(value), Some(key)) = (flat.id, partition_key(&flat)) {
                            // An aborted transaction's sends have no place in any version order.
                            let offset = flat.offset.filter(|_| meta.kind != OpType::Fail);
                            elle_mops.push(Mop::Send { key, value, offset });
                        }
                    }
                }
                "poll" if !invoke => {
                    let (records, _) = history::polled_records(mop);
                    if records.is_empty() {
                        continue;
                    }
                    let poll = Meta {
                        kind: OpType::Ok,
                        error: None,
                        ..*meta
                    };
                    self.on_poll(&poll, &records);
                    for r in &records {
                        self.note_txn_topic(Some(&r.topic));
                        if !self.is_txn_topic(Some(&r.topic)) {
                            continue;
                        }
                        if let (Some(value), Ok(key)) = (r.id, u32::try_from(r.partition)) {
                            elle_mops.push(Mop::Read {
                                key,
                                offset: r.offset,
                                value,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        if !invoke {
            let outcome = match meta.kind {
                OpType::Ok => Outcome::Ok,
                OpType::Fail => Outcome::Fail,
                OpType::Info | OpType::Invoke => Outcome::Info,
            };
            // The realtime order: the client's stamps of the invoke and (for a known outcome) of
            // the completion; a transaction of unknown outcome may commit any time later.
            let invoked_ns = self.txn_invoked.remove(&meta.process);
            let completed_ns = meta.monotonic_ns.filter(|_| outcome == Outcome::Ok);
            self.txns.push(Txn {
                index: meta.index,
                process: meta.process,
                outcome,
                mops: elle_mops,
                invoked_ns,
                completed_ns,
            });
        }
    }

    /// Whether `topic` is the one the cycle analysis keys by partition (a micro-op without a
    /// topic is taken to be of it).
    fn is_txn_topic(&self, topic: Option<&str>) -> bool {
        match (topic, &self.txn_topic) {
            (Some(t), Some(txn_topic)) => t == txn_topic,
            _ => true,
        }
    }

    /// The topic the transactions' partitions belong to: the first one seen. The cycle analysis
    /// keys by partition, so the micro-ops of any other topic are left out of it (a note says
    /// so): a consume-transform-produce pipeline reads one topic and writes another, and its
    /// claim is judged by `pipeline_lost` / `pipeline_duplicate`.
    fn note_txn_topic(&mut self, topic: Option<&str>) {
        let Some(topic) = topic else { return };
        match &self.txn_topic {
            None => self.txn_topic = Some(topic.to_owned()),
            Some(t) if t != topic && !self.notes.iter().any(|n| n.contains(MIXED_TOPICS)) => {
                let note = format!("{MIXED_TOPICS} ({t} and {topic}): the cycle analysis reads {t}'s micro-ops only.");
                self.notes.push(note);
            }
            Some(_) => {}
        }
    }

    /// Transactions translated from another history format (Jepsen's), with their topic and the
    /// cycle analysis's options, for `finish`.
    pub(crate) fn transactions(
        &mut self,
        txns: Vec<Txn>,
        topic: &str,
        options: crate::elle::Options,
    ) {
        self.txns.extend(txns);
        self.txn_topic.get_or_insert_with(|| topic.to_owned());
        self.elle_options = options;
    }
}

const MIXED_TOPICS: &str = "transactions wrote to or read from more than one topic";

/// A send micro-op's partition as the cycle analysis's key.
fn partition_key(flat: &Flat<'_>) -> Option<u32> {
    flat.partition.and_then(|p| u32::try_from(p).ok())
}
