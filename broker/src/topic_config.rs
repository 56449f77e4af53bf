//! Kafka's topic-level configs: their names and the values each accepts (Kafka's `LogConfig`
//! definitions: type and range), so that a request naming a config Kafka does not know, or giving
//! a value Kafka would refuse, is answered INVALID_CONFIG as Kafka answers it; a topic's stored
//! configs ([`TopicConfigs`]) changed as AlterConfigs and IncrementalAlterConfigs ask
//! ([`alter_incrementally`]); the log settings they give a partition ([`log_config`]:
//! `segment.bytes`, `segment.ms`, `retention.ms`, `retention.bytes`, `cleanup.policy`,
//! `delete.retention.ms`, `min.compaction.lag.ms`, `min.cleanable.dirty.ratio` are applied; the
//! others are stored and described only); and what DescribeConfigs reports of a topic ([`applied`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::config::LogConfig;

/// A topic's configs as stored: name → value, each one [`validate`]d.
pub type TopicConfigs = BTreeMap<String, String>;

/// The kind of value a config takes, with its lower bound where Kafka sets one.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
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

pub(crate) fn check_value(kind: Kind, value: &str) -> Result<(), String> {
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
    /// The topic's own config (CreateTopics, AlterConfigs, IncrementalAlterConfigs).
    DynamicTopic = 1,
    /// A dynamic config of this broker (AlterConfigs of BROKER resource `<id>`).
    DynamicBroker = 2,
    /// A dynamic cluster-wide default (AlterConfigs of BROKER resource `""`).
    DynamicDefaultBroker = 3,
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
    Double = 6,
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

/// The topic configs of a topic with `topic`'s own configs over what kaos-broker does with
/// every topic under `config`'s settings: the log's segment size and age, retention, index
/// interval, flush policy and batch size bound, the replication settings, compaction's settings,
/// and its defaults for what it does not vary (`cleanup.policy` `delete`; batches kept as
/// produced: `producer`; timestamps as produced: `CreateTime`).
pub fn applied(config: &crate::config::Config, topic: &TopicConfigs) -> Vec<Applied> {
    let mut rows = broker_applied(config);
    for (name, value) in topic {
        let Some(kind) = kind_of(name) else { continue };
        match rows.iter_mut().find(|row| row.name == name.as_str()) {
            Some(row) => {
                row.value = value.clone();
                row.source = Source::DynamicTopic;
            }
            None => rows.push(Applied {
                name: name_of(name),
                value: value.clone(),
                source: Source::DynamicTopic,
                value_type: kind.value_type(),
            }),
        }
    }
    rows.sort_by(|a, b| a.name.cmp(b.name));
    rows
}

/// A topic's own configs only, as DescribeConfigs rows (what the controller holds).
pub fn applied_own(topic: &TopicConfigs) -> Vec<Applied> {
    topic
        .iter()
        .filter_map(|(name, value)| {
            let kind = kind_of(name)?;
            Some(Applied {
                name: name_of(name),
                value: value.clone(),
                source: Source::DynamicTopic,
                value_type: kind.value_type(),
            })
        })
        .collect()
}

/// The `'static` name of a config Kafka knows (the table's).
fn name_of(name: &str) -> &'static str {
    CONFIGS
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .map_or("", |i| CONFIGS[i].0)
}

impl Kind {
    pub(crate) fn value_type(self) -> ValueType {
        match self {
            Kind::Long(_) => ValueType::Long,
            Kind::Int(_) => ValueType::Int,
            Kind::Ratio => ValueType::Double,
            Kind::Bool => ValueType::Boolean,
            Kind::OneOf(_) | Kind::Text => ValueType::String,
            Kind::ListOf(_) => ValueType::List,
        }
    }
}

/// The topics Kafka creates compacted (`cleanup.policy=compact`): its internal ones.
const COMPACTED_BY_DEFAULT: &[&str] = &["__consumer_offsets", "__transaction_state"];

