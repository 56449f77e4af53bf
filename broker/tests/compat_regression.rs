//! librdkafka's own tests as a regression suite (issue 17): `broker/compat/run.sh` runs the quick,
//! reliably passing sub-tests listed in `broker/compat/regression.txt` against this build's
//! kaos-broker (a fresh broker per test, three for the tests that need replication factor 3), and
//! the test fails naming every listed sub-test that did not pass. The runner is built once into
//! `target/compat` (from the rdkafka-sys sources in the cargo registry) and reused afterwards.
//! The whole list (`broker/compat/librdkafka-tests.txt`, ~30 min) is run by hand: see
//! docs/compat.md.

use std::path::Path;
use std::process::Command;

#[test]
fn librdkafka_regression_subtests_pass() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = manifest.join("compat/run.sh");
    let list = manifest.join("compat/regression.txt");
    let work = manifest.join("../target/compat");
    let out = tempfile::NamedTempFile::new().expect("temp file for the table");
    let status = Command::new("bash")
        .arg(&script)
        .arg("--list")
        .arg(&list)
        .arg("--work")
        .arg(&work)
        .arg("--out")
        .arg(out.path())
        .arg("--broker-bin")
        .arg(env!("CARGO_BIN_EXE_kaos-broker"))
        // One sub-test that hangs must not hold CI for the default 15 minutes.
        .env("COMPAT_TEST_TIMEOUT_S", "300")
        .status()
        .expect("run broker/compat/run.sh");
    assert_ne!(
        status.code(),
        Some(2),
        "run.sh could not build or start (its stderr above; the build log in {})",
        work.join("build.log").display()
    );
    let table = std::fs::read_to_string(out.path()).expect("run.sh writes its table");
    let list_text = std::fs::read_to_string(&list).expect("the regression list");
    let listed: Vec<&str> = list_text
        .lines()
        .filter_map(|l| l.split_whitespace().next().filter(|n| !n.starts_with('#')))
        .collect();
    // Rows: | sub-test | mode | result | s | reason |; a listed sub-test must pass (a skip
    // here means the runner lost a capability the list relies on).
    let mut not_passed = Vec::new();
    for name in &listed {
        let row = table
            .lines()
            .find(|l| l.split('|').nth(1).map(str::trim) == Some(*name));
        match row {
            Some(row) if row.split('|').nth(3).map(str::trim) == Some("pass") => {}
            Some(row) => not_passed.push(row.to_string()),
            None => not_passed.push(format!("{name}: no row in the table")),
        }
    }
    assert!(
        not_passed.is_empty() && status.success(),
        "librdkafka sub-tests that no longer pass against kaos-broker (run logs in {}/runs):\n{}",
        work.display(),
        not_passed.join("\n")
    );
}

/// run.sh's `wait_listen`, taken out of the script, run on `log` for a process that has exited:
/// its exit code and what it printed.
fn wait_listen_on(log: &str) -> (Option<i32>, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("compat/run.sh");
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("broker.log");
    std::fs::write(&log_path, log).expect("write the log");
    // The functions are cut out of the script by their `name() {` … `}` lines; the pid is one of
    // a process that has ended (the shell that printed it), so the wait ends at once.
    let out = Command::new("bash")
        .arg("-c")
        .arg(concat!(
            r#"eval "$(sed -n -e '/^ready_line() {/,/^}/p' -e '/^wait_listen() {/,/^}/p' "$0")"; "#,
            r#"gone=$(bash -c 'echo $$'); wait_listen "$1" "kaos-broker ready" "$gone""#,
        ))
        .arg(&script)
        .arg(&log_path)
        .output()
        .expect("bash");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

/// A broker's ready line read while it is being written is not taken until its newline (kaos-broker
/// wrote it piece by piece, and a fresh-clone CI run read `listen=127.0.0` and pointed
/// 0007_autotopic at it); a whole line gives the address.
#[test]
fn run_sh_takes_the_listen_address_only_from_a_whole_ready_line() {
    let partial = "2026 INFO recovery done\nkaos-broker ready node_id=1 listen=127.0.0";
    let (code, printed) = wait_listen_on(partial);
    assert_eq!(
        (code, printed.as_str()),
        (Some(1), ""),
        "a half-written line was taken"
    );
    let whole = format!("{partial}.1:32997\n");
    assert_eq!(
        wait_listen_on(&whole),
        (Some(0), "127.0.0.1:32997".to_string())
    );
}
