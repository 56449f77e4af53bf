//! The run loop: start the cluster, create the topic, start the clients, let the nemesis work for
//! the timed phase, stop the producers, heal, read every partition to its end, stop everything,
//! then check the history and write the run's results and report.

use crate::clients::{ClientProcess, ClientSet};
use crate::history::{self, Recorder};
use crate::limits::{
    CLIENT_STOP_GRACE_MS, FINAL_READ_TIMEOUT_MS, ID_BLOCK_SIZE, NODE_EXIT_PROBE_MS,
    REPLICAS_IN_SYNC_PROBE_MS, REPLICAS_IN_SYNC_TIMEOUT_MS, TOPIC_CREATE_ATTEMPTS_MAX,
    TOPIC_CREATE_RETRY_MS,
};
use crate::nemesis;
use crate::platform::Platform;
use crate::profile::Broker;
use crate::scenario::{Client, PlatformKind, Scenario, Target};
use anyhow::{Context, Result};
use checkers::Analysis;
use kaos_history::{OpType, F, HARNESS};
use results::{PlotData, RunDir, RunSummary};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use workloads::{ClientSpec, ConsumerSpec, FinalReadSpec, ProducerMode, ProducerSpec};

pub struct RunOptions {
    pub store: PathBuf,
    pub kaos_bin: PathBuf,
}

pub struct RunOutcome {
    pub dir: RunDir,
    pub summary: RunSummary,
}

/// librdkafka's default `message.timeout.ms`.
const LIBRDKAFKA_MESSAGE_TIMEOUT_MS: u64 = 300_000;

/// Runs `scenario` on `broker` (its profile, resolved at load: [`crate::profile::resolve`]).
pub async fn run(
    scenario: &Scenario,
    scenario_text: &str,
    broker: &Broker,
    opts: &RunOptions,
) -> Result<RunOutcome> {
    remove_dead_mounts();
    let started_at = SystemTime::now();
    let t0 = Instant::now();
    // Absolute: a node's process runs in a directory of its own (its profile's `cwd`, by default
    // its node directory), so every path handed to it must not depend on this process's.
    let store = std::path::absolute(&opts.store)
        .with_context(|| format!("resolving the store {}", opts.store.display()))?;
    let dir = RunDir::create(&store, &scenario.name, started_at)
        .with_context(|| format!("creating the run directory under {}", store.display()))?;
    let external;
    let scenario = if scenario.platform == PlatformKind::External {
        external = for_external_cluster(scenario, &dir);
        &external
    } else {
        scenario
    };
    std::fs::write(dir.scenario_path(), scenario_text)
        .context("saving the scenario into the run directory")?;
    eprintln!("kaos: run {} → {}", scenario.name, dir.path.display());

    let mut platform =
        Platform::new(setup(scenario), broker, &opts.kaos_bin, &dir.nodes_dir()).await?;
    if let Err(e) = platform.check_configs().await {
        platform.release().await;
        return Err(e);
    }
    let (rec, writer) = history::open(&dir.history_path(), t0).context("creating history.jsonl")?;
    let phases = match network(scenario, &mut platform, &rec).await {
        Ok(()) => drive(scenario, opts, &dir, &rec, &mut platform).await,
        Err(e) => Err(e),
    };
    nemesis::notice_crashes(&mut platform, &rec).await;
    platform.stop_all().await;
    if scenario.cluster.replica_dumps {
        dump_replicas(&platform, &rec).await;
    }
    platform.release().await;
    rec.op(
        HARNESS,
        OpType::Ok,
        F::End,
        json!({"ok": phases.is_ok()}),
        phases.as_ref().err().map(|e| format!("{e:#}")),
    )
    .await;
    drop(rec);
    let op_count = writer.finish().await.context("writing history.jsonl")?;
    phases?;
    eprintln!("kaos: {op_count} ops recorded; checking");

    let (analysis, plots) = analyse(&dir, scenario)?;
    let summary = summary(
        scenario,
        &dir,
        &platform,
        started_at,
        t0.elapsed().as_secs_f64(),
        analysis,
        plots,
    );
    results::write_results(&dir, &summary).context("writing results.json and report.html")?;
    Ok(RunOutcome { dir, summary })
}

/// What runs killed with SIGKILL left mounted (lazyfs mounts whose daemon died with them); stale
/// network namespaces and docker containers are removed where those are set up.
fn remove_dead_mounts() {
    let (cleared, errors) = crate::lazyfs::remove_dead_mounts();
    for mount in cleared {
        eprintln!(
            "kaos: unmounted {}, a dead lazyfs mount left by a harness that was killed",
            mount.display()
        );
    }
    for e in errors {
        eprintln!("kaos: {e}");
    }
}

