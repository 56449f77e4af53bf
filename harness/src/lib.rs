//! `kaos`: the chaos and verification harness, as a library (`main.rs` parses the command line
//! and calls [`commands`]).
//!
//! # Layout
//! - `commands`: what each `kaos` subcommand does.
//! - `scenario`: scenario files (TOML), validated at load (asking the platforms what they can do).
//! - `cluster`: the cluster a scenario describes and the platform kind (what platforms need).
//! - `run`: the run loop (cluster, clients, nemesis, heal, final read, check, report).
//! - `platform`: how nodes are started, killed and restarted (`local`: child processes;
//!   `docker`: containers on a private network).
//! - `nemesis`: the seeded fault schedule, target resolution, and carrying both out.
//! - `fault`: each fault kind defined once (parameters, checks, what it needs, how it starts and
//!   ends, its history window), Jepsen's nemesis protocol.
//! - `netns`: the run's private network (a namespace per node, a bridge) and partitions (nftables).
//! - `proxy`: the userspace TCP proxy in front of each broker for link faults (delay, reset, …).
//! - `soak`: `kaos soak` and `kaos run --seeds`: seeds, when to stop, what a run keeps, the record.
//! - `matrix`: matrix files (a base scenario and the settings to vary) and their combinations.
//! - `clients`: client processes and their op pipes.
//! - `bench`: `kaos bench broker`, producer throughput and latency.
//! - `history`: the single writer of `history.jsonl`.
//! - `profile`: broker profiles (how to start, configure and judge any Kafka-compatible broker;
//!   the built-in library is `harness/profiles/*.toml`).
//! - `process`: process groups, parent-death signal, signalling by PID.
//! - `progress`: the progress bar (elapsed, acknowledged sends, faults in force).
//! - `limits`: every bound in one place.
//!
//! Exit codes: 0 the verdict is valid; 1 anomalies the scenario does not allow were found, or the
//! verdict is unknown (no complete final read); 2 usage or harness error.

pub mod bench;
pub mod clients;
pub mod cluster;
pub mod commands;
pub mod fault;
pub mod history;
pub mod lazyfs;
pub mod limits;
pub mod matrix;
pub mod nemesis;
pub mod netns;
pub mod platform;
pub mod process;
pub mod profile;
pub mod progress;
pub mod proxy;
pub mod run;
pub mod scenario;
pub mod soak;
