//! A transactional producer's `txn` ops through the checker: the per-message rules read their
//! sends and polls (aborted sends are neither lost nor readable at read_committed), consumers at
//! read_uncommitted are told apart, and the cycle analysis reads the transactions.

use checkers::{check_text, AnomalyKind, Expectations, Verdict};
use serde_json::{json, Value};

/// A history being written: each op gets the next index and a time 10 ms later.
#[derive(Default)]
struct History {
    lines: Vec<String>,
}

impl History {
    fn op(&mut self, process: &str, kind: &str, f: &str, value: Value) -> &mut Self {
        let index = self.lines.len();
        let line = json!({
            "index": index, "time_ns": index as u64 * 10_000_000, "process": process,
            "type": kind, "f": f, "value": value,
        });
        self.lines.push(line.to_string());
        self
    }

    fn client(&mut self, name: &str, config: Value) -> &mut Self {
        self.op(
            "harness",
            "ok",
            "client_start",
            json!({"client": name, "spec": {"config": config}}),
        )
    }

    /// A transaction of `sends` (id, partition, offset), invoked then completed as `kind`.
    fn txn(
        &mut self,
        kind: &str,
        sends: &[(u64, i32, i64)],
        polled: &[(u64, i32, i64)],
    ) -> &mut Self {
        let planned: Vec<Value> = sends
            .iter()
            .map(|&(id, p, _)| json!({"f": "send", "id": id, "topic": "t", "partition": p}))
            .collect();
        let mut done: Vec<Value> = sends
            .iter()
            .map(|&(id, p, o)| json!({"f": "send", "id": id, "topic": "t", "partition": p, "offset": o}))
            .collect();
        if !polled.is_empty() {
            done.push(json!({"f": "poll", "records": records(polled)}));
        }
        let commit = kind != "fail";
        self.op(
            "producer-1",
            "invoke",
            "txn",
            json!({"commit": commit, "mops": planned}),
        );
        self.op(
            "producer-1",
            kind,
            "txn",
            json!({"commit": commit, "mops": done}),
        )
    }

    fn poll(&mut self, process: &str, read: &[(u64, i32, i64)]) -> &mut Self {
        self.op(process, "invoke", "poll", Value::Null);
        self.op(process, "ok", "poll", json!({"records": records(read)}))
    }

    fn final_read(&mut self, read: &[(u64, i32, i64)]) -> &mut Self {
        self.op("harness", "invoke", "final_read", Value::Null);
        self.poll("final-reader", read);
        self.op("harness", "ok", "final_read", Value::Null)
    }

    fn text(&self) -> String {
        self.lines.join("\n") + "\n"
    }
}

fn records(read: &[(u64, i32, i64)]) -> Vec<Value> {
    read.iter()
        .map(|&(id, p, o)| json!({"topic": "t", "partition": p, "offset": o, "id": id}))
        .collect()
}

fn ids(analysis: &checkers::Analysis, kind: AnomalyKind) -> Vec<u64> {
    analysis
        .anomaly(kind)
        .map(|a| a.cases.iter().map(|c| c.id).collect())
        .unwrap_or_default()
}

/// Transaction 1 (ids 1, 2) commits, transaction 2 (ids 3, 4) aborts, transaction 3 (id 5)
/// commits after it; offsets 1 and 2 of each partition hold transaction 2's records and its abort
/// marker. consumer-1 reads at read_committed, consumer-2 at read_uncommitted.
fn committed_and_aborted(committed_reader_sees: &[(u64, i32, i64)]) -> String {
    let mut h = History::default();
    h.client("consumer-1", json!({}))
        .client("consumer-2", json!({"isolation.level": "read_uncommitted"}))
        .txn("ok", &[(1, 0, 0), (2, 1, 0)], &[])
        .txn("fail", &[(3, 0, 1), (4, 1, 1)], &[])
        .txn("ok", &[(5, 0, 3)], &[])
        .poll(
            "consumer-2",
            &[(1, 0, 0), (3, 0, 1), (5, 0, 3), (2, 1, 0), (4, 1, 1)],
        )
        .poll("consumer-1", committed_reader_sees)
        .final_read(&[(1, 0, 0), (5, 0, 3), (2, 1, 0)]);
    h.text()
}

#[test]
fn aborted_sends_are_not_lost_and_read_uncommitted_sees_them() {
    let text = committed_and_aborted(&[(1, 0, 0), (5, 0, 3), (2, 1, 0)]);
    let analysis = check_text(&text, Expectations::default()).expect("valid history");
    assert_eq!(analysis.verdict, Verdict::Valid, "{analysis:#?}");
    assert_eq!(analysis.counts.sends_ok, 3);
    assert_eq!(analysis.counts.sends_fail, 2);
    assert_eq!(
        ids(&analysis, AnomalyKind::AbortedReadUncommitted),
        vec![3, 4]
    );
    for kind in [
        AnomalyKind::AbortedRead,
        AnomalyKind::Lost,
        AnomalyKind::ReadThenLost,
        AnomalyKind::PollSkip,
        AnomalyKind::UnacknowledgedAbsent,
    ] {
        assert!(ids(&analysis, kind).is_empty(), "{kind:?}: {analysis:#?}");
    }
}