/// The scenario as it runs against an external cluster: its topic named after the run
/// (`<topic>-<run directory name>`), since the cluster keeps earlier runs' topics and a new run
/// reuses their message ids. The broker settings cannot be applied there; says so.
fn for_external_cluster(scenario: &Scenario, dir: &RunDir) -> Scenario {
    let mut s = scenario.clone();
    let stamp: String = dir
        .path
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect()
        })
        .unwrap_or_default();
    s.topic.name = format!("{}-{stamp}", scenario.topic.name);
    let c = &scenario.cluster;
    if !c.settings.is_empty() || !c.node_settings.is_empty() || !c.controller_settings.is_empty() {
        eprintln!("kaos: external cluster: the scenario's [cluster] settings are not applied (the cluster runs with its own configuration)");
    }
    eprintln!(
        "kaos: external cluster at {}: topic {}",
        s.bootstrap.as_deref().unwrap_or_default(),
        s.topic.name
    );
    s
}

/// For partitions and link faults: the nodes in network namespaces (and brokers behind proxies).
/// What the platform needs of the scenario to lay its nodes out.
fn setup(scenario: &Scenario) -> crate::platform::Setup<'_> {
    crate::platform::Setup {
        kind: scenario.platform,
        cluster: &scenario.cluster,
        lazyfs_seed: scenario.uses_lazyfs().then_some(scenario.seed),
        torn_writes: scenario.nemesis.torn_writes,
        bootstrap: scenario.bootstrap.as_deref(),
    }
}

async fn network(scenario: &Scenario, platform: &mut Platform, rec: &Recorder) -> Result<()> {
    if !scenario.uses_network() {
        return Ok(());
    }
    let partitions = scenario
        .nemesis
        .faults
        .iter()
        .any(crate::fault::Fault::is_partition);
    platform
        .use_network(scenario.uses_proxies(), partitions)
        .await?;
    let nodes: Vec<_> = (0..platform.node_count()).map(|i| json!({"node": platform.name(i), "addr": platform.addr(i), "netns": platform.netns_name(i)})).collect();
    rec.op(
        HARNESS,
        OpType::Info,
        F::Network,
        json!({"nodes": nodes, "bootstrap": platform.bootstrap()}),
        None,
    )
    .await;
    Ok(())
}

/// Everything between the first node start and the end of the final read, in its phases.
async fn drive(
    scenario: &Scenario,
    opts: &RunOptions,
    dir: &RunDir,
    rec: &Recorder,
    platform: &mut Platform,
) -> Result<()> {
    let events = start_cluster(scenario, rec, platform).await?;
    let bootstrap = platform.bootstrap();
    // The timed phase starts now; fault times are relative to it.
    let timed_start = Instant::now();
    let progress = crate::progress::Progress::start(rec.live(), scenario.duration_s);
    let mut clients = ClientSet::new(&opts.kaos_bin, &dir.clients_dir());
    start_clients(scenario, dir, &bootstrap, &mut clients, rec).await?;
    let mut resolver = nemesis::Resolver::new(
        bootstrap.clone(),
        scenario.topic.name.clone(),
        scenario.consumer_group(),
        scenario.seed,
    );
    resolver.transactional_id = scenario.transactional_id();
    nemesis::run(
        &scenario.nemesis,
        &events,
        platform,
        &mut clients,
        &mut resolver,
        rec,
        timed_start,
        scenario.duration_s as f64,
    )
    .await?;
    let timed_end = timed_start + Duration::from_secs(scenario.duration_s);
    watch_nodes_until(platform, rec, timed_end).await;
    drop(progress);
    stop_clients(&mut clients, rec, "producers", |s| {
        matches!(s, ClientSpec::Producer(_))
    })
    .await?;
    heal_everything(scenario, platform, rec).await?;
    // Pipelines finish what the producers wrote (they stop once their input is idle) before the
    // final read, so that it reads a finished output.
    stop_clients(&mut clients, rec, "pipelines", is_pipeline).await?;
    if scenario.topic.replication_factor > 1 {
        for topic in scenario.topics() {
            await_replicas_in_sync(&bootstrap, &topic, rec).await;
        }
    }
    final_read(scenario, opts, dir, &bootstrap, rec, platform).await?;
    stop_clients(&mut clients, rec, "consumers", |s| {
        !matches!(s, ClientSpec::Producer(_))
    })
    .await
}

