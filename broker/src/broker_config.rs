//! Dynamic broker configs (Kafka's KIP-226): AlterConfigs and IncrementalAlterConfigs of BROKER
//! resources, stored durably — by a single broker in `broker-configs.json` in its data dir, in a
//! cluster by the controller (brokers pull them with their image) — and described by
//! DescribeConfigs with Kafka's sources: DYNAMIC_BROKER_CONFIG (resource `<broker id>`) over
//! DYNAMIC_DEFAULT_BROKER_CONFIG (resource `""`, cluster-wide) over STATIC_BROKER_CONFIG.
//!
//! Validation follows Kafka's `DynamicBrokerConfig.validateConfigs`: a config Kafka knows but
//! cannot update dynamically ("read-only", e.g. `broker.id`, `num.partitions`) is refused, as is a
//! per-broker one (listener and SASL settings) at the cluster-wide level, and a value of the wrong
//! type; a name Kafka does not know is accepted and stored (Kafka allows custom configs there).
//! The broker answers these refusals INVALID_REQUEST, as Kafka does (KAFKA-13609). kaos-broker
//! stores and describes these configs; it does not apply them to its running settings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::limits;
use crate::log::checkpoint;
use crate::topic_config::{check_value, AlterOp, Kind, Source, ValueType};

/// One level's dynamic configs: name → value.
pub type BrokerConfigs = BTreeMap<String, String>;

/// Every level's: `""` (cluster-wide default) or a broker id → its configs.
pub type AllBrokerConfigs = BTreeMap<String, BrokerConfigs>;

/// How Kafka lets a broker config change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Only in the broker's config file.
    ReadOnly,
    /// Dynamically, for one broker only (resource `<id>`).
    PerBroker,
    /// Dynamically, for one broker or as the cluster-wide default.
    ClusterWide,
}

/// The broker configs of Kafka 3.9 this table knows, sorted by name: a kind and how it may change.
const KNOWN: &[(&str, Kind, Mode)] = &[
    ("advertised.listeners", Kind::Text, Mode::PerBroker),
    ("auto.create.topics.enable", Kind::Bool, Mode::ReadOnly),
    ("background.threads", Kind::Int(1), Mode::ClusterWide),
    ("broker.id", Kind::Int(-1), Mode::ReadOnly),
    (
        "compression.type",
        Kind::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        Mode::ClusterWide,
    ),
    ("controller.quorum.voters", Kind::Text, Mode::ReadOnly),
    ("default.replication.factor", Kind::Int(1), Mode::ReadOnly),
    ("listeners", Kind::Text, Mode::PerBroker),
    (
        "log.cleaner.delete.retention.ms",
        Kind::Long(0),
        Mode::ClusterWide,
    ),
    (
        "log.cleaner.min.cleanable.ratio",
        Kind::Ratio,
        Mode::ClusterWide,
    ),
    (
        "log.cleaner.min.compaction.lag.ms",
        Kind::Long(0),
        Mode::ClusterWide,
    ),
    ("log.cleaner.threads", Kind::Int(0), Mode::ClusterWide),
    (
        "log.cleanup.policy",
        Kind::ListOf(&["compact", "delete"]),
        Mode::ClusterWide,
    ),
    ("log.dir", Kind::Text, Mode::ReadOnly),
    ("log.dirs", Kind::Text, Mode::ReadOnly),
    (
        "log.flush.interval.messages",
        Kind::Long(1),
        Mode::ClusterWide,
    ),
    ("log.flush.interval.ms", Kind::Long(0), Mode::ClusterWide),
    (
        "log.retention.bytes",
        Kind::Long(i64::MIN),
        Mode::ClusterWide,
    ),
    ("log.retention.ms", Kind::Long(-1), Mode::ClusterWide),
    ("log.roll.ms", Kind::Long(1), Mode::ClusterWide),
    ("log.segment.bytes", Kind::Int(14), Mode::ClusterWide),
    ("max.connections", Kind::Int(0), Mode::ClusterWide),
    ("message.max.bytes", Kind::Int(0), Mode::ClusterWide),
    ("min.insync.replicas", Kind::Int(1), Mode::ClusterWide),
    ("node.id", Kind::Int(-1), Mode::ReadOnly),
    ("num.io.threads", Kind::Int(1), Mode::ClusterWide),
    ("num.network.threads", Kind::Int(1), Mode::ClusterWide),
    ("num.partitions", Kind::Int(1), Mode::ReadOnly),
    ("num.replica.fetchers", Kind::Int(1), Mode::ClusterWide),
    ("process.roles", Kind::Text, Mode::ReadOnly),
    ("sasl.enabled.mechanisms", Kind::Text, Mode::PerBroker),
    ("sasl.kerberos.kinit.cmd", Kind::Text, Mode::PerBroker),
    (
        "sasl.kerberos.min.time.before.relogin",
        Kind::Long(i64::MIN),
        Mode::PerBroker,
    ),
    ("sasl.kerberos.service.name", Kind::Text, Mode::PerBroker),
    (
        "sasl.kerberos.ticket.renew.jitter",
        Kind::Ratio,
        Mode::PerBroker,
    ),
    (
        "sasl.kerberos.ticket.renew.window.factor",
        Kind::Ratio,
        Mode::PerBroker,
    ),
    (
        "unclean.leader.election.enable",
        Kind::Bool,
        Mode::ClusterWide,
    ),
    ("zookeeper.connect", Kind::Text, Mode::ReadOnly),
];

