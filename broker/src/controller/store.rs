//! The controller's durable state: `controller-state.json` in its data dir, rewritten atomically
//! (write a tmp file, fsync, rename over the old one, fsync the dir) on every change, so that a
//! SIGKILL at any instant leaves either the old or the new state.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::limits;

pub const STATE_FILE_NAME: &str = "controller-state.json";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {max} bytes")]
    TooLarge { path: PathBuf, max: u64 },
    #[error("{path} is not a valid controller state: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Reads the state (the controller's `DurableState`); `None` when the file does not exist yet.
pub fn read<State: DeserializeOwned>(dir: &Path) -> Result<Option<State>, StoreError> {
    let path = dir.join(STATE_FILE_NAME);
    let io_err = |source| StoreError::Io {
        path: path.clone(),
        source,
    };
    let metadata = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    if metadata.len() > limits::CONTROLLER_STATE_FILE_BYTES_MAX {
        return Err(StoreError::TooLarge {
            path,
            max: limits::CONTROLLER_STATE_FILE_BYTES_MAX,
        });
    }
    let text = std::fs::read_to_string(&path).map_err(io_err)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| StoreError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })
}

/// Replaces the state file atomically.
pub fn write<State: Serialize>(dir: &Path, state: &State) -> Result<(), StoreError> {
    let path = dir.join(STATE_FILE_NAME);
    let text = serde_json::to_vec_pretty(state).map_err(|e| StoreError::Invalid {
        path: path.clone(),
        message: e.to_string(),
    })?;
    crate::log::write_file_atomically(dir, STATE_FILE_NAME, &text).map_err(|e| match e {
        crate::log::LogError::Io { path, source } => StoreError::Io { path, source },
        other => StoreError::Io {
            path,
            source: std::io::Error::other(other.to_string()),
        },
    })
}