#[test]
fn an_aborted_message_read_at_read_committed_is_an_aborted_read() {
    let text = committed_and_aborted(&[(1, 0, 0), (3, 0, 1), (5, 0, 3), (2, 1, 0)]);
    let analysis = check_text(&text, Expectations::default()).expect("valid history");
    assert_eq!(analysis.verdict, Verdict::Invalid);
    assert_eq!(ids(&analysis, AnomalyKind::AbortedRead), vec![3]);
    let case = &analysis
        .anomaly(AnomalyKind::AbortedRead)
        .expect("class")
        .cases[0];
    assert!(case.cause.contains("transaction aborted"), "{}", case.cause);
    // Read by both kinds of consumer: both classes name it.
    assert_eq!(
        ids(&analysis, AnomalyKind::AbortedReadUncommitted),
        vec![3, 4]
    );
}

#[test]
fn a_committed_transaction_missing_from_the_final_read_is_lost() {
    let mut h = History::default();
    h.txn("ok", &[(1, 0, 0), (2, 1, 0)], &[])
        .final_read(&[(1, 0, 0)]);
    let analysis = check_text(&h.text(), Expectations::default()).expect("valid history");
    assert_eq!(analysis.verdict, Verdict::Invalid);
    assert_eq!(ids(&analysis, AnomalyKind::Lost), vec![2]);
}

#[test]
fn an_unknown_transaction_seen_only_uncommitted_is_not_a_loss() {
    let mut h = History::default();
    h.client("consumer-1", json!({"isolation.level": "read_uncommitted"}))
        .txn("info", &[(1, 0, 0)], &[])
        .txn("ok", &[(2, 0, 2)], &[])
        .poll("consumer-1", &[(1, 0, 0), (2, 0, 2)])
        .final_read(&[(2, 0, 2)]);
    let analysis = check_text(&h.text(), Expectations::default()).expect("valid history");
    assert_eq!(analysis.verdict, Verdict::Valid, "{analysis:#?}");
    // Read at read_committed (as every consumer without the setting), the same history proves
    // the transaction committed, and then lost.
    let text = h.text().replace("read_uncommitted", "read_committed");
    let analysis = check_text(&text, Expectations::default()).expect("valid history");
    assert_eq!(ids(&analysis, AnomalyKind::Lost), vec![1]);
    assert_eq!(ids(&analysis, AnomalyKind::ReadThenLost), vec![1]);
}

/// T1 writes 1 to partition 0 and reads 2 from partition 1; T2 writes 2 and (when `reads_back`)
/// reads 1: each read the other's write, a cycle of wr edges.
fn two_transactions(reads_back: bool) -> String {
    let t2_reads: &[(u64, i32, i64)] = if reads_back { &[(1, 0, 0)] } else { &[] };
    let mut h = History::default();
    h.op("producer-1", "invoke", "txn", json!({"mops": []}))
        .op("producer-2", "invoke", "txn", json!({"mops": []}))
        .op(
            "producer-1",
            "ok",
            "txn",
            json!({"mops": [
                {"f": "send", "id": 1, "topic": "t", "partition": 0, "offset": 0},
                {"f": "poll", "records": records(&[(2, 1, 0)])},
            ]}),
        )
        .op(
            "producer-2",
            "ok",
            "txn",
            json!({"mops": [
                {"f": "send", "id": 2, "topic": "t", "partition": 1, "offset": 0},
                {"f": "poll", "records": records(t2_reads)},
            ]}),
        )
        .final_read(&[(1, 0, 0), (2, 1, 0)]);
    h.text()
}

#[test]
fn transactions_that_read_each_other_form_a_g1c_cycle() {
    let analysis = check_text(&two_transactions(true), Expectations::default()).expect("valid");
    let g1c = analysis.anomaly(AnomalyKind::G1c).expect("a G1c cycle");
    assert_eq!(g1c.count, 1);
    assert!(g1c.cases[0].cause.contains("G1c"), "{}", g1c.cases[0].cause);
    assert_eq!(analysis.verdict, Verdict::Invalid);

    // T2 not reading T1's write: no cycle.
    let analysis = check_text(&two_transactions(false), Expectations::default()).expect("valid");
    assert!(
        analysis.anomaly(AnomalyKind::G1c).is_none(),
        "{analysis:#?}"
    );
    assert_eq!(analysis.verdict, Verdict::Valid, "{analysis:#?}");
}