fn known(name: &str) -> Option<(Kind, Mode)> {
    KNOWN
        .binary_search_by(|(n, _, _)| (*n).cmp(name))
        .ok()
        .map(|i| (KNOWN[i].1, KNOWN[i].2))
}

/// Whether `name` is a broker config the broker lets no request change.
pub fn is_read_only(name: &str) -> bool {
    matches!(known(name), Some((_, Mode::ReadOnly)))
}

/// The type DescribeConfigs v3+ gives `name` (a custom config: STRING).
pub fn value_type(name: &str) -> ValueType {
    known(name).map_or(ValueType::String, |(kind, _)| kind.value_type())
}

/// A broker resource's name checked: `""` (cluster-wide) or a broker id. Returns whether it
/// names one broker.
pub fn resource_level(name: &str) -> Result<bool, String> {
    if name.is_empty() {
        return Ok(false);
    }
    name.parse::<i32>()
        .map(|_| true)
        .map_err(|_| format!("Invalid broker name {name}: not a broker id nor empty"))
}

/// Checks one config set at a level (`per_broker`: resource `<id>`), in Kafka's words.
fn validate(name: &str, value: Option<&str>, per_broker: bool) -> Result<(), String> {
    if name.is_empty() || name.len() > limits::BROKER_CONFIG_NAME_BYTES_MAX {
        return Err(format!(
            "Invalid config name of {} bytes (1..={})",
            name.len(),
            limits::BROKER_CONFIG_NAME_BYTES_MAX
        ));
    }
    let value = value.ok_or_else(|| format!("Null value not supported for : {name}"))?;
    if value.len() > limits::BROKER_CONFIG_VALUE_BYTES_MAX {
        return Err(format!(
            "Value of {name} is {} bytes, more than {}",
            value.len(),
            limits::BROKER_CONFIG_VALUE_BYTES_MAX
        ));
    }
    let Some((kind, mode)) = known(name) else {
        return Ok(());
    };
    match mode {
        Mode::ReadOnly => {
            return Err(format!(
                "Cannot update these configs dynamically: Set({name})"
            ))
        }
        Mode::PerBroker if !per_broker => {
            return Err(format!(
                "Cannot update these configs at default cluster level, broker id must be specified: Set({name})"
            ))
        }
        _ => {}
    }
    check_value(kind, value.trim())
        .map_err(|reason| format!("Invalid value {value} for configuration {name}: {reason}"))
}

/// The configs AlterConfigs sets at a level: exactly `pairs` (the others return to the broker's
/// static settings), each validated.
pub fn replaced<'a>(
    pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    per_broker: bool,
) -> Result<BrokerConfigs, String> {
    let mut configs = BrokerConfigs::new();
    for (name, value) in pairs {
        validate(name, value, per_broker)?;
        if configs
            .insert(
                name.to_string(),
                value.unwrap_or_default().trim().to_string(),
            )
            .is_some()
        {
            return Err(format!("Duplicate config name: {name}"));
        }
    }
    bounded(configs)
}

