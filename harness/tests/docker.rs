//! The docker platform for real: the kaos-broker image started by testcontainers, alone and as a
//! three-broker cluster with its controller, with librdkafka producing and consuming from this
//! host; the leader's container SIGKILLed under acks=all; `kaos run --platform docker` on the demo
//! scenario and on leader-kill-acks-all; a power loss through lazyfs under a container's bind
//! mount; a container whose broker crashes on its own reported as a `node_crash`; partitions on containers dropping real packets and healing, and
//! partition-leader-acks-all on docker; everything labelled removed after a failed run and after
//! Ctrl-C; and docker/compose.yaml brought up, used by kcat, and run against by `kaos run
//! --bootstrap` (the external platform).
//!
//! These tests need a Docker engine (CI has one). Without one they fail and say so: they never
//! pass silently. Images are built here from the broker binary (`kaos image`), never pulled.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use testcontainers::core::WaitFor;
use testcontainers::{clients, GenericImage, RunnableImage};

mod common;
use common::{
    assert_tansu_installed, broker_bin, exited, has_op, history_ops, interrupt, kaos, library,
    tansu_kill_scenario,
};

/// Labels what the tests create themselves (the harness labels its own with org.kaos.run).
const TEST_LABEL: &str = "org.kaos.test=docker";

/// `docker ARGS`; panics with its standard error if it fails.
fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running the docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails (never skips) when no engine answers: CI expects one.
fn require_docker() {
    let out = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "no Docker engine is reachable ({}): the docker platform's tests need one and CI provides it, so they fail rather than skip",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("the docker CLI cannot run ({e}): the docker platform's tests need it and a Docker engine"),
    }
}

