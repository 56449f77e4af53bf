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
    /// Seconds this run took, from its start to its verdict.
    #[serde(default)]
    pub run_s: f64,
    /// Seconds into the run of the earliest op its forbidden anomalies cite as evidence (the
    /// moment the history first showed the bug); none when there is none (a valid run, or one
    /// invalid only by an unmet expectation, known at its end).
    #[serde(default)]
    pub detected_after_s: Option<f64>,
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

    /// The median over the invalid runs of when, in the run, the history first showed the bug:
    /// the earliest op a forbidden anomaly's cases cite (for a lost message its send, which can
    /// precede the fault that lost it), else (an unmet expectation) the run's end. Not when kaos
    /// knew: that is [`SoakSummary::median_time_to_verdict_s`].
    pub fn median_first_evidence_s(&self) -> Option<f64> {
        median(self.invalid_runs().map(SoakRun::first_evidence_s).collect())
    }

    /// The median over the invalid runs of the run's length: the checker judges a run after its
    /// final read, so this is how long a run takes to say INVALID.
    pub fn median_time_to_verdict_s(&self) -> Option<f64> {
        median(self.invalid_runs().map(|r| r.run_s).collect())
    }

    fn invalid_runs(&self) -> impl Iterator<Item = &SoakRun> {
        self.runs.iter().filter(|r| r.verdict == Verdict::Invalid)
    }

    /// "invalid in 2 of 10 seeds (first: seed 7, after 312 s; median verdict after 31.0 s of a
    /// run, first evidence at 8.2 s); 1 unknown".
    pub fn headline(&self) -> String {
        let mut line = format!(
            "invalid in {} of {} seed{}",
            self.count(Verdict::Invalid),
            self.runs.len(),
            if self.runs.len() == 1 { "" } else { "s" }
        );
        if let (Some(first), Some(verdict), Some(evidence)) = (
            self.first_invalid(),
            self.median_time_to_verdict_s(),
            self.median_first_evidence_s(),
        ) {
            line.push_str(&format!(
                " (first: seed {}, after {:.0} s; median verdict after {verdict:.1} s of a run, \
                 first evidence at {evidence:.1} s)",
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

/// How long a soak's run took, and when in it the bug showed ([`SoakRun::detected_after_s`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunTiming {
    /// Seconds from the soak's start to the end of the run.
    pub finished_after_s: f64,
    /// Seconds the run took.
    pub run_s: f64,
    pub detected_after_s: Option<f64>,
}

impl SoakRun {
    /// The index of the earliest op that the cases of a forbidden anomaly cite (within the
    /// cases the analysis lists), if any: where the history first showed the bug.
    pub fn earliest_evidence(summary: &RunSummary) -> Option<u64> {
        summary
            .analysis
            .anomalies
            .iter()
            .filter(|x| x.allowance == checkers::Allowance::Forbidden)
            .flat_map(|x| x.cases.iter())
            .flat_map(|c| c.op_indexes.iter().copied())
            .min()
    }

    /// An invalid run's first evidence: when its history first showed the bug, else its end.
    pub fn first_evidence_s(&self) -> f64 {
        self.detected_after_s.unwrap_or(self.run_s)
    }

    pub fn of(
        seed: u64,
        run_dir: &Path,
        summary: &RunSummary,
        timing: RunTiming,
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
            finished_after_s: timing.finished_after_s,
            run_s: timing.run_s,
            detected_after_s: timing.detected_after_s,
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

/// The median of `times` (none when empty).
fn median(mut times: Vec<f64>) -> Option<f64> {
    if times.is_empty() {
        return None;
    }
    times.sort_by(f64::total_cmp);
    let middle = times.len() / 2;
    Some(if times.len() % 2 == 1 {
        times[middle]
    } else {
        (times[middle - 1] + times[middle]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64, verdict: Verdict, run_s: f64, detected_after_s: Option<f64>) -> SoakRun {
        SoakRun {
            seed,
            verdict,
            run_dir: PathBuf::from(format!("run-{seed}")),
            finished_after_s: run_s * seed as f64,
            run_s,
            detected_after_s,
            acknowledged: 1,
            lost: 0,
            duplicates: 0,
            unprocessed: None,
            problems: Vec::new(),
            data_kept: true,
        }
    }

    #[test]
    fn the_medians_count_invalid_runs_only_and_first_evidence_falls_back_to_the_run_end() {
        let mut soak = SoakSummary {
            scenario_name: "s".into(),
            scenario_file: "s.toml".into(),
            started_at: "now".into(),
            budget_s: None,
            first_seed: 1,
            last_seed: Some(4),
            ended: SoakEnd::SeedsDone,
            error: None,
            elapsed_s: 100.0,
            runs: vec![
                run(1, Verdict::Valid, 20.0, None),
                run(2, Verdict::Invalid, 20.0, Some(4.0)),
                run(3, Verdict::Invalid, 25.0, None),
            ],
        };
        // 4 s (evidence) and 25 s (an unmet expectation: the run's end).
        assert_eq!(soak.median_first_evidence_s(), Some(14.5));
        assert_eq!(soak.median_time_to_verdict_s(), Some(22.5));
        soak.runs.push(run(4, Verdict::Invalid, 21.0, Some(6.0)));
        assert_eq!(soak.median_first_evidence_s(), Some(6.0));
        assert_eq!(soak.median_time_to_verdict_s(), Some(21.0));
        assert_eq!(
            soak.headline(),
            "invalid in 3 of 4 seeds (first: seed 2, after 40 s; median verdict after 21.0 s of a \
             run, first evidence at 6.0 s)"
        );
        soak.runs.retain(|r| r.verdict == Verdict::Valid);
        assert_eq!(soak.median_first_evidence_s(), None);
        assert_eq!(soak.median_time_to_verdict_s(), None);
        assert_eq!(soak.headline(), "invalid in 0 of 1 seed");
    }
}
