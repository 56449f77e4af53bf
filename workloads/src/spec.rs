//! What the harness asks a client process to do. Written as JSON into the run directory and passed
//! to `kaos client --spec FILE`, so every run records exactly what its clients did.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClientSpec {
    Producer(ProducerSpec),
    Consumer(ConsumerSpec),
    FinalRead(FinalReadSpec),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProducerMode {
    /// Wait for each message's delivery report before sending the next.
    #[default]
    Sync,
    /// Hand messages to librdkafka's buffer and collect delivery reports as they come.
    Async,
    /// Write each message durably to a local outbox first; a sender drains the outbox and a
    /// restarted producer resumes it.
    Outbox,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerSpec {
    pub bootstrap: String,
    pub topic: String,
    /// Message ids of this process are `id_base`, `id_base + 1`, …: unique across the run.
    pub id_base: u64,
    pub mode: ProducerMode,
    /// Messages per second the application hands to the producer; 0 = as fast as it can.
    pub rate_per_s: u64,
    pub message_size_bytes: usize,
    /// Stop after this many messages (0 = until told to stop).
    #[serde(default)]
    pub count_max: u64,
    /// What an asynchronous application does when librdkafka's buffer is full.
    #[serde(default)]
    pub on_full: OnFull,
    /// The outbox file (mode outbox); its cursor file sits beside it.
    #[serde(default)]
    pub outbox: Option<std::path::PathBuf>,
    /// librdkafka properties, passed through unchanged.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

/// The application's choice when the producer's buffer (`queue.buffering.max.messages` /
/// `queue.buffering.max.kbytes`) is full.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// Wait until there is room (back-pressure reaches the application).
    #[default]
    Block,
    /// Give the message up (recorded as a `drop` op): the application keeps its pace.
    Drop,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    pub bootstrap: String,
    pub topic: String,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalReadSpec {
    pub bootstrap: String,
    pub topic: String,
    /// Give up (exit non-zero, the final read incomplete) after this long.
    pub timeout_ms: u64,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}
