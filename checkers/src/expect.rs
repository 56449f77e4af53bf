//! What a scenario allows: each anomaly class is `allowed`, `forbidden` or `required`, keyed by
//! the class's name (the table in `classes`), defaults from the same table.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::classes::Allowance;
use crate::classes::AnomalyKind;

/// The expected outcome of a scenario, read from its `[expect]` table, e.g.
/// `[expect]\nlost = "forbidden"\nduplicate = "allowed"`: one key per anomaly class (its name),
/// and `acknowledged_min`. Missing keys take their defaults (`AnomalyKind::default_allowance`,
/// the table in `docs/history.md`); an unknown key is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// Per class, in the order of `AnomalyKind::ALL`.
    allowances: [Allowance; AnomalyKind::COUNT],
    /// Liveness: the run must acknowledge at least this many sends. Default: 0 (no requirement).
    pub acknowledged_min: u64,
    /// A kaos run in which a producer acknowledged nothing, or a consumer read nothing while sends
    /// were acknowledged, verified nothing about that client: its verdict is `unknown` unless the
    /// scenario sets this (it means to show such a client). Default: false.
    pub idle_clients_allowed: bool,
    /// The brokers must have recognised at least this many retried batches as duplicates (the
    /// idempotence window exercised; counted by `kaos run` from kaos-broker's logs, read by the
    /// harness, not the checker). Default: 0.
    pub duplicate_batches_min: u64,
    /// Progress of a consume-transform-produce pipeline: of the input messages in the final read
    /// of a pipeline's input topic, at least this percentage (0 to 100) must have their output
    /// in the final read of its output topic. A pipeline that stalls (a transaction that never
    /// completes, a client hung after a failover) loses nothing and doubles nothing, so only
    /// this catches it. Checked per pipeline, with a completed final read. Default: 0.
    pub pipeline_output_min_percent: u8,
}

/// Keys an earlier release used, and the name each has now: refused in a scenario (with its new
/// name), read in a stored `results.json`.
const RENAMED: &[(&str, AnomalyKind)] = &[("duplicates", AnomalyKind::Duplicate)];

impl Default for Expectations {
    fn default() -> Self {
        Expectations {
            allowances: AnomalyKind::ALL.map(AnomalyKind::default_allowance),
            acknowledged_min: 0,
            idle_clients_allowed: false,
            duplicate_batches_min: 0,
            pipeline_output_min_percent: 0,
        }
    }
}

impl Expectations {
    /// Every class allowed: list anomalies without judging (useful for Jepsen histories).
    pub fn allow_all() -> Self {
        Expectations {
            allowances: [Allowance::Allowed; AnomalyKind::COUNT],
            acknowledged_min: 0,
            idle_clients_allowed: false,
            duplicate_batches_min: 0,
            pipeline_output_min_percent: 0,
        }
    }

    /// The allowance of one class.
    pub fn of(&self, kind: AnomalyKind) -> Allowance {
        self.allowances[kind.index()]
    }

    /// Sets the allowance of one class.
    pub fn set(&mut self, kind: AnomalyKind, allowance: Allowance) -> &mut Self {
        self.allowances[kind.index()] = allowance;
        self
    }

    /// Reads a stored `results.json`'s `expect`, where earlier releases wrote `duplicates`.
    pub fn deserialize_stored<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ExpectVisitor { stored: true })
    }
}

impl Serialize for Expectations {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(AnomalyKind::COUNT + 4))?;
        for kind in AnomalyKind::ALL {
            map.serialize_entry(kind.as_str(), &self.of(kind))?;
        }
        map.serialize_entry("acknowledged_min", &self.acknowledged_min)?;
        map.serialize_entry("idle_clients_allowed", &self.idle_clients_allowed)?;
        map.serialize_entry("duplicate_batches_min", &self.duplicate_batches_min)?;
        map.serialize_entry(
            "pipeline_output_min_percent",
            &self.pipeline_output_min_percent,
        )?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Expectations {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ExpectVisitor { stored: false })
    }
}