/// `current` changed by IncrementalAlterConfigs' `ops` in order (APPEND and SUBTRACT only on
/// list configs, as Kafka), the result validated.
pub fn altered<'a>(
    current: &BrokerConfigs,
    ops: impl IntoIterator<Item = (&'a str, AlterOp, Option<&'a str>)>,
    per_broker: bool,
) -> Result<BrokerConfigs, String> {
    let mut configs = current.clone();
    let mut seen = BTreeSet::new();
    for (name, op, value) in ops {
        if !seen.insert(name) {
            return Err(format!("Duplicate config name: {name}"));
        }
        match op {
            AlterOp::Set => {
                validate(name, value, per_broker)?;
                configs.insert(
                    name.to_string(),
                    value.unwrap_or_default().trim().to_string(),
                );
            }
            AlterOp::Delete => {
                if is_read_only(name) {
                    return Err(format!(
                        "Cannot update these configs dynamically: Set({name})"
                    ));
                }
                configs.remove(name);
            }
            AlterOp::Append | AlterOp::Subtract => {
                if !matches!(known(name), Some((Kind::ListOf(_), _))) {
                    return Err(format!(
                        "Config {name} is not a list: {op:?} is only for list configs"
                    ));
                }
                let given =
                    value.ok_or_else(|| format!("Null value not supported for : {name}"))?;
                match op.apply_to_list(configs.get(name).map(String::as_str), given) {
                    None => {
                        configs.remove(name);
                    }
                    Some(joined) => {
                        validate(name, Some(&joined), per_broker)?;
                        configs.insert(name.to_string(), joined);
                    }
                }
            }
        }
    }
    bounded(configs)
}

fn bounded(configs: BrokerConfigs) -> Result<BrokerConfigs, String> {
    if configs.len() > limits::BROKER_CONFIGS_PER_LEVEL_MAX {
        return Err(format!(
            "{} configs at one level, more than {}",
            configs.len(),
            limits::BROKER_CONFIGS_PER_LEVEL_MAX
        ));
    }
    Ok(configs)
}

/// One row of a broker's DescribeConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub name: String,
    pub value: String,
    pub source: Source,
    pub value_type: ValueType,
    pub read_only: bool,
}

/// What DescribeConfigs of BROKER resource `<id>` shows: the broker's static settings
/// (`static_rows`: name, type, value) with the cluster-wide dynamic defaults over them and this
/// broker's own dynamic configs over those; or, for resource `""` (`per_broker` false), the
/// cluster-wide dynamic defaults alone (as Kafka).
pub fn describe(
    static_rows: Vec<(&'static str, ValueType, String)>,
    all: &AllBrokerConfigs,
    node_id: i32,
    per_broker: bool,
) -> Vec<Described> {
    let mut rows: BTreeMap<String, Described> = BTreeMap::new();
    let defaults = all.get("");
    if per_broker {
        for (name, value_type, value) in static_rows {
            rows.insert(
                name.to_string(),
                Described {
                    name: name.to_string(),
                    value,
                    source: Source::Broker,
                    value_type,
                    read_only: is_read_only(name),
                },
            );
        }
    }
    let mut layer = |configs: Option<&BrokerConfigs>, source: Source| {
        for (name, value) in configs.into_iter().flatten() {
            rows.insert(
                name.clone(),
                Described {
                    name: name.clone(),
                    value: value.clone(),
                    source,
                    value_type: value_type(name),
                    read_only: false,
                },
            );
        }
    };
    layer(defaults, Source::DynamicDefaultBroker);
    if per_broker {
        layer(all.get(&node_id.to_string()), Source::DynamicBroker);
    }
    rows.into_values().collect()
}

/// Where the dynamic broker configs are kept.
pub trait BrokerConfigStore {
    /// Every level's configs.
    fn broker_configs(&self) -> AllBrokerConfigs;
    /// Replaces level `level`'s (`""` or a broker id) durably; an empty set removes the level.
    fn store_broker_configs(&self, level: &str, configs: BrokerConfigs) -> Result<(), String>;
}

/// Why the file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct BrokerConfigsFileError {
    pub path: PathBuf,
    pub message: String,
}

/// The file in a single broker's data dir.
pub const BROKER_CONFIGS_FILE_NAME: &str = "broker-configs.json";

/// A single broker's dynamic configs: `broker-configs.json`, rewritten atomically at each change.
#[derive(Debug)]
pub struct BrokerConfigsFile {
    data_dir: PathBuf,
    all: Mutex<AllBrokerConfigs>,
}

