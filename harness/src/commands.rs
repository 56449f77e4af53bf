//! What each `kaos` subcommand does, given its parsed arguments.

use crate::profile::{self, Broker};
use crate::soak::{self, Next};
use crate::{bench, matrix, platform, run, scenario};
use anyhow::{bail, Context, Result};
use checkers::Verdict;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Single-threaded on purpose: child processes are spawned from this thread, which lives as long
/// as the harness, so their parent-death signal fires only when the harness dies.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn client(spec_path: &Path) -> ExitCode {
    let spec = std::fs::read(spec_path)
        .map_err(anyhow::Error::from)
        .and_then(|bytes| {
            serde_json::from_slice::<workloads::ClientSpec>(&bytes).map_err(anyhow::Error::from)
        });
    let spec = match spec {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!(
                "kaos client: cannot read spec {}: {e:#}",
                spec_path.display()
            );
            return ExitCode::from(2);
        }
    };
    match workloads::run(&spec) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kaos client: {:#}", anyhow::Error::from(e));
            ExitCode::from(1)
        }
    }
}

/// The options of `kaos bench broker`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Brokers to start (the topic's replication factor is the same); 1 needs no controller.
    #[arg(long, default_value_t = 1)]
    pub brokers: u32,
    #[arg(long, default_value = "1")]
    pub acks: String,
    #[arg(long, default_value_t = 2_000_000)]
    pub messages: u64,
    #[arg(
        long = "message-size",
        value_name = "MESSAGE_SIZE",
        default_value_t = 100
    )]
    pub message_size_bytes: usize,
    /// Messages per second (0 = as fast as possible), for latency at a given load.
    #[arg(long = "rate", value_name = "RATE", default_value_t = 0)]
    pub rate_per_s: u64,
    /// librdkafka linger.ms (5 = throughput; lower it to measure latency without the client's own wait).
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u32,
    /// Measure a broker that is already running instead of starting one.
    #[arg(long)]
    pub bootstrap: Option<String>,
    /// The broker profile to start; repeat it to measure several in turn, side by side
    /// (default kaos-broker).
    #[arg(long = "broker")]
    pub profiles: Vec<String>,
    /// The broker program, instead of the profile's.
    #[arg(long, env = "KAOS_BROKER_BIN")]
    pub broker_bin: Option<PathBuf>,
    /// Broker settings, `key=value` (TOML value), repeatable: --set min.insync.replicas=2
    #[arg(long = "set")]
    pub settings: Vec<String>,
    /// An idempotent producer (`enable.idempotence=true`; needs `--acks all`).
    #[arg(long)]
    pub idempotence: bool,
    /// Write every latency sample to this CSV file (`sent_ms,latency_ms`, in send order).
    #[arg(long)]
    pub latency_csv: Option<PathBuf>,
    /// A transactional producer committing every N messages (needs `--acks all`); 0: none.
    #[arg(
        long = "transactional",
        value_name = "TRANSACTIONAL",
        default_value_t = 0
    )]
    pub transaction_messages: u64,
}

/// `kaos bench broker`: one measurement per broker profile, in turn; each result as a JSON line
/// on standard output and readable lines on standard error.
pub async fn bench_command(args: BenchArgs) -> Result<ExitCode> {
    let mut table = toml::Table::new();
    for kv in &args.settings {
        let (key, value) = kv
            .split_once('=')
            .with_context(|| format!("--set {kv}: expected key=value"))?;
        // A TOML value (1, true, "x") when it parses as one, a string otherwise.
        let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_string()));
        table.insert(key.trim().to_string(), value);
    }
    // One run per profile, in turn (`--broker kaos-broker --broker tansu`: side by side, same
    // producer, same minute).
    let profiles = if args.profiles.is_empty() {
        vec![profile::DEFAULT.to_string()]
    } else {
        args.profiles.clone()
    };
    for name in &profiles {
        let choice = profile::Choice {
            cli: Some(name),
            program: args.broker_bin.as_deref(),
            ..profile::Choice::default()
        };
        let bench = bench::BrokerBench {
            broker: profile::resolve(choice)?,
            bootstrap: args.bootstrap.clone(),
            brokers: args.brokers,
            acks: args.acks.clone(),
            messages: args.messages,
            message_size_bytes: args.message_size_bytes,
            rate_per_s: args.rate_per_s,
            linger_ms: args.linger_ms,
            settings: table.clone(),
            idempotence: args.idempotence,
            latency_csv: args.latency_csv.clone(),
            transaction_messages: args.transaction_messages,
        };
        let result = bench::run(bench).await?;
        println!("{}", serde_json::to_string(&result)?);
        print_bench(&result);
    }
    Ok(ExitCode::SUCCESS)
}

