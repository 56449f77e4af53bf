//! Checks that read the repository's source rather than run it.
//!
//! # Layout
//! - [`sources`]: the workspace's crate targets (root files), the file a `mod name;` brings in,
//!   and which items are test-only; shared by the two checks.
//! - [`module_graph`]: a crate's modules (found from its roots by their `mod` declarations) and
//!   the references between them (`use` and paths that start with `crate::`, `super::`, `self::`
//!   or the name of a child module); [`ModuleGraph::cycles`] lists its strongly connected
//!   components with one cycle of each spelled out. Code under `#[cfg(test)]` is not read: a
//!   test module may look anywhere.
//! - [`long_functions`]: non-test functions over [`long_functions::LINES_MAX`] lines with no
//!   `// length:` reason written above them.
//!
//! The tests `tests/module_cycles.rs` and `tests/long_functions.rs` run them over the workspace.

pub mod long_functions;
pub mod module_graph;
pub mod sources;

pub use long_functions::{long_functions, LongFunction};
pub use module_graph::{crate_graphs, Cycle, ModuleGraph};
