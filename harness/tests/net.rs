//! Runs with network faults leave nothing behind: a run whose brokers cannot start after its
//! namespaces exist, and a run interrupted (SIGINT) while a partition is in force and lazyfs is
//! mounted. Checked from outside: `/run/netns`, the host's links, `nft list tables` in no
//! leftover namespace, `/proc/mounts`, and every process the run started.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{broker_bin, kaos};

const SCENARIO: &str = r#"
name = "net-cleanup"
duration_s = 30
seed = 5
[cluster]
brokers = 3
settings = { "broker.session.timeout.ms" = 3000, "broker.heartbeat.interval.ms" = 500 }
[topic]
name = "kaos"
partitions = 1
replication_factor = 3
[[clients]]
kind = "producer"
rate_per_s = 200
config = { "acks" = "all" }
[nemesis]
faults = ["partition_node", "power_loss"]
interval_s = 1.0
down_s = 20.0
target = "n1"
"#;

/// What a kaos process with PID `pid` could have left: namespaces, host links, mounts under
/// `store`.
fn leftovers(pid: u32, store: &Path) -> Vec<String> {
    let mut left = Vec::new();
    let prefix = format!("kaos_{pid}_");
    if let Ok(entries) = std::fs::read_dir("/run/netns") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) {
                left.push(format!("namespace {name}"));
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir("/sys/class/net") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("kh{pid}_")) {
                left.push(format!("link {name}"));
            }
        }
    }
    let tables = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .expect("nft");
    let tables = String::from_utf8_lossy(&tables.stdout).into_owned();
    if tables.contains(&format!("kaos_{pid}")) {
        left.push(format!("host nft table: {tables}"));
    }
    let mounts = std::fs::read_to_string("/proc/mounts").expect("/proc/mounts");
    let store = store.display().to_string();
    for line in mounts.lines().filter(|l| l.contains(&store)) {
        left.push(format!("mount {line}"));
    }
    left
}

/// Every process descended from `root` now.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut k = 0;
    while k < found.len() {
        let p = found[k];
        found.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        k += 1;
    }
    found.remove(0);
    found
}

/// A live (not zombie) process.
fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.chars().next().unwrap_or('X'))
        .unwrap_or('X');
    state != 'X' && state != 'Z'
}

fn history_of(store: &Path) -> Option<PathBuf> {
    let runs = store.join("net-cleanup");
    std::fs::read_dir(runs)
        .ok()?
        .flatten()
        .map(|e| e.path().join("history.jsonl"))
        .find(|p| p.is_file())
}

fn needs_root() {
    let uid = std::fs::read_to_string("/proc/self/status").expect("status");
    let root = uid
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    assert!(
        root,
        "the network-fault tests need root (network namespaces, nftables, FUSE)"
    );
}

#[test]
fn a_run_interrupted_during_a_partition_leaves_nothing_behind() {
    needs_root();
    let tmp = tempfile::tempdir().expect("tempdir");
    let scenario = tmp.path().join("net-cleanup.toml");
    std::fs::write(&scenario, SCENARIO).expect("write scenario");
    let store = tmp.path().join("store");
    let mut child = Command::new(kaos())
        .args(["run", "--store"])
        .arg(&store)
        .arg(&scenario)
        .env("KAOS_BROKER_BIN", broker_bin())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kaos run");
    let pid = child.id();
    // Wait (bounded) until the partition of n1 is in force: namespaces, rules, lazyfs mounts and
    // client processes all exist then. (The history is written in batches: ask the system.)
    let ns = format!("kaos_{pid}_0_n1");
    let table = format!("kaos_{pid}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut partitioned = false;
    while Instant::now() < deadline && child.try_wait().expect("try_wait").is_none() {
        let rules = Command::new("ip")
            .args(["netns", "exec", &ns, "nft", "list", "tables"])
            .stderr(Stdio::null())
            .output()
            .expect("nft in netns");
        if String::from_utf8_lossy(&rules.stdout).contains(&table) {
            partitioned = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        partitioned,
        "the partition of n1 never came into force (no table {table} in {ns})"
    );
    let running = leftovers(pid, &store);
    assert!(
        running.iter().any(|l| l.starts_with("mount")),
        "while running, lazyfs is mounted: {running:?}"
    );
    assert!(
        running.iter().any(|l| l.starts_with("namespace")),
        "while running, the namespaces exist: {running:?}"
    );
    let pids = descendants(pid);
    assert!(
        pids.len() >= 8,
        "the nodes, lazyfs daemons and the producer run: {pids:?}"
    );

    let status = common::interrupt(&mut child, 60);
    assert_eq!(
        status.code(),
        Some(2),
        "an interrupted run is a harness error"
    );
    // Orphans are reaped by init: give them a bounded moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let alive: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    assert!(alive.is_empty(), "processes left: {alive:?}");
    let left = leftovers(pid, &store);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_run_whose_brokers_cannot_start_removes_its_network() {
    needs_root();
    let tmp = tempfile::tempdir().expect("tempdir");
    let scenario = tmp.path().join("net-cleanup.toml");
    std::fs::write(&scenario, SCENARIO).expect("write scenario");
    // A "broker" that accepts its config (check-config) and exits at once when started: the run
    // fails after its namespaces and mounts exist.
    let fake = tmp.path().join("broken-broker");
    std::fs::write(
        &fake,
        "#!/bin/sh\n[ \"$1\" = check-config ] && exit 0\necho 'this broker cannot start' >&2\nexit 3\n",
    )
    .expect("write fake broker");
    Command::new("chmod")
        .arg("755")
        .arg(&fake)
        .status()
        .expect("chmod");
    let store = tmp.path().join("store");
    let out = Command::new(kaos())
        .args(["run", "--store"])
        .arg(&store)
        .arg("--broker-bin")
        .arg(&fake)
        .arg(&scenario)
        .output()
        .expect("kaos run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("exited while starting"), "{stderr}");
    let history =
        std::fs::read_to_string(history_of(&store).expect("history")).expect("read history");
    assert!(
        history.contains(r#""f":"network""#),
        "the network existed before the failure:\n{history}"
    );
    // The kaos process has ended: nothing with its PID may remain.
    let left = leftovers(out_pid(&history), &store);
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The kaos PID, from the namespace names the history's `network` op records.
fn out_pid(history: &str) -> u32 {
    let at =
        history.find("\"netns\":\"kaos_").expect("netns in history") + "\"netns\":\"kaos_".len();
    history[at..]
        .split('_')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("pid in the namespace name")
}
