//! Kafka's topic-level configs: their names and the values each accepts (Kafka's `LogConfig`
//! definitions: type and range), so that a request naming a config Kafka does not know, or giving
//! a value Kafka would refuse, is answered INVALID_CONFIG as Kafka answers it; and the values
//! kaos-broker applies to every topic ([`applied`]), for DescribeConfigs. kaos-broker does not
//! store or apply per-topic configs yet (issue 17): every topic has the broker's values.

use std::collections::BTreeSet;

/// The kind of value a config takes, with its lower bound where Kafka sets one.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A 64-bit integer ≥ the bound.
    Long(i64),
    /// A 32-bit integer ≥ the bound.
    Int(i32),
    /// A floating-point number in 0..=1.
    Ratio,
    Bool,
    /// One of these words (Kafka compares them case-sensitively).
    OneOf(&'static [&'static str]),
    /// A comma-separated, non-empty list of these words.
    ListOf(&'static [&'static str]),
    /// Any text.
    Text,
}

/// Every topic config of Kafka 3.9, sorted by name.
const CONFIGS: &[(&str, Kind)] = &[
    ("cleanup.policy", Kind::ListOf(&["compact", "delete"])),
    ("compression.gzip.level", Kind::Int(-1)),
    ("compression.lz4.level", Kind::Int(1)),
    (
        "compression.type",
        Kind::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
    ),
    ("compression.zstd.level", Kind::Int(-131072)),
    ("delete.retention.ms", Kind::Long(0)),
    ("file.delete.delay.ms", Kind::Long(0)),
    ("flush.messages", Kind::Long(1)),
    ("flush.ms", Kind::Long(0)),
    ("follower.replication.throttled.replicas", Kind::Text),
    ("index.interval.bytes", Kind::Int(0)),
    ("leader.replication.throttled.replicas", Kind::Text),
    ("local.retention.bytes", Kind::Long(-2)),
    ("local.retention.ms", Kind::Long(-2)),
    ("max.compaction.lag.ms", Kind::Long(1)),
    ("max.message.bytes", Kind::Int(0)),
    ("message.downconversion.enable", Kind::Bool),
    ("message.format.version", Kind::Text),
    ("message.timestamp.after.max.ms", Kind::Long(0)),
    ("message.timestamp.before.max.ms", Kind::Long(0)),
    ("message.timestamp.difference.max.ms", Kind::Long(0)),
    (
        "message.timestamp.type",
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
    ),
    ("min.cleanable.dirty.ratio", Kind::Ratio),
    ("min.compaction.lag.ms", Kind::Long(0)),
    ("min.insync.replicas", Kind::Int(1)),
    ("preallocate", Kind::Bool),
    ("remote.log.copy.disable", Kind::Bool),
    ("remote.log.delete.on.disable", Kind::Bool),
    ("remote.storage.enable", Kind::Bool),
    ("retention.bytes", Kind::Long(i64::MIN)),
    ("retention.ms", Kind::Long(-1)),
    ("segment.bytes", Kind::Int(14)),
    ("segment.index.bytes", Kind::Int(4)),
    ("segment.jitter.ms", Kind::Long(0)),
    ("segment.ms", Kind::Long(1)),
    ("unclean.leader.election.enable", Kind::Bool),
];

/// Why a topic config was refused, in Kafka's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("Unknown topic config name: {0}")]
    Unknown(String),
    #[error("Null value not supported for topic configs: {0}")]
    Null(String),
    #[error("Invalid value {value} for configuration {name}: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
    #[error("Duplicate topic config name: {0}")]
    Duplicate(String),
}

/// Whether Kafka knows `name` as a topic config.
pub fn is_known(name: &str) -> bool {
    kind_of(name).is_some()
}

fn kind_of(name: &str) -> Option<Kind> {
    CONFIGS
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| CONFIGS[i].1)
}

/// Checks one config as CreateTopics and AlterConfigs receive it (`None`: a null value).
pub fn validate(name: &str, value: Option<&str>) -> Result<(), ConfigError> {
    let kind = kind_of(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
    let value = value.ok_or_else(|| ConfigError::Null(name.to_string()))?;
    check_value(kind, value.trim()).map_err(|reason| ConfigError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
        reason,
    })
}

/// Checks every config of one request's topic, refusing a name given twice.
pub fn validate_all<'a>(
    configs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<(), ConfigError> {
    let mut seen = BTreeSet::new();
    for (name, value) in configs {
        if !seen.insert(name) {
            return Err(ConfigError::Duplicate(name.to_string()));
        }
        validate(name, value)?;
    }
    Ok(())
}

fn check_value(kind: Kind, value: &str) -> Result<(), String> {
    match kind {
        Kind::Long(min) => {
            let n: i64 = value
                .parse()
                .map_err(|_| "Not a number of type LONG".to_string())?;
            at_least(n, min)
        }
        Kind::Int(min) => {
            let n: i32 = value
                .parse()
                .map_err(|_| "Not a number of type INT".to_string())?;
            at_least(i64::from(n), i64::from(min))
        }
        Kind::Ratio => {
            let n: f64 = value
                .parse()
                .map_err(|_| "Not a number of type DOUBLE".to_string())?;
            if (0.0..=1.0).contains(&n) {
                Ok(())
            } else {
                Err("Value must be between 0 and 1".to_string())
            }
        }
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(()),
            _ => Err("Expected value to be either true or false".to_string()),
        },
        Kind::OneOf(words) => one_of(words, value),
        Kind::ListOf(words) => value.split(',').try_for_each(|w| one_of(words, w.trim())),
        Kind::Text => Ok(()),
    }
}

