//! The outbox producer: the remedy the source document names for producer-side loss. The
//! application appends every message to a local file and fsyncs it before it counts the message as
//! accepted (`enqueue` ok); a sender drains the file through librdkafka, resends what was not
//! acknowledged, and records in a cursor file how far everything is acknowledged. A producer
//! restarted after a crash resumes from the cursor, so nothing accepted is lost (resent messages
//! may be duplicates).

use crate::limits::{POLL_WAIT_MS, SEND_BATCH_COUNT_MAX};
use crate::ops::{OpSink, OpType, F};
use crate::producer::{check_message_size, create_producer, drain_reports, Outcome, Reports};
use crate::spec::ProducerSpec;
use crate::{message, WorkloadError};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
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
    let mut state = Outbox::open(outbox)?;
    let producer = create_producer(spec)?;
    let mut application = Application {
        started: Instant::now(),
        interval_ns: if spec.rate_per_s == 0 {
            0
        } else {
            1_000_000_000 / spec.rate_per_s
        },
        generated: 0,
    };
    let mut cursor_written = Instant::now();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if !stopping {
            application.append_due(spec, &mut state.file, sink)?;
        }
        // The sender: new outbox lines, then retries.
        state.read_new_lines()?;
        state.send_batch(spec, &producer, sink)?;
        producer.poll(Duration::from_millis(if state.retry.is_empty() {
            POLL_WAIT_MS.min(20)
        } else {
            0
        }));
        state.apply_reports(drain_reports(&producer, sink)?);
        if cursor_written.elapsed() >= Duration::from_millis(CURSOR_WRITE_INTERVAL_MS) {
            write_cursor(&state.cursor_path, state.cursor)?;
            cursor_written = Instant::now();
        }
        if stopping
            && (state.window.is_empty()
                || (producer.in_flight_count() == 0 && state.retry.is_empty()))
        {
            break;
        }
    }
    write_cursor(&state.cursor_path, state.cursor)?;
    sink.flush()?;
    Ok(())
}

/// The application side: messages due by the rate, appended and fsynced before they count as
/// accepted.
struct Application {
    started: Instant,
    /// Nanoseconds between messages; 0: as fast as it can.
    interval_ns: u64,
    generated: u64,
}

impl Application {
    /// Appends what is due (at most a batch), fsyncs, and records each as `enqueue` ok.
    fn append_due(
        &mut self,
        spec: &ProducerSpec,
        file: &mut File,
        sink: &mut OpSink,
    ) -> Result<(), WorkloadError> {
        if spec.count_max != 0 && self.generated >= spec.count_max {
            return Ok(());
        }
        let due = if self.interval_ns == 0 {
            SEND_BATCH_COUNT_MAX as u64
        } else {
            (self.started.elapsed().as_nanos() as u64 / self.interval_ns + 1)
                .saturating_sub(self.generated)
        };
        let count = due.min(SEND_BATCH_COUNT_MAX as u64);
        if count == 0 {
            return Ok(());
        }
        let ids: Vec<u64> = (0..count)
            .map(|k| spec.id_base + self.generated + k)
            .collect();
        self.generated += count;
        record_all(sink, OpType::Invoke, F::Enqueue, &ids, &spec.topic)?;
        let mut lines = String::new();
        for id in &ids {
            lines.push_str(&format!("{id}\n"));
        }
        file.write_all(lines.as_bytes())?;
        file.sync_data()?;
        record_all(sink, OpType::Ok, F::Enqueue, &ids, &spec.topic)
    }
}

/// One op per id, then a flush.
fn record_all(
    sink: &mut OpSink,
    op: OpType,
    f: F,
    ids: &[u64],
    topic: &str,
) -> Result<(), WorkloadError> {
    for id in ids {
        sink.op(op, f, json!({"id": id, "topic": topic}), None);
    }
    sink.flush()?;
    Ok(())
}

