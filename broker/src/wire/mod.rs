//! Bytes only, no I/O: the record batch v2 header (validation, offset patching), the records inside
//! a produced batch (framing, codecs), and response framing.

pub mod batch;
pub mod control;
pub mod frame;
pub mod records;