impl BrokerConfigsFile {
    /// Reads the file (none: no dynamic configs); every level in it must be valid.
    pub fn open(data_dir: &Path) -> Result<BrokerConfigsFile, BrokerConfigsFileError> {
        let path = data_dir.join(BROKER_CONFIGS_FILE_NAME);
        let bad = |message: String| BrokerConfigsFileError {
            path: path.clone(),
            message,
        };
        let all: AllBrokerConfigs = checkpoint::read_json(&path, "broker configs")
            .map_err(&bad)?
            .unwrap_or_default();
        for (level, configs) in &all {
            let per_broker = resource_level(level).map_err(&bad)?;
            let pairs = configs.iter().map(|(n, v)| (n.as_str(), Some(v.as_str())));
            replaced(pairs, per_broker).map_err(|e| bad(format!("level {level:?}: {e}")))?;
        }
        Ok(BrokerConfigsFile {
            data_dir: data_dir.to_path_buf(),
            all: Mutex::new(all),
        })
    }
}

impl BrokerConfigStore for BrokerConfigsFile {
    fn broker_configs(&self) -> AllBrokerConfigs {
        self.all.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn store_broker_configs(&self, level: &str, configs: BrokerConfigs) -> Result<(), String> {
        let mut all = self.all.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = all.clone();
        if configs.is_empty() {
            next.remove(level);
        } else {
            next.insert(level.to_string(), configs);
        }
        if next == *all {
            return Ok(());
        }
        let text = serde_json::to_vec_pretty(&next).map_err(|e| e.to_string())?;
        crate::log::write_file_atomically(&self.data_dir, BROKER_CONFIGS_FILE_NAME, &text)
            .map_err(|e| format!("cannot store the broker configs: {e}"))?;
        tracing::info!(level, configs = ?next.get(level), "dynamic broker configs changed");
        *all = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted() {
        assert!(KNOWN.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn levels_and_modes_are_checked_as_kafka_does() {
        let set = |name: &'static str, value: &'static str, per_broker| {
            replaced([(name, Some(value))], per_broker)
        };
        assert!(set("sasl.kerberos.min.time.before.relogin", "58000", true).is_ok());
        let cluster = set("sasl.kerberos.min.time.before.relogin", "58000", false);
        assert!(matches!(cluster, Err(e) if e.contains("broker id must be specified")));
        assert!(set("background.threads", "9", false).is_ok());
        assert!(matches!(set("num.partitions", "3", true),
            Err(e) if e.contains("Cannot update these configs dynamically")));
        assert!(
            matches!(set("background.threads", "zero", true), Err(e) if e.contains("Not a number"))
        );
        assert!(set("background.threads", "0", true).is_err());
        assert!(set("my.custom.setting", "anything", false).is_ok());
        assert!(replaced([("background.threads", None)], true).is_err());
        assert_eq!(resource_level(""), Ok(false));
        assert_eq!(resource_level("3"), Ok(true));
        assert!(resource_level("b3").is_err());
    }

    #[test]
    fn incremental_ops_append_and_subtract_lists_only() {
        let ops = [
            ("background.threads", AlterOp::Set, Some("9")),
            ("log.cleanup.policy", AlterOp::Append, Some("compact")),
        ];
        let after = altered(&BrokerConfigs::new(), ops, true).expect("valid");
        assert_eq!(
            after.get("log.cleanup.policy").map(String::as_str),
            Some("compact")
        );
        let ops = [
            ("background.threads", AlterOp::Delete, Some("")),
            ("log.cleanup.policy", AlterOp::Subtract, Some("compact")),
        ];
        assert!(altered(&after, ops, true).expect("valid").is_empty());
        let not_list = [("background.threads", AlterOp::Append, Some("1"))];
        assert!(altered(&after, not_list, true).is_err());
    }

    #[test]
    fn description_layers_dynamic_over_static() {
        let mut all = AllBrokerConfigs::new();
        all.insert(
            "".into(),
            [("background.threads".to_string(), "7".to_string())].into(),
        );
        all.insert(
            "1".into(),
            [("background.threads".to_string(), "9".to_string())].into(),
        );
        let statics = vec![("num.partitions", ValueType::Int, "3".to_string())];
        let own = describe(statics.clone(), &all, 1, true);
        let threads = own
            .iter()
            .find(|d| d.name == "background.threads")
            .expect("row");
        assert_eq!(
            (threads.value.as_str(), threads.source),
            ("9", Source::DynamicBroker)
        );
        let partitions = own
            .iter()
            .find(|d| d.name == "num.partitions")
            .expect("row");
        assert!(partitions.read_only);
        let defaults = describe(statics, &all, 1, false);
        assert_eq!(defaults.len(), 1);
        assert_eq!(defaults[0].source, Source::DynamicDefaultBroker);
    }
}
