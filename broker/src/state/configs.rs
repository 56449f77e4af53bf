//! Per-topic configs on a single node (the broker is its own controller): `topic-configs.json`
//! in the data dir, `{topic: {name: value}}` for every topic with configs of its own, rewritten
//! atomically at each change and read at start; a change is applied to every partition's log
//! once it is durable.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::limits;
use crate::state::{Broker, StateError, Topic};
use crate::topic_config::{self, TopicConfigs};

/// The file in the data dir.
pub const TOPIC_CONFIGS_FILE_NAME: &str = "topic-configs.json";

/// Why a topic's configs could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum AlterConfigsError {
    #[error("Topic '{0}' does not exist")]
    Unknown(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// The stored configs of every topic; none when the file does not exist.
pub(super) fn read(data_dir: &Path) -> Result<BTreeMap<String, TopicConfigs>, StateError> {
    let path = data_dir.join(TOPIC_CONFIGS_FILE_NAME);
    let bad = |message: String| StateError::BadMetadata {
        path: path.clone(),
        message,
    };
    let metadata = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(super::io_err(&path, e)),
    };
    if metadata.len() > limits::CHECKPOINT_FILE_BYTES_MAX {
        return Err(bad(format!(
            "larger than {} bytes",
            limits::CHECKPOINT_FILE_BYTES_MAX
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| super::io_err(&path, e))?;
    let all: BTreeMap<String, TopicConfigs> =
        serde_json::from_str(&text).map_err(|e| bad(format!("not topic configs: {e}")))?;
    for (topic, configs) in &all {
        let pairs = configs.iter().map(|(n, v)| (n.as_str(), Some(v.as_str())));
        topic_config::validate_all(pairs)
            .map_err(|e| bad(format!("topic {topic}: {e}")))?;
    }
    Ok(all)
}

/// Rewrites the file from `topics`, with `extra` (a topic being created) added.
pub(super) fn persist(
    data_dir: &Path,
    topics: &BTreeMap<String, Arc<Topic>>,
    extra: Option<(&str, &TopicConfigs)>,
) -> Result<(), StateError> {
    let mut all: BTreeMap<&str, &TopicConfigs> = topics
        .iter()
        .filter(|(_, t)| !t.configs.is_empty())
        .map(|(name, t)| (name.as_str(), &t.configs))
        .collect();
    if let Some((name, configs)) = extra {
        all.insert(name, configs);
        all.retain(|_, configs| !configs.is_empty());
    }
    let text = serde_json::to_vec_pretty(&all).map_err(|e| StateError::BadMetadata {
        path: data_dir.join(TOPIC_CONFIGS_FILE_NAME),
        message: e.to_string(),
    })?;
    crate::log::write_file_atomically(data_dir, TOPIC_CONFIGS_FILE_NAME, &text)?;
    Ok(())
}

impl Broker {
    /// Replaces topic `name`'s configs (validated by the caller): stored durably, then applied to
    /// every partition's log.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: TopicConfigs,
    ) -> Result<(), AlterConfigsError> {
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        let topic = topics
            .get(name)
            .ok_or_else(|| AlterConfigsError::Unknown(name.to_string()))?;
        if topic.configs == configs {
            return Ok(());
        }
        if !self.in_cluster() {
            persist(&self.config.data_dir, &topics, Some((name, &configs)))?;
        }
        let changed = Arc::new(Topic {
            name: topic.name.clone(),
            id: topic.id,
            partitions: topic.partitions.clone(),
            configs,
        });
        let log_config = topic_config::log_config(self.config.log, name, &changed.configs);
        for partition in changed.partitions.values() {
            partition.set_log_config(log_config);
        }
        tracing::info!(topic = %name, configs = ?changed.configs, "topic configs changed");
        topics.insert(name.to_string(), changed);
        Ok(())
    }

    /// In a cluster: applies the controller's configs of topic `name` to its local replicas
    /// (nothing when this broker has none of them, or they did not change).
    pub fn apply_topic_configs(&self, name: &str, configs: &TopicConfigs) {
        let changed = self.topic(name).is_some_and(|t| &t.configs != configs);
        if changed {
            if let Err(e) = self.set_topic_configs(name, configs.clone()) {
                tracing::warn!(topic = name, error = %e, "cannot apply the topic's configs");
            }
        }
    }

    /// One retention pass over every partition at wall-clock time `now_ms` (the
    /// `log.retention.check.interval.ms` task); returns the segments deleted.
    pub fn delete_retained(&self, now_ms: i64) -> usize {
        let mut segments = 0;
        for partition in self.partitions() {
            match partition.delete_retained(now_ms) {
                Ok(deleted) => segments += deleted.iter().map(|d| d.segments).sum::<usize>(),
                Err(e) => {
                    tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "retention failed")
                }
            }
        }
        segments
    }
}