/// A consume-transform-produce client.
fn is_pipeline(spec: &ClientSpec) -> bool {
    matches!(spec, ClientSpec::Consumer(c) if c.pipeline.is_some())
}

/// Draws the fault schedule, records the start, starts every node (the controller first) and
/// creates the topic; returns the schedule.
async fn start_cluster(
    scenario: &Scenario,
    rec: &Recorder,
    platform: &mut Platform,
) -> Result<Vec<nemesis::FaultEvent>> {
    let targets = Target::parse_list(&scenario.nemesis.target).map_err(anyhow::Error::msg)?;
    let events = nemesis::schedule(
        &scenario.nemesis,
        &targets,
        scenario.cluster.brokers as usize,
        scenario.duration_s as f64,
        scenario.seed,
    );
    let mut start = json!({
        "scenario": scenario.name,
        "seed": scenario.seed,
        "schedule": events,
        // The checker's `uncommitted_read` needs it: with one replica every record served is
        // committed.
        "topic": {"replication_factor": scenario.topic.replication_factor},
        // The checker's `compacted` needs them: the topic's cleanup policy (below), and the
        // producers' key space.
        "clients": scenario.clients.iter().filter_map(|c| match c {
            Client::Producer { keys, .. } => Some(json!({"kind": "producer", "keys": keys})),
            Client::Consumer { .. } => None,
        }).collect::<Vec<_>>(),
    });
    // Whether the brokers compact the topic, wherever the scenario set it (validated at load:
    // the nodes agree).
    if let Some(policy) = scenario
        .cluster
        .cleanup_policy()
        .map_err(anyhow::Error::msg)?
    {
        start["topic"]["cleanup_policy"] = json!(policy);
    }
    if let Some(broker) = platform.broker() {
        start["broker"] = json!(broker.profile.name);
        // What the broker does about durability when the scenario does not say, for the
        // checker's explanation of a loss.
        if !scenario.cluster.settings.contains_key("flush.messages") {
            if let Some(flush) = broker.profile.explains.get("flush.messages") {
                start["broker_durability"] = json!(flush);
            }
        }
    }
    rec.op(HARNESS, OpType::Invoke, F::Start, start, None).await;
    // The controller first (it is last in the list), then the brokers.
    let mut order: Vec<usize> = (0..platform.node_count()).collect();
    // (An external cluster has no nodes of this run.)
    if !order.is_empty() {
        order.rotate_right(usize::from(scenario.cluster.has_controller()));
    }
    for i in order {
        let pid = platform.start(i).await?;
        rec.op(
            HARNESS,
            OpType::Info,
            F::NodeStart,
            json!({"node": platform.name(i), "pid": pid, "addr": platform.addr(i)}),
            None,
        )
        .await;
    }
    let bootstrap = platform.bootstrap();
    create_topic(scenario, &bootstrap).await?;
    rec.op(
        HARNESS,
        OpType::Ok,
        F::Start,
        json!({"bootstrap": bootstrap}),
        None,
    )
    .await;
    Ok(events)
}