fn at_least(n: i64, min: i64) -> Result<(), String> {
    if n >= min {
        Ok(())
    } else {
        Err(format!("Value must be at least {min}"))
    }
}

fn one_of(words: &[&str], value: &str) -> Result<(), String> {
    if words.contains(&value) {
        Ok(())
    } else {
        Err(format!("String must be one of: {}", words.join(", ")))
    }
}

/// Where an applied value comes from (Kafka's DescribeConfigs `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A setting of the broker (its config file or its default).
    Broker = 4,
    /// Fixed: kaos-broker has no setting for it.
    Default = 5,
}

/// The type of a config as DescribeConfigs v3+ names it (`config_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    List = 7,
}

/// One topic config as kaos-broker applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub name: &'static str,
    pub value: String,
    pub source: Source,
    pub value_type: ValueType,
}

/// Kafka's value for "never" of the flush settings.
const NEVER: i64 = i64::MAX;

/// The topic configs whose value describes what kaos-broker does with every topic, under
/// `config`'s settings: the log's segment size, index interval, flush policy and batch size
/// bound, the replication settings, and what it does not do (no retention: -1; no compaction:
/// `delete`; batches kept as produced: `producer`; timestamps as produced: `CreateTime`).
pub fn applied(config: &crate::config::Config) -> Vec<Applied> {
    use Source::{Broker, Default};
    use ValueType::{Boolean, Int, List, Long, String};
    let never_if_zero = |n: u64| if n == 0 { NEVER } else { i64::try_from(n).unwrap_or(NEVER) };
    let rows = [
        ("cleanup.policy", "delete".to_string(), Default, List),
        ("compression.type", "producer".to_string(), Default, String),
        ("flush.messages", never_if_zero(config.log.flush_messages).to_string(), Broker, Long),
        ("flush.ms", never_if_zero(config.flush_interval_ms).to_string(), Broker, Long),
        ("index.interval.bytes", config.log.index_interval_bytes.to_string(), Broker, Int),
        ("max.message.bytes", config.message_max_bytes.to_string(), Broker, Int),
        ("message.timestamp.type", "CreateTime".to_string(), Default, String),
        (
            "min.insync.replicas",
            config.replication.min_insync_replicas.to_string(),
            Broker,
            Int,
        ),
        ("preallocate", "false".to_string(), Default, Boolean),
        ("retention.bytes", "-1".to_string(), Default, Long),
        ("retention.ms", "-1".to_string(), Default, Long),
        ("segment.bytes", config.log.segment_bytes.to_string(), Broker, Int),
        (
            "unclean.leader.election.enable",
            config.replication.unclean_leader_election_enable.to_string(),
            Broker,
            Boolean,
        ),
    ];
    rows.into_iter()
        .map(|(name, value, source, value_type)| Applied {
            name,
            value,
            source,
            value_type,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_so_that_lookups_find_every_name() {
        assert!(CONFIGS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(CONFIGS.iter().all(|(name, _)| is_known(name)));
    }

    #[test]
    fn values_kafka_accepts_are_accepted() {
        for (name, value) in [
            ("retention.ms", "-1"),
            ("retention.ms", "604800000"),
            ("retention.bytes", "-1"),
            ("cleanup.policy", "compact,delete"),
            ("cleanup.policy", "compact"),
            ("compression.type", "lz4"),
            ("min.cleanable.dirty.ratio", "0.5"),
            ("unclean.leader.election.enable", "TRUE"),
            ("message.timestamp.type", "LogAppendTime"),
            ("segment.bytes", "1048576"),
        ] {
            assert_eq!(validate(name, Some(value)), Ok(()), "{name}={value}");
        }
    }

    #[test]
    fn unknown_names_null_and_bad_values_are_refused_with_kafkas_words() {
        assert_eq!(
            validate("no.such.config", Some("1")),
            Err(ConfigError::Unknown("no.such.config".into()))
        );
        assert_eq!(
            validate("retention.ms", None),
            Err(ConfigError::Null("retention.ms".into()))
        );
        let refused = |name: &str, value: &str| {
            let e = validate(name, Some(value)).expect_err(value);
            assert!(matches!(e, ConfigError::Invalid { .. }), "{name}={value}: {e}");
            e.to_string()
        };
        assert!(refused("retention.ms", "soon").contains("Not a number of type LONG"));
        assert!(refused("retention.ms", "-2").contains("at least -1"));
        assert!(refused("segment.bytes", "13").contains("at least 14"));
        assert!(refused("segment.bytes", "4294967296").contains("type INT"));
        assert!(refused("cleanup.policy", "compact,forever").contains("one of"));
        assert!(refused("cleanup.policy", "").contains("one of"));
        assert!(refused("min.cleanable.dirty.ratio", "1.5").contains("between 0 and 1"));
        assert!(refused("preallocate", "yes").contains("true or false"));
        assert!(refused("message.timestamp.type", "createtime").contains("one of"));
    }

    #[test]
    fn applied_values_are_known_configs_that_kafka_would_accept() {
        let config = crate::config::Config::resolve(
            crate::config::FileConfig::default(),
            Some(1),
            Some("127.0.0.1:0".into()),
            Some("/nonexistent".into()),
        )
        .expect("the defaults are valid");
        for applied in applied(&config) {
            assert_eq!(validate(applied.name, Some(&applied.value)), Ok(()), "{applied:?}");
        }
    }

    #[test]
    fn a_name_given_twice_is_refused() {
        assert_eq!(
            validate_all([("retention.ms", Some("1")), ("retention.ms", Some("2"))]),
            Err(ConfigError::Duplicate("retention.ms".into()))
        );
        assert_eq!(
            validate_all([("retention.ms", Some("1")), ("segment.ms", Some("2"))]),
            Ok(())
        );
    }
}
