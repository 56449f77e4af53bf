//! The history writer: every source (client pipes, the nemesis, the harness's phases) sends its ops
//! through one queue; a single writer stamps `index`, `time_ns` and `process` and appends each line
//! to `history.jsonl` as it arrives, flushing whenever the queue runs dry, so the file is complete up
//! to the moment anything dies.

use crate::limits::{HISTORY_QUEUE_MAX, OP_LINE_BYTES_MAX};
use kaos_history::line::{client_prefix, write_op, write_stamped};
use kaos_history::{FaultKind, OpType, Recovery, F, NEMESIS};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{mpsc, watch};

enum Entry {
    /// A client's line: a JSON object without index, time_ns and process.
    Client { process: Arc<str>, line: String },
    /// An op of the harness itself (nemesis, phases).
    Op {
        process: &'static str,
        kind: OpType,
        f: F,
        value: Value,
        error: Option<String>,
    },
}

/// A handle that sends ops to the history. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Entry>,
    live: Arc<Live>,
}

/// What the run looks like right now, as the ops pass by (for the progress bar).
#[derive(Default)]
pub struct Live {
    /// Sends acknowledged so far.
    pub acked: AtomicU64,
    /// Faults in force: node → fault name.
    pub faults: Mutex<BTreeMap<String, String>>,
    /// The nemesis's trigger, once armed: how a client's `ok` line of its op starts, and the
    /// count of such lines so far (a fault waits for it to change).
    trigger: OnceLock<(Vec<u8>, watch::Sender<u64>)>,
}

impl Live {
    /// Counts the client ops of kind `f` that complete `ok` from now on; the receiver sees each
    /// one. One trigger per run: a second arming returns the first one's count.
    pub fn arm_trigger(&self, f: F) -> watch::Receiver<u64> {
        self.trigger
            .get_or_init(|| (client_prefix(OpType::Ok, f), watch::channel(0).0))
            .1
            .subscribe()
    }

    /// Counts `line` if it is the armed trigger's op.
    fn observe_trigger(&self, line: &[u8]) {
        if let Some((prefix, count)) = self.trigger.get() {
            if line.starts_with(prefix) {
                count.send_modify(|n| *n += 1);
            }
        }
    }

