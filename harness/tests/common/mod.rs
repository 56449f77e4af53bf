//! What the end-to-end tests share: the binaries under test, and `kaos run` of a scenario text.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// Writes `scenario` to `dir/scenario.toml` and runs it with `kaos run`, storing under
/// `dir/store`, with the broker binary `broker`.
pub fn kaos_run(dir: &Path, scenario: &str, broker: &Path) -> Output {
    let file = dir.join("scenario.toml");
    std::fs::write(&file, scenario).expect("write scenario");
    Command::new(kaos())
        .arg("run")
        .arg(&file)
        .arg("--store")
        .arg(dir.join("store"))
        .arg("--broker-bin")
        .arg(broker)
        .output()
        .expect("run kaos")
}

/// A command's stdout and stderr, as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
