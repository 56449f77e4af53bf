//! Offset checkpoint files in Kafka's text format, written atomically (tmp + fsync + rename):
//!
//! ```text
//! 0                 <- version
//! 2                 <- entry count
//! topic-a 0 1234    <- topic partition offset
//! topic-a 1 99
//! ```

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::limits;

/// Name of the recovery-point checkpoint in the data dir.
pub const RECOVERY_POINT_FILE_NAME: &str = "recovery-point-offset-checkpoint";
/// Name of the log-start-offset checkpoint in the data dir (Kafka's).
pub const LOG_START_OFFSET_FILE_NAME: &str = "log-start-offset-checkpoint";

/// Checkpoint errors.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("checkpoint {path} is malformed at line {line}: {message}")]
    Malformed {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Entries keyed by (topic, partition).
pub type Offsets = BTreeMap<(String, i32), i64>;

/// Reads a checkpoint; a missing file is an empty map.
pub fn read(path: &Path) -> Result<Offsets, CheckpointError> {
    let text = match read_bounded(path) {
        Ok(None) => return Ok(Offsets::new()),
        Ok(Some(text)) => text,
        Err(Unreadable::Io(source)) => {
            return Err(CheckpointError::Io {
                path: path.to_owned(),
                source,
            })
        }
        Err(bad) => return Err(malformed(path, 0, bad.to_string())),
    };
    parse(&text).map_err(|(line, message)| malformed(path, line, message))
}

/// Reads a JSON state file of at most `CHECKPOINT_FILE_BYTES_MAX` bytes (the broker's ACL, SCRAM,
/// dynamic-config and topic-config files): `Ok(None)` when there is none; otherwise the parsed
/// value, or an error message saying what is wrong (`what` names what the file should hold).
pub fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
) -> Result<Option<T>, String> {
    let Some(text) = read_bounded(path).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("not {what}: {e}"))
}

/// Why a state file could not be read as text.
#[derive(Debug, thiserror::Error)]
enum Unreadable {
    #[error("{0}")]
    Io(io::Error),
    #[error("larger than {} bytes", limits::CHECKPOINT_FILE_BYTES_MAX)]
    TooLarge,
    #[error("not UTF-8")]
    NotUtf8,
}

/// A state file's text, at most `CHECKPOINT_FILE_BYTES_MAX` bytes of it read (so a file that grows
/// meanwhile is still bounded); `None` when there is no file.
fn read_bounded(path: &Path) -> Result<Option<String>, Unreadable> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Unreadable::Io(e)),
    };
    let mut text = String::new();
    match file
        .take(limits::CHECKPOINT_FILE_BYTES_MAX + 1)
        .read_to_string(&mut text)
    {
        Ok(n) if n as u64 > limits::CHECKPOINT_FILE_BYTES_MAX => Err(Unreadable::TooLarge),
        Ok(_) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(Unreadable::NotUtf8),
        Err(e) => Err(Unreadable::Io(e)),
    }
}

fn malformed(path: &Path, line: usize, message: String) -> CheckpointError {
    CheckpointError::Malformed {
        path: path.to_owned(),
        line,
        message,
    }
}

/// Parses checkpoint text; errors carry (1-based line, message).
pub fn parse(text: &str) -> Result<Offsets, (usize, String)> {
    let mut lines = text.lines();
    let version = lines.next().ok_or((1, "empty file".to_string()))?;
    if version.trim() != "0" {
        return Err((1, format!("unsupported version {version:?}")));
    }
    let count_text = lines.next().ok_or((2, "missing entry count".to_string()))?;
    let count: usize = count_text
        .trim()
        .parse()
        .map_err(|_| (2, format!("bad entry count {count_text:?}")))?;
    let mut offsets = Offsets::new();
    for (i, line) in lines.enumerate() {
        let line_number = i + 3;
        let mut fields = line.split(' ');
        let (Some(topic), Some(partition), Some(offset), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err((
                line_number,
                format!("expected `topic partition offset`, got {line:?}"),
            ));
        };
        let partition: i32 = partition
            .parse()
            .map_err(|_| (line_number, format!("bad partition {partition:?}")))?;
        let offset: i64 = offset
            .parse()
            .map_err(|_| (line_number, format!("bad offset {offset:?}")))?;
        if topic.is_empty() || partition < 0 || offset < 0 {
            return Err((line_number, format!("invalid entry {line:?}")));
        }
        offsets.insert((topic.to_string(), partition), offset);
    }
    if offsets.len() != count {
        return Err((
            2,
            format!("count says {count} entries, file has {}", offsets.len()),
        ));
    }
    Ok(offsets)
}

/// Writes a checkpoint atomically: a temporary file, fsync, rename over the old one, fsync the dir.
pub fn write(path: &Path, offsets: &Offsets) -> Result<(), CheckpointError> {
    let tmp_path = path.with_extension("tmp");
    let io_err = |p: &Path, source| CheckpointError::Io {
        path: p.to_owned(),
        source,
    };
    let mut text = format!("0\n{}\n", offsets.len());
    for ((topic, partition), offset) in offsets {
        text.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp_path)
        .map_err(|e| io_err(&tmp_path, e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| io_err(&tmp_path, e))?;
    file.sync_all().map_err(|e| io_err(&tmp_path, e))?;
    drop(file);
    std::fs::rename(&tmp_path, path).map_err(|e| io_err(path, e))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err(dir, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_malformed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(RECOVERY_POINT_FILE_NAME);
        assert!(read(&path).expect("missing is empty").is_empty());
        let mut offsets = Offsets::new();
        offsets.insert(("a".into(), 0), 10);
        offsets.insert(("b.c-d".into(), 3), 0);
        write(&path, &offsets).expect("write");
        assert_eq!(read(&path).expect("read"), offsets);
        assert_eq!(
            std::fs::read_to_string(&path).expect("text"),
            "0\n2\na 0 10\nb.c-d 3 0\n"
        );
        for bad in [
            "",
            "1\n0\n",
            "0\nx\n",
            "0\n1\n",
            "0\n1\na 0\n",
            "0\n1\na -1 5\n",
            "0\n1\na 0 5 6\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        std::fs::write(&path, [0xff, 0xfe, 0x00]).expect("write garbage");
        assert!(matches!(
            read(&path),
            Err(CheckpointError::Malformed { .. })
        ));
    }

    #[test]
    fn a_json_state_file_is_read_whole_or_refused_with_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        let read = |p: &Path| read_json::<BTreeMap<String, u32>>(p, "counts");
        assert_eq!(read(&path), Ok(None), "no file: nothing stored");
        std::fs::write(&path, r#"{"a": 1}"#).expect("write");
        assert_eq!(
            read(&path),
            Ok(Some(BTreeMap::from([("a".to_string(), 1)])))
        );
        std::fs::write(&path, r#"{"a": "#).expect("write");
        let error = read(&path).expect_err("truncated JSON");
        assert!(error.starts_with("not counts: "), "{error}");
        std::fs::write(&path, [0xff, 0xfe]).expect("write");
        assert_eq!(read(&path), Err("not UTF-8".to_string()));
        let big = std::fs::File::create(&path).expect("create");
        big.set_len(limits::CHECKPOINT_FILE_BYTES_MAX + 1)
            .expect("a sparse file one byte too large");
        let error = read(&path).expect_err("too large");
        assert!(error.starts_with("larger than "), "{error}");
    }
}
