//! Faults as nouns, after Jepsen's nemesis protocol (setup, invoke, teardown). Every fault kind
//! is defined once, in `kind.rs`: its name in a scenario ([`Fault`]), what it needs of a platform
//! ([`Capability`]), what must be set up before the first node starts ([`Setup`]), the action that
//! opens its window (invoke) and the one that closes it (teardown) ([`Protocol`]), the history's
//! [`FaultKind`] of that window (whose timeline row and words the report and the checker use),
//! and its checks at load ([`check`]). The seeded schedule and the `sequence` steps both carry
//! faults out one [`Action`] at a time through [`act`].
//!
//! # Layout
//! - `kind`: [`Fault`] and [`Action`], each with its definition.
//! - `params`: the `[nemesis]` table: faults, timing, link-fault parameters, `sequence` steps.
//! - `target`: whom a fault hits.
//! - `check`: the nemesis table checked against the scenario's cluster and platform.
//! - `act`: an action carried out on a platform and recorded (invoke, then ok, info or fail).
//! - `network`: partitions' sides and link faults' parameters.
//! - `client`: kill and pause of the scenario's own client processes.
//! - `host`: drop caches.
//! - `lag`: a follower's lag behind its leader, measured for `trigger_follower_lag_min`.
//!
//! Adding a fault kind: a variant of [`Fault`] and its arms in `kind.rs` (the compiler lists
//! them), an [`Action`] if none fits (its arms in `act`), the platform code it calls, and a
//! `kaos_history::FaultKind` when it opens a new kind of window.

pub mod act;
pub mod check;
pub mod client;
pub mod host;
pub mod kind;
pub mod lag;
pub mod network;
pub mod params;
pub mod target;

pub use kind::{Action, Fault, LinkKind, Protocol, Setup, Shape};
pub use params::{Nemesis, PlannedStep, Step, StepKind, StepTarget};
pub use target::Target;
