//! The op stream: one JSON object per line on standard output, without `index`, `time_ns` and
//! `process` (the harness stamps those), each with the client's CLOCK_MONOTONIC reading when the
//! op was written (`monotonic_ns`: one kernel clock for every client process on the host, so the
//! checker can order ops of different processes finer than the harness's receipt time). Invokes
//! are written through before the work they announce starts, so that a killed client never leaves
//! in the log a record the history does not explain.

pub use kaos_history::{OpType, F};

use kaos_history::line;
use serde_json::Value;
use std::io::Write;

pub struct OpSink {
    out: Box<dyn Write + Send>,
    buffer: Vec<u8>,
}

impl OpSink {
    pub fn stdout() -> Self {
        OpSink::new(Box::new(std::io::stdout()))
    }

    pub fn new(out: Box<dyn Write + Send>) -> Self {
        OpSink {
            out,
            buffer: Vec::with_capacity(64 * 1024),
        }
    }

    /// Queues one op; it reaches the harness at the next [`OpSink::flush`]. The line is
    /// `kaos_history::line::write_client_op`'s: fields in a fixed order (`type`, `f`, `value`,
    /// `error`), so a reader may recognise an op by its start (`line::client_prefix`).
    pub fn op(&mut self, kind: OpType, f: F, value: Value, error: Option<&str>) {
        let now = monotonic_ns();
        line::write_client_op(&mut self.buffer, kind, f, now, &value, error);
    }

    /// Writes every queued op in one go.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if !self.buffer.is_empty() {
            self.out.write_all(&self.buffer)?;
            self.out.flush()?;
            self.buffer.clear();
        }
        Ok(())
    }
}

/// CLOCK_MONOTONIC in nanoseconds (since boot; the same clock in every process of the host, and
/// in containers, which share the host's kernel and have no time namespace of their own), `None`
/// if the clock cannot be read.
#[allow(unsafe_code)]
pub fn monotonic_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn ops_are_json_lines_written_on_flush() {
        let shared = Shared::default();
        let mut sink = OpSink::new(Box::new(shared.clone()));
        sink.op(OpType::Invoke, F::Send, json!({"id": 1}), None);
        sink.op(
            OpType::Info,
            F::Send,
            json!({"id": 1}),
            Some("MSG_TIMED_OUT"),
        );
        assert!(shared.0.lock().map(|b| b.is_empty()).unwrap_or(false));
        sink.flush().expect("flush");
        let text = String::from_utf8(shared.0.lock().expect("lock").clone()).expect("utf8");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["type"], "invoke");
        assert_eq!(lines[1]["error"], "MSG_TIMED_OUT");
        assert!(lines[0].get("error").is_none());
        assert!(
            text.starts_with("{\"type\":\"invoke\",\"f\":\"send\",\"monotonic_ns\":"),
            "{text}"
        );
        // Each op carries the clock's reading when it was written, in order.
        let stamps: Vec<u64> = lines
            .iter()
            .map(|l| l["monotonic_ns"].as_u64().expect("a stamp"))
            .collect();
        assert!(stamps[0] > 0 && stamps[0] <= stamps[1], "{stamps:?}");
    }

    #[test]
    fn the_stamp_is_the_clock_every_process_reads() {
        // The same clock as std's Instant (CLOCK_MONOTONIC on Linux), read by another thread:
        // a reading taken after another's is never smaller.
        let first = monotonic_ns().expect("clock");
        let second = std::thread::spawn(monotonic_ns)
            .join()
            .expect("thread")
            .expect("clock");
        assert!(first <= second, "{first} > {second}");
    }
}