/// Starts the scenario's clients, each with its own block of message ids.
async fn start_clients(
    scenario: &Scenario,
    dir: &RunDir,
    bootstrap: &str,
    clients: &mut ClientSet,
    rec: &Recorder,
) -> Result<()> {
    let bootstrap = bootstrap.to_string();
    let (mut np, mut nc) = (0, 0);
    for (k, client) in scenario.clients.iter().enumerate() {
        let id_base = (k as u64 + 1) * ID_BLOCK_SIZE;
        match client {
            Client::Producer {
                mode,
                rate_per_s,
                message_size_bytes,
                on_full,
                config,
                transaction,
                keys,
            } => {
                np += 1;
                let name = format!("producer-{np}");
                let mut config = config.clone();
                if *mode == ProducerMode::Transactional {
                    // Kept by a restarted producer: its init_transactions fences the old one.
                    config
                        .entry("transactional.id".into())
                        .or_insert_with(|| format!("kaos-{}-{name}", scenario.name));
                }
                let spec = ClientSpec::Producer(ProducerSpec {
                    bootstrap: bootstrap.clone(),
                    topic: scenario.topic.name.clone(),
                    id_base,
                    mode: *mode,
                    rate_per_s: *rate_per_s,
                    message_size_bytes: *message_size_bytes,
                    count_max: 0,
                    on_full: *on_full,
                    outbox: (*mode == ProducerMode::Outbox)
                        .then(|| dir.clients_dir().join(format!("{name}.outbox"))),
                    config: config.clone(),
                    transaction: transaction.clone().unwrap_or_default(),
                    seed: scenario.seed,
                    keys: *keys,
                });
                let timeout_ms = config
                    .get("message.timeout.ms")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(LIBRDKAFKA_MESSAGE_TIMEOUT_MS);
                clients
                    .start(
                        &name,
                        spec,
                        Duration::from_millis(timeout_ms + CLIENT_STOP_GRACE_MS),
                        rec,
                    )
                    .await?;
            }
            Client::Consumer {
                subscribe,
                processing,
                config,
                pipeline,
            } => {
                nc += 1;
                let name = format!("consumer-{nc}");
                let mut config = config.clone();
                if *subscribe || processing.is_some() || pipeline.is_some() {
                    // One group for the scenario's consumers, kept by a restarted consumer.
                    if let Some(group) = scenario.consumer_group() {
                        config.entry("group.id".into()).or_insert(group);
                    }
                }
                let spec = ClientSpec::Consumer(ConsumerSpec {
                    bootstrap: bootstrap.clone(),
                    topic: scenario.topic.name.clone(),
                    subscribe: *subscribe,
                    processing: processing.clone(),
                    sink: processing
                        .is_some()
                        .then(|| dir.clients_dir().join(format!("{name}.sink"))),
                    seed: scenario.seed,
                    config,
                    pipeline: pipeline_spec(scenario, &name, pipeline.as_ref()),
                });
                // A pipeline drains its input before it stops.
                let grace = CLIENT_STOP_GRACE_MS
                    + pipeline
                        .as_ref()
                        .map_or(0, |_| workloads::limits::PIPELINE_DRAIN_MS_MAX);
                clients
                    .start(&name, spec, Duration::from_millis(grace), rec)
                    .await?;
            }
        }
    }

    Ok(())
}

/// A pipeline client's spec: the output topic, and a transactional.id kept by its restarts (so
/// that a restarted pipeline fences its predecessor).
fn pipeline_spec(
    scenario: &Scenario,
    name: &str,
    pipeline: Option<&crate::scenario::Pipeline>,
) -> Option<workloads::PipelineSpec> {
    let p = pipeline?;
    let mut spec = p.spec(scenario.output_topic()?);
    if p.transactional {
        spec.producer_config
            .entry("transactional.id".into())
            .or_insert_with(|| format!("kaos-{}-{name}", scenario.name));
    }
    Some(spec)
}

/// Waits until `until`, looking for nodes that exit on their own meanwhile (and once at the end).
async fn watch_nodes_until(platform: &mut Platform, rec: &Recorder, until: Instant) {
    let every = Duration::from_millis(NODE_EXIT_PROBE_MS);
    while Instant::now() + every < until {
        nemesis::notice_crashes(platform, rec).await;
        tokio::time::sleep(every).await;
    }
    tokio::time::sleep_until(until.into()).await;
    nemesis::notice_crashes(platform, rec).await;
}

/// Stops the clients `which` names (`chosen` picks them), between a `stop_clients` invoke and ok.
async fn stop_clients(
    clients: &mut ClientSet,
    rec: &Recorder,
    which: &str,
    chosen: impl Fn(&ClientSpec) -> bool,
) -> Result<()> {
    let value = json!({ "clients": which });
    rec.op(HARNESS, OpType::Invoke, F::StopClients, value.clone(), None)
        .await;
    clients.stop_where(chosen, rec).await?;
    rec.op(HARNESS, OpType::Ok, F::StopClients, value, None)
        .await;
    Ok(())
}

/// The end of the faults: every partition and link fault lifted, what a sequence left paused
/// woken, what any fault (or a crash) left down started again.
async fn heal_everything(
    scenario: &Scenario,
    platform: &mut Platform,
    rec: &Recorder,
) -> Result<()> {
    rec.op(HARNESS, OpType::Invoke, F::Heal, json!(null), None)
        .await;
    if scenario.uses_network() {
        nemesis::heal(platform, None, rec).await?;
    }
    for i in 0..platform.node_count() {
        if platform.is_paused(i) {
            nemesis::resume(platform, i, rec).await?;
        }
        nemesis::restart(platform, i, rec).await?;
    }
    rec.op(HARNESS, OpType::Ok, F::Heal, json!(null), None)
        .await;
    Ok(())
}

