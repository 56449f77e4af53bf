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
    /// Transactions of several sends across partitions (and, with `transaction.polls`, a poll),
    /// committed or aborted as the seed says; one `txn` op each (needs `transactional.id`).
    Transactional,
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
    /// Mode transactional: the shape of each transaction.
    #[serde(default)]
    pub transaction: TxnSettings,
    /// Seeds which transactions abort (mode transactional) and where their sends go.
    #[serde(default)]
    pub seed: u64,
    /// A key space (modes sync and async): message `id` gets the record key
    /// `k<id % keys>` (`kaos_history::message_key`), for a compacted topic; 0 = keyless.
    #[serde(default)]
    pub keys: u64,
}

/// What each transaction of a transactional producer does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TxnSettings {
    /// Sends per transaction, spread over the topic's partitions by the seed.
    #[serde(default = "default_txn_sends")]
    pub sends: u32,
    /// The fraction of transactions the application aborts instead of committing (chosen from
    /// the seed and the transaction's first message id).
    #[serde(default)]
    pub abort_fraction: f64,
    /// Jepsen-style: each transaction also polls the topic once (a read_committed consumer
    /// assigned every partition), its records part of the transaction's op.
    #[serde(default)]
    pub polls: bool,
    /// Wait this long before `init_transactions`: a successor instance that starts later and
    /// fences an earlier one with the same `transactional.id` (a zombie, when that one is paused).
    #[serde(default)]
    pub init_delay_ms: u64,
}

fn default_txn_sends() -> u32 {
    4
}

impl Default for TxnSettings {
    fn default() -> Self {
        TxnSettings {
            sends: default_txn_sends(),
            abort_fraction: 0.0,
            polls: false,
            init_delay_ms: 0,
        }
    }
}

impl TxnSettings {
    /// A clear reason when the settings cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if self.sends == 0 || self.sends > crate::limits::TXN_SENDS_MAX {
            return Err(format!(
                "transaction.sends = {} must be within 1..={}",
                self.sends,
                crate::limits::TXN_SENDS_MAX
            ));
        }
        if self.init_delay_ms > crate::limits::TXN_INIT_DELAY_MS_MAX {
            return Err(format!(
                "transaction.init_delay_ms = {} is more than {}",
                self.init_delay_ms,
                crate::limits::TXN_INIT_DELAY_MS_MAX
            ));
        }
        if !(0.0..=1.0).contains(&self.abort_fraction) || self.abort_fraction.is_nan() {
            return Err(format!(
                "transaction.abort_fraction {} must be between 0 and 1",
                self.abort_fraction
            ));
        }
        Ok(())
    }
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
    /// Join the group (`group.id`) with `subscribe()` instead of assigning every partition.
    #[serde(default)]
    pub subscribe: bool,
    /// What the application does with each message; `None`: it only reads (a `poll` op per batch).
    #[serde(default)]
    pub processing: Option<Processing>,
    /// The durable local sink processed message ids are appended to (with `processing`).
    #[serde(default)]
    pub sink: Option<std::path::PathBuf>,
    /// Seeds which messages fail processing (`processing.fail_fraction`).
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// A consume-transform-produce application: what it reads goes to `pipeline.output_topic`
    /// (instead of `processing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<PipelineSpec>,
}

/// A consume-transform-produce application (`crate::pipeline`): reads the consumer's topic from
/// the group's committed offsets and writes each input message's output (message id
/// `kaos_history::pipeline_output_id(id)`, the same partition number) to `output_topic`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    pub output_topic: String,
    /// Exactly-once (KIP-98 / KIP-447): the outputs and the input offsets
    /// (`send_offsets_to_transaction`) in one transaction. Without: produce, wait for every
    /// delivery, then commit the input offsets (at least once).
    pub transactional: bool,
    /// The producer's librdkafka properties (`transactional.id` for a transactional one).
    #[serde(default)]
    pub producer_config: BTreeMap<String, String>,
    pub message_size_bytes: usize,
    /// Transactional: the fraction of transactions the application aborts after sending their
    /// outputs and offsets (drawn from the seed and the transaction's number), then reads the
    /// batch again: a correct broker drops both, so nothing is lost or doubled.
    #[serde(default)]
    pub abort_fraction: f64,
    /// Transactional: the timeout given to `send_offsets_to_transaction`, in ms (0: the default,
    /// `TXN_TIMEOUT_MS`). A call that has not returned after twice this is left behind and the
    /// transaction recorded failed (`SendOffsetsHung`, see `crate::pipeline`).
    #[serde(default)]
    pub send_offsets_timeout_ms: u64,
}

