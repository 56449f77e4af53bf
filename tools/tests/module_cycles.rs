//! No crate's module import graph has a cycle (ARCHITECTURE.md), except the ones listed in
//! `ALLOWED`, which may only shrink: an allowed cycle that is gone or changed fails too, so that
//! the list is updated as the cycles are removed.

use std::path::Path;

/// (crate root file, the modules of one cycle, sorted): cycles still allowed. Empty: no crate of
/// the workspace has a module cycle (issue 14 removed the broker's and the harness's); a new cycle
/// fails this test.
const ALLOWED: &[(&str, &[&str])] = &[];

#[test]
fn no_crate_has_a_module_cycle_beyond_the_allowed_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let graphs = tools::crate_graphs(root).expect("every crate's source parses");
    assert!(
        graphs.len() >= 6,
        "expected every workspace crate's targets, found {}",
        graphs.len()
    );
    let cycles: Vec<tools::Cycle> = graphs.iter().flat_map(|g| g.cycles()).collect();
    let allowed = |c: &tools::Cycle| {
        ALLOWED
            .iter()
            .any(|(graph, modules)| *graph == c.graph && *modules == c.modules.as_slice())
    };
    let new: Vec<String> = cycles
        .iter()
        .filter(|c| !allowed(c))
        .map(ToString::to_string)
        .collect();
    let gone: Vec<String> = ALLOWED
        .iter()
        .filter(|(graph, modules)| {
            !cycles
                .iter()
                .any(|c| c.graph == *graph && c.modules.as_slice() == *modules)
        })
        .map(|(graph, modules)| format!("{graph}: {}", modules.join(", ")))
        .collect();
    assert!(
        new.is_empty(),
        "module import cycles (break each, e.g. by moving what two modules share into a third):\n{}",
        new.join("\n")
    );
    assert!(
        gone.is_empty(),
        "allowed cycles that no longer exist as listed (shrink ALLOWED to what is left):\n{}",
        gone.join("\n")
    );
}
