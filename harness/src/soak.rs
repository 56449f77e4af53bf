//! `kaos soak SCENARIO --for 1h` and `kaos run SCENARIO --seeds A..B`: one scenario run with seed
//! after seed, to measure how often it finds what it looks for ("invalid in k of n seeds", and
//! how long until the first invalid run). What is decided here: the seeds, when to stop, and what
//! is kept of a run; `commands::soak_command` runs them.

use crate::limits::{SOAK_FOR_S_MAX, SOAK_SEEDS_MAX};
use crate::run::RunOutcome;
use crate::scenario::Scenario;
use anyhow::{Context, Result};
use checkers::Verdict;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Which seeds a soak runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeds {
    /// `--seeds A..B`: A to B, both included.
    Range { first: u64, last: u64 },
    /// `kaos soak`: from this one on, one after another, until the time is up.
    From(u64),
}

impl Seeds {
    /// Parses `A..B` (both included: `1..10` is ten seeds).
    pub fn parse_range(text: &str) -> Result<Seeds, String> {
        let bad =
            || format!("--seeds {text:?}: expected A..B, two seeds with A ≤ B, such as 1..10");
        let (a, b) = text.split_once("..").ok_or_else(bad)?;
        let first: u64 = a.trim().parse().map_err(|_| bad())?;
        let last: u64 = b.trim().parse().map_err(|_| bad())?;
        if first > last {
            return Err(bad());
        }
        if last - first >= SOAK_SEEDS_MAX {
            return Err(format!(
                "--seeds {text:?}: {} seeds; at most {SOAK_SEEDS_MAX}",
                u128::from(last - first) + 1
            ));
        }
        Ok(Seeds::Range { first, last })
    }

    /// The k-th seed (from 0), or none past the range.
    pub fn nth(self, k: u64) -> Option<u64> {
        match self {
            Seeds::Range { first, last } => first.checked_add(k).filter(|s| *s <= last),
            Seeds::From(first) => first.checked_add(k),
        }
    }

    pub fn first(self) -> u64 {
        match self {
            Seeds::Range { first, .. } | Seeds::From(first) => first,
        }
    }

    pub fn last(self) -> Option<u64> {
        match self {
            Seeds::Range { last, .. } => Some(last),
            Seeds::From(_) => None,
        }
    }
}

/// A seed to start an open soak from when none is given: new every time (the clock's
/// nanoseconds, mixed), so that nightly soaks do not repeat each other; printed and recorded.
pub fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    // splitmix64's finaliser, then kept below 2^53 so that it reads the same in JSON everywhere.
    let mut z = nanos ^ u64::from(std::process::id()).rotate_left(32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) >> 11
}

/// Parses a soak's length: `90s`, `30m`, `1h`, `1h30m`, or a number of seconds.
pub fn parse_for(text: &str) -> Result<Duration, String> {
    let bad = || format!("--for {text:?}: expected a length such as 90s, 30m, 1h or 1h30m");
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(s) = t.parse::<u64>() {
        return bounded(s, text);
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    bounded(total, text)
}

fn bounded(s: u64, text: &str) -> Result<Duration, String> {
    if s == 0 || s > SOAK_FOR_S_MAX {
        return Err(format!(
            "--for {text:?}: must be more than 0 s and at most {SOAK_FOR_S_MAX} s"
        ));
    }
    Ok(Duration::from_secs(s))
}

/// When a soak stops, and what it keeps.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub seeds: Seeds,
    /// `--for`: no run starts once this much time has passed (the one under way finishes).
    pub budget: Option<Duration>,
    /// Go on after an invalid run (`--keep-going`; always for a seed range).
    pub keep_going: bool,
    /// Keep the nodes' data directories of valid runs too (`--keep-valid`).
    pub keep_valid: bool,
}

