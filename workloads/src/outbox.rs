//! The outbox producer: the remedy the source document names for producer-side loss. The
//! application appends every message to a local file and fsyncs it before it counts the message as
//! accepted (`enqueue` ok); a sender drains the file through librdkafka, resends what was not
//! acknowledged, and records in a cursor file how far everything is acknowledged. A producer
//! restarted after a crash resumes from the cursor, so nothing accepted is lost (resent messages
//! may be duplicates).

use crate::limits::{POLL_WAIT_MS, SEND_BATCH_COUNT_MAX};
use crate::ops::{OpSink, OpType, F};
use crate::producer::{check_message_size, create_producer, drain_reports, Outcome};
use crate::spec::ProducerSpec;
use crate::{message, WorkloadError};
use rdkafka::producer::{BaseRecord, Producer};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the cursor file is rewritten (it only moves forward; a stale one means resends).
const CURSOR_WRITE_INTERVAL_MS: u64 = 200;
/// Outbox entries the sender keeps in flight at most.
const OUTBOX_IN_FLIGHT_MAX: usize = 100_000;

struct Entry {
    /// Byte position just after this entry's line.
    end: u64,
    acked: bool,
}

pub fn run(
    spec: &ProducerSpec,
    outbox: &Path,
    sink: &mut OpSink,
    stop: &AtomicBool,
) -> Result<(), WorkloadError> {
    check_message_size(spec)?;
    let cursor_path = cursor_path(outbox);
    let mut cursor = read_cursor(&cursor_path);
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(outbox)?;
    // A crash may have left half a line at the end: cut it (the application never counted it).
    let whole = last_newline_end(&mut file)?;
    file.set_len(whole)?;
    cursor = cursor.min(whole);
    let mut reader = File::open(outbox)?;
    reader.seek(SeekFrom::Start(cursor))?;
    let mut read_pos = cursor;
    let mut pending = String::new();

    let producer = create_producer(spec)?;
    let started = Instant::now();
    let interval_ns = if spec.rate_per_s == 0 {
        0
    } else {
        1_000_000_000 / spec.rate_per_s
    };
    let mut generated: u64 = 0;
    let mut window: VecDeque<Entry> = VecDeque::new();
    let mut by_id: HashMap<u64, usize> = HashMap::new();
    let mut window_base: usize = 0;
    let mut retry: VecDeque<u64> = VecDeque::new();
    let mut cursor_written = Instant::now();

    loop {
        let stopping = stop.load(Ordering::Relaxed);
        // The application: append what is due, fsync, then it is accepted.
        if !stopping && (spec.count_max == 0 || generated < spec.count_max) {
            let due = if interval_ns == 0 {
                SEND_BATCH_COUNT_MAX as u64
            } else {
                (started.elapsed().as_nanos() as u64 / interval_ns + 1).saturating_sub(generated)
            };
            let count = due.min(SEND_BATCH_COUNT_MAX as u64);
            if count > 0 {
                let ids: Vec<u64> = (0..count).map(|k| spec.id_base + generated + k).collect();
                generated += count;
                for id in &ids {
                    sink.op(
                        OpType::Invoke,
                        F::Enqueue,
                        json!({"id": id, "topic": spec.topic}),
                        None,
                    );
                }
                sink.flush()?;
                let mut lines = String::new();
                for id in &ids {
                    lines.push_str(&format!("{id}\n"));
                }
                file.write_all(lines.as_bytes())?;
                file.sync_data()?;
                for id in &ids {
                    sink.op(
                        OpType::Ok,
                        F::Enqueue,
                        json!({"id": id, "topic": spec.topic}),
                        None,
                    );
                }
                sink.flush()?;
            }
        }
        // The sender: new outbox lines, then retries.
        let mut buf = [0u8; 64 * 1024];
        while window.len() < OUTBOX_IN_FLIGHT_MAX {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            pending.push_str(&String::from_utf8_lossy(&buf[..n]));
            while let Some(nl) = pending.find('\n') {
                let line: String = pending.drain(..=nl).collect();
                read_pos += line.len() as u64;
                let Ok(id) = line.trim().parse::<u64>() else {
                    continue;
                };
                by_id.insert(id, window_base + window.len());
                window.push_back(Entry {
                    end: read_pos,
                    acked: false,
                });
                retry.push_back(id);
            }
        }
        let mut batch = Vec::new();
        while let Some(id) = retry.pop_front() {
            batch.push(id);
            if batch.len() >= SEND_BATCH_COUNT_MAX {
                break;
            }
        }
        for id in &batch {
            sink.op(
                OpType::Invoke,
                F::Send,
                json!({"id": id, "topic": spec.topic}),
                None,
            );
        }
        sink.flush()?;
        for id in batch {
            let value = message::encode(id, spec.message_size_bytes);
            let record: BaseRecord<'_, (), [u8], usize> =
                BaseRecord::with_opaque_to(&spec.topic, id as usize).payload(&value);
            if let Err((e, _)) = producer.send(record) {
                // Not taken (a full buffer): it stays in the outbox and is tried again.
                sink.op(
                    OpType::Fail,
                    F::Send,
                    json!({"id": id, "topic": spec.topic}),
                    Some(&crate::producer::error_name(&e)),
                );
                retry.push_back(id);
                break;
            }
        }
        producer.poll(Duration::from_millis(if retry.is_empty() {
            POLL_WAIT_MS.min(20)
        } else {
            0
        }));
        for (id, outcome) in drain_reports(&producer, sink)? {
            let Some(&k) = by_id.get(&id) else { continue };
            match outcome {
                Outcome::Acked { .. } => {
                    if let Some(e) = window.get_mut(k - window_base) {
                        e.acked = true;
                    }
                    by_id.remove(&id);
                }
                // Failed or unknown: the outbox still holds it; send it again.
                _ => retry.push_back(id),
            }
        }
        while window.front().is_some_and(|e| e.acked) {
            if let Some(e) = window.pop_front() {
                cursor = e.end;
                window_base += 1;
            }
        }
        if cursor_written.elapsed() >= Duration::from_millis(CURSOR_WRITE_INTERVAL_MS) {
            write_cursor(&cursor_path, cursor)?;
            cursor_written = Instant::now();
        }
        if stopping && (window.is_empty() || (producer.in_flight_count() == 0 && retry.is_empty()))
        {
            break;
        }
    }
    write_cursor(&cursor_path, cursor)?;
    sink.flush()?;
    Ok(())
}