/// The broker image for this build's binary, built once per test binary by `kaos image` (or
/// reused from an earlier build), then tagged `extra_tag` too; `(name, tag)`.
fn broker_image(extra_tag: Option<&str>) -> (String, String) {
    static IMAGE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    require_docker();
    let image = {
        let mut built = IMAGE.lock().unwrap_or_else(|e| e.into_inner());
        built
            .get_or_insert_with(|| {
                let out = Command::new(kaos())
                    .arg("image")
                    .env("KAOS_BROKER_BIN", broker_bin())
                    .output()
                    .expect("kaos image");
                assert!(
                    out.status.success(),
                    "kaos image failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .next()
                    .expect("kaos image prints the image")
                    .to_string()
            })
            .clone()
    };
    // Local only: the engine has it now, so nothing will be pulled.
    docker(&["image", "inspect", "--format", "{{.Id}}", &image]);
    if let Some(tag) = extra_tag {
        docker(&["tag", &image, tag]);
    }
    let (name, tag) = image.split_once(':').expect("name:tag");
    (name.to_string(), tag.to_string())
}

/// A labelled bridge network with a /24 of its own (so that the test knows the addresses its
/// containers will get: .2, .3, … in the order they start), removed on drop after the
/// containers, which must therefore be dropped before it.
struct Network {
    name: String,
    prefix: String,
}

impl Network {
    fn create(name: &str) -> Network {
        let name = format!("kaos-test-{name}-{}", std::process::id());
        let mut third = (std::process::id() % 250) as u8;
        for _ in 0..16 {
            let prefix = format!("172.30.{third}");
            let out = Command::new("docker")
                .args([
                    "network",
                    "create",
                    "--label",
                    TEST_LABEL,
                    "--subnet",
                    &format!("{prefix}.0/24"),
                    &name,
                ])
                .stdin(Stdio::null())
                .output()
                .expect("docker network create");
            if out.status.success() {
                return Network { name, prefix };
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("overlap"),
                "docker network create {name}: {err}"
            );
            third = third.wrapping_add(41) % 250;
        }
        panic!("no free /24 in 172.30.0.0/16 for the test network");
    }

    /// The address of the `k`-th container started on this network (1 = the first).
    fn addr(&self, k: u8) -> String {
        format!("{}.{}:9092", self.prefix, k + 1)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A broker (or controller) container from the image, on `network`, listening on `addr` (which
/// must be the address the engine gives it: otherwise the broker cannot bind and the test fails).
fn node(
    image: &(String, String),
    network: &Network,
    name: &str,
    args: Vec<String>,
) -> RunnableImage<GenericImage> {
    let image = GenericImage::new(image.0.clone(), image.1.clone())
        .with_wait_for(WaitFor::message_on_stderr(" listen="));
    RunnableImage::from((image, args))
        .with_network(network.name.clone())
        .with_container_name(format!("{}-{name}", network.name))
}

fn broker_args(
    node_id: u32,
    listen: &str,
    controller: Option<&str>,
    config: Option<&Path>,
) -> Vec<String> {
    let mut args = vec![
        "--node-id".to_string(),
        node_id.to_string(),
        "--listen".into(),
        listen.into(),
        "--data-dir".into(),
        "/data".into(),
    ];
    if let Some(c) = controller {
        args.extend(["--controller".into(), c.into()]);
    }
    if config.is_some() {
        args.extend(["--config".into(), "/etc/kaos/config.toml".into()]);
    }
    args
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn create_topic(bootstrap: &str, topic: &str, replication_factor: i32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match runtime().block_on(workloads::admin::create_topic(
            bootstrap,
            topic,
            1,
            replication_factor,
        )) {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("creating {topic} on {bootstrap}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// Sends `values` with acks=all and returns the ones acknowledged.
fn produce(bootstrap: &str, topic: &str, values: impl Iterator<Item = String>) -> BTreeSet<String> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "20000")
        .set("reconnect.backoff.max.ms", "1000")
        .create()
        .expect("producer");
    runtime().block_on(async {
        let sends: Vec<_> = values
            .map(|v| {
                let producer = producer.clone();
                let topic = topic.to_string();
                async move {
                    let ok = producer
                        .send(
                            FutureRecord::<(), _>::to(&topic).payload(&v),
                            Duration::from_secs(25),
                        )
                        .await
                        .is_ok();
                    (v, ok)
                }
            })
            .collect();
        let mut acked = BTreeSet::new();
        for (v, ok) in futures_join(sends).await {
            if ok {
                acked.insert(v);
            }
        }
        acked
    })
}

/// Awaits every future (they run concurrently on the current-thread runtime).
async fn futures_join<F: std::future::Future + 'static>(futures: Vec<F>) -> Vec<F::Output>
where
    F::Output: 'static,
{
    let set = tokio::task::LocalSet::new();
    set.run_until(async move {
        let handles: Vec<_> = futures.into_iter().map(tokio::task::spawn_local).collect();
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(h.await.expect("send task"));
        }
        out
    })
    .await
}

/// Every value of partition 0 of `topic`, read from the beginning to its end offset.
fn read_all(bootstrap: &str, topic: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kaos-docker-test")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let deadline = Instant::now() + Duration::from_secs(60);
    let end = loop {
        match consumer.fetch_watermarks(topic, 0, Duration::from_secs(5)) {
            Ok((_, high)) => break high,
            Err(e) if Instant::now() > deadline => panic!("end offset of {topic}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    };
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("offset");
    consumer.assign(&tpl).expect("assign");
    let mut values = Vec::new();
    let mut next = 0;
    while next < end {
        assert!(
            Instant::now() < deadline,
            "read {next} of {end} records of {topic} in time"
        );
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            next = m.offset() + 1;
            values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    values
}

#[test]
fn the_broker_image_serves_librdkafka_from_a_container() {
    let image = broker_image(None);
    let network = Network::create("one");
    let engine = clients::Cli::default();
    let addr = network.addr(1);
    let broker = engine.run(node(
        &image,
        &network,
        "n1",
        broker_args(1, &addr, None, None),
    ));
    let ip = broker.get_bridge_ip_address().to_string();
    assert!(
        addr.starts_with(&format!("{ip}:")),
        "the broker listens on {addr}, the engine gave it {ip}"
    );

    create_topic(&addr, "one", 1);
    let acked = produce(&addr, "one", (0..500).map(|i| format!("m-{i}")));
    assert_eq!(
        acked.len(),
        500,
        "every send to a healthy broker is acknowledged"
    );
    let read: BTreeSet<String> = read_all(&addr, "one").into_iter().collect();
    assert_eq!(read, acked);
    drop(broker);
}

#[test]
fn a_three_broker_cluster_in_containers_loses_nothing_acknowledged_when_the_leader_is_killed() {
    let image = broker_image(None);
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        "\"min.insync.replicas\" = 2\n\"broker.session.timeout.ms\" = 3000\n\"broker.heartbeat.interval.ms\" = 500\n\"replica.lag.time.max.ms\" = 5000\n",
    )
    .expect("config");
    let network = Network::create("cluster");
    let engine = clients::Cli::default();
    let controller_addr = network.addr(1);
    let controller = engine.run(node(
        &image,
        &network,
        "controller",
        vec![
            "controller".into(),
            "--listen".into(),
            controller_addr.clone(),
            "--data-dir".into(),
            "/data".into(),
        ],
    ));
    let mut brokers = Vec::new();
    for k in 1..=3u8 {
        let addr = network.addr(k + 1);
        let args = broker_args(u32::from(k), &addr, Some(&controller_addr), Some(&config));
        let run = node(&image, &network, &format!("n{k}"), args).with_volume((
            config.display().to_string(),
            "/etc/kaos/config.toml".to_string(),
        ));
        brokers.push((addr, engine.run(run)));
    }
    let bootstrap = brokers
        .iter()
        .map(|(a, _)| a.clone())
        .collect::<Vec<_>>()
        .join(",");
    create_topic(&bootstrap, "replicated", 3);

    let mut acked = produce(
        &bootstrap,
        "replicated",
        (0..1000).map(|i| format!("before-{i}")),
    );
    assert_eq!(
        acked.len(),
        1000,
        "a healthy cluster acknowledges every send"
    );
    let roles = workloads::admin::partition_roles(&bootstrap, "replicated").expect("metadata");
    let leader = roles
        .iter()
        .find(|r| r.partition == 0)
        .expect("partition 0")
        .leader;
    assert!(
        (1..=3).contains(&leader),
        "partition 0 has a leader: {roles:?}"
    );
    let (_, leader_container) = &brokers[(leader - 1) as usize];
    docker(&["kill", "--signal", "KILL", leader_container.id()]);

    let after = produce(
        &bootstrap,
        "replicated",
        (0..1000).map(|i| format!("after-{i}")),
    );
    assert!(!after.is_empty(), "the two remaining brokers (min.insync.replicas 2) take writes after a new leader is elected");
    acked.extend(after);
    let read: BTreeSet<String> = read_all(&bootstrap, "replicated").into_iter().collect();
    let lost: Vec<&String> = acked.difference(&read).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost after the leader (node {leader}) was killed, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    drop(brokers);
    drop(controller);
}

/// Containers and networks whose org.kaos.run_dir label lies under `store`.
fn leftovers(store: &Path) -> Vec<String> {
    let store = std::path::absolute(store)
        .expect("absolute")
        .display()
        .to_string();
    // `ps` names with .Names, `network ls` with .Name.
    let containers = docker(&[
        "ps",
        "--all",
        "--filter",
        "label=org.kaos.run_dir",
        "--format",
        "{{.Names}} {{.Label \"org.kaos.run_dir\"}}",
    ]);
    let networks = docker(&[
        "network",
        "ls",
        "--filter",
        "label=org.kaos.run_dir",
        "--format",
        "{{.Name}} {{.Label \"org.kaos.run_dir\"}}",
    ]);
    containers
        .lines()
        .chain(networks.lines())
        .filter(|line| {
            line.split_once(' ')
                .is_some_and(|(_, dir)| dir.starts_with(&store))
        })
        .map(String::from)
        .collect()
}

fn kaos_run(scenario: &Path, store: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(kaos());
    cmd.arg("run")
        .arg(scenario)
        .arg("--store")
        .arg(store)
        .args(["--platform", "docker"])
        .args(extra)
        .env("KAOS_BROKER_BIN", broker_bin());
    cmd
}

fn demo() -> PathBuf {
    library("demo.toml")
}

/// A finished `kaos run` on the docker platform that exited 0 with a VALID verdict. Bind `_tmp`
/// when destructuring: a field left to `..` is dropped at once, and with it the store.
struct ValidRun {
    /// Keeps the store until the test ends.
    _tmp: tempfile::TempDir,
    store: PathBuf,
    stdout: String,
    /// The run's history, one JSON value per op.
    ops: Vec<serde_json::Value>,
}

/// Builds the broker image, runs `scenario` for `duration_s` seconds on the docker platform and
/// asserts that it exited 0 with `verdict: VALID`.
fn run_valid(scenario: &Path, duration_s: &str) -> ValidRun {
    broker_image(None);
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    let out: Output = kaos_run(scenario, &store, &["--duration-s", duration_s])
        .output()
        .expect("kaos run");
    let stdout = exited(&out, 0);
    assert!(stdout.contains("verdict: VALID"), "{stdout}");
    let ops = history_ops(&store.join("latest"));
    ValidRun {
        _tmp: tmp,
        store,
        stdout,
        ops,
    }
}

#[test]
fn the_demo_scenario_passes_on_the_docker_platform_and_leaves_nothing_behind() {
    let ValidRun {
        _tmp, store, ops, ..
    } = run_valid(&demo(), "12");
    let run_dir = store.join("latest");
    let start = ops
        .iter()
        .find(|o| o["f"] == "node_start")
        .expect("a node_start op");
    let addr = start["value"]["addr"].as_str().expect("addr");
    assert!(
        addr.starts_with("172.29."),
        "the node ran in a container on the run's network, not on 127.0.0.1: {addr}"
    );
    assert!(
        has_op(&ops, "nemesis", "ok", "kill"),
        "the container was killed"
    );
    assert!(
        has_op(&ops, "nemesis", "ok", "restart"),
        "and started again"
    );
    assert!(
        ops.iter()
            .any(|o| o["f"] == "replica_dump" && o["type"] == "ok"),
        "the replica dump read the bind-mounted data directory"
    );
    let log = std::fs::read_to_string(run_dir.join("nodes/n1/broker.log"))
        .expect("the container's output in nodes/n1/broker.log");
    assert!(
        log.matches("kaos-broker ready").count() >= 2,
        "the log holds every start of the container:\n{log}"
    );
    assert!(
        std::fs::read_dir(run_dir.join("nodes/n1/data"))
            .expect("data dir")
            .next()
            .is_some(),
        "the broker's data is in the run directory"
    );
    assert_eq!(
        leftovers(&store),
        Vec::<String>::new(),
        "every container and network of the run was removed"
    );
}

#[test]
fn leader_kill_acks_all_holds_on_the_docker_platform() {
    let ValidRun {
        _tmp,
        store,
        stdout,
        ops,
        ..
    } = run_valid(&library("leader-kill-acks-all.toml"), "14");
    assert!(stdout.contains(" lost=0 "), "{stdout}");
    let killed: BTreeSet<&str> = ops
        .iter()
        .filter(|o| o["process"] == "nemesis" && o["f"] == "kill" && o["type"] == "ok")
        .filter_map(|o| o["value"]["node"].as_str())
        .collect();
    assert!(
        !killed.is_empty(),
        "the leader's container was killed at least once"
    );
    assert!(
        ops.iter().filter(|o| o["f"] == "node_start").count() == 4,
        "three brokers and the controller, each in a container"
    );
    assert_eq!(leftovers(&store), Vec::<String>::new());
}

#[test]
fn a_power_loss_drops_unsynced_writes_under_the_bind_mount() {
    let ValidRun {
        _tmp,
        store,
        stdout,
        ops,
        ..
    } = run_valid(&library("power-loss-flush-none.toml"), "14");
    assert!(
        stdout.contains("× lost (required)"),
        "flush.messages = 0 loses acknowledged messages at a power loss in a container too:\n{stdout}"
    );
    let dropped: u64 = ops
        .iter()
        .filter(|o| o["process"] == "nemesis" && o["f"] == "power_loss" && o["type"] == "ok")
        .filter_map(|o| {
            o["value"]["lazyfs"]
                .as_str()
                .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        })
        .filter_map(|r| r["bytes_dropped"].as_u64())
        .sum();
    assert!(
        dropped > 0,
        "lazyfs under the container's bind mount dropped unsynced bytes"
    );
    assert_eq!(leftovers(&store), Vec::<String>::new());
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("mounts");
    let store = std::path::absolute(&store)
        .expect("absolute")
        .display()
        .to_string();
    assert!(
        !mounts.contains(&store),
        "no lazyfs mount is left under the store:\n{mounts}"
    );
}

#[test]
fn a_container_whose_broker_exits_on_its_own_is_reported_as_a_node_crash() {
    broker_image(None);
    let tmp = tempfile::tempdir().expect("tempdir");
    let scenario = tmp.path().join("crash.toml");
    std::fs::write(&scenario, common::crashing_scenario()).expect("write scenario");
    let store = tmp.path().join("store");
    let out = kaos_run(&scenario, &store, &[]).output().expect("kaos run");
    common::assert_crash_reported(&out, &store);
    let run_dir = store.join("latest");
    let log = std::fs::read_to_string(run_dir.join("nodes/n1/broker.log"))
        .expect("the container's output in nodes/n1/broker.log");
    assert!(
        log.matches("kaos-broker ready").count() >= 2,
        "the crashed container was started again:\n{log}"
    );
    assert_eq!(leftovers(&store), Vec::<String>::new());
}

#[test]
fn a_failed_run_and_an_interrupted_run_remove_every_container_and_network() {
    broker_image(None);
    let tmp = tempfile::tempdir().expect("tempdir");

    // A failure before start: n2 has a setting the broker refuses (`kaos-broker check-config`
    // says so before any container starts; the network was already made).
    let broken = tmp.path().join("broken.toml");
    let text = std::fs::read_to_string(demo()).expect("demo")
        .replace("brokers = 1", "brokers = 2")
        .replace("settings = { \"num.partitions\" = 1 }", "settings = { \"num.partitions\" = 1 }\nnode_settings = { n2 = { \"num.partitions\" = 0 } }");
    std::fs::write(&broken, text).expect("write scenario");
    let store = tmp.path().join("failed");
    let out = kaos_run(&broken, &store, &[]).output().expect("kaos run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a node that cannot start is a harness error: {stderr}"
    );
    assert!(
        stderr.contains("the broker refuses the settings of node n2")
            && stderr.contains("num.partitions"),
        "{stderr}"
    );
    assert_eq!(
        leftovers(&store),
        Vec::<String>::new(),
        "a failed run removes what it created"
    );

    // Ctrl-C mid-run: SIGINT to the kaos process we started, by its PID.
    let store = tmp.path().join("interrupted");
    let mut child = kaos_run(&demo(), &store, &["--duration-s", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kaos run");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(store.join("latest/history.jsonl"))
        .is_ok_and(|h| h.contains("\"f\":\"kill\""))
    {
        assert!(
            Instant::now() < deadline,
            "the run reached its first fault in time"
        );
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "kaos run ended before it was interrupted"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !leftovers(&store).is_empty(),
        "the running run has its containers"
    );
    let status = interrupt(&mut child, 60);
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(
        leftovers(&store),
        Vec::<String>::new(),
        "an interrupted run removes what it created"
    );
}

/// `docker compose` (the CLI plugin) or Debian's `docker-compose`, whichever this machine has.
fn compose() -> Command {
    let plugin = Command::new("docker")
        .args(["compose", "version"])
        .stdin(Stdio::null())
        .output();
    if plugin.is_ok_and(|o| o.status.success()) {
        let mut cmd = Command::new("docker");
        cmd.arg("compose");
        cmd
    } else {
        Command::new("docker-compose")
    }
}

/// `compose -p PROJECT -f docker/compose.yaml down -v` on drop.
struct ComposeProject(String, PathBuf);

impl Drop for ComposeProject {
    fn drop(&mut self) {
        let _ = compose()
            .args(["-p", &self.0, "-f"])
            .arg(&self.1)
            .args(["down", "--volumes", "--timeout", "5"])
            .stdin(Stdio::null())
            .output();
    }
}

fn kcat(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat is not on PATH: install it (`apt-get install -y kcat`); CI installs it");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("kcat stdin");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kcat {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("kcat output")
}

#[test]
fn docker_compose_brings_up_a_cluster_that_kcat_can_use() {
    broker_image(Some("kaos-broker:dev"));
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/compose.yaml");
    let project = ComposeProject(format!("kaos-test-{}", std::process::id()), file.clone());
    let out = compose()
        .args(["-p", &project.0, "-f"])
        .arg(&file)
        .args(["up", "--detach"])
        .stdin(Stdio::null())
        .output()
        .expect("compose up");
    assert!(
        out.status.success(),
        "compose up: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bootstrap = "172.28.0.11:9092,172.28.0.12:9092,172.28.0.13:9092";
    create_topic(bootstrap, "compose", 3);
    let lines: String = (0..100).map(|i| format!("line-{i}\n")).collect();
    let out = kcat(
        &["-b", bootstrap, "-t", "compose", "-P", "-X", "acks=all"],
        lines.as_bytes(),
    );
    assert!(
        out.status.success(),
        "kcat -P: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kcat(
        &[
            "-b",
            bootstrap,
            "-t",
            "compose",
            "-C",
            "-o",
            "beginning",
            "-e",
            "-q",
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "kcat -C: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        lines,
        "kcat reads back what it wrote, through the brokers' advertised addresses"
    );
    let out = kcat(&["-b", bootstrap, "-L", "-t", "compose"], b"");
    let listing = String::from_utf8_lossy(&out.stdout);
    for k in 1..=3 {
        assert!(
            listing.contains(&format!("broker {k} at 172.28.0.1{k}:9092")),
            "{listing}"
        );
    }

    // `kaos run --bootstrap`: the same cluster as an external platform. A scenario that kills a
    // node is refused at load; one whose faults hit only its own clients runs to its verdict.
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    let mut cmd = Command::new(kaos());
    cmd.arg("run")
        .arg(demo())
        .arg("--store")
        .arg(&store)
        .args(["--bootstrap", bootstrap]);
    let out = cmd.output().expect("kaos run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("kill fault is not available on the external platform")
            || stderr.contains("not control"),
        "{stderr}"
    );
    let scenario = tmp.path().join("external.toml");
    std::fs::write(
        &scenario,
        r#"name = "external-acks-all"
duration_s = 12
seed = 3
[cluster]
brokers = 3
[topic]
name = "ext"
partitions = 2
replication_factor = 3
[[clients]]
kind = "producer"
mode = "async"
rate_per_s = 300
config = { "acks" = "all", "enable.idempotence" = "false", "message.timeout.ms" = "20000" }
[[clients]]
kind = "consumer"
[nemesis]
faults = ["kill"]
interval_s = 4.0
down_s = 1.0
target = "consumer-1"
[expect]
lost = "forbidden"
duplicate = "allowed"
nonmonotonic_poll = "allowed"
"#,
    )
    .expect("scenario");
    for _ in 0..2 {
        let mut cmd = Command::new(kaos());
        cmd.arg("run")
            .arg(&scenario)
            .arg("--store")
            .arg(&store)
            .args(["--bootstrap", bootstrap]);
        let out = cmd.output().expect("kaos run");
        let stdout = exited(&out, 0);
        assert!(
            stdout.contains("verdict: VALID") && stdout.contains(" lost=0 "),
            "{stdout}"
        );
    }
    // Two runs, two topics of their own on the cluster; no node was started or killed by kaos.
    let mut topics = BTreeSet::new();
    for run in std::fs::read_dir(store.join("external-acks-all"))
        .expect("runs")
        .flatten()
    {
        if run.file_type().expect("type").is_symlink()
            || !run.path().join("history.jsonl").is_file()
        {
            continue;
        }
        let ops = history_ops(&run.path());
        assert!(
            !ops.iter().any(|o| o["f"] == "node_start"),
            "the external platform starts no node"
        );
        assert!(
            ops.iter().any(|o| o["process"] == "nemesis"
                && o["f"] == "kill"
                && o["value"]["node"] == "consumer-1"
                && o["type"] == "ok"),
            "the consumer process was killed"
        );
        let start = ops
            .iter()
            .find(|o| o["f"] == "final_read" && o["type"] == "invoke")
            .expect("final read");
        topics.insert(start["value"]["topic"].as_str().expect("topic").to_string());
    }
    assert_eq!(
        topics.len(),
        2,
        "each run wrote a topic of its own: {topics:?}"
    );
    assert!(topics.iter().all(|t| t.starts_with("ext-")), "{topics:?}");
    let out = kcat(&["-b", bootstrap, "-L"], b"");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        topics
            .iter()
            .all(|t| listing.contains(&format!("topic \"{t}\""))),
        "{listing}"
    );
}

/// A TCP connection to `addr` made from inside the network namespace of process `pid` (a
/// container's): a short-lived thread enters the namespace (setns affects only that thread).
fn connects_from(pid: u32, addr: std::net::SocketAddr) -> bool {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .expect("the container's network namespace");
    std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
    })
    .join()
    .expect("the namespace thread")
}

fn connects(addr: std::net::SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// The host PID of the running container of node `node` of the run whose directory is `run_dir`.
fn container_pid(run_dir: &Path, node: &str) -> u32 {
    let label = format!("label=org.kaos.run_dir={}", run_dir.display());
    let names = docker(&["ps", "--filter", &label, "--format", "{{.Names}}"]);
    let name = names
        .lines()
        .find(|n| n.ends_with(&format!("-{node}")))
        .unwrap_or_else(|| panic!("no running container of {node} in {names:?}"));
    docker(&["inspect", "--format", "{{.State.Pid}}", name])
        .trim()
        .parse()
        .expect("a PID")
}

#[test]
fn a_partition_on_docker_drops_real_packets_between_containers_and_heals() {
    broker_image(None);
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    // n1 cut off from n2, n3 and the clients for 8 s, then its links delayed (through the proxies
    // on the host, which every broker advertises), in turn.
    let scenario = tmp.path().join("isolate.toml");
    std::fs::write(
        &scenario,
        r#"name = "docker-isolate"
duration_s = 28
seed = 5
[cluster]
brokers = 3
settings = { "min.insync.replicas" = 2, "broker.session.timeout.ms" = 3000, "broker.heartbeat.interval.ms" = 500, "replica.lag.time.max.ms" = 3000 }
controller_settings = { "broker.session.timeout.ms" = 3000 }
[topic]
name = "kaos"
partitions = 1
replication_factor = 3
[[clients]]
kind = "producer"
rate_per_s = 200
config = { "acks" = "all", "message.timeout.ms" = "30000", "enable.idempotence" = "false" }
[nemesis]
faults = ["partition_node", "delay"]
interval_s = 3.0
down_s = 8.0
target = "n1"
[expect]
lost = "forbidden"
duplicate = "allowed"
"#,
    )
    .expect("scenario");
    let mut child = kaos_run(&scenario, &store, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kaos run");
    let history_path = store.join("latest/history.jsonl");
    let ops = |path: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !has_op(&ops(&history_path), "nemesis", "ok", "isolate") {
        assert!(Instant::now() < deadline, "the partition started in time");
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "kaos run ended before the partition"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let run_dir = std::fs::canonicalize(store.join("latest")).expect("run dir");
    let started = ops(&history_path);
    let addr_of = |node: &str| -> std::net::SocketAddr {
        let op = started
            .iter()
            .find(|o| o["f"] == "node_start" && o["value"]["node"] == node)
            .expect("node_start");
        op["value"]["addr"]
            .as_str()
            .expect("addr")
            .parse()
            .expect("a socket address")
    };
    let (n1, n2, n3) = (addr_of("n1"), addr_of("n2"), addr_of("n3"));
    let n2_pid = container_pid(&run_dir, "n2");
    let n1_pid = container_pid(&run_dir, "n1");
    let during = [
        ("host → n1", connects(n1)),
        ("n2 → n1", connects_from(n2_pid, n1)),
        ("n1 → n3", connects_from(n1_pid, n3)),
        ("host → n2", connects(n2)),
        ("n2 → n3", connects_from(n2_pid, n3)),
    ];
    assert!(
        !has_op(&ops(&history_path), "nemesis", "ok", "heal"),
        "the probes ran inside the partition (8 s); a heal came first, so they prove nothing"
    );
    assert_eq!(
        during.map(|(what, ok)| (what, ok)),
        [("host → n1", false), ("n2 → n1", false), ("n1 → n3", false), ("host → n2", true), ("n2 → n3", true)],
        "during the partition n1 is unreachable from the clients and the other nodes, and the rest still talk"
    );
    while !has_op(&ops(&history_path), "nemesis", "ok", "heal") {
        assert!(Instant::now() < deadline, "the partition healed in time");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        connects(n1) && connects_from(n2_pid, n1) && connects_from(n1_pid, n3),
        "after the heal n1 is reachable again"
    );

    let out = child.wait_with_output().expect("kaos run");
    let stdout = exited(&out, 0);
    assert!(
        stdout.contains("verdict: VALID") && stdout.contains(" lost=0 "),
        "{stdout}"
    );
    let ops = history_ops(&run_dir);
    assert!(
        has_op(&ops, "nemesis", "ok", "link_fault"),
        "the delay on n1's proxy was put in force"
    );
    let network = ops
        .iter()
        .find(|o| o["f"] == "network")
        .expect("a network op");
    let gateway = format!(
        "{}.1:",
        n1.ip().to_string().rsplit_once('.').expect("dotted").0
    );
    assert!(
        network["value"]["bootstrap"]
            .as_str()
            .is_some_and(|b| b.split(',').all(|a| a.starts_with(&gateway))),
        "the clients went through the proxies: {network}"
    );
    assert_eq!(leftovers(&store), Vec::<String>::new());
}

#[test]
fn partition_leader_acks_all_holds_on_the_docker_platform() {
    let ValidRun {
        _tmp,
        store,
        stdout,
        ops,
        ..
    } = run_valid(&library("partition-leader-acks-all.toml"), "20");
    assert!(stdout.contains(" lost=0 "), "{stdout}");
    assert!(
        has_op(&ops, "nemesis", "ok", "isolate"),
        "the leader's container was cut off at least once"
    );
    assert!(has_op(&ops, "nemesis", "ok", "heal"), "and healed");
    assert_eq!(leftovers(&store), Vec::<String>::new());
}

#[test]
fn reset_acks_all_holds_on_the_docker_platform_through_the_host_proxies() {
    let ValidRun {
        _tmp,
        store,
        stdout,
        ops,
        ..
    } = run_valid(&library("reset-acks-all.toml"), "14");
    assert!(stdout.contains(" lost=0 "), "{stdout}");
    let network = ops
        .iter()
        .find(|o| o["f"] == "network")
        .expect("a network op");
    let node: std::net::SocketAddr = network["value"]["nodes"][0]["addr"]
        .as_str()
        .expect("addr")
        .parse()
        .expect("addr");
    let bootstrap = network["value"]["bootstrap"].as_str().expect("bootstrap");
    let std::net::IpAddr::V4(ip) = node.ip() else {
        panic!("an IPv4 node address: {node}")
    };
    let [a, b, c, _] = ip.octets();
    assert!(bootstrap.starts_with(&format!("{a}.{b}.{c}.1:")), "the clients reach the broker through its proxy on the host's gateway address: {bootstrap} (node {node})");
    assert!(
        has_op(&ops, "nemesis", "ok", "link_fault"),
        "the resets were made"
    );
    assert_eq!(leftovers(&store), Vec::<String>::new());
}

/// Removes (best effort) every container and network whose run directory is under the path, even
/// when the test fails.
struct RemoveUnder(PathBuf);

impl Drop for RemoveUnder {
    fn drop(&mut self) {
        for line in leftovers(&self.0) {
            let name = line.split(' ').next().unwrap_or_default();
            for args in [vec!["rm", "--force", name], vec!["network", "rm", name]] {
                let _ = Command::new("docker")
                    .args(&args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

#[test]
fn what_a_sigkilled_docker_run_left_is_removed_by_the_next_docker_run() {
    broker_image(None);
    let tmp = tempfile::tempdir().expect("tempdir");
    let _cleanup = RemoveUnder(tmp.path().to_path_buf());
    let store = tmp.path().join("killed");
    let mut child = kaos_run(&demo(), &store, &["--duration-s", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kaos run");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(store.join("latest/history.jsonl"))
        .is_ok_and(|h| h.matches("\"f\":\"send\"").count() > 20)
    {
        if Instant::now() > deadline || child.try_wait().expect("try_wait").is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run never started producing");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().expect("SIGKILL the harness");
    child.wait().expect("reap it");
    assert!(
        !leftovers(&store).is_empty(),
        "a harness killed with SIGKILL leaves its containers and network"
    );

    let next = tmp.path().join("next");
    let out = kaos_run(&demo(), &next, &["--duration-s", "2"])
        .output()
        .expect("kaos run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("whose harness (pid"), "{stderr}");
    assert_eq!(
        leftovers(&store),
        Vec::<String>::new(),
        "the next docker run removed what the killed one left"
    );
}

/// A profile other than kaos-broker's on the docker platform: a program of another name
/// (`foreign-broker`, here kaos-broker's binary copied under that name, as `kaos image` cannot
/// tell it from any other program) with a profile of its own — its arguments, a working directory,
/// an environment variable and a settings file named otherwise than kaos-broker's. Its image is
/// built from that program (`kaos-foreign-broker:<hash>`, the program at
/// /usr/local/bin/foreign-broker, the container's entrypoint) and the container runs the profile's
/// arguments over the container's variables; the demo's SIGKILLs lose nothing acknowledged.
#[test]
fn a_foreign_profile_runs_in_containers_with_its_own_program_arguments_and_settings_file() {
    require_docker();
    let tmp = tempfile::tempdir().expect("tempdir");
    let program = tmp.path().join("foreign-broker");
    std::fs::copy(broker_bin(), &program).expect("copy the broker binary");
    let profile = tmp.path().join("foreign.toml");
    std::fs::write(
        &profile,
        format!(
            r#"
name = "foreign"
command = "{}"
node_id = "{{k}}"
[broker]
args = ["--node-id", "{{node_id}}", "--listen", "{{listen}}", "--data-dir", "{{data_dir}}", "--config", "{{config}}"]
cwd = "{{data_dir}}"
env = {{ KAOS_FOREIGN_NODE = "{{name}}" }}
[settings]
format = "toml"
file = "foreign.toml"
defaults = {{ "advertised.listener" = "{{advertised}}" }}
[features]
groups = true
idempotence = true
transactions = true
docker = true
"#,
            program.display()
        ),
    )
    .expect("write the profile");
    let store = tmp.path().join("store");
    let out = Command::new(kaos())
        .arg("run")
        .arg(demo())
        .arg("--store")
        .arg(&store)
        .args(["--platform", "docker", "--duration-s", "12", "--broker"])
        .arg(&profile)
        .env_remove("KAOS_BROKER_BIN")
        .env_remove("KAOS_BROKER")
        .output()
        .expect("kaos run");
    let (run_dir, addr) = killed_in_containers_and_valid(&out, &store);
    let addr = addr.as_str();
    let settings = std::fs::read_to_string(run_dir.join("nodes/n1/foreign.toml"))
        .expect("the profile's settings file, as it names it");
    let settings: toml::Table = toml::from_str(&settings).expect("TOML");
    assert_eq!(
        settings["advertised.listener"].as_str(),
        Some(addr),
        "advertised: the container's address: {settings}"
    );
    let images = docker(&[
        "image",
        "ls",
        "--format",
        "{{.Repository}}",
        "kaos-foreign-broker",
    ]);
    assert!(
        images.contains("kaos-foreign-broker"),
        "the image is the program's own: {images}"
    );
    let log = std::fs::read_to_string(run_dir.join("nodes/n1/broker.log")).expect("log");
    assert!(log.matches("kaos-broker ready").count() >= 2, "{log}");
    assert_eq!(leftovers(&store), Vec::<String>::new());
}

/// tansu (crates.io, the `tansu` profile) in containers: its image is built from the installed
/// program and the libraries ldd names (`kaos-tansu:<hash>`), its sqlite database in the bind
/// mounted /data (the profile's working directory); the demo's SIGKILLs at 300 messages/s, as on
/// the local platform (`harness/tests/profiles.rs`).
#[test]
fn tansu_runs_in_containers_and_loses_nothing_acknowledged_to_a_sigkill() {
    require_docker();
    assert_tansu_installed();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("kill.toml");
    std::fs::write(&file, tansu_kill_scenario()).expect("write");
    let store = tmp.path().join("store");
    let out = Command::new(kaos())
        .arg("run")
        .arg(&file)
        .arg("--store")
        .arg(&store)
        .args([
            "--platform",
            "docker",
            "--duration-s",
            "15",
            "--broker",
            "tansu",
        ])
        .env_remove("KAOS_BROKER_BIN")
        .env_remove("KAOS_BROKER")
        .output()
        .expect("kaos run");
    let (run_dir, _) = killed_in_containers_and_valid(&out, &store);
    assert!(
        run_dir.join("nodes/n1/data/tansu.db").is_file(),
        "the database in the node's bind-mounted data directory"
    );
    let images = docker(&["image", "ls", "--format", "{{.Repository}}", "kaos-tansu"]);
    assert!(
        images.contains("kaos-tansu"),
        "the image is tansu's: {images}"
    );
    assert_eq!(leftovers(&store), Vec::<String>::new());
}

/// What a profile's demo kills on the docker platform show: exit 0, VALID, nothing acknowledged
/// lost, the node in a container on the run's network, its container SIGKILLed. Returns the run's
/// directory and the first node's address.
fn killed_in_containers_and_valid(out: &Output, store: &Path) -> (PathBuf, String) {
    let stdout = exited(out, 0);
    assert!(stdout.contains("verdict: VALID"), "{stdout}");
    assert!(stdout.contains(" lost=0 "), "{stdout}");
    let run_dir = store.join("latest");
    let ops = history_ops(&run_dir);
    let start = ops
        .iter()
        .find(|o| o["f"] == "node_start")
        .expect("a node_start op");
    let addr = start["value"]["addr"].as_str().expect("addr").to_string();
    assert!(addr.starts_with("172.29."), "in a container: {addr}");
    assert!(
        has_op(&ops, "nemesis", "ok", "kill"),
        "the container was killed"
    );
    (run_dir, addr)
}