/// The readable lines of one bench result, on stderr.
fn print_bench(result: &bench::BrokerBenchResult) {
    eprintln!("broker {}:", result.broker);
    let r = &result.producer;
    let rss: Vec<String> = result
        .broker_rss_peak_kib
        .iter()
        .map(|(node, kib)| format!("{node} {:.1} MiB", *kib as f64 / 1024.0))
        .collect();
    eprintln!(
        "{:.0} msg/s ({:.1} MB/s), send→ack latency p50 {:.2} ms p99 {:.2} ms max {:.2} ms, {} acked, {} failed, {:.2} s, linger.ms {}, broker peak RSS: {}",
        r.messages_per_s, r.megabytes_per_s, r.latency_ms_p50, r.latency_ms_p99, r.latency_ms_max, r.messages_acked, r.messages_failed, r.elapsed_s,
        result.linger_ms, if rss.is_empty() { "not measured".to_string() } else { rss.join(", ") }
    );
    if r.transactions > 0 {
        eprintln!(
            "  {} transactions committed, {:.1} transactions/s",
            r.transactions, r.transactions_per_s
        );
    }
    let w = |name: &str, l: &workloads::bench::WindowedLatency| {
        eprintln!("  {name}: p50 ≤ {:.2} ms, p99 ≤ {:.2} ms, max {:.2} ms ({} in {} windows of librdkafka statistics)", l.ms_p50_max, l.ms_p99_max, l.ms_max, l.count, l.windows);
    };
    w(
        "produce request round trip (librdkafka rtt)",
        &r.request_rtt,
    );
    w("wait in the producer's queue (int_latency)", &r.queue_wait);
    w("wait in the output buffer (outbuf_latency)", &r.send_wait);
    print_request_metrics(&result);
    let cpu: Vec<String> = result
        .broker_cpu_s
        .iter()
        .map(|(node, s)| format!("{node} {s:.2} s"))
        .collect();
    let per_million = |s: f64| s / (r.messages_acked.max(1) as f64 / 1e6);
    eprintln!(
        "  CPU: producer {:.2} s, brokers {} (together {:.2} s per million messages)",
        result.producer_cpu_s,
        if cpu.is_empty() {
            "not measured".to_string()
        } else {
            cpu.join(", ")
        },
        per_million(result.broker_cpu_s.values().sum())
    );
}

/// kaos-broker's own request metrics of a bench run, one line per kind and node.
fn print_request_metrics(result: &bench::BrokerBenchResult) {
    for (node, m) in &result.broker_request_metrics {
        let ms = |path: &str| {
            m.pointer(path)
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(0.0)
        };
        if ms("/produce/total/count") > 0.0 {
            eprintln!(
                "  {node} Produce requests ({:.0}): total p50 {:.2} ms p99 {:.2} ms p99.9 {:.2} ms max {:.2} ms; p99 of local {:.2} ms, remote (HW wait) {:.2} ms, send {:.2} ms",
                ms("/produce/total/count"), ms("/produce/total/p50_ms"), ms("/produce/total/p99_ms"), ms("/produce/total/p999_ms"), ms("/produce/total/max_ms"),
                ms("/produce/local/p99_ms"), ms("/produce/remote/p99_ms"), ms("/produce/send/p99_ms")
            );
        }
        if ms("/replica_fetch_round_trip/count") > 0.0 {
            eprintln!(
                "  {node} replica fetches ({:.0}): round trip p50 {:.2} ms p99 {:.2} ms max {:.2} ms; append p99 {:.2} ms max {:.2} ms",
                ms("/replica_fetch_round_trip/count"), ms("/replica_fetch_round_trip/p50_ms"), ms("/replica_fetch_round_trip/p99_ms"), ms("/replica_fetch_round_trip/max_ms"),
                ms("/replica_fetch_append/p99_ms"), ms("/replica_fetch_append/max_ms")
            );
        }
    }
}