/// The log settings of a partition of topic `name` with `topic`'s configs, over the broker's
/// `base`. As in Kafka, time and size retention apply only to a topic whose `cleanup.policy`
/// includes `delete` (the internal topics are `compact`).
pub fn log_config(base: LogConfig, name: &str, topic: &TopicConfigs) -> LogConfig {
    let long = |name: &str| topic.get(name).and_then(|v| v.trim().parse::<i64>().ok());
    let mut config = base;
    let (compacts, deletes) = match topic.get("cleanup.policy") {
        Some(policy) => (
            crate::config::policy_has(policy, "compact"),
            crate::config::policy_has(policy, "delete"),
        ),
        None if COMPACTED_BY_DEFAULT.contains(&name) => (true, false),
        None => (base.compact, base.delete),
    };
    if let Some(n) = long("segment.bytes").and_then(|n| u64::try_from(n).ok()) {
        config.segment_bytes = n.max(crate::limits::SEGMENT_BYTES_MIN);
    }
    if let Some(n) = long("segment.ms") {
        config.segment_ms = n;
    }
    if let Some(n) = long("retention.ms") {
        config.retention_ms = n;
    }
    if let Some(n) = long("retention.bytes") {
        config.retention_bytes = n;
    }
    if !deletes {
        config.retention_ms = -1;
        config.retention_bytes = -1;
    }
    config.compact = compacts;
    config.delete = deletes;
    if let Some(n) = long("delete.retention.ms") {
        config.delete_retention_ms = n;
    }
    if let Some(n) = long("min.compaction.lag.ms") {
        config.min_compaction_lag_ms = n;
    }
    if let Some(ratio) = topic
        .get("min.cleanable.dirty.ratio")
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        config.min_cleanable_dirty_ratio_permille = crate::config::ratio_permille(ratio);
    }
    config
}

/// Whether a topic with these configs, under the broker's `base`, is compacted
/// (`cleanup.policy` includes `compact`): its produced records must have keys.
pub fn is_compacted(base: &LogConfig, name: &str, topic: &TopicConfigs) -> bool {
    match topic.get("cleanup.policy") {
        Some(policy) => crate::config::policy_has(policy, "compact"),
        None => COMPACTED_BY_DEFAULT.contains(&name) || base.compact,
    }
}

/// IncrementalAlterConfigs' operations (Kafka's `AlterConfigOp.OpType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterOp {
    Set,
    Delete,
    Append,
    Subtract,
}

impl AlterOp {
    pub fn of(code: i8) -> Option<AlterOp> {
        match code {
            0 => Some(AlterOp::Set),
            1 => Some(AlterOp::Delete),
            2 => Some(AlterOp::Append),
            3 => Some(AlterOp::Subtract),
            _ => None,
        }
    }

    /// A list config's value `current` (comma-separated) after APPEND (the items of `given` not
    /// already there, in order) or SUBTRACT (every item of `given` removed); `None` when the list
    /// is left empty (the config is then removed, as Kafka does). SET and DELETE leave it as it is.
    pub fn apply_to_list(self, current: Option<&str>, given: &str) -> Option<String> {
        let mut items: Vec<&str> = current
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|i| !i.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        for item in given.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match self {
                AlterOp::Append if !items.contains(&item) => items.push(item),
                AlterOp::Subtract => items.retain(|i| *i != item),
                _ => {}
            }
        }
        (!items.is_empty()).then(|| items.join(","))
    }
}

