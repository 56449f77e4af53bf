//! Broker profiles end to end: the library's demo and a power-loss scenario on tansu (crates.io,
//! the first broker kaos did not write), each with the verdict measured here and why; a scenario
//! that needs what a profile lacks refused at load with the reason; a profile whose command is
//! wrong failing at start with the node's own output. tansu must be installed
//! (`cargo install tansu --locked --features dynostore,libsql`; `.ci/run` does it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{kaos, text};

fn library(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

/// tansu on PATH or in ~/.cargo/bin, where kaos looks for it.
fn assert_tansu_installed() {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cargo = std::env::var_os("CARGO_HOME").map_or(home.join(".cargo"), PathBuf::from);
    let mut places = vec![cargo.join("bin")];
    if let Some(path) = std::env::var_os("PATH") {
        places.extend(std::env::split_paths(&path));
    }
    assert!(
        places.iter().any(|d| d.join("tansu").is_file()),
        "tansu is not installed: cargo install tansu --locked --features dynostore,libsql (.ci/run installs it)"
    );
}

/// `kaos run FILE --store DIR/store ARGS…`, without the environment's broker overrides.
fn kaos_run(dir: &Path, file: &Path, args: &[&str]) -> Output {
    Command::new(kaos())
        .arg("run")
        .arg(file)
        .arg("--store")
        .arg(dir.join("store"))
        .args(args)
        .env_remove("KAOS_BROKER_BIN")
        .env_remove("KAOS_BROKER")
        .output()
        .expect("run kaos")
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write");
    path
}

/// The value of `name=` on the `counts:` line kaos prints.
fn count(stdout: &str, name: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("counts: "))
        .unwrap_or_else(|| panic!("no counts line in {stdout}"));
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

#[test]
fn a_profile_with_a_wrong_command_fails_at_start_with_the_node_s_own_output() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(
        tmp.path(),
        "wrong.toml",
        r#"
name = "wrong"
command = "/bin/sh"
[broker]
args = ["-c", "echo \"wrong: no such option --listen {listen}\" >&2; exit 3"]
[settings]
format = "none"
"#,
    );
    let scenario = write(
        tmp.path(),
        "s.toml",
        r#"
name = "wrong-command"
duration_s = 5
broker_profile = "wrong.toml"
[cluster]
brokers = 1
[topic]
name = "t"
partitions = 1
[[clients]]
kind = "producer"
"#,
    );
    let out = kaos_run(tmp.path(), &scenario, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("node n1 exited while starting (exit status: 3)")
            && stderr.contains("wrong: no such option --listen 127.0.0.1:"),
        "{stderr}"
    );
}

#[test]
fn a_scenario_needing_what_a_profile_lacks_is_refused_at_load() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "leader-kill-acks-all.toml",
            "cannot run on broker profile tansu: the scenario needs 3 brokers, which broker profile tansu does not have (features.multi_node = false)",
        ),
        (
            "power-loss-flush-every-message.toml",
            "cluster setting \"flush.messages\": broker profile tansu takes no settings",
        ),
    ];
    for (file, needle) in cases {
        let out = kaos_run(tmp.path(), &library(file), &["--broker", "tansu"]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{file}: {stdout}\n{stderr}");
        assert!(stderr.contains(needle), "{file}: {stderr}");
        assert!(
            !tmp.path().join("store").exists(),
            "{file}: refused before anything ran"
        );
    }
    // A replication factor above one, on one broker of a single-node profile.
    let rf = std::fs::read_to_string(library("demo.toml"))
        .expect("demo")
        .replace("brokers = 1", "brokers = 2")
        .replace("replication_factor = 1", "replication_factor = 2");
    let file = write(tmp.path(), "rf.toml", &rf);
    let out = kaos_run(tmp.path(), &file, &["--broker", "tansu-memory"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("2 brokers") && stderr.contains("tansu-memory"),
        "{stderr}"
    );
    // The unknown profile names the library.
    let out = kaos_run(tmp.path(), &library("demo.toml"), &["--broker", "kafka"]);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("no broker profile named \"kafka\": the built-in ones are kaos-broker, tansu, tansu-memory"),
        "{stderr}"
    );
}