fn cursor_path(outbox: &Path) -> PathBuf {
    let mut name = outbox
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".cursor");
    outbox.with_file_name(name)
}

fn read_cursor(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Atomically: a temporary file, fsynced, renamed over the cursor.
fn write_cursor(path: &Path, cursor: u64) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(format!("{cursor}\n").as_bytes())?;
    f.sync_data()?;
    std::fs::rename(&tmp, path)
}

/// The length of the file up to and including its last newline.
fn last_newline_end(file: &mut File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    let mut pos = len;
    let mut byte = [0u8; 1];
    while pos > 0 {
        file.seek(SeekFrom::Start(pos - 1))?;
        file.read_exact(&mut byte)?;
        if byte[0] == b'\n' {
            return Ok(pos);
        }
        pos -= 1;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_cut_and_the_cursor_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("outbox");
        std::fs::write(&path, b"1\n2\n3").expect("write");
        let mut f = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .expect("open");
        assert_eq!(last_newline_end(&mut f).expect("scan"), 4);
        std::fs::write(&path, b"").expect("write");
        assert_eq!(last_newline_end(&mut f).expect("scan"), 0);
        let c = cursor_path(&path);
        assert_eq!(read_cursor(&c), 0);
        write_cursor(&c, 42).expect("cursor");
        assert_eq!(read_cursor(&c), 42);
    }
}