struct ExpectVisitor {
    /// Accept the keys of earlier releases (a stored results.json), rather than refuse them.
    stored: bool,
}

impl<'de> Visitor<'de> for ExpectVisitor {
    type Value = Expectations;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of anomaly classes (\"allowed\", \"forbidden\" or \"required\"), acknowledged_min, idle_clients_allowed, duplicate_batches_min and pipeline_output_min_percent")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Expectations, A::Error> {
        let mut expect = Expectations::default();
        let mut seen = [false; AnomalyKind::COUNT];
        while let Some(key) = map.next_key::<String>()? {
            if key == "acknowledged_min" {
                expect.acknowledged_min = map.next_value()?;
                continue;
            }
            if key == "idle_clients_allowed" {
                expect.idle_clients_allowed = map.next_value()?;
                continue;
            }
            if key == "duplicate_batches_min" {
                expect.duplicate_batches_min = map.next_value()?;
                continue;
            }
            if key == "pipeline_output_min_percent" {
                let percent: u64 = map.next_value()?;
                expect.pipeline_output_min_percent =
                    u8::try_from(percent).ok().filter(|p| *p <= 100).ok_or_else(|| {
                        de::Error::custom(format!(
                            "expect key `pipeline_output_min_percent` is a percentage from 0 to 100, not {percent}"
                        ))
                    })?;
                continue;
            }
            let renamed = RENAMED.iter().find(|(old, _)| *old == key);
            let kind = match (AnomalyKind::from_name(&key), renamed) {
                (Some(kind), _) => kind,
                (None, Some((old, new))) if self.stored => {
                    let _ = old;
                    *new
                }
                (None, Some((old, new))) => {
                    return Err(de::Error::custom(format!(
                        "expect key `{old}` is now `{}` (the anomaly class's name)",
                        new.as_str()
                    )))
                }
                (None, None) => {
                    let known: Vec<&str> = AnomalyKind::ALL.iter().map(|k| k.as_str()).collect();
                    return Err(de::Error::custom(format!(
                        "unknown expect key `{key}`: expected one of {}, acknowledged_min, idle_clients_allowed, duplicate_batches_min, pipeline_output_min_percent",
                        known.join(", ")
                    )));
                }
            };
            if std::mem::replace(&mut seen[kind.index()], true) {
                return Err(de::Error::custom(format!(
                    "expect key `{}` given twice",
                    kind.as_str()
                )));
            }
            expect.set(kind, map.next_value()?);
        }
        Ok(expect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Scenario {
        expect: Expectations,
    }

    #[test]
    fn reads_a_toml_expect_table_with_defaults() {
        let scenario: Scenario =
            toml::from_str("[expect]\nduplicate = \"forbidden\"\n").expect("valid table");
        assert_eq!(
            scenario.expect.of(AnomalyKind::Duplicate),
            Allowance::Forbidden
        );
        assert_eq!(scenario.expect.of(AnomalyKind::Lost), Allowance::Forbidden);
        assert_eq!(
            scenario.expect.of(AnomalyKind::UnacknowledgedAbsent),
            Allowance::Allowed
        );
        assert_eq!(scenario.expect.acknowledged_min, 0);
        let scenario: Scenario =
            toml::from_str("[expect]\nacknowledged_min = 5\n").expect("valid table");
        assert_eq!(scenario.expect.acknowledged_min, 5);
        let scenario: Scenario =
            toml::from_str("[expect]\nidle_clients_allowed = true\n").expect("valid table");
        assert!(scenario.expect.idle_clients_allowed);
        let json = serde_json::to_value(scenario.expect).expect("serialise");
        assert_eq!(json["idle_clients_allowed"], true);
        let scenario: Scenario =
            toml::from_str("[expect]\nduplicate_batches_min = 3\n").expect("valid table");
        assert_eq!(scenario.expect.duplicate_batches_min, 3);
        let json = serde_json::to_value(scenario.expect).expect("serialise");
        assert_eq!(json["duplicate_batches_min"], 3);
        let scenario: Scenario =
            toml::from_str("[expect]\npipeline_output_min_percent = 95\n").expect("valid table");
        assert_eq!(scenario.expect.pipeline_output_min_percent, 95);
        let json = serde_json::to_value(scenario.expect).expect("serialise");
        assert_eq!(json["pipeline_output_min_percent"], 95);
    }

    #[test]
    fn reads_the_new_classes_and_keeps_jepsen_like_defaults() {
        let scenario: Scenario = toml::from_str(
            "[expect]\npoll_skip = \"allowed\"\nproducer_loss = \"allowed\"\nduplicate_processing = \"forbidden\"\n",
        )
        .expect("valid table");
        assert_eq!(
            scenario.expect.of(AnomalyKind::PollSkip),
            Allowance::Allowed
        );
        assert_eq!(
            scenario.expect.of(AnomalyKind::ProducerLoss),
            Allowance::Allowed
        );
        assert_eq!(
            scenario.expect.of(AnomalyKind::DuplicateProcessing),
            Allowance::Forbidden
        );
        let d = Expectations::default();
        for forbidden in [
            d.of(AnomalyKind::Lost),
            d.of(AnomalyKind::ReadThenLost),
            d.of(AnomalyKind::ProducerLoss),
            d.of(AnomalyKind::AbortedRead),
            d.of(AnomalyKind::FutureRead),
            d.of(AnomalyKind::InconsistentOffsets),
            d.of(AnomalyKind::ReplicaDivergence),
            d.of(AnomalyKind::PollSkip),
            d.of(AnomalyKind::NonmonotonicPoll),
            d.of(AnomalyKind::Unprocessed),
            d.of(AnomalyKind::LostCommit),
            d.of(AnomalyKind::UncommittedRead),
        ] {
            assert_eq!(forbidden, Allowance::Forbidden);
        }
        for allowed in [
            d.of(AnomalyKind::Duplicate),
            d.of(AnomalyKind::DuplicateProcessing),
            d.of(AnomalyKind::ReadBeforeAck),
            d.of(AnomalyKind::NonmonotonicSend),
            d.of(AnomalyKind::UnacknowledgedAbsent),
        ] {
            assert_eq!(allowed, Allowance::Allowed);
        }
    }

    #[test]
    fn rejects_unknown_keys_and_values() {
        assert!(toml::from_str::<Scenario>("[expect]\nlsot = \"allowed\"\n").is_err());
        assert!(toml::from_str::<Scenario>("[expect]\nlost = \"maybe\"\n").is_err());
        let err = toml::from_str::<Scenario>("[expect]\npipeline_output_min_percent = 101\n")
            .expect_err("over 100");
        assert!(
            err.to_string()
                .contains("`pipeline_output_min_percent` is a percentage from 0 to 100, not 101"),
            "{err}"
        );
    }

    #[test]
    fn the_old_key_duplicates_is_refused_with_its_new_name_and_read_in_stored_results() {
        let err = toml::from_str::<Scenario>("[expect]\nduplicates = \"forbidden\"\n")
            .expect_err("renamed");
        assert!(
            err.to_string()
                .contains("expect key `duplicates` is now `duplicate`"),
            "{err}"
        );
        let err =
            toml::from_str::<Scenario>("[expect]\nlost = \"allowed\"\nlost = \"forbidden\"\n");
        assert!(err.is_err());
        let stored: Expectations =
            Expectations::deserialize_stored(&mut serde_json::Deserializer::from_str(
                r#"{"duplicates":"forbidden","lost":"allowed"}"#,
            ))
            .expect("a stored results.json reads");
        assert_eq!(stored.of(AnomalyKind::Duplicate), Allowance::Forbidden);
        assert_eq!(stored.of(AnomalyKind::Lost), Allowance::Allowed);
        let json = serde_json::to_value(&stored).expect("json");
        assert_eq!(json["duplicate"], "forbidden");
        assert!(json.get("duplicates").is_none());
        assert_eq!(json["acknowledged_min"], 0);
    }
}
