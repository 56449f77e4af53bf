//! Order across client processes: kaos's clients stamp each op with their CLOCK_MONOTONIC
//! (`monotonic_ns`, one kernel clock for every process on the host), and the checker orders by
//! those stamps where it claims a realtime order — `future_read`, `read_before_ack`,
//! `lost_commit`, and the cycle analysis's realtime edges. A history without stamps (written
//! before them) is judged as before, by the harness's receipt time with its 100 ms skew. Each
//! history below is checked both ways: with its stamps, and with them removed.

use checkers::{check_text, AnomalyKind, Expectations, Verdict};

/// One history line, received by the harness at `t_ms`; `stamp_ms` is the client's clock.
fn op(
    index: u64,
    t_ms: u64,
    stamp_ms: Option<u64>,
    process: &str,
    kind: &str,
    f: &str,
    value: &str,
) -> String {
    let stamp = stamp_ms.map_or(String::new(), |ms| format!(r#","monotonic_ns":{}"#, ns(ms)));
    format!(
        r#"{{"index":{index},"time_ns":{},"process":"{process}","type":"{kind}","f":"{f}"{stamp},"value":{value}}}"#,
        t_ms * 1_000_000
    )
}

/// A client's CLOCK_MONOTONIC reading `ms` after an arbitrary boot-relative origin.
fn ns(ms: u64) -> u64 {
    7_000_000_000_000 + ms * 1_000_000
}

fn records(read: &[(i32, i64, u64)]) -> String {
    let records: Vec<String> = read
        .iter()
        .map(|(p, o, id)| format!(r#"{{"topic":"t","partition":{p},"offset":{o},"id":{id}}}"#))
        .collect();
    format!(r#"{{"records":[{}]}}"#, records.join(","))
}

/// consumer-1's poll `ok` with `read`, received at `t_ms`, stamped `stamp_ms`.
fn polled(index: u64, t_ms: u64, stamp_ms: u64, read: &[(i32, i64, u64)]) -> String {
    let value = records(read);
    op(
        index,
        t_ms,
        Some(stamp_ms),
        "consumer-1",
        "ok",
        "poll",
        &value,
    )
}

/// producer-1's ack of message `id` at partition 0 offset 0.
fn acked(index: u64, t_ms: u64, stamp_ms: u64, id: u64) -> String {
    let value = format!(r#"{{"id":{id},"topic":"t","partition":0,"offset":0}}"#);
    op(
        index,
        t_ms,
        Some(stamp_ms),
        "producer-1",
        "ok",
        "send",
        &value,
    )
}

fn final_read(index: u64, t_ms: u64, read: &[(i32, i64, u64)]) -> Vec<String> {
    vec![
        op(index, t_ms, None, "harness", "invoke", "final_read", "null"),
        op(
            index + 1,
            t_ms + 1,
            None,
            "final-reader",
            "ok",
            "poll",
            &records(read),
        ),
        op(
            index + 2,
            t_ms + 2,
            None,
            "harness",
            "ok",
            "final_read",
            "null",
        ),
    ]
}

/// The history with every client stamp removed: as written before the stamps existed.
fn unstamped(history: &str) -> String {
    history
        .lines()
        .map(|line| match line.find(r#","monotonic_ns":"#) {
            Some(at) => {
                let rest = &line[at + 1..];
                let end = rest.find(',').unwrap_or(rest.len());
                format!("{}{}", &line[..at], &rest[end..])
            }
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn check(history: &str) -> checkers::Analysis {
    check_text(history, Expectations::default()).expect("a valid history")
}

fn ids(analysis: &checkers::Analysis, kind: AnomalyKind) -> Vec<u64> {
    analysis
        .anomaly(kind)
        .map(|a| a.cases.iter().map(|c| c.id).collect())
        .unwrap_or_default()
}

#[test]
fn removing_the_stamps_leaves_the_line_an_older_history_has() {
    let line = op(3, 10, Some(5), "p", "ok", "send", r#"{"id":1}"#);
    assert!(line.contains("monotonic_ns"), "{line}");
    assert_eq!(
        unstamped(&line),
        r#"{"index":3,"time_ns":10000000,"process":"p","type":"ok","f":"send","value":{"id":1}}"#
    );
}

/// The consumer's poll reached the harness 250 ms before the producer's invoke (its pipe was
/// slow), but the clients' clocks say the send was invoked first: no future read. Without the
/// stamps, 250 ms is past the receipt skew and the read is claimed to be from the future.
#[test]
fn a_read_received_before_the_invoke_is_no_future_read_when_the_clocks_say_otherwise() {
    let mut lines = vec![
        op(0, 10, Some(1_000), "consumer-1", "invoke", "poll", "null"),
        polled(1, 20, 1_300, &[(0, 0, 7)]),
        op(
            2,
            270,
            Some(1_200),
            "producer-1",
            "invoke",
            "send",
            r#"{"id":7,"topic":"t"}"#,
        ),
        acked(3, 280, 1_350, 7),
    ];
    lines.extend(final_read(4, 400, &[(0, 0, 7)]));
    let history = lines.join("\n");

    let stamped = check(&history);
    assert_eq!(ids(&stamped, AnomalyKind::FutureRead), Vec::<u64>::new());
    // The poll (1300) did come before the ack (1350): a read before the ack, allowed.
    assert_eq!(ids(&stamped, AnomalyKind::ReadBeforeAck), vec![7]);
    assert_eq!(stamped.verdict, Verdict::Valid, "{:?}", stamped.anomalies);

    let old = check(&unstamped(&history));
    assert_eq!(ids(&old, AnomalyKind::FutureRead), vec![7]);
    assert_eq!(old.verdict, Verdict::Invalid);
}

/// The poll completed 50 ms (by the clients' clocks) before the send of what it read was
/// invoked: a read from the future, which the receipt times (40 ms apart, inside the skew)
/// cannot prove.
#[test]
fn a_future_read_inside_the_receipt_skew_is_found_by_the_stamps() {
    let mut lines = vec![
        op(0, 10, Some(900), "consumer-1", "invoke", "poll", "null"),
        polled(1, 20, 1_000, &[(0, 0, 7)]),
        op(
            2,
            60,
            Some(1_050),
            "producer-1",
            "invoke",
            "send",
            r#"{"id":7,"topic":"t"}"#,
        ),
        acked(3, 70, 1_060, 7),
    ];
    lines.extend(final_read(4, 400, &[(0, 0, 7)]));
    let history = lines.join("\n");

    let stamped = check(&history);
    assert_eq!(ids(&stamped, AnomalyKind::FutureRead), vec![7]);
    assert_eq!(stamped.verdict, Verdict::Invalid);

    let old = check(&unstamped(&history));
    assert_eq!(ids(&old, AnomalyKind::FutureRead), Vec::<u64>::new());
    assert_eq!(ids(&old, AnomalyKind::ReadBeforeAck), Vec::<u64>::new());
    assert_eq!(old.verdict, Verdict::Valid, "{:?}", old.anomalies);
}

/// The poll reached the harness before the ack, but the producer had its ack (1100) before the
/// consumer's poll completed (1200): no read before the ack by the clocks, one by receipt order.
#[test]
fn a_read_received_before_the_ack_but_made_after_it_is_no_read_before_ack() {
    let mut lines = vec![
        op(
            0,
            10,
            Some(1_000),
            "producer-1",
            "invoke",
            "send",
            r#"{"id":7,"topic":"t"}"#,
        ),
        op(1, 20, Some(1_150), "consumer-1", "invoke", "poll", "null"),
        polled(2, 30, 1_200, &[(0, 0, 7)]),
        acked(3, 40, 1_100, 7),
    ];
    lines.extend(final_read(4, 400, &[(0, 0, 7)]));
    let history = lines.join("\n");

    let stamped = check(&history);
    assert_eq!(ids(&stamped, AnomalyKind::ReadBeforeAck), Vec::<u64>::new());
    let old = check(&unstamped(&history));
    assert_eq!(ids(&old, AnomalyKind::ReadBeforeAck), vec![7]);
}

/// consumer-1 commits offset 1; consumer-2, after a rebalance, seeks to 0 — its lines reach the
/// harness 50 ms after the commit (inside the receipt skew), but its clock says the seek came
/// 40 ms after the commit was acknowledged: a lost commit by the stamps, none without them.
#[test]
fn a_start_below_a_commit_inside_the_receipt_skew_is_a_lost_commit_by_the_stamps() {
    let commit = r#"{"group":"g","topic":"t","partition":0,"offset":1}"#;
    let rebalance = r#"{"group":"g","topic":"t","partitions":[0],"generation":2}"#;
    let mut lines = vec![
        op(
            0,
            0,
            Some(0),
            "producer-1",
            "invoke",
            "send",
            r#"{"id":0,"topic":"t"}"#,
        ),
        acked(1, 1, 1, 0),
        op(2, 10, Some(10), "consumer-1", "ok", "rebalance", rebalance),
        op(
            3,
            1000,
            Some(1_000),
            "consumer-1",
            "ok",
            "offset_commit",
            commit,
        ),
        op(
            4,
            1040,
            Some(1_030),
            "consumer-2",
            "ok",
            "rebalance",
            rebalance,
        ),
        op(
            5,
            1050,
            Some(1_040),
            "consumer-2",
            "ok",
            "seek",
            r#"{"topic":"t","partition":0,"offset":0}"#,
        ),
        op(
            6,
            1060,
            Some(1_050),
            "consumer-2",
            "ok",
            "poll",
            &records(&[(0, 0, 0)]),
        ),
    ];
    lines.extend(final_read(10, 2000, &[(0, 0, 0)]));
    let history = lines.join("\n");

    let stamped = check(&history);
    let lost = stamped
        .anomaly(AnomalyKind::LostCommit)
        .expect("a lost commit by the stamps");
    assert_eq!(lost.cases.len(), 1);
    assert_eq!(lost.cases[0].sub_kind.as_deref(), Some("seek"));

    let old = check(&unstamped(&history));
    assert!(
        old.anomaly(AnomalyKind::LostCommit).is_none(),
        "{:?}",
        old.anomalies
    );

    // The same start stamped before the commit's ack (it raced the commit): not claimed.
    let raced = history.replace(
        &format!(r#""monotonic_ns":{}"#, ns(1_040)),
        &format!(r#""monotonic_ns":{}"#, ns(990)),
    );
    assert_ne!(raced, history);
    let raced = check(&raced);
    assert!(
        raced.anomaly(AnomalyKind::LostCommit).is_none(),
        "{:?}",
        raced.anomalies
    );
}

/// A transaction whose poll returned a message that another transaction sent, though that one
/// was invoked (3 ms later by the clients' clocks) only after the first had completed: the
/// realtime edge closes a cycle with the wr edge, G1c-realtime. The receipt times are 10 ms
/// apart, so without the stamps nothing orders them: no cycle, no future read.
#[test]
fn a_transaction_reading_a_later_transaction_is_a_realtime_cycle_by_the_stamps() {
    let txn_a_invoke =
        r#"{"commit":true,"mops":[{"f":"send","id":1,"topic":"t","partition":0},{"f":"poll"}]}"#;
    let txn_a_ok = r#"{"commit":true,"mops":[{"f":"send","id":1,"topic":"t","partition":0,"offset":0},{"f":"poll","records":[{"topic":"t","partition":1,"offset":0,"id":2}]}]}"#;
    let txn_b_invoke = r#"{"commit":true,"mops":[{"f":"send","id":2,"topic":"t","partition":1}]}"#;
    let txn_b_ok =
        r#"{"commit":true,"mops":[{"f":"send","id":2,"topic":"t","partition":1,"offset":0}]}"#;
    let mut lines = vec![
        op(
            0,
            10,
            Some(100),
            "producer-1",
            "invoke",
            "txn",
            txn_a_invoke,
        ),
        op(1, 20, Some(102), "producer-1", "ok", "txn", txn_a_ok),
        op(
            2,
            30,
            Some(105),
            "producer-2",
            "invoke",
            "txn",
            txn_b_invoke,
        ),
        op(3, 40, Some(107), "producer-2", "ok", "txn", txn_b_ok),
    ];
    lines.extend(final_read(4, 400, &[(0, 0, 1), (1, 0, 2)]));
    let history = lines.join("\n");

    let stamped = check(&history);
    let g1c = stamped
        .anomaly(AnomalyKind::G1c)
        .expect("a G1c-realtime cycle");
    assert_eq!(g1c.cases.len(), 1);
    let case = &g1c.cases[0];
    assert_eq!(case.sub_kind.as_deref(), Some("realtime"));
    let mut txns = case.op_indexes.clone();
    txns.sort_unstable();
    assert_eq!(txns, vec![1, 3]);
    assert!(case.cause.contains("(realtime)"), "{}", case.cause);
    assert!(
        case.cause.ends_with("a cycle, G1c-realtime."),
        "{}",
        case.cause
    );
    // The per-message rule sees the same impossibility: a read from the future.
    assert_eq!(ids(&stamped, AnomalyKind::FutureRead), vec![2]);
    assert_eq!(stamped.verdict, Verdict::Invalid);

    let old = check(&unstamped(&history));
    assert!(
        old.anomaly(AnomalyKind::G1c).is_none(),
        "{:?}",
        old.anomalies
    );
    assert_eq!(ids(&old, AnomalyKind::FutureRead), Vec::<u64>::new());
    assert_eq!(old.verdict, Verdict::Valid, "{:?}", old.anomalies);

    // In the order the clocks allow (B completes before A is invoked), the same reads are valid.
    let restamp = |text: String, from: u64, to: u64| {
        text.replace(
            &format!(r#""monotonic_ns":{}"#, ns(from)),
            &format!(r#""monotonic_ns":{}"#, ns(to)),
        )
    };
    let ordered = restamp(restamp(history.clone(), 100, 110), 102, 112);
    assert_ne!(ordered, history);
    let ordered = check(&ordered);
    assert!(
        ordered.anomaly(AnomalyKind::G1c).is_none(),
        "{:?}",
        ordered.anomalies
    );
    assert_eq!(ordered.verdict, Verdict::Valid, "{:?}", ordered.anomalies);
}
