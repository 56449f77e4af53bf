//! Checks that read the repository's source rather than run it.
//!
//! # Layout
//! - [`module_graph`]: a crate's modules (found from its roots by their `mod` declarations) and
//!   the references between them (`use` and paths that start with `crate::`, `super::`, `self::`
//!   or the name of a child module); [`ModuleGraph::cycles`] lists its strongly connected
//!   components with one cycle of each spelled out. Code under `#[cfg(test)]` is not read: a
//!   test module may look anywhere.
//!
//! The test `tests/module_cycles.rs` runs it over every workspace crate.

pub mod module_graph;

pub use module_graph::{crate_graphs, Cycle, ModuleGraph};
