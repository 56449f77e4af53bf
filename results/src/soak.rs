//! A soak's record: one scenario run with seed after seed (`kaos soak`, `kaos run --seeds`),
//! stored as `store/<scenario>/soak-<start time>.json` beside the scenario's run directories. It
//! is a file, not a directory, so the index (which lists run directories) never takes it for a
//! run. Fields in `results/SCHEMA.md`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use checkers::Verdict;
use serde::{Deserialize, Serialize};

use crate::error::ResultsError;
use crate::store::write_atomically;
use crate::summary::RunSummary;
use crate::time::format_start_time;

/// Why a soak ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SoakEnd {
    /// Its time (`--for`) was up.
    TimeUp,
    /// A run was invalid (and the soak was not told to keep going).
    FirstInvalid,
    /// Every seed of its range ran.
    SeedsDone,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// A run failed with a harness error (its text is in `error`).
    Error,
}

impl SoakEnd {
    pub fn words(self) -> &'static str {
        match self {
            SoakEnd::TimeUp => "its time was up",
            SoakEnd::FirstInvalid => "a run was invalid",
            SoakEnd::SeedsDone => "every seed ran",
            SoakEnd::Interrupted => "it was interrupted",
            SoakEnd::Error => "a run failed with a harness error",
        }
    }
}

/// One run of a soak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakRun {
    pub seed: u64,
    pub verdict: Verdict,
    /// The run directory (as the harness named it).
    pub run_dir: PathBuf,
    /// Seconds from the soak's start to the end of this run.
    pub finished_after_s: f64,
    pub acknowledged: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub unprocessed: Option<u64>,
    /// Anomalies the scenario forbids and expectations unmet, "3 × lost (forbidden)".
    pub problems: Vec<String>,
    /// Whether the run directory still holds the nodes' data directories (invalid and unknown
    /// runs always; valid runs only with `--keep-valid`).
    pub data_kept: bool,
}

/// The soak's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakSummary {
    pub scenario_name: String,
    /// The scenario file as given on the command line (for the replay commands).
    pub scenario_file: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// `--for`, in seconds; none for a seed range.
    pub budget_s: Option<f64>,
    /// The first and last seed of a range (`--seeds A..B`), or the first of an open soak.
    pub first_seed: u64,
    pub last_seed: Option<u64>,
    pub ended: SoakEnd,
    /// The harness error that ended it, if one did.
    pub error: Option<String>,
    pub elapsed_s: f64,
    pub runs: Vec<SoakRun>,
}

impl SoakSummary {
    pub fn count(&self, verdict: Verdict) -> usize {
        self.runs.iter().filter(|r| r.verdict == verdict).count()
    }

    /// The first invalid run: its seed and the seconds from the soak's start to its end.
    pub fn first_invalid(&self) -> Option<&SoakRun> {
        self.runs.iter().find(|r| r.verdict == Verdict::Invalid)
    }

    /// "invalid in 2 of 10 seeds (first: seed 7, after 312 s); 1 unknown".
    pub fn headline(&self) -> String {
        let mut line = format!(
            "invalid in {} of {} seed{}",
            self.count(Verdict::Invalid),
            self.runs.len(),
            if self.runs.len() == 1 { "" } else { "s" }
        );
        if let Some(first) = self.first_invalid() {
            line.push_str(&format!(
                " (first: seed {}, after {:.0} s)",
                first.seed, first.finished_after_s
            ));
        }
        let unknown = self.count(Verdict::Unknown);
        if unknown > 0 {
            line.push_str(&format!("; {unknown} unknown"));
        }
        line
    }
}

impl SoakRun {
    pub fn of(
        seed: u64,
        run_dir: &Path,
        summary: &RunSummary,
        finished_after_s: f64,
        data_kept: bool,
    ) -> SoakRun {
        let f = summary.key_figures();
        let a = &summary.analysis;
        let problems = a
            .anomalies
            .iter()
            .filter(|x| x.allowance == checkers::Allowance::Forbidden)
            .map(|x| format!("{} × {} (forbidden)", x.count, x.kind.as_str()))
            .chain(a.unmet.iter().map(|u| format!("unmet: {u}")))
            .collect();
        SoakRun {
            seed,
            verdict: a.verdict,
            run_dir: run_dir.to_path_buf(),
            finished_after_s,
            acknowledged: f.acknowledged,
            lost: f.lost,
            duplicates: f.duplicates,
            unprocessed: f.unprocessed,
            problems,
            data_kept,
        }
    }
}

/// Writes `store/<scenario>/soak-<start time>.json` (atomically) and returns its path; called
/// after every run, so that the record is current if the soak is cut short.
pub fn write_soak(
    store: &Path,
    summary: &SoakSummary,
    started: SystemTime,
) -> Result<PathBuf, ResultsError> {
    let dir = store.join(&summary.scenario_name);
    std::fs::create_dir_all(&dir).map_err(|e| ResultsError::io(&dir, e))?;
    let (stamp, _) = format_start_time(started);
    let path = dir.join(format!("soak-{stamp}.json"));
    let json = serde_json::to_string_pretty(summary).map_err(|source| ResultsError::Json {
        what: "the soak summary",
        source,
    })?;
    write_atomically(&path, json.as_bytes())?;
    Ok(path)
}