/// `current` changed by `ops` in order, as IncrementalAlterConfigs does: SET and DELETE on any
/// config, APPEND and SUBTRACT on list configs only; the result validated.
pub fn alter_incrementally<'a>(
    current: &TopicConfigs,
    ops: impl IntoIterator<Item = (&'a str, AlterOp, Option<&'a str>)>,
) -> Result<TopicConfigs, ConfigError> {
    let mut configs = current.clone();
    let mut seen = BTreeSet::new();
    for (name, op, value) in ops {
        let kind = kind_of(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
        if !seen.insert(name) {
            return Err(ConfigError::Duplicate(name.to_string()));
        }
        let is_list = matches!(kind, Kind::ListOf(_));
        match op {
            AlterOp::Set => {
                validate(name, value)?;
                configs.insert(name.to_string(), value.unwrap_or_default().to_string());
            }
            AlterOp::Delete => {
                configs.remove(name);
            }
            AlterOp::Append | AlterOp::Subtract if !is_list => {
                return Err(ConfigError::Invalid {
                    name: name.to_string(),
                    value: value.unwrap_or_default().to_string(),
                    reason: format!("{op:?} is only for list configs"),
                });
            }
            AlterOp::Append | AlterOp::Subtract => {
                let given = value.ok_or_else(|| ConfigError::Null(name.to_string()))?;
                match op.apply_to_list(configs.get(name).map(String::as_str), given) {
                    None => {
                        configs.remove(name);
                    }
                    Some(joined) => {
                        validate(name, Some(&joined))?;
                        configs.insert(name.to_string(), joined);
                    }
                }
            }
        }
    }
    Ok(configs)
}

/// The configs of one request's topic as stored, refused as [`validate_all`] refuses them.
pub fn stored<'a>(
    configs: impl IntoIterator<Item = (&'a str, Option<&'a str>)> + Clone,
) -> Result<TopicConfigs, ConfigError> {
    validate_all(configs.clone())?;
    Ok(configs
        .into_iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                value.unwrap_or_default().trim().to_string(),
            )
        })
        .collect())
}

