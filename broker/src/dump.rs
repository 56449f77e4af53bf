//! `kaos-broker dump --data-dir DIR`: every record of every partition replica in a data dir, as
//! JSON lines on stdout, then one summary line per partition (log start and end offsets, the HW
//! from the node's HW checkpoint, the leader-epoch cache). Strictly read-only, so it works on a
//! stopped (or crashed) node; a corrupt batch is reported with `crc_ok: false`, a torn tail or an
//! unreadable header stops that partition with a message on stderr. Never panics on bad data.
//!
//! ```text
//! {"topic":"t","partition":0,"offset":5,"leader_epoch":2,"id":17,"crc_ok":true}
//! {"topic":"t","partition":0,"summary":true,"log_start_offset":0,"log_end_offset":6,"high_watermark":6,"leader_epochs":[[0,0],[2,4]]}
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::json;

use crate::limits;
use crate::log::checkpoint;
use crate::log::epoch::{self, LEADER_EPOCH_FILE_NAME};
use crate::log::segment;
use crate::state::{validate_topic_name, HIGH_WATERMARK_FILE_NAME};
use crate::wire::batch;

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the output: {0}")]
    Output(#[source] std::io::Error),
}

/// The kaos message id in a record value (`kaos:<id>:...`), if it carries one.
pub fn message_id(value: &[u8]) -> Option<u64> {
    let rest = value.strip_prefix(b"kaos:")?;
    let end = rest.iter().position(|&b| b == b':')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// Dumps every partition in `data_dir` to `out`; problems found go to `problems` as text.
pub fn dump(
    data_dir: &Path,
    out: &mut impl Write,
    problems: &mut impl Write,
) -> Result<(), DumpError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| DumpError::Io { path, source }
    };
    let high_watermarks = match checkpoint::read(&data_dir.join(HIGH_WATERMARK_FILE_NAME)) {
        Ok(offsets) => Some(offsets),
        Err(e) => {
            let _ = writeln!(problems, "HW checkpoint unreadable: {e}");
            None
        }
    };
    let mut partitions: Vec<(String, i32, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(data_dir).map_err(io(data_dir))? {
        let entry = entry.map_err(io(data_dir))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Some((topic, index)) = name.rsplit_once('-') else {
            continue;
        };
        let Ok(index) = index.parse::<i32>() else {
            continue;
        };
        if !entry.path().is_dir() || validate_topic_name(topic).is_err() || index < 0 {
            continue;
        }
        partitions.push((topic.to_string(), index, entry.path()));
    }
    partitions.sort();
    for (topic, index, dir) in partitions {
        let high_watermark = high_watermarks
            .as_ref()
            .and_then(|h| h.get(&(topic.clone(), index)).copied());
        dump_partition(&topic, index, &dir, high_watermark, out, problems)?;
    }
    out.flush().map_err(DumpError::Output)
}