    /// Faults in force, as "kill n1, pause n3".
    pub fn faults_text(&self) -> String {
        let faults = self.faults.lock().map(|f| f.clone()).unwrap_or_default();
        faults
            .iter()
            .map(|(node, fault)| format!("{fault} {node}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn observe_nemesis(&self, kind: OpType, f: F, value: &Value) {
        let (Some(node), OpType::Ok) = (value.get("node").and_then(Value::as_str), kind) else {
            return;
        };
        let Ok(mut faults) = self.faults.lock() else {
            return;
        };
        if Recovery::from_name(f.name()).is_some() {
            faults.remove(node);
        } else if FaultKind::from_name(f.name()).is_none_or(FaultKind::is_lasting) {
            faults.insert(node.to_string(), f.name().to_string());
        }
    }
}

/// The writer's end: wait on it after every [`Recorder`] is dropped.
pub struct Writer {
    task: tokio::task::JoinHandle<std::io::Result<u64>>,
}

pub fn open(path: &Path, started: Instant) -> std::io::Result<(Recorder, Writer)> {
    let file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(path)?;
    let (tx, rx) = mpsc::channel(HISTORY_QUEUE_MAX);
    let task = tokio::spawn(write_loop(
        rx,
        std::io::BufWriter::with_capacity(256 * 1024, file),
        started,
    ));
    Ok((
        Recorder {
            tx,
            live: Arc::default(),
        },
        Writer { task },
    ))
}

impl Writer {
    /// Waits until every queued op is on disk; returns how many ops the history holds.
    pub async fn finish(self) -> std::io::Result<u64> {
        self.task.await.map_err(std::io::Error::other)?
    }
}

impl Recorder {
    pub fn live(&self) -> Arc<Live> {
        Arc::clone(&self.live)
    }

    /// Records an op of the nemesis or the harness.
    pub async fn op(
        &self,
        process: &'static str,
        kind: OpType,
        f: F,
        value: Value,
        error: Option<String>,
    ) {
        if process == NEMESIS {
            self.live.observe_nemesis(kind, f, &value);
        }
        // The writer only stops once every recorder is gone, so this cannot fail while `self` lives.
        let _ = self
            .tx
            .send(Entry::Op {
                process,
                kind,
                f,
                value,
                error,
            })
            .await;
    }

    /// Copies a client's op lines into the history until its pipe closes. Returns how many lines
    /// were not ops (they are reported on the harness's standard error, not lost silently).
    pub async fn pump<R: AsyncRead + Unpin>(&self, process: Arc<str>, pipe: R) -> u64 {
        let mut lines = BufReader::new(pipe).lines();
        let mut rejected = 0;
        // How a producer's acknowledged send starts (the clients write with the same code): the
        // progress bar counts these without parsing the line.
        let acked_send = client_prefix(OpType::Ok, F::Send);
        loop {
            match lines.next_line().await {
                Ok(Some(line)) => {
                    let t = line.trim();
                    if t.len() > 2
                        && t.len() <= OP_LINE_BYTES_MAX
                        && t.starts_with('{')
                        && t.ends_with('}')
                    {
                        if t.as_bytes().starts_with(&acked_send) {
                            self.live.acked.fetch_add(1, Ordering::Relaxed);
                        }
                        self.live.observe_trigger(t.as_bytes());
                        if self
                            .tx
                            .send(Entry::Client {
                                process: Arc::clone(&process),
                                line,
                            })
                            .await
                            .is_err()
                        {
                            break;
                        }
                    } else {
                        rejected += 1;
                        eprintln!(
                            "kaos: {process} printed a line that is not an op: {:.200}",
                            t
                        );
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("kaos: reading ops of {process}: {e}");
                    break;
                }
            }
        }
        rejected
    }
}

async fn write_loop(
    mut rx: mpsc::Receiver<Entry>,
    mut out: std::io::BufWriter<std::fs::File>,
    started: Instant,
) -> std::io::Result<u64> {
    let mut index: u64 = 0;
    while let Some(entry) = rx.recv().await {
        write_entry(&mut out, index, started, entry)?;
        index += 1;
        while let Ok(entry) = rx.try_recv() {
            write_entry(&mut out, index, started, entry)?;
            index += 1;
        }
        out.flush()?;
    }
    out.flush()?;
    out.get_ref().sync_data()?;
    Ok(index)
}

fn write_entry(
    out: &mut impl Write,
    index: u64,
    started: Instant,
    entry: Entry,
) -> std::io::Result<()> {
    let time_ns = started.elapsed().as_nanos() as u64;
    match entry {
        Entry::Client { process, line } => write_stamped(out, index, time_ns, &process, &line),
        Entry::Op {
            process,
            kind,
            f,
            value,
            error,
        } => write_op(
            out,
            index,
            time_ns,
            process,
            kind,
            f,
            &value,
            error.as_deref(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaos_history::HARNESS;
    use serde_json::json;

    #[tokio::test]
    async fn stamps_and_orders_every_source() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("history.jsonl");
        let (rec, writer) = open(&path, Instant::now()).expect("open");
        rec.op(HARNESS, OpType::Invoke, F::Start, json!({"seed": 1}), None)
            .await;
        let pipe: &[u8] = b"{\"type\":\"invoke\",\"f\":\"send\",\"value\":{\"id\":1}}\nnot an op\n{\"type\":\"ok\",\"f\":\"send\",\"value\":{\"id\":1,\"partition\":0,\"offset\":0}}\n";
        let rejected = rec.pump(Arc::from("producer-1"), pipe).await;
        assert_eq!(rejected, 1);
        rec.op(
            NEMESIS,
            OpType::Info,
            F::Kill,
            json!({"node": "n1"}),
            Some("no such node".into()),
        )
        .await;
        drop(rec);
        assert_eq!(writer.finish().await.expect("finish"), 4);
        let text = std::fs::read_to_string(&path).expect("read");
        let ops: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        assert_eq!(ops.len(), 4);
        for (i, op) in ops.iter().enumerate() {
            assert_eq!(op["index"], i as u64);
        }
        assert!(ops
            .windows(2)
            .all(|w| w[0]["time_ns"].as_u64() <= w[1]["time_ns"].as_u64()));
        assert_eq!(ops[1]["process"], "producer-1");
        assert_eq!(ops[2]["value"]["offset"], 0);
        assert_eq!(ops[3]["error"], "no such node");
    }

    #[tokio::test]
    async fn an_armed_trigger_counts_the_ok_ops_of_its_kind_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (rec, writer) = open(&dir.path().join("history.jsonl"), Instant::now()).expect("open");
        let mut seen = rec.live().arm_trigger(F::OffsetCommit);
        let mut pipe = Vec::new();
        let value = json!({"group": "g", "topic": "t", "partition": 0, "offset": 5});
        for (kind, f) in [
            (OpType::Invoke, F::OffsetCommit),
            (OpType::Ok, F::OffsetCommit),
            (OpType::Fail, F::OffsetCommit),
            (OpType::Ok, F::Seek),
            (OpType::Ok, F::OffsetCommit),
        ] {
            kaos_history::line::write_client_op(&mut pipe, kind, f, None, &value, None);
        }
        assert_eq!(rec.pump(Arc::from("consumer-1"), pipe.as_slice()).await, 0);
        assert!(seen.has_changed().expect("sender alive"));
        assert_eq!(*seen.borrow_and_update(), 2);
        drop(rec);
        assert_eq!(writer.finish().await.expect("finish"), 5);
    }

    #[tokio::test]
    async fn the_progress_bar_counts_acked_sends_as_the_clients_write_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (rec, writer) = open(&dir.path().join("history.jsonl"), Instant::now()).expect("open");
        let mut pipe = Vec::new();
        let value = json!({"id": 1, "topic": "t", "partition": 0, "offset": 0});
        for (kind, f) in [
            (OpType::Invoke, F::Send),
            (OpType::Ok, F::Send),
            (OpType::Ok, F::Accept),
            (OpType::Ok, F::Send),
            (OpType::Info, F::Send),
        ] {
            kaos_history::line::write_client_op(&mut pipe, kind, f, None, &value, None);
        }
        assert_eq!(rec.pump(Arc::from("producer-1"), pipe.as_slice()).await, 0);
        assert_eq!(rec.live().acked.load(Ordering::Relaxed), 2);
        drop(rec);
        assert_eq!(writer.finish().await.expect("finish"), 5);
    }
}