/// The final read: a reader client per topic (`final-reader`, then `final-reader-output` for a
/// pipeline's output topic) reads every partition to its end offset, all in one `final_read`
/// window; it is complete when every reader reached its ends. Nodes that exit on their own
/// meanwhile are noticed as they go (a broker may stop on what the final read makes it read).
async fn final_read(
    scenario: &Scenario,
    opts: &RunOptions,
    dir: &RunDir,
    bootstrap: &str,
    rec: &Recorder,
    platform: &mut Platform,
) -> Result<()> {
    let topics = json!({"topic": scenario.topic.name, "topics": scenario.topics()});
    rec.op(HARNESS, OpType::Invoke, F::FinalRead, topics.clone(), None)
        .await;
    let mut failed = Vec::new();
    for (k, topic) in scenario.topics().into_iter().enumerate() {
        let name = match k {
            0 => "final-reader".to_string(),
            _ => "final-reader-output".to_string(),
        };
        let spec = ClientSpec::FinalRead(FinalReadSpec {
            bootstrap: bootstrap.to_string(),
            topic,
            timeout_ms: FINAL_READ_TIMEOUT_MS,
            config: Default::default(),
        });
        let mut reader =
            ClientProcess::spawn(&opts.kaos_bin, &dir.clients_dir(), &name, &spec, rec).await?;
        let timeout = Duration::from_millis(FINAL_READ_TIMEOUT_MS + CLIENT_STOP_GRACE_MS);
        match wait_final_reader(&mut reader, platform, rec, scenario, timeout).await? {
            Some(status) if status.success() => {}
            Some(status) => failed.push(format!(
                "final reader ended with {status}; see clients/{name}.log"
            )),
            None => failed.push(format!(
                "final reader stopped: every broker had exited on its own (see the crash ops); see clients/{name}.log"
            )),
        }
    }
    if failed.is_empty() {
        rec.op(HARNESS, OpType::Ok, F::FinalRead, topics, None)
            .await;
    } else {
        let why = failed.join("; ");
        eprintln!("kaos: {why}");
        rec.op(HARNESS, OpType::Info, F::FinalRead, topics, Some(why))
            .await;
    }
    Ok(())
}

/// Waits for a final reader to end (at most `timeout`, then SIGKILLs it), noticing the nodes
/// that exit on their own meanwhile, so that a crash the final read provokes is recorded when it
/// happens, not at the end of the run. Once such crashes left no broker running, nothing can
/// serve the reader (no node is restarted before the run ends): it is SIGKILLed then (None)
/// instead of at the timeout, and the final read is incomplete either way.
async fn wait_final_reader(
    reader: &mut ClientProcess,
    platform: &mut Platform,
    rec: &Recorder,
    scenario: &Scenario,
    timeout: Duration,
) -> Result<Option<std::process::ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let every = Duration::from_millis(NODE_EXIT_PROBE_MS);
    let brokers = (scenario.cluster.brokers as usize).min(platform.node_count());
    let mut crashed = 0;
    loop {
        let slice = every.min(deadline.saturating_duration_since(Instant::now()));
        if let Some(status) = reader.wait_at_most(slice).await? {
            return Ok(Some(status));
        }
        crashed += nemesis::notice_crashes(platform, rec).await;
        if Instant::now() >= deadline {
            return reader.kill().await.map(Some);
        }
        if crashed > 0 && (0..brokers).all(|i| !platform.is_running(i)) {
            reader.kill().await?;
            return Ok(None);
        }
    }
}

/// Waits (bounded) until every partition of the topic has all its replicas in the ISR, so that a
/// follower restarted late in the run has caught up before the final read and before the nodes
/// stop and the replica dumps are compared; records how that ended. A replica still out of sync at the deadline stays so in
/// the dumps, where a gap below the high watermark is reported.
async fn await_replicas_in_sync(bootstrap: &str, topic: &str, rec: &Recorder) {
    let started = Instant::now();
    let deadline = started + Duration::from_millis(REPLICAS_IN_SYNC_TIMEOUT_MS);
    let mut lagging: Vec<i32> = Vec::new();
    loop {
        let (b, t) = (bootstrap.to_string(), topic.to_string());
        match tokio::task::spawn_blocking(move || workloads::admin::partition_roles(&b, &t)).await {
            Ok(Ok(roles)) => {
                lagging = roles
                    .iter()
                    .filter(|r| r.replicas.iter().any(|x| !r.isr.contains(x)))
                    .map(|r| r.partition)
                    .collect();
                if lagging.is_empty() {
                    break;
                }
            }
            Ok(Err(_)) | Err(_) => {}
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(REPLICAS_IN_SYNC_PROBE_MS)).await;
    }
    let waited_ms = started.elapsed().as_millis() as u64;
    rec.op(HARNESS, OpType::Info, F::ReplicasInSync, json!({"topic": topic, "in_sync": lagging.is_empty(), "lagging_partitions": lagging, "waited_ms": waited_ms}), None).await;
}

