//! Per-topic configs on a single node (the broker is its own controller): `topic-configs.json`
//! in the data dir, `{topic: {name: value}}` for every topic with configs of its own, rewritten
//! atomically at each change and read at start (storage only: `state` applies them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::log::checkpoint;
use crate::log::LogError;
use crate::topic_config::{self, TopicConfigs};

/// Why the file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigsFileError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("{path}: {message}")]
    Bad { path: PathBuf, message: String },
}

/// The file in the data dir.
pub const TOPIC_CONFIGS_FILE_NAME: &str = "topic-configs.json";

/// The stored configs of every topic; none when the file does not exist.
pub(super) fn read(data_dir: &Path) -> Result<BTreeMap<String, TopicConfigs>, ConfigsFileError> {
    let path = data_dir.join(TOPIC_CONFIGS_FILE_NAME);
    let bad = |message: String| ConfigsFileError::Bad {
        path: path.clone(),
        message,
    };
    let all: BTreeMap<String, TopicConfigs> = checkpoint::read_json(&path, "topic configs")
        .map_err(&bad)?
        .unwrap_or_default();
    for (topic, configs) in &all {
        let pairs = configs.iter().map(|(n, v)| (n.as_str(), Some(v.as_str())));
        topic_config::validate_all(pairs).map_err(|e| bad(format!("topic {topic}: {e}")))?;
    }
    Ok(all)
}

/// Rewrites the file with `topics`' configs (those without any left out).
pub(super) fn persist<'a>(
    data_dir: &Path,
    topics: impl IntoIterator<Item = (&'a str, &'a TopicConfigs)>,
) -> Result<(), ConfigsFileError> {
    let all: BTreeMap<&str, &TopicConfigs> =
        topics.into_iter().filter(|(_, c)| !c.is_empty()).collect();
    let text = serde_json::to_vec_pretty(&all).map_err(|e| ConfigsFileError::Bad {
        path: data_dir.join(TOPIC_CONFIGS_FILE_NAME),
        message: e.to_string(),
    })?;
    crate::log::write_file_atomically(data_dir, TOPIC_CONFIGS_FILE_NAME, &text)?;
    Ok(())
}
