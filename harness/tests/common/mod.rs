//! What the end-to-end tests share: the binaries under test.

use std::path::PathBuf;

/// The `kaos` binary built for this test run.
pub fn kaos() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kaos"))
}

/// `kaos-broker` beside it (`cargo test --workspace` builds it).
pub fn broker_bin() -> PathBuf {
    let b = kaos().with_file_name("kaos-broker");
    assert!(
        b.is_file(),
        "{} is missing: build the workspace (cargo test --workspace builds it)",
        b.display()
    );
    b
}