/// After the nodes stop: every replica each broker holds, as its profile's `dump` writes it
/// (kaos-broker's `dump`), into `nodes/<name>/dump.jsonl`, so the checker can compare replicas
/// without linking the broker. Nothing for a profile without dumps.
async fn dump_replicas(platform: &Platform, rec: &Recorder) {
    let Some(broker) = platform.broker() else {
        return;
    };
    for (name, node_dir, data_dir) in platform.broker_dirs() {
        // A dump reads a stopped node's files: its name and directories are all it is told.
        let mut vars = crate::profile::Vars::default();
        vars.set("name", &name);
        vars.set("dir", node_dir.display());
        vars.set("data_dir", data_dir.display());
        let result = match broker.dump_args(&vars) {
            Ok(Some(args)) => dump_one(&broker.program, &args, &node_dir).await,
            Ok(None) => return,
            Err(e) => Err(e),
        };
        record_dump(rec, &name, result).await;
    }
}

/// `program args` into `node_dir/dump.jsonl`, its stderr into `node_dir/dump.log`.
async fn dump_one(program: &Path, args: &[String], node_dir: &Path) -> Result<()> {
    let out_path = node_dir.join("dump.jsonl");
    let file = std::fs::File::create(&out_path)
        .with_context(|| format!("creating {}", out_path.display()))?;
    let err_path = node_dir.join("dump.log");
    let err = std::fs::File::create(&err_path)
        .with_context(|| format!("creating {}", err_path.display()))?;
    let status = crate::process::command(program)
        .args(args)
        .stdout(std::process::Stdio::from(file))
        .stderr(std::process::Stdio::from(err))
        .status()
        .await
        .with_context(|| format!("running {} {}", program.display(), args.join(" ")))?;
    anyhow::ensure!(
        status.success(),
        "{} {} ended with {status}; see {}",
        program.display(),
        args.join(" "),
        err_path.display()
    );
    Ok(())
}

async fn record_dump(rec: &Recorder, name: &str, result: Result<()>) {
    match result {
        Ok(()) => {
            let value = json!({"node": name, "path": format!("nodes/{name}/dump.jsonl")});
            rec.op(HARNESS, OpType::Ok, F::ReplicaDump, value, None)
                .await
        }
        Err(e) => {
            let why = Some(format!("{e:#}"));
            rec.op(
                HARNESS,
                OpType::Fail,
                F::ReplicaDump,
                json!({"node": name}),
                why,
            )
            .await
        }
    }
}

/// Creates the scenario's topic, retrying while the cluster settles.
/// Creates the scenario's topics (its topic and, with a pipeline, the output topic with the same
/// partitions and replication factor), retrying while the cluster settles.
async fn create_topic(scenario: &Scenario, bootstrap: &str) -> Result<()> {
    let t = &scenario.topic;
    for name in scenario.topics() {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match workloads::admin::create_topic(
                bootstrap,
                &name,
                t.partitions,
                t.replication_factor,
            )
            .await
            {
                Ok(()) => break,
                Err(e) if attempt >= TOPIC_CREATE_ATTEMPTS_MAX => {
                    return Err(e)
                        .with_context(|| format!("creating topic {name} after {attempt} attempts"))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(TOPIC_CREATE_RETRY_MS)).await,
            }
        }
    }
    Ok(())
}

/// Checks the stored history of a run directory (with the replica dumps beside it, where the run
/// wrote them), and draws its plot series from the same text.
pub fn analyse(dir: &RunDir, scenario: &Scenario) -> Result<(Analysis, PlotData)> {
    let bytes = std::fs::read(dir.history_path())
        .with_context(|| format!("reading {}", dir.history_path().display()))?;
    let (text, non_utf8) = checkers::history_text(&bytes);
    let mut checker = checkers::Checker::new(scenario.expect.clone());
    checkers::observe_text(&mut checker, &text)
        .with_context(|| format!("checking {}", dir.history_path().display()))?;
    if let Some(note) = checkers::non_utf8_note(&non_utf8) {
        eprintln!("kaos: {note}");
        checker.note(note);
    }
    let dumps = read_replica_dumps(dir)?;
    if !dumps.is_empty() {
        let borrowed: Vec<(String, &str)> = dumps
            .iter()
            .map(|(node, text)| (node.clone(), text.as_str()))
            .collect();
        if let Err(e) = checker.observe_replica_dumps(&borrowed) {
            checker.note(format!("replica dumps were not compared: {e}"));
        }
    }
    let mut analysis = checker.finish();
    judge_idle_clients(scenario, &text, &mut analysis);
    judge_duplicate_batches(dir, scenario, &mut analysis);
    Ok((analysis, PlotData::from_history_text(&text)))
}