fn dump_partition(
    topic: &str,
    index: i32,
    dir: &Path,
    high_watermark: Option<i64>,
    out: &mut impl Write,
    problems: &mut impl Write,
) -> Result<(), DumpError> {
    let bases = segment_files(dir)?;
    let log_start_offset = bases.first().map_or(0, |(b, _)| *b);
    let mut log_end_offset = log_start_offset;
    let mut batch_epochs: Vec<(i32, i64)> = Vec::new();
    'segments: for (base, path) in &bases {
        if *base != log_end_offset && log_end_offset != log_start_offset {
            let _ = writeln!(problems, "{}: segment base {base} does not follow offset {log_end_offset}; stopping this partition", path.display());
            break;
        }
        let data = match std::fs::read(path) {
            Ok(data) => data,
            Err(e) => {
                let _ = writeln!(
                    problems,
                    "{}: unreadable ({e}); stopping this partition",
                    path.display()
                );
                break;
            }
        };
        let mut position = 0usize;
        while position < data.len() {
            let rest = &data[position..];
            let (base_offset, total_bytes) = match batch::parse_overhead(
                rest,
                limits::STORED_BATCH_BYTES_MAX,
            ) {
                Ok(found) => found,
                Err(e) => {
                    let _ = writeln!(problems, "{} at byte {position}: torn or corrupt batch header ({e}); stopping this partition at offset {log_end_offset}", path.display());
                    break 'segments;
                }
            };
            if total_bytes > rest.len() {
                let _ = writeln!(problems, "{} at byte {position}: torn tail: the batch at offset {base_offset} needs {total_bytes} bytes, {} remain; stopping this partition at offset {log_end_offset}", path.display(), rest.len());
                break 'segments;
            }
            let bytes = &rest[..total_bytes];
            let header = match batch::parse_header(bytes, limits::STORED_BATCH_BYTES_MAX) {
                Ok(header) => header,
                Err(e) => {
                    let _ = writeln!(problems, "{} at byte {position}: corrupt batch header ({e}); stopping this partition at offset {log_end_offset}", path.display());
                    break 'segments;
                }
            };
            let crc_ok = batch::validate_batch(bytes, limits::STORED_BATCH_BYTES_MAX).is_ok();
            if !crc_ok {
                let _ = writeln!(
                    problems,
                    "{} at byte {position}: CRC mismatch in the batch at offset {base_offset}",
                    path.display()
                );
            }
            let epoch = header.partition_leader_epoch;
            if batch_epochs.last().is_none_or(|&(last, _)| epoch > last) {
                batch_epochs.push((epoch, base_offset));
            }
            let ids = record_ids(bytes, crc_ok, base_offset, header.last_offset_delta);
            for (offset, id) in ids {
                let line = json!({"topic": topic, "partition": index, "offset": offset, "leader_epoch": epoch, "id": id, "crc_ok": crc_ok});
                writeln!(out, "{line}").map_err(DumpError::Output)?;
            }
            log_end_offset = header.next_offset();
            position += total_bytes;
        }
    }
    let epochs = match epoch::read(&dir.join(LEADER_EPOCH_FILE_NAME)) {
        Ok(Some(entries)) => entries
            .into_iter()
            .filter(|&(_, start)| start < log_end_offset)
            .collect(),
        _ => batch_epochs,
    };
    let epochs: Vec<[i64; 2]> = epochs.iter().map(|&(e, s)| [i64::from(e), s]).collect();
    let line = json!({"topic": topic, "partition": index, "summary": true, "log_start_offset": log_start_offset, "log_end_offset": log_end_offset, "high_watermark": high_watermark, "leader_epochs": epochs});
    writeln!(out, "{line}").map_err(DumpError::Output)
}

/// The segment files in `dir`, by base offset.
fn segment_files(dir: &Path) -> Result<Vec<(i64, PathBuf)>, DumpError> {
    let mut bases: Vec<(i64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|source| DumpError::Io {
        path: dir.to_owned(),
        source,
    })? {
        let Ok(entry) = entry else { continue };
        if let Some(base) = entry
            .file_name()
            .to_str()
            .and_then(segment::parse_file_name)
        {
            bases.push((base, entry.path()));
        }
    }
    bases.sort();
    Ok(bases)
}

/// The offset and message id of each record of a stored batch; offsets only (ids `None`) when
/// its CRC fails or its records do not decode. A batch the log cleaner emptied has none.
fn record_ids(
    bytes: &[u8],
    crc_ok: bool,
    base_offset: i64,
    last_offset_delta: i32,
) -> Vec<(i64, Option<u64>)> {
    let mut ids: Vec<(i64, Option<u64>)> = Vec::new();
    let mut decoded = false;
    if crc_ok {
        let mut buffer = Bytes::copy_from_slice(bytes);
        if let Ok(sets) = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buffer) {
            decoded = true;
            for set in sets {
                for record in set.records {
                    ids.push((record.offset, record.value.as_deref().and_then(message_id)));
                }
            }
        }
    }
    if !decoded {
        let count = i64::from(last_offset_delta).min(limits::EPOCH_ENTRIES_MAX as i64);
        ids = (0..=count).map(|d| (base_offset + d, None)).collect();
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids() {
        assert_eq!(message_id(b"kaos:17:xxxx"), Some(17));
        assert_eq!(message_id(b"kaos:17"), None);
        assert_eq!(message_id(b"other"), None);
        assert_eq!(message_id(b"kaos:x1:"), None);
    }
}
