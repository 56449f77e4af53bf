//! Client behaviours as real librdkafka applications. Each runs as its own OS process (started by
//! the harness as `kaos client …`) so that it can be killed, and reports every op it performs as a
//! JSON line on its standard output (see `docs/history.md`).
//!
//! # Layout
//! - [`spec`]: what the harness asks a client to do (serialised into the run directory).
//! - [`ops`]: the op stream on standard output.
//! - [`message`]: the message id carried in every record value.
//! - [`producer`]: a producer application (synchronous or asynchronous sends).
//! - [`outbox`]: the outbox producer (durable local file first, a sender drains it).
//! - [`txn`]: the transactional producer (transactions of sends and polls, committed or aborted).
//! - [`consumer`]: a consumer that polls assigned or subscribed partitions.
//! - [`processing`]: a consumer application that processes into a durable sink and commits.
//! - [`pipeline`]: the consume-transform-produce application, exactly once (transactions) or
//!   at least once (commit after producing).
//! - [`final_read`]: the drain after the faults heal: every partition from its start to its end.
//! - [`admin`]: topic creation and partition roles.
//! - [`bench`]: the producer throughput/latency benchmark (no history).
//! - [`limits`]: every bound in one place.
//! - `error`: [`WorkloadError`], what a client can end with.

pub mod admin;
pub mod bench;
pub mod consumer;
mod error;
pub mod final_read;
pub mod limits;
pub mod message;
pub mod ops;
pub mod outbox;
pub mod pipeline;
pub mod processing;
pub mod producer;
pub mod spec;
pub mod txn;

pub use error::WorkloadError;
pub use spec::{
    ClientSpec, CommitMode, ConsumerSpec, FinalReadSpec, OnFull, PipelineSpec, Processing,
    ProducerMode, ProducerSpec, TxnSettings,
};

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Set when the process receives SIGTERM or SIGINT: the client stops starting new work, finishes
/// what is in flight and exits.
pub fn stop_flag() -> Result<Arc<AtomicBool>, std::io::Error> {
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&flag))?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&flag))?;
    Ok(flag)
}

/// librdkafka's log lines (through rust-rdkafka's `log` calls) go to standard error, which the
/// harness keeps as the client's log. librdkafka logs at debug level only when its `debug`
/// property is set.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        eprintln!("{} {}: {}", record.level(), record.target(), record.args());
    }
    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

/// Asks librdkafka to build a producer (or a consumer) with `properties` over the ones the client
/// itself sets, without `bootstrap.servers` (so nothing connects), and drops it: a property it
/// refuses (`"acks" = "bogus"`, an unknown name, idempotence without `acks=all`) comes back as
/// librdkafka's message. The harness asks this of every client of a scenario at load.
pub fn check_client_config(
    properties: &std::collections::BTreeMap<String, String>,
    consumer: bool,
) -> Result<(), String> {
    use rdkafka::consumer::BaseConsumer;
    use rdkafka::producer::BaseProducer;
    let mut config = rdkafka::config::ClientConfig::new();
    if consumer {
        config.set("group.id", "kaos-check-config");
        config.set("enable.auto.commit", "false");
    }
    for (k, v) in properties {
        config.set(k, v);
    }
    let created = if consumer {
        config.create::<BaseConsumer>().map(drop)
    } else {
        config.create::<BaseProducer>().map(drop)
    };
    created.map_err(|e| e.to_string())
}

/// Runs the client a spec describes until it is done or told to stop.
pub fn run(spec: &ClientSpec) -> Result<(), WorkloadError> {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
    let stop = stop_flag()?;
    let mut sink = ops::OpSink::stdout();
    match spec {
        ClientSpec::Producer(p) => match (&p.mode, &p.outbox) {
            (ProducerMode::Outbox, Some(path)) => outbox::run(p, path, &mut sink, &stop),
            (ProducerMode::Outbox, None) => Err(WorkloadError::Incomplete(
                "mode outbox needs an outbox path".into(),
            )),
            (ProducerMode::Transactional, _) => txn::run(p, &mut sink, &stop),
            _ => producer::run(p, &mut sink, &stop),
        },
        ClientSpec::Consumer(c) => match (&c.pipeline, &c.processing) {
            (Some(pipeline), None) => pipeline::run(c, pipeline, &mut sink, &stop),
            (Some(_), Some(_)) => Err(WorkloadError::Incomplete(
                "a consumer is a pipeline or processes into a sink, not both".into(),
            )),
            (None, Some(processing)) => processing::run(c, processing, &mut sink, &stop),
            (None, None) => consumer::run(c, &mut sink, &stop),
        },
        ClientSpec::FinalRead(r) => final_read::run(r, &mut sink, &stop),
    }
}