/// A run in which a producer acknowledged nothing, or a consumer read nothing while sends were
/// acknowledged, verified nothing about that client (a refused property, a wrong address, a
/// client that never got going): never `valid`. Its verdict becomes `unknown` with the reason,
/// unless the scenario says `[expect] idle_clients_allowed = true`.
fn judge_idle_clients(scenario: &Scenario, history: &str, analysis: &mut Analysis) {
    let idle = idle_clients(scenario, history, analysis.counts.sends_ok);
    if idle.is_empty() {
        return;
    }
    let reason = idle.join("; ");
    if scenario.expect.idle_clients_allowed {
        analysis.notes.push(format!(
            "{reason} (the scenario allows idle clients: [expect] idle_clients_allowed = true)"
        ));
        return;
    }
    if analysis.verdict == checkers::Verdict::Valid {
        analysis.verdict = checkers::Verdict::Unknown;
    }
    // After the crashed nodes' notes, which come first.
    let first = analysis
        .anomaly(checkers::AnomalyKind::NodeCrash)
        .map_or(0, |a| a.cases.len());
    analysis.notes.insert(first, format!("{reason}: the run verified nothing about it, so it cannot be valid (see the client's log; a scenario that means it sets [expect] idle_clients_allowed = true)"));
}

/// What kaos-broker logs for each retried batch it recognised as a duplicate (its
/// `producer::DUPLICATE_BATCH_LOG_LINE`; the harness reads the broker's log, it does not link it).
const DUPLICATE_BATCH_LOG_LINE: &str = "recognised a retried batch as a duplicate";

/// The retried batches the brokers recognised as duplicates, counted in their logs in the run
/// directory (`nodes/<n>/broker.log`, appended across restarts, so a SIGKILL loses none), into
/// `counts.duplicate_batches`; fewer than `[expect] duplicate_batches_min` is unmet: the
/// scenario did not exercise the idempotence window it claims to.
fn judge_duplicate_batches(dir: &RunDir, scenario: &Scenario, analysis: &mut Analysis) {
    use std::io::BufRead;
    let mut count = 0u64;
    if let Ok(entries) = std::fs::read_dir(dir.nodes_dir()) {
        for entry in entries.filter_map(Result::ok) {
            let Ok(log) = std::fs::File::open(entry.path().join("broker.log")) else {
                continue;
            };
            count += std::io::BufReader::new(log)
                .split(b'\n')
                .filter_map(Result::ok)
                .filter(|line| {
                    line.windows(DUPLICATE_BATCH_LOG_LINE.len())
                        .any(|w| w == DUPLICATE_BATCH_LOG_LINE.as_bytes())
                })
                .count() as u64;
        }
    }
    analysis.counts.duplicate_batches = count;
    let min = scenario.expect.duplicate_batches_min;
    if count < min {
        analysis.unmet.push(format!(
            "expected the brokers to recognise at least {min} retried batches as duplicates (the idempotence window exercised), their logs show {count}"
        ));
        analysis.verdict = checkers::Verdict::Invalid;
    }
}

/// The scenario's clients (by name, all incarnations together) that did nothing checkable.
fn idle_clients(scenario: &Scenario, history: &str, sends_ok: u64) -> Vec<String> {
    use std::collections::BTreeMap;
    // Acknowledged sends per producer, records read per consumer (`producer-1.2` counts for
    // `producer-1`).
    let mut done: BTreeMap<String, u64> = BTreeMap::new();
    let (mut np, mut nc) = (0, 0);
    for client in &scenario.clients {
        let name = match client {
            Client::Producer { .. } => {
                np += 1;
                format!("producer-{np}")
            }
            Client::Consumer { .. } => {
                nc += 1;
                format!("consumer-{nc}")
            }
        };
        done.insert(name, 0);
    }
    for line in history.lines() {
        // Only completions can count (a cheap test before parsing the line).
        if !line.contains("\"ok\"") {
            continue;
        }
        let Ok(op) = serde_json::from_str::<kaos_history::Op>(line) else {
            continue;
        };
        if op.kind != OpType::Ok {
            continue;
        }
        let n = match op.name() {
            Some(F::Send) => 1,
            // A committed transaction: its sends are acknowledged.
            Some(F::Txn) => op
                .value
                .pointer("/mops")
                .and_then(|m| m.as_array())
                .map_or(0, |m| m.len() as u64),
            Some(F::Poll) => op
                .value
                .pointer("/records")
                .and_then(|r| r.as_array())
                .map_or(0, |r| r.len() as u64),
            _ => 0,
        };
        let base = op.process.split('.').next().unwrap_or_default();
        if let Some(count) = done.get_mut(base) {
            *count += n;
        }
    }
    done.into_iter()
        .filter_map(|(name, n)| match n {
            0 if name.starts_with("producer-") => Some(format!("{name} acknowledged nothing")),
            0 if sends_ok > 0 => Some(format!(
                "{name} read nothing while {sends_ok} sends were acknowledged"
            )),
            _ => None,
        })
        .collect()
}

