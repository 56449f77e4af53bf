//! No non-test function over 100 lines without a reason written directly above it
//! (`// length: …`), in the crates listed in `ENFORCED` (issue 14). A crate joins the list once
//! its long functions are split or explained; the list only grows.

use std::path::Path;

/// Workspace members the check holds for.
const ENFORCED: &[&str] = &[
    "broker",
    "checkers",
    "harness",
    "history",
    "results",
    "tools",
    "workloads",
];

#[test]
fn no_long_function_without_a_reason_in_the_enforced_crates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let long = tools::long_functions(root, ENFORCED).expect("every enforced crate's source parses");
    let text: Vec<String> = long.iter().map(ToString::to_string).collect();
    assert!(
        long.is_empty(),
        "{} long functions:\n{}",
        long.len(),
        text.join("\n")
    );
}

#[test]
fn an_unknown_crate_is_an_error_not_an_empty_list() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let err = tools::long_functions(root, &["no-such-crate"]).expect_err("unknown member");
    assert!(err.contains("no workspace member no-such-crate"), "{err}");
}
