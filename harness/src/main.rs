//! `kaos`: the command line of the chaos and verification harness; the harness itself is the
//! `harness` library (harness/src/lib.rs).

use anyhow::Context;
use clap::{Parser, Subcommand};
use harness::commands::{
    bench_command, check_command, check_jepsen, client, image_command, matrix_command, run_command,
    runtime, soak_command, BenchArgs, RunArgs,
};
use harness::{lazyfs, soak};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kaos",
    version,
    about = "Chaos and verification harness for Kafka-style brokers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario: start the cluster and clients, inject faults, check the history, write a report.
    Run {
        /// A scenario file; with --all, a directory whose every *.toml is run in name order.
        scenario: PathBuf,
        /// Run every scenario in the directory; the exit code is 0 only if every verdict is valid.
        #[arg(long)]
        all: bool,
        /// Override the scenario's seed.
        #[arg(long, conflicts_with = "seeds")]
        seed: Option<u64>,
        /// Run the scenario once per seed, A to B (both included: `1..10` is ten runs), and
        /// report "invalid in k of n seeds" as `kaos soak` does.
        #[arg(long, conflicts_with = "all", value_parser = soak::Seeds::parse_range)]
        seeds: Option<soak::Seeds>,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Run one scenario with new seeds, one after another, until the time is up or a run is
    /// invalid; keep every run that is not valid for replay; print and store (as
    /// store/<scenario>/soak-<start>.json) "invalid in k of n seeds" and the time to the first
    /// invalid run.
    Soak {
        scenario: PathBuf,
        /// How long: 90s, 30m, 1h, 1h30m (no run starts after that; the one under way finishes).
        #[arg(long = "for", value_parser = soak::parse_for)]
        length: std::time::Duration,
        /// The first seed (the next runs take the next seeds); default: a new one, printed.
        #[arg(long)]
        first_seed: Option<u64>,
        /// Go on after an invalid run until the time is up.
        #[arg(long)]
        keep_going: bool,
        /// Keep the nodes' data directories of valid runs too (they are removed by default;
        /// their history, results, report and logs stay).
        #[arg(long)]
        keep_valid: bool,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Run every combination of a matrix file (same seed, same faults) and compare them in
    /// comparison.html.
    Matrix {
        matrix: PathBuf,
        #[arg(long, default_value = "store")]
        store: PathBuf,
        /// The broker profile to run the nodes on, instead of the scenario's: a built-in name
        /// (kaos-broker, the default; tansu; tansu-memory; tansu-postgres) or a profile file (docs/profiles.md).
        #[arg(long, env = "KAOS_BROKER")]
        broker: Option<String>,
        /// The broker program, instead of the profile's (default: kaos-broker beside this binary).
        #[arg(long, env = "KAOS_BROKER_BIN")]
        broker_bin: Option<PathBuf>,
        /// Override the matrix's duration of each run's timed phase, in seconds.
        #[arg(long)]
        duration_s: Option<u64>,
        /// Run each configuration with this many seeds (the base seed and the next ones, the
        /// same for every configuration); overrides the matrix's `seeds`.
        #[arg(long)]
        seeds: Option<u32>,
        /// Also write a JUnit XML file (one testcase per configuration and seed).
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Write STORE/index.html: every stored run, newest first, grouped by scenario, with the
    /// verdict trend.
    Report {
        #[arg(default_value = "store")]
        store: PathBuf,
    },
    /// Check a stored run again and rewrite its results.json and report.html; or, with
    /// `--format jepsen`, check a history.edn of Jepsen's Kafka workload.
    Check {
        /// A run directory (format kaos) or a Jepsen history.edn file (format jepsen).
        path: PathBuf,
        #[arg(long, value_enum, default_value_t = HistoryFormat::Kaos)]
        format: HistoryFormat,
        /// Print the analysis as JSON (what results.json carries under `analysis`: every case's
        /// partition, offsets, ids and op indexes) instead of text.
        #[arg(long)]
        json: bool,
        /// With `--format jepsen`: infer write-write dependencies from each partition's offsets
        /// in the cycle analysis (Jepsen's `:ww-deps`; off by default, as in Jepsen).
        #[arg(long)]
        ww_deps: bool,
        /// With `--format jepsen`: order transactions in real time by the history's order
        /// (Elle's realtime edges; off by default, as Jepsen's own test histories list sends
        /// after the polls that read them).
        #[arg(long)]
        realtime: bool,
    },
    /// Measure: `kaos bench broker` (producer throughput and latency).
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Build the kaos-broker image (FROM scratch, no registry) unless the engine has it, and
    /// print its tag: `kaos-broker:<hash of the binary>`, and TAG too when given.
    Image {
        /// Also tag the image with this name (e.g. kaos-broker:dev, which docker/compose.yaml uses).
        #[arg(long)]
        tag: Option<String>,
        #[arg(long, env = "KAOS_BROKER_BIN")]
        broker_bin: Option<PathBuf>,
    },
    /// Run one client process (started by `kaos run`; its ops go to standard output).
    #[command(hide = true)]
    Client {
        #[arg(long)]
        spec: PathBuf,
    },
    /// Serve the power-loss file system (started by `kaos run`; see `lazyfs` for its semantics).
    #[command(hide = true)]
    Lazyfs(lazyfs::Args),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum HistoryFormat {
    /// A kaos run directory.
    Kaos,
    /// A Jepsen Kafka-workload history (EDN), checked with kaos's default expectations.
    Jepsen,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// One librdkafka producer (linger 5 ms, large batches) into one partition.
    Broker(BenchArgs),
}

/// `kaos run` (one run, `--all`, or `--seeds`) and `kaos soak`.
fn runs(command: Command) -> anyhow::Result<ExitCode> {
    let (scenario, plan, args) = match command {
        Command::Run {
            scenario,
            all,
            seed,
            seeds: None,
            args,
        } => return runtime().and_then(|rt| rt.block_on(run_command(&scenario, all, seed, args))),
        // Every seed of a range runs, and every run keeps what `kaos run` keeps.
        Command::Run {
            scenario,
            seeds: Some(seeds),
            args,
            ..
        } => {
            let plan = soak::Plan {
                seeds,
                budget: None,
                keep_going: true,
                keep_valid: true,
            };
            (scenario, plan, args)
        }
        Command::Soak {
            scenario,
            length,
            first_seed,
            keep_going,
            keep_valid,
            args,
        } => {
            let plan = soak::Plan {
                seeds: soak::Seeds::From(first_seed.unwrap_or_else(soak::fresh_seed)),
                budget: Some(length),
                keep_going,
                keep_valid,
            };
            (scenario, plan, args)
        }
        _ => anyhow::bail!("not a run or soak command"),
    };
    runtime().and_then(|rt| rt.block_on(soak_command(&scenario, plan, args)))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Client { spec } => return client(&spec),
        Command::Lazyfs(args) => return lazyfs::main(args),
        command @ (Command::Run { .. } | Command::Soak { .. }) => runs(command),
        Command::Image { tag, broker_bin } => {
            runtime().and_then(|rt| rt.block_on(image_command(tag, broker_bin)))
        }
        Command::Matrix {
            matrix,
            store,
            broker,
            broker_bin,
            duration_s,
            seeds,
            junit,
        } => runtime().and_then(|rt| {
            rt.block_on(matrix_command(
                &matrix, store, broker, broker_bin, duration_s, seeds, junit,
            ))
        }),
        Command::Report { store } => results::write_index(&store)
            .with_context(|| format!("writing the index of {}", store.display()))
            .map(|index| {
                println!("index: {}", index.display());
                ExitCode::SUCCESS
            }),
        Command::Check {
            path,
            format: HistoryFormat::Kaos,
            json,
            ww_deps: false,
            realtime: false,
        } => check_command(&path, json),
        Command::Check {
            format: HistoryFormat::Kaos,
            ..
        } => Err(anyhow::anyhow!(
            "--ww-deps and --realtime apply to --format jepsen only: a kaos run is checked as its scenario says"
        )),
        Command::Check {
            path,
            format: HistoryFormat::Jepsen,
            json,
            ww_deps,
            realtime,
        } => check_jepsen(&path, json, ww_deps, realtime),
        Command::Bench {
            what: BenchWhat::Broker(args),
        } => runtime().and_then(|rt| rt.block_on(bench_command(args))),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kaos: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