/// `nodes/<name>/dump.jsonl` of every node that has one, by node name.
fn read_replica_dumps(dir: &RunDir) -> Result<Vec<(String, String)>> {
    let mut dumps = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir.nodes_dir()) else {
        return Ok(dumps);
    };
    let mut nodes: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    nodes.sort();
    for node in nodes {
        let path = node.join("dump.jsonl");
        if path.is_file() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let name = node
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            dumps.push((name, text));
        }
    }
    Ok(dumps)
}

fn summary(
    scenario: &Scenario,
    dir: &RunDir,
    platform: &Platform,
    started_at: SystemTime,
    duration_s: f64,
    analysis: Analysis,
    plots: PlotData,
) -> RunSummary {
    let (_, started) = results::format_start_time(started_at);
    let mut logs: Vec<(String, String)> = (0..platform.node_count())
        .map(|i| {
            (
                format!("{} log", platform.name(i)),
                relative(&dir.path, &platform.log_path(i)),
            )
        })
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir.clients_dir()) {
        let mut client_logs: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        client_logs.sort();
        for p in client_logs {
            let label = p
                .file_stem()
                .map(|s| format!("{} log", s.to_string_lossy()))
                .unwrap_or_default();
            logs.push((label, relative(&dir.path, &p)));
        }
    }
    RunSummary {
        scenario_name: scenario.name.clone(),
        started_at: started,
        duration_s,
        seed: scenario.seed,
        settings: scenario.settings_rows(),
        logs,
        analysis,
        plots,
    }
}

fn relative(base: &Path, p: &Path) -> String {
    p.strip_prefix(base).unwrap_or(p).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str = r#"
name = "idle"
duration_s = 1
[cluster]
brokers = 1
[topic]
name = "t"
partitions = 1
[[clients]]
kind = "producer"
[[clients]]
kind = "consumer"
[[clients]]
kind = "producer"
"#;

    fn line(process: &str, kind: &str, f: &str, value: &str) -> String {
        format!(
            r#"{{"index":0,"time_ns":0,"process":"{process}","type":"{kind}","f":"{f}","value":{value}}}"#
        )
    }

    #[test]
    fn idle_producers_and_consumers_are_named() {
        let scenario = Scenario::parse(SCENARIO, "test").expect("scenario");
        let history = [
            line("producer-1", "invoke", "send", r#"{"id":1,"topic":"t"}"#),
            line(
                "producer-1.2",
                "ok",
                "send",
                r#"{"id":1,"topic":"t","partition":0,"offset":0}"#,
            ),
            line("consumer-1", "ok", "poll", r#"{"records":[]}"#),
            line(
                "final-reader",
                "ok",
                "poll",
                r#"{"records":[{"topic":"t","partition":0,"offset":0,"id":1}]}"#,
            ),
            line("producer-2", "info", "send", r#"{"id":2,"topic":"t"}"#),
        ]
        .join("\n");
        assert_eq!(
            idle_clients(&scenario, &history, 1),
            vec![
                "consumer-1 read nothing while 1 sends were acknowledged".to_string(),
                "producer-2 acknowledged nothing".to_string()
            ]
        );
        // A consumer that reads nothing when nothing was acknowledged is not blamed.
        assert_eq!(
            idle_clients(&scenario, &history, 0),
            vec!["producer-2 acknowledged nothing".to_string()]
        );
        let busy = [
            line(
                "producer-1",
                "ok",
                "send",
                r#"{"id":1,"topic":"t","partition":0,"offset":0}"#,
            ),
            line(
                "producer-2",
                "ok",
                "send",
                r#"{"id":2,"topic":"t","partition":0,"offset":1}"#,
            ),
            line(
                "consumer-1.3",
                "ok",
                "poll",
                r#"{"records":[{"topic":"t","partition":0,"offset":0,"id":1}]}"#,
            ),
        ]
        .join("\n");
        assert!(idle_clients(&scenario, &busy, 2).is_empty());
    }
}
