//! Bytes only, no I/O: the record batch v2 header (validation, offset patching) and response framing.

pub mod batch;
pub mod frame;