/// The sender's view of the outbox file: what it has read, what is in flight, what to resend,
/// and how far everything is acknowledged.
struct Outbox {
    /// The outbox, opened for appending.
    file: File,
    /// The outbox, read from the cursor on.
    reader: File,
    read_pos: u64,
    /// Bytes read that do not end in a newline yet.
    pending: String,
    cursor_path: PathBuf,
    /// Everything before this byte is acknowledged.
    cursor: u64,
    /// Entries read and not yet behind the cursor, in file order.
    window: VecDeque<Entry>,
    /// Unacknowledged id → its index (`window_base` + its place in `window`).
    by_id: HashMap<u64, usize>,
    window_base: usize,
    /// Ids to send (again).
    retry: VecDeque<u64>,
}

impl Outbox {
    /// Opens the outbox and its cursor; a torn last line a crash left is cut (the application
    /// never counted it).
    fn open(outbox: &Path) -> Result<Outbox, WorkloadError> {
        let cursor_path = cursor_path(outbox);
        let cursor = read_cursor(&cursor_path);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(outbox)?;
        let whole = last_newline_end(&mut file)?;
        file.set_len(whole)?;
        let cursor = cursor.min(whole);
        let mut reader = File::open(outbox)?;
        reader.seek(SeekFrom::Start(cursor))?;
        Ok(Outbox {
            file,
            reader,
            read_pos: cursor,
            pending: String::new(),
            cursor_path,
            cursor,
            window: VecDeque::new(),
            by_id: HashMap::new(),
            window_base: 0,
            retry: VecDeque::new(),
        })
    }

    /// Reads new outbox lines into the window (while it has room), each id to be sent.
    fn read_new_lines(&mut self) -> Result<(), WorkloadError> {
        let mut buf = [0u8; 64 * 1024];
        while self.window.len() < OUTBOX_IN_FLIGHT_MAX {
            let n = self.reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            self.pending.push_str(&String::from_utf8_lossy(&buf[..n]));
            while let Some(nl) = self.pending.find('\n') {
                let line: String = self.pending.drain(..=nl).collect();
                self.read_pos += line.len() as u64;
                let Ok(id) = line.trim().parse::<u64>() else {
                    continue;
                };
                self.by_id.insert(id, self.window_base + self.window.len());
                self.window.push_back(Entry {
                    end: self.read_pos,
                    acked: false,
                });
                self.retry.push_back(id);
            }
        }
        Ok(())
    }

    /// Sends a batch of the ids to send; one librdkafka does not take stays to be tried again.
    fn send_batch(
        &mut self,
        spec: &ProducerSpec,
        producer: &BaseProducer<Reports>,
        sink: &mut OpSink,
    ) -> Result<(), WorkloadError> {
        let mut batch = Vec::new();
        while let Some(id) = self.retry.pop_front() {
            batch.push(id);
            if batch.len() >= SEND_BATCH_COUNT_MAX {
                break;
            }
        }
        record_all(sink, OpType::Invoke, F::Send, &batch, &spec.topic)?;
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
                self.retry.push_back(id);
                break;
            }
        }
        Ok(())
    }

    /// Marks acknowledged ids; failed or unknown ones are sent again (the outbox still holds
    /// them). Moves the cursor past the acknowledged front of the window.
    fn apply_reports(&mut self, reports: Vec<(u64, Outcome)>) {
        for (id, outcome) in reports {
            let Some(&k) = self.by_id.get(&id) else {
                continue;
            };
            match outcome {
                Outcome::Acked { .. } => {
                    if let Some(e) = self.window.get_mut(k - self.window_base) {
                        e.acked = true;
                    }
                    self.by_id.remove(&id);
                }
                _ => self.retry.push_back(id),
            }
        }
        while self.window.front().is_some_and(|e| e.acked) {
            if let Some(e) = self.window.pop_front() {
                self.cursor = e.end;
                self.window_base += 1;
            }
        }
    }
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
