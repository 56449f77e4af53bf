//! `kaos matrix MATRIX.toml`: one base scenario and the settings to vary; every combination is
//! run with the same seed (so the same faults at the same times), then compared side by side.
//!
//! ```toml
//! name = "acks-commit"
//! base = "../scenarios/leader-kill-acks-all.toml"   # relative to this file
//! duration_s = 20                                     # optional: overrides the base's
//! seeds = 3                                           # optional: runs per configuration, with
//!                                                     # the seed and the next ones (default 1)
//!
//! [[vary]]
//! key = 'clients[0].config.acks'                      # a path into the base scenario
//! values = ["0", "1", "all"]
//!
//! [[expect]]                                          # expectations for matching combinations
//! when = { 'clients[0].config.acks' = "1" }
//! lost = "allowed"
//!
//! [[skip]]                                            # combinations that are not configurations
//! when = { 'clients[0].config.acks' = "1", 'clients[0].config."enable.idempotence"' = "true" }
//! reason = "librdkafka refuses enable.idempotence without acks=all"
//! ```

use crate::limits::MATRIX_SEEDS_MAX;
use crate::scenario::{Scenario, ScenarioError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Combinations a matrix may expand to.
pub const COMBINATIONS_MAX: usize = 256;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixFile {
    pub name: String,
    pub base: PathBuf,
    #[serde(default)]
    pub duration_s: Option<u64>,
    #[serde(default)]
    pub seed: Option<u64>,
    /// Runs per configuration: seeds `seed`, `seed + 1`, …, the same for every configuration
    /// (`kaos matrix --seeds N` overrides it).
    #[serde(default = "one_seed")]
    pub seeds: u32,
    pub vary: Vec<Vary>,
    #[serde(default)]
    pub expect: Vec<ExpectRule>,
    #[serde(default)]
    pub skip: Vec<SkipRule>,
}

/// Combinations left out (a client library refuses them, say), with the reason.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipRule {
    pub when: BTreeMap<String, toml::Value>,
    /// Why the combinations are left out (for the reader of the matrix file).
    #[allow(dead_code)]
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vary {
    pub key: String,
    pub values: Vec<toml::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ExpectRule {
    /// Every key here must have this value in the combination (compared as TOML text).
    pub when: BTreeMap<String, toml::Value>,
    /// The `[expect]` keys to set for matching combinations.
    #[serde(flatten)]
    pub set: toml::Table,
}

/// One configuration of the matrix, ready to run.
pub struct Combination {
    /// `key = value` for each varied key, in the matrix's order.
    pub settings: Vec<(String, String)>,
    pub scenario: Scenario,
    /// The scenario as TOML text, as it is run.
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error("cannot read matrix {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("matrix {path} is not valid: {message}")]
    Invalid { path: String, message: String },
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
}

pub fn load(path: &Path) -> Result<(MatrixFile, Vec<Combination>), MatrixError> {
    let origin = path.display().to_string();
    let invalid = |message: String| MatrixError::Invalid {
        path: origin.clone(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|source| MatrixError::Read {
        path: origin.clone(),
        source,
    })?;
    let matrix: MatrixFile = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let count = combinations(&matrix).map_err(invalid)?;
    let base_path = path.parent().unwrap_or(Path::new(".")).join(&matrix.base);
    let (_, base_text) = Scenario::load(&base_path)?;
    let base: toml::Value = toml::from_str(&base_text)
        .map_err(|e| invalid(format!("base {}: {e}", base_path.display())))?;
    for rule in matrix
        .expect
        .iter()
        .map(|r| &r.when)
        .chain(matrix.skip.iter().map(|r| &r.when))
    {
        if let Some(key) = rule
            .keys()
            .find(|key| !matrix.vary.iter().any(|v| &v.key == *key))
        {
            return Err(invalid(format!(
                "a `when` names {key:?}, which no [[vary]] varies"
            )));
        }
    }

    let mut combinations = Vec::with_capacity(count);
    for k in 0..count {
        // Mixed-radix digits of k pick one value per vary, the first vary varying slowest.
        let mut rest = k;
        let mut picks = vec![0; matrix.vary.len()];
        for (i, v) in matrix.vary.iter().enumerate().rev() {
            picks[i] = rest % v.values.len();
            rest /= v.values.len();
        }
        let mut value = base.clone();
        let mut settings = Vec::new();
        for (v, &pick) in matrix.vary.iter().zip(&picks) {
            let chosen = v.values[pick].clone();
            set_path(&mut value, &v.key, chosen.clone())
                .map_err(|e| invalid(format!("vary key {:?}: {e}", v.key)))?;
            settings.push((v.key.clone(), display(&chosen)));
        }
        let matches = |when: &BTreeMap<String, toml::Value>| {
            when.iter().all(|(key, want)| {
                settings
                    .iter()
                    .any(|(k, got)| k == key && *got == display(want))
            })
        };
        if matrix.skip.iter().any(|rule| matches(&rule.when)) {
            continue;
        }
        for rule in &matrix.expect {
            if matches(&rule.when) {
                for (key, allowance) in &rule.set {
                    set_path(&mut value, &format!("expect.{key}"), allowance.clone())
                        .map_err(invalid)?;
                }
            }
        }
        let slug: Vec<String> = settings.iter().map(|(_, v)| slug(v)).collect();
        set_path(
            &mut value,
            "name",
            toml::Value::String(format!("{}-{}", matrix.name, slug.join("-"))),
        )
        .map_err(invalid)?;
        if let Some(d) = matrix.duration_s {
            set_path(&mut value, "duration_s", toml::Value::Integer(d as i64)).map_err(invalid)?;
        }
        if let Some(s) = matrix.seed {
            set_path(&mut value, "seed", toml::Value::Integer(s as i64)).map_err(invalid)?;
        }
        let text = toml::to_string(&value).map_err(|e| invalid(e.to_string()))?;
        let scenario = Scenario::parse(&text, &format!("{origin} combination {}", k + 1))?;
        combinations.push(Combination {
            settings,
            scenario,
            text,
        });
    }
    Ok((matrix, combinations))
}

/// How many combinations the matrix varies, once its `[[vary]]` tables and `seeds` are checked.
fn combinations(matrix: &MatrixFile) -> Result<usize, String> {
    check_seeds(matrix.seeds).map_err(|m| format!("seeds: {m}"))?;
    if matrix.vary.is_empty() || matrix.vary.iter().any(|v| v.values.is_empty()) {
        return Err(
            "every [[vary]] needs at least one value, and there must be one [[vary]]".into(),
        );
    }
    let count: usize = matrix.vary.iter().map(|v| v.values.len()).product();
    if count > COMBINATIONS_MAX {
        return Err(format!("{count} combinations; at most {COMBINATIONS_MAX}"));
    }
    Ok(count)
}

fn one_seed() -> u32 {
    1
}

/// A matrix's seeds per configuration: at least one, at most `MATRIX_SEEDS_MAX`.
pub fn check_seeds(seeds: u32) -> Result<(), String> {
    if seeds == 0 || seeds > MATRIX_SEEDS_MAX {
        return Err(format!(
            "{seeds} seeds per configuration; from 1 to {MATRIX_SEEDS_MAX}"
        ));
    }
    Ok(())
}

fn display(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn slug(v: &str) -> String {
    v.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Sets the value at `path` (`a.b[2]."dotted.key"`) inside `root`, creating tables on the way.
pub fn set_path(root: &mut toml::Value, path: &str, new: toml::Value) -> Result<(), String> {
    let segments = parse_path(path)?;
    let mut cur = root;
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        cur = match seg {
            Segment::Key(k) => {
                let table = cur
                    .as_table_mut()
                    .ok_or_else(|| format!("{k:?} is not inside a table"))?;
                if last {
                    table.insert(k.clone(), new);
                    return Ok(());
                }
                table
                    .entry(k.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            }
            Segment::Index(n) => {
                let items = cur
                    .as_array_mut()
                    .ok_or_else(|| format!("[{n}] is not inside an array"))?;
                let len = items.len();
                let item = items
                    .get_mut(*n)
                    .ok_or_else(|| format!("index [{n}] is past the end ({len} items)"))?;
                if last {
                    *item = new;
                    return Ok(());
                }
                item
            }
        };
    }
    Err("empty path".into())
}

#[derive(Debug, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    let mut chars = path.chars().peekable();
    let mut after_dot = true;
    while let Some(&c) = chars.peek() {
        if c == '.' {
            if after_dot {
                return Err(format!("{path:?} has an empty segment"));
            }
            chars.next();
            after_dot = true;
            continue;
        }
        after_dot = false;
        match c {
            '"' | '\'' => {
                chars.next();
                let key: String = chars.by_ref().take_while(|&d| d != c).collect();
                out.push(Segment::Key(key));
            }
            '[' => {
                chars.next();
                let digits: String = chars.by_ref().take_while(|&d| d != ']').collect();
                out.push(Segment::Index(
                    digits
                        .trim()
                        .parse()
                        .map_err(|_| format!("[{digits}] is not an index"))?,
                ));
            }
            _ => {
                let mut key = String::new();
                while let Some(&d) = chars.peek() {
                    if d == '.' || d == '[' {
                        break;
                    }
                    key.push(d);
                    chars.next();
                }
                out.push(Segment::Key(key));
            }
        }
    }
    if out.is_empty()
        || after_dot
        || out
            .iter()
            .any(|s| matches!(s, Segment::Key(k) if k.is_empty()))
    {
        return Err(format!(
            "{path:?} is not a path such as clients[0].config.acks"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_reach_into_tables_arrays_and_dotted_keys() {
        let mut v: toml::Value =
            toml::from_str("[[clients]]\nconfig = { acks = \"1\" }\n[cluster]\nbrokers = 1\n")
                .expect("toml");
        set_path(&mut v, "clients[0].config.acks", "all".into()).expect("set");
        set_path(
            &mut v,
            "cluster.settings.\"flush.messages\"",
            toml::Value::Integer(1),
        )
        .expect("set");
        set_path(
            &mut v,
            "clients[0].config.'enable.idempotence'",
            "true".into(),
        )
        .expect("set");
        assert_eq!(v["clients"][0]["config"]["acks"].as_str(), Some("all"));
        assert_eq!(
            v["clients"][0]["config"]["enable.idempotence"].as_str(),
            Some("true")
        );
        assert_eq!(
            v["cluster"]["settings"]["flush.messages"].as_integer(),
            Some(1)
        );
        assert!(set_path(&mut v, "clients[3].config", "x".into())
            .unwrap_err()
            .contains("past the end"));
        assert!(set_path(&mut v, "cluster.brokers.x", "x".into()).is_err());
        assert!(parse_path("").is_err() && parse_path("a..b").is_err());
    }

    #[test]
    fn a_matrix_expands_to_every_combination_with_its_expectations() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("base.toml"),
            "name = \"b\"\nduration_s = 30\n[cluster]\nbrokers = 1\n[topic]\nname = \"t\"\npartitions = 1\n\
             [[clients]]\nkind = \"producer\"\nconfig = { acks = \"all\" }\n[expect]\nlost = \"forbidden\"\n",
        )
        .expect("base");
        let m = dir.path().join("m.toml");
        std::fs::write(
            &m,
            "name = \"m\"\nbase = \"base.toml\"\nduration_s = 5\n\
             [[vary]]\nkey = 'clients[0].config.acks'\nvalues = [\"0\", \"1\", \"all\"]\n\
             [[vary]]\nkey = 'cluster.settings.\"flush.messages\"'\nvalues = [0, 1]\n\
             [[expect]]\nwhen = { 'clients[0].config.acks' = \"1\" }\nlost = \"allowed\"\n",
        )
        .expect("matrix");
        let (_, combos) = load(&m).expect("load");
        assert_eq!(combos.len(), 6);
        let mut text = std::fs::read_to_string(&m).expect("read");
        text.push_str("[[skip]]\nwhen = { 'clients[0].config.acks' = \"0\", 'cluster.settings.\"flush.messages\"' = 1 }\nreason = \"r\"\n");
        std::fs::write(&m, &text).expect("matrix with a skip");
        let (_, fewer) = load(&m).expect("load with a skip");
        assert_eq!(fewer.len(), 5);
        assert!(
            !fewer.iter().any(|c| c.scenario.name == "m-0-1"),
            "the skipped combination is not run"
        );
        std::fs::write(
            &m,
            text.replace(
                "reason = \"r\"",
                "reason = \"r\"\n[[skip]]\nwhen = { seed = 1 }\nreason = \"x\"",
            ),
        )
        .expect("write");
        assert!(load(&m)
            .err()
            .expect("unknown when key")
            .to_string()
            .contains("no [[vary]]"));
        let names: Vec<_> = combos.iter().map(|c| c.scenario.name.clone()).collect();
        assert_eq!(names[0], "m-0-0");
        assert_eq!(names[5], "m-all-1");
        for c in &combos {
            assert_eq!(c.scenario.duration_s, 5);
            let acks = &c.settings[0].1;
            let lost = c.scenario.expect.of(checkers::AnomalyKind::Lost);
            assert_eq!(
                lost == checkers::Allowance::Allowed,
                acks == "1",
                "{:?}",
                c.settings
            );
        }
    }

    #[test]
    fn the_shipped_matrix_loads_with_its_skips_and_expectations() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("matrices/acks-commit.toml");
        let (_, combos) = load(&path).expect("acks-commit.toml loads");
        assert_eq!(
            combos.len(),
            24,
            "3 acks × 2 idempotence × 3 commit × 2 flush, less 12 refused by librdkafka"
        );
        for c in &combos {
            let get = |key: &str| {
                c.settings
                    .iter()
                    .find(|(k, _)| k.contains(key))
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            assert!(
                get("idempotence") == "false" || get("acks") == "all",
                "{:?}",
                c.settings
            );
            let commit = get("processing.commit");
            assert_eq!(
                c.scenario.expect.of(checkers::AnomalyKind::Unprocessed)
                    == checkers::Allowance::Forbidden,
                commit == "after_processing",
                "{:?}",
                c.settings
            );
        }
    }

    #[test]
    fn broken_matrices_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = dir.path().join("m.toml");
        std::fs::write(
            &m,
            "name = \"m\"\nbase = \"missing.toml\"\n[[vary]]\nkey = \"seed\"\nvalues = [1]\n",
        )
        .expect("write");
        let err = load(&m).err().expect("missing base").to_string();
        assert!(err.contains("missing.toml"), "{err}");
        std::fs::write(&m, "name = \"m\"\nbase = \"b.toml\"\nvary = []\n").expect("write");
        assert!(load(&m)
            .err()
            .expect("no vary")
            .to_string()
            .contains("[[vary]]"));
    }
}