impl Plan {
    /// The seed of run `k` (from 0), or none when the soak is over: its seeds are done, its time
    /// is up (the first run always starts), or an earlier run was invalid and it does not keep
    /// going. `invalid_so_far` says whether one was.
    pub fn next_seed(&self, k: u64, started: Instant, invalid_so_far: bool) -> Next {
        if invalid_so_far && !self.keep_going {
            return Next::Stop(results::SoakEnd::FirstInvalid);
        }
        if k > 0 && self.budget.is_some_and(|b| started.elapsed() >= b) {
            return Next::Stop(results::SoakEnd::TimeUp);
        }
        match self.seeds.nth(k) {
            Some(seed) => Next::Run(seed),
            None => Next::Stop(results::SoakEnd::SeedsDone),
        }
    }

    /// Whether a run with this verdict keeps its nodes' data directories.
    pub fn keeps_data(&self, verdict: Verdict) -> bool {
        self.keep_valid || verdict != Verdict::Valid
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Run(u64),
    Stop(results::SoakEnd),
}

/// Removes the nodes' data directories of a run (`nodes/<n>/data` and the lazyfs backing
/// `nodes/<n>/disk`): the bulk of a run, which a valid run needs no more. The history, results,
/// report, logs and replica dumps stay.
pub fn drop_node_data(nodes_dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(nodes_dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        for sub in ["data", "disk"] {
            let path = entry.path().join(sub);
            if path.is_dir() {
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// The scenario with another seed, as the run records it (checked again, like every override).
pub fn reseeded(scenario: &Scenario, seed: u64, origin: &str) -> Result<(Scenario, String)> {
    let mut s = scenario.clone();
    s.seed = seed;
    let text = toml::to_string(&s).context("writing the scenario with its seed")?;
    let parsed = Scenario::parse(&text, &format!("{origin} with seed {seed}"))?;
    Ok((parsed, text))
}

/// The soak's record as it grows: written to the store after every run, so that a soak cut
/// short (Ctrl-C, a harness error) leaves what it found.
pub struct Record {
    pub summary: results::SoakSummary,
    store: PathBuf,
    started_at: SystemTime,
    started: Instant,
}

impl Record {
    pub fn new(store: &Path, scenario: &Scenario, file: &Path, plan: &Plan) -> Record {
        let started_at = SystemTime::now();
        Record {
            summary: results::SoakSummary {
                scenario_name: scenario.name.clone(),
                scenario_file: file.display().to_string(),
                started_at: results::format_start_time(started_at).1,
                budget_s: plan.budget.map(|b| b.as_secs_f64()),
                first_seed: plan.seeds.first(),
                last_seed: plan.seeds.last(),
                ended: results::SoakEnd::SeedsDone,
                error: None,
                elapsed_s: 0.0,
                runs: Vec::new(),
            },
            store: store.to_path_buf(),
            started_at,
            started: Instant::now(),
        }
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// Adds a finished run (its data directories dropped unless the plan keeps them) and saves.
    pub fn add(&mut self, seed: u64, outcome: &RunOutcome, plan: &Plan) -> Result<()> {
        let keep = plan.keeps_data(outcome.summary.analysis.verdict);
        if !keep {
            drop_node_data(&outcome.dir.nodes_dir())?;
        }
        let finished_after_s = self.started.elapsed().as_secs_f64();
        let previous_end_s = self.summary.runs.last().map_or(0.0, |r| r.finished_after_s);
        let detected_after_s = results::SoakRun::earliest_evidence(&outcome.summary)
            .and_then(|index| op_time_s(&outcome.dir.history_path(), index));
        let timing = results::RunTiming {
            finished_after_s,
            run_s: finished_after_s - previous_end_s,
            detected_after_s,
        };
        self.summary.runs.push(results::SoakRun::of(
            seed,
            &outcome.dir.path,
            &outcome.summary,
            timing,
            keep,
        ));
        self.save().map(|_| ())
    }

    /// Ends the soak (why, and the harness error if one ended it) and saves.
    pub fn end(&mut self, ended: results::SoakEnd, error: Option<String>) -> Result<PathBuf> {
        self.summary.ended = ended;
        self.summary.error = error;
        self.save()
    }

    fn save(&mut self) -> Result<PathBuf> {
        self.summary.elapsed_s = self.started.elapsed().as_secs_f64();
        results::write_soak(&self.store, &self.summary, self.started_at)
            .context("writing the soak's record")
    }
}

/// The time (seconds since the run started) of op `index` of a stored history, if the file holds
/// it: the line whose `index` is that one, read as far as it.
fn op_time_s(history: &Path, index: u64) -> Option<f64> {
    use std::io::BufRead;
    let file = std::fs::File::open(history).ok()?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.ok()?;
        let Ok(op) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        match op["index"].as_u64() {
            Some(i) if i == index => return Some(op["time_ns"].as_u64()? as f64 / 1e9),
            Some(i) if i > index => return None,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_op_s_time_is_read_from_its_history_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("history.jsonl");
        let lines = [
            r#"{"index":0,"time_ns":1000000000,"process":"nemesis","type":"invoke","f":"kill"}"#,
            "not json: a cut line is skipped",
            r#"{"index":1,"time_ns":2500000000,"process":"producer-1","type":"ok","f":"send"}"#,
        ];
        std::fs::write(&path, lines.join("\n")).expect("write");
        assert_eq!(op_time_s(&path, 1), Some(2.5));
        assert_eq!(op_time_s(&path, 0), Some(1.0));
        assert_eq!(op_time_s(&path, 7), None);
        assert_eq!(op_time_s(&dir.path().join("missing"), 0), None);
    }

    #[test]
    fn lengths_parse_in_hours_minutes_and_seconds() {
        assert_eq!(parse_for("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_for("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_for("2m5s"), Ok(Duration::from_secs(125)));
        assert_eq!(parse_for("45"), Ok(Duration::from_secs(45)));
        for bad in ["", "1x", "h", "10m3", "0", "0s", "1.5h"] {
            assert!(parse_for(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_for("100000h").unwrap_err().contains("at most"));
    }

    #[test]
    fn seed_ranges_include_both_ends() {
        let s = Seeds::parse_range("1..10").expect("range");
        assert_eq!((s.nth(0), s.nth(9), s.nth(10)), (Some(1), Some(10), None));
        assert_eq!(Seeds::parse_range("7..7").expect("one").nth(1), None);
        for bad in ["10..1", "1-10", "a..3", "..3"] {
            assert!(Seeds::parse_range(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Seeds::parse_range("0..1000000")
            .unwrap_err()
            .contains("at most"));
        assert_eq!(Seeds::From(u64::MAX).nth(1), None);
    }

    #[test]
    fn a_soak_stops_at_the_first_invalid_run_unless_it_keeps_going() {
        let t0 = Instant::now();
        let mut plan = Plan {
            seeds: Seeds::Range { first: 5, last: 6 },
            budget: None,
            keep_going: false,
            keep_valid: false,
        };
        assert_eq!(plan.next_seed(0, t0, false), Next::Run(5));
        assert_eq!(plan.next_seed(1, t0, false), Next::Run(6));
        assert_eq!(
            plan.next_seed(2, t0, false),
            Next::Stop(results::SoakEnd::SeedsDone)
        );
        assert_eq!(
            plan.next_seed(1, t0, true),
            Next::Stop(results::SoakEnd::FirstInvalid)
        );
        plan.keep_going = true;
        assert_eq!(plan.next_seed(1, t0, true), Next::Run(6));
        // A budget already spent still lets the first run start, and no second.
        plan.seeds = Seeds::From(100);
        plan.budget = Some(Duration::ZERO);
        assert_eq!(plan.next_seed(0, t0, false), Next::Run(100));
        assert_eq!(
            plan.next_seed(1, t0, false),
            Next::Stop(results::SoakEnd::TimeUp)
        );
        assert!(plan.keeps_data(Verdict::Invalid) && plan.keeps_data(Verdict::Unknown));
        assert!(!plan.keeps_data(Verdict::Valid));
    }
}
