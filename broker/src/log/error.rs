//! The log's errors, and the Kafka error code each one answers.

use std::io;
use std::path::PathBuf;

use kafka_protocol::error::ResponseError;

/// Errors of the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// The log contradicts itself while serving: the broker must stop rather than serve it.
    #[error("log inconsistent: {0}")]
    Inconsistent(String),
    #[error("offset {offset} is outside the log [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("log is closed")]
    Closed,
    /// A replicated batch does not start at the LEO (network input: the follower refetches).
    #[error("replicated batch at offset {got} does not follow the log end offset {expected}")]
    NonContiguous { expected: i64, got: i64 },
    #[error("log failed earlier and accepts no more writes")]
    Failed,
}

/// The Kafka error code for a log error. An inconsistent log stops the broker (it must not serve
/// a wrong offset).
pub fn log_error_code(error: &LogError, context: &str) -> i16 {
    match error {
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
        LogError::Closed => ResponseError::NotLeaderOrFollower.code(),
        LogError::NonContiguous { .. } => ResponseError::CorruptMessage.code(),
        LogError::Io { .. } | LogError::Failed => {
            tracing::error!(error = %error, context, "storage error");
            ResponseError::KafkaStorageError.code()
        }
        LogError::Inconsistent(message) => {
            crate::invariant::fatal(&format!("{context}: {message}"))
        }
    }
}
