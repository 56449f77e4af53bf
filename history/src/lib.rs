//! The history contract (`docs/history.md`) in one place: what every crate that writes or reads
//! `history.jsonl` shares. No I/O beyond serialising into a buffer.
//!
//! # Layout
//! - [`op`]: [`OpType`] (Jepsen's `invoke` / `ok` / `fail` / `info`), [`F`] (every op name: a
//!   new op is one variant there), [`Op`] (one line, owned), the process names [`NEMESIS`],
//!   [`HARNESS`]; [`op::LEGACY_LINK_FAULT_NAMES`], names earlier releases wrote that a stored
//!   history may still hold ([`Op::upgrade_legacy`] reads them as the op they meant); a
//!   pipeline's output message ids ([`pipeline_output_id`], [`pipeline_input_id`]).
//! - [`fault`]: [`FaultKind`] (each fault as the history names it: the op that opens its window,
//!   the ops that close it, its timeline row, the words of an explanation), [`Recovery`] (the ops
//!   that close windows), [`Timeline`] (the rows of the report's timeline), [`fault_target`].
//! - [`line`]: the line format, written and recognised by the same code: [`line::write_client_op`]
//!   (a client's line, fixed field order), [`line::write_stamped`] (the harness's line: `index`,
//!   `time_ns`, `process` put in front of a client's line), [`line::write_op`], and the literal
//!   field openings the checker's fast path reads ([`line::KEY_INDEX`], …).
//!
//! - [`record`]: a record as a `poll` op lists it: its field names (the optional
//!   [`record::HIGH_WATERMARK`], the client's high watermark when it received the record) and
//!   [`record::poll_record`], the value a client writes.
//! - [`message_key`]: the record key of a message a producer with a key space writes (a
//!   compacted topic's), which the checker computes back from the message id.
//!
//! Adding an op or a fault kind is one variant here; every `match` on them in the workspace is
//! exhaustive, so the compiler lists what else must decide about it.

pub mod fault;
pub mod line;
pub mod op;
pub mod record;

pub use fault::{fault_target, FaultKind, Recovery, Timeline};
pub use op::{
    pipeline_input_id, pipeline_output_id, Op, OpType, F, HARNESS, NEMESIS, PIPELINE_OUTPUT_BIT,
};

/// The key (an index into the producer's key space of `keys` keys) of message `id`: a producer
/// with `keys` writes it as the record key `k<index>`, and the checker of a compacted topic
/// reads which messages share a key from the ids alone.
pub fn message_key(id: u64, keys: u64) -> u64 {
    id % keys.max(1)
}

/// The record key bytes of key index `key` ([`message_key`]).
pub fn key_bytes(key: u64) -> Vec<u8> {
    format!("k{key}").into_bytes()
}
