use std::path::PathBuf;

/// What can go wrong storing or reading a run.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("scenario name {name:?} cannot name a run directory: {reason}")]
    InvalidScenarioName { name: String, reason: String },
    #[error("{path} is not a run directory")]
    NotARunDir { path: PathBuf },
    #[error("{dir} and its numbered variants all exist; clean up the store")]
    RunDirTaken { dir: PathBuf },
    #[error("{path} is not a valid results.json")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot encode {what} as JSON")]
    Json {
        what: &'static str,
        source: serde_json::Error,
    },
}

impl ResultsError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        ResultsError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