pub async fn image_command(tag: Option<String>, broker_bin: Option<PathBuf>) -> Result<ExitCode> {
    let broker = Broker::default_with(broker_bin.as_deref())?;
    platform::docker::check_engine().await?;
    let image = platform::docker::ensure_image(&broker.program).await?;
    println!("{image}");
    if let Some(tag) = tag {
        platform::docker::docker(&["tag", &image, &tag]).await?;
        println!("{tag}");
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
pub async fn run_command(
    path: &Path,
    all: bool,
    seed: Option<u64>,
    args: RunArgs,
) -> Result<ExitCode> {
    let files = scenario_files(path, all)?;
    let overrides = args.overrides(seed);
    let RunArgs { store, junit, .. } = args;
    // Every scenario is loaded (and refused if broken) before the first one runs. With --all, one
    // that needs what the broker profile lacks is left out with the reason, and the rest run.
    let mut scenarios = Vec::with_capacity(files.len());
    let mut refused = Vec::new();
    for file in &files {
        match overrides.load(file) {
            Ok(loaded) => scenarios.push(loaded),
            Err(e) if all && e.downcast_ref::<Refused>().is_some() => {
                println!("refused: {e:#}");
                refused.push(file.display().to_string());
            }
            Err(e) => return Err(e),
        }
    }
    let kaos_bin = std::env::current_exe().context("locating the kaos binary")?;
    let opts = run::RunOptions { store, kaos_bin };
    let mut cases = Vec::with_capacity(scenarios.len());
    let mut verdicts = Vec::with_capacity(scenarios.len());
    for (scenario, text, broker) in &scenarios {
        let outcome = tokio::select! {
            outcome = run::run(scenario, text, broker, &opts) => outcome?,
            _ = interrupted() => bail!("interrupted: every process this run started was killed; the history so far is in the run directory (`kaos check` it)"),
        };
        if all {
            println!("scenario: {}", scenario.name);
        }
        print_verdict(&outcome.summary.analysis, Some(&outcome.dir.report_path()));
        cases.push(results::JunitCase::from_summary(
            &scenario.name,
            &outcome.summary,
            Some(&outcome.dir.report_path()),
        ));
        verdicts.push((scenario.name.clone(), outcome.summary.analysis.verdict));
    }
    if let Some(junit) = junit {
        let suite = if all {
            path.display().to_string()
        } else {
            scenarios[0].0.name.clone()
        };
        results::write_junit(&junit, &suite, &cases)
            .with_context(|| format!("writing {}", junit.display()))?;
    }
    if all {
        println!("summary:");
        for (name, verdict) in &verdicts {
            println!("  {:<8} {name}", verdict.as_str());
        }
        for file in &refused {
            println!("  {:<8} {file}", "refused");
        }
    }
    let all_valid = verdicts.iter().all(|(_, v)| matches!(v, Verdict::Valid));
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The options `kaos run` (one run, `--all`, `--seeds`) and `kaos soak` share: where the runs
/// are stored and what they override in the scenario. Both subcommands flatten it.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Where runs are stored (store/<scenario>/<start-time>/).
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// The broker profile to run the nodes on, instead of the scenario's: a built-in name
    /// (kaos-broker, the default; tansu; tansu-memory; tansu-postgres) or a profile file (docs/profiles.md).
    #[arg(long, env = "KAOS_BROKER")]
    pub broker: Option<String>,
    /// The broker program, instead of the profile's (default: kaos-broker beside this binary).
    #[arg(long, env = "KAOS_BROKER_BIN")]
    pub broker_bin: Option<PathBuf>,
    /// Override the scenario's duration of the timed phase (of each run's), in seconds.
    #[arg(long)]
    pub duration_s: Option<u64>,
    /// Also write a JUnit XML file (one testcase per scenario, or per seed with --seeds and
    /// `kaos soak`).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Run the nodes on this platform instead of the scenario's `platform`.
    #[arg(long, value_enum)]
    pub platform: Option<scenario::PlatformKind>,
    /// Run against a cluster kaos does not start (platform external) at these addresses,
    /// `host:port[,host:port…]`: clients, final read and checks only; faults on nodes refused.
    #[arg(long, conflicts_with = "platform")]
    pub bootstrap: Option<String>,
}

impl RunArgs {
    /// What these options, and `seed`, change in every scenario run (`--bootstrap` makes the
    /// platform external).
    fn overrides(&self, seed: Option<u64>) -> Overrides {
        let platform = if self.bootstrap.is_some() {
            Some(scenario::PlatformKind::External)
        } else {
            self.platform
        };
        Overrides {
            seed,
            duration_s: self.duration_s,
            platform,
            bootstrap: self.bootstrap.clone(),
            broker: self.broker.clone(),
            broker_bin: self.broker_bin.clone(),
        }
    }
}

/// `kaos soak SCENARIO --for D` and `kaos run SCENARIO --seeds A..B`: the scenario with one seed
/// after another as the plan says; prints and stores (`store/<scenario>/soak-<start>.json`)
/// "invalid in k of n seeds" and the time to the first invalid run. Exit 0 only if every run
/// was valid.
pub async fn soak_command(path: &Path, plan: soak::Plan, o: RunArgs) -> Result<ExitCode> {
    let (base, _, broker) = o.overrides(None).load(path)?;
    let opts = run::RunOptions {
        store: o.store.clone(),
        kaos_bin: std::env::current_exe().context("locating the kaos binary")?,
    };
    let mut record = soak::Record::new(&o.store, &base, path, &plan);
    eprintln!(
        "kaos: soak {} from seed {}{}",
        base.name,
        plan.seeds.first(),
        plan.budget
            .map(|b| format!(" for {} s", b.as_secs()))
            .unwrap_or_default()
    );
    let mut cases = Vec::new();
    let mut k = 0;
    let ended = loop {
        let invalid = record.summary.count(Verdict::Invalid) > 0;
        let seed = match plan.next_seed(k, record.started(), invalid) {
            Next::Run(seed) => seed,
            Next::Stop(ended) => break ended,
        };
        k += 1;
        let (scenario, text) = soak::reseeded(&base, seed, &path.display().to_string())?;
        eprintln!("kaos: soak {} run {k}: seed {seed}", base.name);
        let outcome = tokio::select! {
            outcome = run::run(&scenario, &text, &broker, &opts) => outcome,
            _ = interrupted() => {
                record.end(results::SoakEnd::Interrupted, None)?;
                bail!("interrupted at seed {seed}: every process this run started was killed; the soak's record so far is in the store");
            }
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(e) => {
                record.end(results::SoakEnd::Error, Some(format!("seed {seed}: {e:#}")))?;
                return Err(e.context(format!("soak {} at seed {seed}", base.name)));
            }
        };
        print_verdict(&outcome.summary.analysis, Some(&outcome.dir.report_path()));
        cases.push(results::JunitCase::from_summary(
            &format!("{} seed {seed}", base.name),
            &outcome.summary,
            Some(&outcome.dir.report_path()),
        ));
        record.add(seed, &outcome, &plan)?;
    };
    let saved = record.end(ended, None)?;
    print_soak(&record.summary, &saved);
    if let Some(junit) = o.junit {
        results::write_junit(&junit, &base.name, &cases)
            .with_context(|| format!("writing {}", junit.display()))?;
    }
    let all_valid = record.summary.count(Verdict::Valid) == record.summary.runs.len();
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The soak's outcome: the headline, why it ended, where its record is, how to replay each run
/// that was not valid.
fn print_soak(summary: &results::SoakSummary, saved: &Path) {
    println!("soak: {}", summary.headline());
    println!(
        "soak ended after {:.0} s: {}",
        summary.elapsed_s,
        summary.ended.words()
    );
    for run in summary.runs.iter().filter(|r| r.verdict != Verdict::Valid) {
        println!(
            "replay ({} seed {}): kaos run {}",
            run.verdict.as_str(),
            run.seed,
            run.run_dir.join("scenario.toml").display()
        );
    }
    println!("soak record: {}", saved.display());
}

/// The scenario files `kaos run` runs: the one named, or (`--all`) every `*.toml` in a folder.
fn scenario_files(path: &Path, all: bool) -> Result<Vec<PathBuf>> {
    if !all {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading scenario directory {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no *.toml scenario in {}", path.display());
    }
    Ok(files)
}

/// What `kaos run` options change in every scenario it runs.
struct Overrides {
    seed: Option<u64>,
    duration_s: Option<u64>,
    platform: Option<scenario::PlatformKind>,
    bootstrap: Option<String>,
    /// `--broker`: the broker profile, instead of the scenario's.
    broker: Option<String>,
    broker_bin: Option<PathBuf>,
}

impl Overrides {
    /// The scenario in `file` with the overrides applied, checked again with them (a fault the
    /// platform cannot do is refused here), the text the run directory records, and the broker
    /// profile it runs on (a scenario that needs what the profile lacks is refused here).
    fn load(&self, file: &Path) -> Result<(scenario::Scenario, String, Broker)> {
        let (scenario, text) = self.apply(file)?;
        let broker = broker_for(
            &scenario,
            file,
            self.broker.as_deref(),
            self.broker_bin.as_deref(),
        )?;
        Ok((scenario, text, broker))
    }

    fn apply(&self, file: &Path) -> Result<(scenario::Scenario, String)> {
        let (mut scenario, text) = scenario::Scenario::load(file)?;
        if let Some(seed) = self.seed {
            scenario.seed = seed;
        }
        if let Some(d) = self.duration_s {
            scenario.duration_s = d;
        }
        if let Some(p) = self.platform {
            scenario.platform = p;
        }
        if self.bootstrap.is_some() {
            scenario.bootstrap.clone_from(&self.bootstrap);
        } else if self
            .platform
            .is_some_and(|p| p != scenario::PlatformKind::External)
        {
            scenario.bootstrap = None;
        }
        let overridden = self.seed.is_some()
            || self.duration_s.is_some()
            || self.platform.is_some()
            || self.bootstrap.is_some();
        if !overridden {
            return Ok((scenario, text));
        }
        let text = toml::to_string(&scenario).context("writing the scenario with its overrides")?;
        let origin = format!("{} with overrides", file.display());
        Ok((scenario::Scenario::parse(&text, &origin)?, text))
    }
}

pub async fn matrix_command(
    path: &Path,
    store: PathBuf,
    broker: Option<String>,
    broker_bin: Option<PathBuf>,
    duration_s: Option<u64>,
    seeds: Option<u32>,
    junit: Option<PathBuf>,
) -> Result<ExitCode> {
    let (matrix, mut combinations) = matrix::load(path)?;
    let seeds = seeds.unwrap_or(matrix.seeds);
    matrix::check_seeds(seeds).map_err(|m| anyhow::anyhow!("--seeds: {m}"))?;
    if let Some(d) = duration_s {
        for c in &mut combinations {
            c.scenario.duration_s = d;
            c.text =
                toml::to_string(&c.scenario).context("writing a combination with its overrides")?;
            c.scenario = scenario::Scenario::parse(
                &c.text,
                &format!("{} with --duration-s", path.display()),
            )?;
        }
    }
    let kaos_bin = std::env::current_exe().context("locating the kaos binary")?;
    let opts = run::RunOptions {
        store: store.clone(),
        kaos_bin,
    };
    let brokers = combinations
        .iter()
        .map(|c| broker_for(&c.scenario, path, broker.as_deref(), broker_bin.as_deref()))
        .collect::<Result<Vec<_>>>()?;
    let started = std::time::SystemTime::now();
    let total = combinations.len() * seeds as usize;
    let mut rows = Vec::with_capacity(total);
    let mut cases = Vec::with_capacity(total);
    for (k, (c, broker)) in combinations.into_iter().zip(&brokers).enumerate() {
        let label = c
            .settings
            .iter()
            .map(|(key, v)| format!("{key}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        for i in 0..u64::from(seeds) {
            let seed = c.scenario.seed.saturating_add(i);
            let (scenario, text) = soak::reseeded(&c.scenario, seed, &path.display().to_string())?;
            eprintln!(
                "kaos: matrix {} configuration {}, seed {seed} (run {}/{total}): {label}",
                matrix.name,
                k + 1,
                rows.len() + 1
            );
            let outcome = tokio::select! {
                outcome = run::run(&scenario, &text, broker, &opts) => outcome?,
                _ = interrupted() => bail!("interrupted during configuration {}: every process it started was killed", k + 1),
            };
            print_verdict(&outcome.summary.analysis, Some(&outcome.dir.report_path()));
            let case = if seeds > 1 {
                format!("{label} seed {seed}")
            } else {
                label.clone()
            };
            cases.push(results::JunitCase::from_summary(
                &case,
                &outcome.summary,
                Some(&outcome.dir.report_path()),
            ));
            rows.push(results::ComparisonRow {
                label: label.clone(),
                settings: c.settings.clone(),
                run_dir: outcome.dir.path.clone(),
                summary: outcome.summary,
            });
        }
    }
    let (dir_name, _) = results::format_start_time(started);
    let dir = store.join(&matrix.name).join(dir_name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let page = results::write_comparison(&dir, &rows).context("writing comparison.html")?;
    println!("comparison: {}", page.display());
    if let Some(junit) = junit {
        results::write_junit(&junit, &matrix.name, &cases)
            .with_context(|| format!("writing {}", junit.display()))?;
    }
    let all_held = rows
        .iter()
        .all(|r| matches!(r.summary.analysis.verdict, Verdict::Valid));
    Ok(if all_held {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The broker profile `scenario` (from `file`) runs on, `cli` (`--broker`) first, with its
/// program (`--broker-bin` replaces it); refused with the reason when the scenario needs what the
/// profile lacks. An external cluster is whatever it is: no profile is asked.
fn broker_for(
    scenario: &scenario::Scenario,
    file: &Path,
    cli: Option<&str>,
    program: Option<&Path>,
) -> Result<Broker> {
    let choice = profile::Choice {
        cli,
        broker: scenario.broker.as_deref(),
        broker_profile: scenario.broker_profile.as_deref(),
        scenario_dir: file.parent(),
        program,
    };
    let context = || format!("scenario {}", file.display());
    let chosen = profile::choose(choice).with_context(context)?;
    if scenario.platform != scenario::PlatformKind::External {
        if let Err(why) = chosen.admits(&scenario.needs()) {
            let what = format!(
                "scenario {} cannot run on broker profile {}: {why}",
                file.display(),
                chosen.name
            );
            return Err(Refused(what).into());
        }
    }
    Broker::new(chosen, program).with_context(context)
}

/// A scenario that needs what its broker profile lacks (`kaos run --all` leaves it out).
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

pub fn check_command(run_dir: &Path, json: bool) -> Result<ExitCode> {
    let dir = results::RunDir::open(run_dir)
        .with_context(|| format!("opening run directory {}", run_dir.display()))?;
    let (scenario, _) = scenario::Scenario::load(&dir.scenario_path())?;
    let (analysis, plots) = run::analyse(&dir, &scenario)?;
    let previous: Option<results::RunSummary> = std::fs::read(dir.results_path())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let summary = match previous {
        Some(mut s) => {
            s.analysis = analysis;
            s.plots = plots;
            s
        }
        None => results::RunSummary {
            scenario_name: scenario.name.clone(),
            started_at: String::new(),
            duration_s: 0.0,
            seed: scenario.seed,
            settings: scenario.settings_rows(),
            logs: Vec::new(),
            analysis,
            plots,
        },
    };
    results::write_results(&dir, &summary).context("writing results.json and report.html")?;
    print_analysis(&summary.analysis, Some(&dir.report_path()), json)?;
    Ok(exit_code(&summary.analysis))
}

/// `kaos check --format jepsen`: a Jepsen Kafka-workload history with kaos's default
/// expectations; `ww_deps` infers write-write dependencies (Jepsen's `:ww-deps`), `realtime`
/// orders transactions by the history's order (`checkers::jepsen::jepsen_options`).
pub fn check_jepsen(path: &Path, json: bool, ww_deps: bool, realtime: bool) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if text.trim().is_empty() {
        bail!(
            "{} is empty: it holds no Jepsen op to check",
            path.display()
        );
    }
    let options = checkers::elle::Options {
        ww: ww_deps,
        realtime,
        ..checkers::jepsen::jepsen_options()
    };
    let analysis =
        checkers::jepsen::check_edn_with(&text, checkers::Expectations::default(), options)
            .with_context(|| format!("checking {}", path.display()))?;
    print_analysis(&analysis, None, json)?;
    Ok(exit_code(&analysis))
}

/// The analysis on standard output: as JSON (exactly what results.json carries under
/// `analysis`), or as text.
fn print_analysis(analysis: &checkers::Analysis, report: Option<&Path>, json: bool) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(analysis).context("serialising the analysis")?
        );
    } else {
        print_verdict(analysis, report);
    }
    Ok(())
}

/// Cases printed per class by `kaos check`'s text output.
const CASES_PRINTED_MAX: usize = 20;

fn print_verdict(analysis: &checkers::Analysis, report: Option<&Path>) {
    let verdict = match analysis.verdict {
        Verdict::Valid => "VALID",
        Verdict::Invalid => "INVALID",
        Verdict::Unknown => "UNKNOWN",
    };
    println!("verdict: {verdict}");
    if let Ok(counts) = serde_json::to_value(&analysis.counts) {
        if let Some(map) = counts.as_object() {
            let line: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("counts: {}", line.join(" "));
        }
    }
    for anomaly in &analysis.anomalies {
        println!(
            "anomaly: {} × {} ({})",
            anomaly.count,
            anomaly.kind.as_str(),
            anomaly.allowance.as_str()
        );
        let shown = anomaly.cases.len().min(CASES_PRINTED_MAX);
        for case in &anomaly.cases[..shown] {
            println!("  case: {}", case.evidence());
        }
        let more = anomaly.count.saturating_sub(shown as u64);
        if more > 0 {
            println!("  … and {more} more (all kept: --json, results.json)");
        }
    }
    for unmet in &analysis.unmet {
        println!("unmet: {unmet}");
    }
    for note in &analysis.notes {
        println!("note: {note}");
    }
    if let Some(report) = report {
        println!("report: {}", report.display());
    }
}

fn exit_code(analysis: &checkers::Analysis) -> ExitCode {
    match analysis.verdict {
        Verdict::Valid => ExitCode::SUCCESS,
        Verdict::Invalid | Verdict::Unknown => ExitCode::from(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Bench {
        #[command(flatten)]
        args: BenchArgs,
    }

    #[test]
    fn bench_flags_keep_their_names_and_defaults() {
        let parse = |line: &[&str]| Bench::try_parse_from(line).map(|b| b.args);
        let defaults = parse(&["bench"]).expect("no flag is required");
        assert_eq!(
            (defaults.brokers, defaults.acks.as_str(), defaults.messages),
            (1, "1", 2_000_000)
        );
        assert_eq!(
            (
                defaults.message_size_bytes,
                defaults.rate_per_s,
                defaults.linger_ms
            ),
            (100, 0, 5)
        );
        assert!(defaults.profiles.is_empty() && defaults.transaction_messages == 0);
        let set = parse(&[
            "bench",
            "--message-size",
            "7",
            "--rate",
            "9",
            "--broker",
            "tansu",
            "--broker",
            "kaos-broker",
            "--transactional",
            "3",
            "--set",
            "a=1",
            "--idempotence",
        ])
        .expect("every flag");
        assert_eq!((set.message_size_bytes, set.rate_per_s), (7, 9));
        assert_eq!(set.profiles, ["tansu", "kaos-broker"]);
        assert_eq!((set.transaction_messages, set.settings.len()), (3, 1));
        assert!(set.idempotence);
        assert!(parse(&["bench", "--message-size-bytes", "7"]).is_err());
    }
}