impl PipelineSpec {
    /// A clear reason when the settings cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..1.0).contains(&self.abort_fraction) || self.abort_fraction.is_nan() {
            return Err(format!(
                "pipeline abort_fraction {} must be at least 0 and below 1 (a pipeline that aborts everything never moves)",
                self.abort_fraction
            ));
        }
        if self.abort_fraction > 0.0 && !self.transactional {
            return Err("pipeline abort_fraction needs transactional = true".into());
        }
        if self.send_offsets_timeout_ms > crate::limits::SEND_OFFSETS_TIMEOUT_MS_MAX {
            return Err(format!(
                "pipeline send_offsets_timeout_ms {} is above {}",
                self.send_offsets_timeout_ms,
                crate::limits::SEND_OFFSETS_TIMEOUT_MS_MAX
            ));
        }
        if self.send_offsets_timeout_ms > 0 && !self.transactional {
            return Err("pipeline send_offsets_timeout_ms needs transactional = true".into());
        }
        Ok(())
    }
}

/// A consumer application that processes what it reads: each processed message's id is appended
/// to a durable local sink (fdatasync before the `process` op is reported), and the group's
/// position is committed the way `commit` says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Processing {
    pub commit: CommitMode,
    /// Processing threads (`highest_received` and `contiguous_processed` only; default 4).
    #[serde(default)]
    pub workers: u32,
    /// How long processing one message takes.
    #[serde(default)]
    pub process_ms: u64,
    /// The fraction of messages whose processing fails (chosen from the seed and the message id);
    /// the application logs the failure (`process` fail) and moves on.
    #[serde(default)]
    pub fail_fraction: f64,
    /// How often the multi-threaded modes commit.
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
}

fn default_commit_interval_ms() -> u64 {
    500
}

/// When the application commits the group's position (the offset of the next message to read).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CommitMode {
    /// librdkafka's defaults: `enable.auto.commit` with `enable.auto.offset.store`; what `poll`
    /// returned is committed in the background every `auto.commit.interval.ms`, processed or not.
    Auto,
    /// Commit the end of each polled batch (synchronously), then process the batch.
    BeforeProcessing,
    /// Process each polled batch, then commit its end (synchronously).
    AfterProcessing,
    /// Worker threads process; every `commit_interval_ms` the poller commits the highest offset it
    /// has handed out, processed or not (the naive multi-threaded consumer).
    HighestReceived,
    /// Worker threads process; the poller commits only the contiguous prefix of processed offsets.
    ContiguousProcessed,
}

impl CommitMode {
    pub fn threaded(self) -> bool {
        matches!(
            self,
            CommitMode::HighestReceived | CommitMode::ContiguousProcessed
        )
    }
}

impl Processing {
    /// Processing threads this configuration runs (1 = on the polling thread).
    pub fn worker_count(&self) -> u32 {
        match (self.commit.threaded(), self.workers) {
            (false, _) => 1,
            (true, 0) => 4,
            (true, n) => n,
        }
    }

    /// A clear reason when the settings cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.fail_fraction) || self.fail_fraction.is_nan() {
            return Err(format!(
                "fail_fraction {} must be between 0 and 1",
                self.fail_fraction
            ));
        }
        if !self.commit.threaded() && self.workers > 1 {
            return Err(format!(
                "workers = {} needs commit = \"highest_received\" or \"contiguous_processed\"",
                self.workers
            ));
        }
        if self.worker_count() > crate::limits::PROCESSING_WORKERS_MAX {
            return Err(format!(
                "workers = {} is more than {}",
                self.workers,
                crate::limits::PROCESSING_WORKERS_MAX
            ));
        }
        if self.process_ms > crate::limits::PROCESS_MS_MAX {
            return Err(format!(
                "process_ms = {} is more than {}",
                self.process_ms,
                crate::limits::PROCESS_MS_MAX
            ));
        }
        if self.commit_interval_ms == 0
            || self.commit_interval_ms > crate::limits::COMMIT_INTERVAL_MS_MAX
        {
            return Err(format!(
                "commit_interval_ms = {} must be within 1..={}",
                self.commit_interval_ms,
                crate::limits::COMMIT_INTERVAL_MS_MAX
            ));
        }
        Ok(())
    }
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
