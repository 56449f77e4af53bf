//! Broker configuration: a TOML file with Kafka-like dotted keys, overridden by the command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::limits;

/// Errors loading or validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is larger than {max} bytes")]
    TooLarge { path: PathBuf, max: u64 },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("`{key}` is required (on the command line or in the config file)")]
    Missing { key: &'static str },
}

/// The settings of the config file. Every key is optional; unknown keys are an error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    #[serde(rename = "node.id")]
    pub node_id: Option<i32>,
    /// Address to listen on, `host:port`.
    #[serde(rename = "listeners")]
    pub listen: Option<String>,
    #[serde(rename = "log.dir")]
    pub data_dir: Option<PathBuf>,
    #[serde(rename = "num.partitions")]
    pub num_partitions: i32,
    #[serde(rename = "auto.create.topics.enable")]
    pub auto_create_topics_enable: bool,
    #[serde(rename = "segment.bytes")]
    pub segment_bytes: u64,
    #[serde(rename = "index.interval.bytes")]
    pub index_interval_bytes: u32,
    #[serde(rename = "flush.messages")]
    pub flush_messages: u64,
    #[serde(rename = "flush.ms")]
    pub flush_interval_ms: u64,
    #[serde(rename = "message.max.bytes")]
    pub message_max_bytes: u32,
    #[serde(rename = "advertised.listener")]
    pub advertised_listener: Option<String>,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            node_id: None,
            listen: None,
            data_dir: None,
            num_partitions: 1,
            auto_create_topics_enable: true,
            segment_bytes: 1024 * 1024 * 1024,
            index_interval_bytes: 4096,
            flush_messages: 0,
            flush_interval_ms: 0,
            message_max_bytes: 1_048_588,
            advertised_listener: None,
        }
    }
}

impl FileConfig {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let metadata = std::fs::metadata(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        if metadata.len() > limits::CONFIG_FILE_BYTES_MAX {
            return Err(ConfigError::TooLarge {
                path: path.to_owned(),
                max: limits::CONFIG_FILE_BYTES_MAX,
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses config text; the error message names unknown keys.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| e.message().to_string())
    }
}

/// Log settings every partition uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub index_interval_bytes: u32,
    /// fsync after this many messages since the last flush; 0 = never by count.
    pub flush_messages: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        let file = FileConfig::default();
        LogConfig {
            segment_bytes: file.segment_bytes,
            index_interval_bytes: file.index_interval_bytes,
            flush_messages: file.flush_messages,
        }
    }
}

/// The validated configuration the broker runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub node_id: i32,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `advertised.listener` as (host, port); `None` advertises the bound listen address.
    pub advertised_listener: Option<(String, i32)>,
    pub num_partitions: i32,
    pub auto_create_topics_enable: bool,
    pub log: LogConfig,
    /// fsync every this many ms; 0 = never by interval.
    pub flush_interval_ms: u64,
    pub message_max_bytes: u32,
}

impl Config {
    /// Merges the command line (which wins) with the file and validates everything.
    pub fn resolve(
        file: FileConfig,
        node_id: Option<i32>,
        listen: Option<String>,
        data_dir: Option<PathBuf>,
    ) -> Result<Config, ConfigError> {
        let node_id = node_id
            .or(file.node_id)
            .ok_or(ConfigError::Missing { key: "node.id" })?;
        if node_id < 0 {
            return Err(ConfigError::Invalid {
                key: "node.id",
                message: format!("{node_id} is negative"),
            });
        }
        let listen_text = listen
            .or(file.listen)
            .ok_or(ConfigError::Missing { key: "listeners" })?;
        let listen: SocketAddr = listen_text.parse().map_err(|e| ConfigError::Invalid {
            key: "listeners",
            message: format!("{listen_text:?} is not an ip:port address ({e})"),
        })?;
        let data_dir = data_dir
            .or(file.data_dir)
            .ok_or(ConfigError::Missing { key: "log.dir" })?;
        let advertised_listener = match file.advertised_listener {
            None => None,
            Some(text) => Some(split_host_port(&text).ok_or_else(|| ConfigError::Invalid {
                key: "advertised.listener",
                message: format!("{text:?} is not host:port"),
            })?),
        };
        if !(1..=limits::PARTITIONS_PER_TOPIC_MAX).contains(&file.num_partitions) {
            return Err(ConfigError::Invalid {
                key: "num.partitions",
                message: format!(
                    "{} is not in 1..={}",
                    file.num_partitions,
                    limits::PARTITIONS_PER_TOPIC_MAX
                ),
            });
        }
        if !(limits::SEGMENT_BYTES_MIN..=limits::SEGMENT_BYTES_MAX).contains(&file.segment_bytes) {
            return Err(ConfigError::Invalid {
                key: "segment.bytes",
                message: format!(
                    "{} is not in {}..={}",
                    file.segment_bytes,
                    limits::SEGMENT_BYTES_MIN,
                    limits::SEGMENT_BYTES_MAX
                ),
            });
        }
        if file.message_max_bytes < 61 || file.message_max_bytes > limits::MESSAGE_BYTES_MAX {
            return Err(ConfigError::Invalid {
                key: "message.max.bytes",
                message: format!(
                    "{} is not in 61..={}",
                    file.message_max_bytes,
                    limits::MESSAGE_BYTES_MAX
                ),
            });
        }
        Ok(Config {
            node_id,
            listen,
            data_dir,
            advertised_listener,
            num_partitions: file.num_partitions,
            auto_create_topics_enable: file.auto_create_topics_enable,
            log: LogConfig {
                segment_bytes: file.segment_bytes,
                index_interval_bytes: file.index_interval_bytes,
                flush_messages: file.flush_messages,
            },
            flush_interval_ms: file.flush_interval_ms,
            message_max_bytes: file.message_max_bytes,
        })
    }
}

/// Splits `host:port` (host may be `[v6]`).
fn split_host_port(text: &str) -> Option<(String, i32)> {
    let (host, port) = text.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), i32::from(port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_keys_parse() {
        let file = FileConfig::parse(
            "\"num.partitions\" = 3\n\"flush.messages\" = 1\n\"advertised.listener\" = \"localhost:9000\"\n",
        )
        .expect("valid config");
        assert_eq!(file.num_partitions, 3);
        assert_eq!(file.flush_messages, 1);
        let config = Config::resolve(
            file,
            Some(1),
            Some("127.0.0.1:9092".into()),
            Some("/tmp/x".into()),
        )
        .expect("resolves");
        assert_eq!(
            config.advertised_listener,
            Some(("localhost".to_string(), 9000))
        );
        assert_eq!(config.log.segment_bytes, 1024 * 1024 * 1024);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = FileConfig::parse("\"segment.byte\" = 5\n").expect_err("unknown key");
        assert!(err.contains("segment.byte"), "{err}");
    }

    #[test]
    fn bad_values_are_rejected() {
        let file = FileConfig::parse("\"segment.bytes\" = 10\n").expect("parses");
        let err = Config::resolve(
            file,
            Some(1),
            Some("127.0.0.1:1".into()),
            Some("/tmp".into()),
        )
        .expect_err("too small");
        assert!(err.to_string().contains("segment.bytes"));
    }
}