/// The broker's values for every topic (what a topic without configs of its own gets).
// length: one row per topic config Kafka describes, in Kafka's order: a table, read top to bottom.
fn broker_applied(config: &crate::config::Config) -> Vec<Applied> {
    use Source::{Broker, Default};
    use ValueType::{Boolean, Double, Int, List, Long, String};
    let never_if_zero = |n: u64| {
        if n == 0 {
            NEVER
        } else {
            i64::try_from(n).unwrap_or(NEVER)
        }
    };
    let rows = [
        (
            "cleanup.policy",
            match (config.log.compact, config.log.delete) {
                (true, true) => "compact,delete",
                (true, false) => "compact",
                _ => "delete",
            }
            .to_string(),
            if config.log.compact { Broker } else { Default },
            List,
        ),
        ("compression.type", "producer".to_string(), Default, String),
        (
            "delete.retention.ms",
            config.log.delete_retention_ms.to_string(),
            Broker,
            Long,
        ),
        (
            "min.compaction.lag.ms",
            config.log.min_compaction_lag_ms.to_string(),
            Broker,
            Long,
        ),
        (
            "min.cleanable.dirty.ratio",
            (f64::from(config.log.min_cleanable_dirty_ratio_permille) / 1000.0).to_string(),
            Broker,
            Double,
        ),
        (
            "flush.messages",
            never_if_zero(config.log.flush_messages).to_string(),
            Broker,
            Long,
        ),
        (
            "flush.ms",
            never_if_zero(config.flush_interval_ms).to_string(),
            Broker,
            Long,
        ),
        (
            "index.interval.bytes",
            config.log.index_interval_bytes.to_string(),
            Broker,
            Int,
        ),
        (
            "max.message.bytes",
            config.message_max_bytes.to_string(),
            Broker,
            Int,
        ),
        (
            "message.timestamp.type",
            "CreateTime".to_string(),
            Default,
            String,
        ),
        (
            "min.insync.replicas",
            config.replication.min_insync_replicas.to_string(),
            Broker,
            Int,
        ),
        ("preallocate", "false".to_string(), Default, Boolean),
        (
            "retention.bytes",
            config.log.retention_bytes.to_string(),
            Broker,
            Long,
        ),
        (
            "retention.ms",
            config.log.retention_ms.to_string(),
            Broker,
            Long,
        ),
        (
            "segment.bytes",
            config.log.segment_bytes.to_string(),
            Broker,
            Int,
        ),
        (
            "segment.ms",
            config.log.segment_ms.to_string(),
            Broker,
            Long,
        ),
        (
            "unclean.leader.election.enable",
            config
                .replication
                .unclean_leader_election_enable
                .to_string(),
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
    fn append_adds_only_new_items_and_subtract_removes_to_nothing() {
        let append = |cur, given| AlterOp::Append.apply_to_list(cur, given);
        let subtract = |cur, given| AlterOp::Subtract.apply_to_list(cur, given);
        assert_eq!(append(None, "compact"), Some("compact".to_string()));
        assert_eq!(
            append(Some("delete"), "compact, delete,,"),
            Some("delete,compact".to_string())
        );
        assert_eq!(
            subtract(Some("delete, compact"), "delete"),
            Some("compact".to_string())
        );
        assert_eq!(subtract(Some("compact"), "compact"), None);
        assert_eq!(subtract(None, "compact"), None);
    }

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
            assert!(
                matches!(e, ConfigError::Invalid { .. }),
                "{name}={value}: {e}"
            );
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
        for applied in applied(&config, &TopicConfigs::new()) {
            assert_eq!(
                validate(applied.name, Some(&applied.value)),
                Ok(()),
                "{applied:?}"
            );
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

    #[test]
    fn incremental_alters_set_delete_append_and_subtract() {
        let current: TopicConfigs = [("cleanup.policy".to_string(), "delete".to_string())].into();
        let altered = alter_incrementally(
            &current,
            [
                ("retention.ms", AlterOp::Set, Some("1000")),
                ("cleanup.policy", AlterOp::Append, Some("compact")),
            ],
        )
        .expect("valid");
        assert_eq!(
            altered.get("retention.ms").map(String::as_str),
            Some("1000")
        );
        assert_eq!(
            altered.get("cleanup.policy").map(String::as_str),
            Some("delete,compact")
        );
        let altered = alter_incrementally(
            &altered,
            [
                ("retention.ms", AlterOp::Delete, None),
                ("cleanup.policy", AlterOp::Subtract, Some("delete")),
            ],
        )
        .expect("valid");
        assert_eq!(altered.len(), 1);
        assert_eq!(
            altered.get("cleanup.policy").map(String::as_str),
            Some("compact")
        );
        for refused in [
            alter_incrementally(&current, [("retention.ms", AlterOp::Set, Some("soon"))]),
            alter_incrementally(&current, [("retention.ms", AlterOp::Append, Some("1"))]),
            alter_incrementally(&current, [("no.such", AlterOp::Delete, None)]),
        ] {
            assert!(refused.is_err(), "{refused:?}");
        }
    }

    #[test]
    fn a_topics_configs_override_the_brokers_in_its_log_and_its_description() {
        let base = LogConfig::default();
        let topic: TopicConfigs = [
            ("retention.ms".to_string(), "5000".to_string()),
            ("retention.bytes".to_string(), "4096".to_string()),
            ("segment.ms".to_string(), "100".to_string()),
            ("segment.bytes".to_string(), "2048".to_string()),
            ("cleanup.policy".to_string(), "compact".to_string()),
        ]
        .into();
        let log = log_config(base, "t", &topic);
        assert_eq!(
            (log.retention_ms, log.retention_bytes),
            (-1, -1),
            "compact: no retention"
        );
        let mut deleting = topic.clone();
        deleting.insert("cleanup.policy".into(), "compact,delete".into());
        let log = log_config(base, "t", &deleting);
        assert_eq!(
            (
                log.retention_ms,
                log.retention_bytes,
                log.segment_ms,
                log.segment_bytes
            ),
            (5000, 4096, 100, 2048)
        );
        assert_eq!(log.index_interval_bytes, base.index_interval_bytes);
        let internal = log_config(base, "__consumer_offsets", &TopicConfigs::new());
        assert_eq!(internal.retention_ms, -1);
        assert_eq!(
            log_config(base, "t", &TopicConfigs::new()).retention_ms,
            base.retention_ms
        );
        let config = crate::config::Config::resolve(
            crate::config::FileConfig::default(),
            Some(1),
            Some("127.0.0.1:0".into()),
            Some("/nonexistent".into()),
        )
        .expect("the defaults are valid");
        let described = applied(&config, &topic);
        let row = |name: &str| {
            described
                .iter()
                .find(|a| a.name == name)
                .expect(name)
                .clone()
        };
        assert_eq!(
            (
                row("retention.ms").value.as_str(),
                row("retention.ms").source
            ),
            ("5000", Source::DynamicTopic)
        );
        assert_eq!(row("retention.bytes").source, Source::DynamicTopic);
        assert_eq!(row("flush.ms").source, Source::Broker);
        assert_eq!(row("cleanup.policy").value, "compact");
    }
}
