//! The classes about what a broker acknowledged or served and did not keep: `lost_commit` (a group
//! resumed below an acknowledged commit) and `uncommitted_read` (a consumer was served a record
//! that the log later lost), each against the legitimate history it must not be confused with.

use checkers::{check_text, AnomalyKind, Expectations, Verdict};

/// One history line; `t_ms` is the harness's receipt time.
fn op(index: u64, t_ms: u64, process: &str, kind: &str, f: &str, value: &str) -> String {
    format!(
        r#"{{"index":{index},"time_ns":{},"process":"{process}","type":"{kind}","f":"{f}","value":{value}}}"#,
        t_ms * 1_000_000
    )
}

fn send(index: u64, t_ms: u64, id: u64, partition: i32, offset: i64) -> [String; 2] {
    [
        op(
            index,
            t_ms,
            "producer-1",
            "invoke",
            "send",
            &format!(r#"{{"id":{id},"topic":"t"}}"#),
        ),
        op(
            index + 1,
            t_ms + 1,
            "producer-1",
            "ok",
            "send",
            &format!(r#"{{"id":{id},"topic":"t","partition":{partition},"offset":{offset}}}"#),
        ),
    ]
}

fn poll(index: u64, t_ms: u64, process: &str, records: &[(i64, u64)]) -> String {
    let records: Vec<String> = records
        .iter()
        .map(|(o, id)| format!(r#"{{"topic":"t","partition":0,"offset":{o},"id":{id}}}"#))
        .collect();
    op(
        index,
        t_ms,
        process,
        "ok",
        "poll",
        &format!(r#"{{"records":[{}]}}"#, records.join(",")),
    )
}

/// The final read of partition 0: `records`, between the harness's invoke and ok.
fn final_read(index: u64, t_ms: u64, records: &[(i64, u64)]) -> Vec<String> {
    vec![
        op(index, t_ms, "harness", "invoke", "final_read", "null"),
        poll(index + 1, t_ms + 1, "final-reader", records),
        op(index + 2, t_ms + 2, "harness", "ok", "final_read", "null"),
    ]
}

fn commit(index: u64, t_ms: u64, process: &str, offset: i64) -> String {
    op(
        index,
        t_ms,
        process,
        "ok",
        "offset_commit",
        &format!(r#"{{"group":"g","topic":"t","partition":0,"offset":{offset}}}"#),
    )
}

fn seek(index: u64, t_ms: u64, process: &str, offset: i64) -> String {
    op(
        index,
        t_ms,
        process,
        "ok",
        "seek",
        &format!(r#"{{"topic":"t","partition":0,"offset":{offset}}}"#),
    )
}

fn rebalance(index: u64, t_ms: u64, process: &str) -> String {
    op(
        index,
        t_ms,
        process,
        "ok",
        "rebalance",
        r#"{"group":"g","topic":"t","partitions":[0],"generation":2}"#,
    )
}

/// Four messages at offsets 0..4, read by consumer-1, which commits `committed` after them; the
/// coordinator is killed; then `starter` joins and starts at `start` (a seek, as processing
/// consumers report it, or its first poll after the assignment when `start_by_seek` is false).
fn group_history(committed: &[i64], starter: &str, start: i64, start_by_seek: bool) -> String {
    let mut lines = Vec::new();
    for id in 0..4u64 {
        lines.extend(send(id * 2, id * 10, id, 0, id as i64));
    }
    lines.push(rebalance(10, 50, "consumer-1"));
    lines.push(poll(
        11,
        60,
        "consumer-1",
        &[(0, 0), (1, 1), (2, 2), (3, 3)],
    ));
    for (i, c) in committed.iter().enumerate() {
        lines.push(commit(12 + i as u64, 70 + i as u64 * 10, "consumer-1", *c));
    }
    lines.push(op(20, 200, "nemesis", "ok", "kill", r#"{"node":"n2"}"#));
    lines.push(op(21, 2200, "nemesis", "ok", "restart", r#"{"node":"n2"}"#));
    lines.push(rebalance(22, 3000, starter));
    if start_by_seek {
        lines.push(seek(23, 3001, starter, start));
    }
    let records: Vec<(i64, u64)> = (start..4).map(|o| (o, o as u64)).collect();
    if !records.is_empty() {
        lines.push(poll(24, 3010, starter, &records));
    }
    lines.extend(final_read(30, 4000, &[(0, 0), (1, 1), (2, 2), (3, 3)]));
    lines.join("\n")
}

#[test]
fn a_seek_below_an_acknowledged_commit_is_a_lost_commit_naming_both_and_the_fault() {
    let a = check_text(
        &group_history(&[4], "consumer-2", 2, true),
        Expectations::default(),
    )
    .expect("valid history");
    assert_eq!(a.verdict, Verdict::Invalid, "{:?}", a.anomalies);
    let lost = a.anomaly(AnomalyKind::LostCommit).expect("lost_commit");
    assert_eq!(lost.count, 1);
    let case = &lost.cases[0];
    assert_eq!(case.sub_kind.as_deref(), Some("seek"));
    assert_eq!(case.process.as_deref(), Some("consumer-2"));
    assert_eq!(case.op_indexes, vec![12, 23]);
    assert_eq!(case.positions[0].offset, 4);
    assert_eq!(case.read_at[0].offset, 2);
    assert!(
        case.cause.contains("committed offset 4") && case.cause.contains("at offset 2"),
        "{}",
        case.cause
    );
    assert!(
        case.cause.contains("n2"),
        "the kill between them: {}",
        case.cause
    );
    assert_eq!(a.counts.lost_commit, 1);
}

#[test]
fn a_first_poll_after_an_assignment_below_the_commit_is_one_too() {
    let a = check_text(
        &group_history(&[4], "consumer-2", 1, false),
        Expectations::default(),
    )
    .expect("valid history");
    let lost = a.anomaly(AnomalyKind::LostCommit).expect("lost_commit");
    assert_eq!(lost.cases[0].sub_kind.as_deref(), Some("first_poll"));
}

#[test]
fn a_start_at_or_above_the_latest_commit_is_no_lost_commit() {
    for (commits, start) in [
        (vec![4], 4),
        // The group itself committed lower later (a rewind): the latest commit counts.
        (vec![4, 2], 2),
    ] {
        let a = check_text(
            &group_history(&commits, "consumer-2", start, true),
            Expectations::default(),
        )
        .expect("valid history");
        assert!(
            a.anomaly(AnomalyKind::LostCommit).is_none(),
            "{commits:?} then {start}: {:?}",
            a.anomalies
        );
        assert_eq!(a.verdict, Verdict::Valid, "{commits:?}: {:?}", a.anomalies);
    }
}

#[test]
fn a_start_racing_the_commit_through_another_pipe_is_not_claimed() {
    // consumer-2's seek arrives 50 ms after consumer-1's commit: within the receipt skew.
    let lines = [
        send(0, 0, 0, 0, 0).join("\n"),
        rebalance(2, 10, "consumer-1"),
        commit(3, 1000, "consumer-1", 1),
        rebalance(4, 1040, "consumer-2"),
        seek(5, 1050, "consumer-2", 0),
        poll(6, 1060, "consumer-2", &[(0, 0)]),
        final_read(10, 2000, &[(0, 0)]).join("\n"),
    ];
    let a = check_text(&lines.join("\n"), Expectations::default()).expect("valid");
    assert!(
        a.anomaly(AnomalyKind::LostCommit).is_none(),
        "{:?}",
        a.anomalies
    );
}

#[test]
fn another_group_s_commit_does_not_bind_a_consumer() {
    let history = group_history(&[4], "consumer-2", 2, true).replace(
        r#""offset_commit","value":{"group":"g""#,
        r#""offset_commit","value":{"group":"other""#,
    );
    let a = check_text(&history, Expectations::default()).expect("valid history");
    assert!(
        a.anomaly(AnomalyKind::LostCommit).is_none(),
        "{:?}",
        a.anomalies
    );
}

/// Message 1 is read at offset 1 by a consumer before its ack; the leader then dies, and the
/// final read holds `final_records` (message 1 retried at offset 2, or nothing past offset 0).
/// `other`: a message sent after the kill, acknowledged at (its id, offset).
fn read_history(
    final_records: &[(i64, u64)],
    ack_of_1: Option<i64>,
    other: Option<(u64, i64)>,
) -> String {
    let mut lines = Vec::new();
    lines.extend(send(0, 0, 0, 0, 0));
    lines.push(op(
        2,
        10,
        "producer-1",
        "invoke",
        "send",
        r#"{"id":1,"topic":"t"}"#,
    ));
    lines.push(poll(3, 20, "consumer-1", &[(0, 0), (1, 1)]));
    lines.push(op(4, 30, "nemesis", "ok", "kill", r#"{"node":"n1"}"#));
    if let Some((id, offset)) = other {
        lines.extend(send(6, 500, id, 0, offset));
    }
    match ack_of_1 {
        Some(offset) => lines.push(op(
            8,
            900,
            "producer-1",
            "ok",
            "send",
            &format!(r#"{{"id":1,"topic":"t","partition":0,"offset":{offset}}}"#),
        )),
        None => lines.push(op(
            8,
            900,
            "producer-1",
            "info",
            "send",
            r#"{"id":1,"topic":"t"}"#,
        )),
    }
    lines.extend(final_read(10, 2000, final_records));
    lines.join("\n")
}

#[test]
fn a_read_record_the_log_later_lost_is_an_uncommitted_read() {
    // Overwritten: the retried message 1 landed at offset 2 after another message took offset 1.
    let history = read_history(&[(0, 0), (1, 7), (2, 1)], Some(2), Some((7, 1)));
    let a = check_text(&history, Expectations::default()).expect("valid history");
    let class = a
        .anomaly(AnomalyKind::UncommittedRead)
        .expect("uncommitted_read");
    let case = &class.cases[0];
    assert_eq!(case.sub_kind.as_deref(), Some("overwritten"));
    assert_eq!(case.ids, vec![1, 7]);
    assert_eq!(case.positions[0].offset, 1);
    assert!(
        case.cause.contains("kill") || case.cause.contains("n1"),
        "{}",
        case.cause
    );
    assert_eq!(a.verdict, Verdict::Invalid);

    // Truncated: the final read ends at offset 0, message 1 never acknowledged.
    let a = check_text(
        &read_history(&[(0, 0)], None, None),
        Expectations::default(),
    )
    .expect("valid history");
    let case = &a
        .anomaly(AnomalyKind::UncommittedRead)
        .expect("uncommitted_read")
        .cases[0];
    assert_eq!(case.sub_kind.as_deref(), Some("truncated"));
    assert_eq!(case.ids, vec![1]);
}

#[test]
fn a_read_before_the_ack_of_a_record_that_stays_is_only_read_before_ack() {
    let a = check_text(
        &read_history(&[(0, 0), (1, 1)], Some(1), None),
        Expectations::default(),
    )
    .expect("valid history");
    assert!(
        a.anomaly(AnomalyKind::UncommittedRead).is_none(),
        "{:?}",
        a.anomalies
    );
    assert!(a.anomaly(AnomalyKind::ReadBeforeAck).is_some());
    assert_eq!(a.verdict, Verdict::Valid, "{:?}", a.anomalies);
}

#[test]
fn a_record_acknowledged_where_it_was_read_and_then_lost_is_lost_not_an_uncommitted_read() {
    // Message 1 read at offset 1, acknowledged at offset 1 (so committed there), and gone from the
    // final read (a power loss on one node): a loss of committed data.
    let a = check_text(
        &read_history(&[(0, 0)], Some(1), None),
        Expectations::default(),
    )
    .expect("valid history");
    assert!(
        a.anomaly(AnomalyKind::UncommittedRead).is_none(),
        "{:?}",
        a.anomalies
    );
    assert_eq!(a.counts.lost, 1, "{:?}", a.anomalies);
    assert_eq!(a.counts.read_then_lost, 1, "{:?}", a.anomalies);
    assert_eq!(a.verdict, Verdict::Invalid);
}

/// `read_history` with the high watermark the consumer's client recorded with each record it read
/// (`hw`: the same for both records of its poll), as kaos's clients write it since issue 19.
fn read_history_hw(
    final_records: &[(i64, u64)],
    ack_of_1: Option<i64>,
    other: Option<(u64, i64)>,
    hw: i64,
) -> String {
    let mark = format!(r#","high_watermark":{hw}}}"#);
    read_history(final_records, ack_of_1, other)
        .lines()
        .map(|line| {
            if line.contains(r#""process":"consumer-1""#) {
                line.replace(r#""id":0}"#, &format!(r#""id":0{mark}"#))
                    .replace(r#""id":1}"#, &format!(r#""id":1{mark}"#))
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_recorded_high_watermark_makes_a_read_above_it_an_uncommitted_read_on_its_own() {
    // Message 1 read at offset 1 while the client's high watermark was 1, acknowledged there
    // later, and still there in the final read: the inference sees only a read before the ack;
    // the high watermark shows the broker served it uncommitted.
    let plain = read_history(&[(0, 0), (1, 1)], Some(1), None);
    let a = check_text(&plain, Expectations::default()).expect("valid history");
    assert!(
        a.anomaly(AnomalyKind::UncommittedRead).is_none(),
        "{:?}",
        a.anomalies
    );

    let history = read_history_hw(&[(0, 0), (1, 1)], Some(1), None, 1);
    assert!(history.contains(r#""high_watermark":1"#), "{history}");
    let a = check_text(&history, Expectations::default()).expect("valid history");
    let class = a
        .anomaly(AnomalyKind::UncommittedRead)
        .expect("uncommitted_read");
    assert_eq!(class.count, 1);
    let case = &class.cases[0];
    assert_eq!(case.sub_kind.as_deref(), Some("above_high_watermark"));
    assert_eq!(case.id, 1);
    assert_eq!(case.positions[0].offset, 1);
    assert_eq!(case.process.as_deref(), Some("consumer-1"));
    assert!(case.op_indexes.contains(&3), "{:?}", case.op_indexes);
    assert!(
        case.cause.contains("high watermark for the partition")
            && case.cause.contains("was 1")
            && case.cause.contains("the final read holds it there"),
        "{}",
        case.cause
    );
    assert_eq!(a.verdict, Verdict::Invalid);
    // The read before the ack is still that, too.
    assert!(a.anomaly(AnomalyKind::ReadBeforeAck).is_some());
}

#[test]
fn a_read_below_the_recorded_high_watermark_is_committed_even_if_the_log_later_lost_it() {
    // The overwritten history of the inference, but the client's high watermark was 2 when it
    // read offset 1: the record was committed when served, so losing it is a loss of committed
    // data (the log holds message 7 there), not an uncommitted read.
    let history = read_history_hw(&[(0, 0), (1, 7), (2, 1)], Some(2), Some((7, 1)), 2);
    let a = check_text(&history, Expectations::default()).expect("valid history");
    assert!(
        a.anomaly(AnomalyKind::UncommittedRead).is_none(),
        "{:?}",
        a.anomalies
    );
    assert!(
        a.anomaly(AnomalyKind::InconsistentOffsets).is_some(),
        "{:?}",
        a.anomalies
    );
    assert!(
        a.anomaly(AnomalyKind::ReadBeforeAck).is_some(),
        "{:?}",
        a.anomalies
    );

    // Truncated, never acknowledged, read below the high watermark: `read_then_lost`.
    let history = read_history_hw(&[(0, 0)], None, None, 2);
    let a = check_text(&history, Expectations::default()).expect("valid history");
    assert!(
        a.anomaly(AnomalyKind::UncommittedRead).is_none(),
        "{:?}",
        a.anomalies
    );
    assert_eq!(a.counts.read_then_lost, 1, "{:?}", a.anomalies);
}

#[test]
fn a_read_above_the_high_watermark_says_what_the_final_read_holds_and_needs_none() {
    let history = read_history_hw(&[(0, 0)], None, None, 1);
    let a = check_text(&history, Expectations::default()).expect("valid history");
    let case = &a
        .anomaly(AnomalyKind::UncommittedRead)
        .expect("uncommitted_read")
        .cases[0];
    assert_eq!(case.sub_kind.as_deref(), Some("above_high_watermark"));
    assert!(
        case.cause.contains("ends before that offset"),
        "{}",
        case.cause
    );

    let history = read_history_hw(&[(0, 0), (1, 7), (2, 1)], Some(2), Some((7, 1)), 0);
    let a = check_text(&history, Expectations::default()).expect("valid history");
    let class = a
        .anomaly(AnomalyKind::UncommittedRead)
        .expect("uncommitted_read");
    // Both records of the poll were at or above the high watermark 0.
    assert_eq!(class.count, 2, "{:?}", class.cases);
    let case = class
        .cases
        .iter()
        .find(|c| c.id == 1)
        .expect("message 1's case");
    assert_eq!(case.ids, vec![1, 7]);
    assert!(case.cause.contains("holds message 7"), "{}", case.cause);

    // Without a final read the high watermark alone is the evidence.
    let cut = history
        .lines()
        .take_while(|l| !l.contains("final_read"))
        .collect::<Vec<_>>()
        .join("\n");
    let a = check_text(&cut, Expectations::default()).expect("valid history");
    let class = a
        .anomaly(AnomalyKind::UncommittedRead)
        .expect("uncommitted_read");
    assert_eq!(class.count, 2);
    assert_eq!(a.verdict, Verdict::Invalid);
}

#[test]
fn every_read_above_the_high_watermark_is_counted_beyond_the_kept_cases() {
    let reads: u64 = 1_500;
    let mut lines = Vec::new();
    for k in 0..reads {
        let records = format!(
            r#"{{"records":[{{"topic":"t","partition":0,"offset":{k},"id":{k},"high_watermark":{k}}}]}}"#
        );
        lines.push(op(k, k, "consumer-1", "ok", "poll", &records));
    }
    let a = check_text(&lines.join("\n"), Expectations::default()).expect("valid history");
    let class = a
        .anomaly(AnomalyKind::UncommittedRead)
        .expect("uncommitted_read");
    assert_eq!(class.count, reads);
    assert!(class.cases.len() < reads as usize, "{}", class.cases.len());
    assert_eq!(a.counts.uncommitted_read, reads);
}

#[test]
fn a_read_of_a_record_acknowledged_there_before_is_no_read_above_the_high_watermark() {
    // Sent and acknowledged at offset 0 at 0 ms; a poll returns it with the client's high
    // watermark 0: librdkafka's cache went back (a new leader whose HW lags) while the record,
    // served below the old leader's HW, waited in the client's queue. Read 500 ms after its
    // ack it proves nothing; read within the receipt skew of the ack it still counts.
    let poll_at = |index: u64, t_ms: u64| {
        op(
            index,
            t_ms,
            "consumer-1",
            "ok",
            "poll",
            r#"{"records":[{"topic":"t","partition":0,"offset":0,"id":0,"high_watermark":0}]}"#,
        )
    };
    let mut late: Vec<String> = send(0, 0, 0, 0, 0).into();
    late.push(poll_at(2, 500));
    let a = check_text(&late.join("\n"), Expectations::default()).expect("valid history");
    assert!(
        a.anomaly(AnomalyKind::UncommittedRead).is_none(),
        "{:?}",
        a.anomalies
    );

    let mut close: Vec<String> = send(0, 0, 0, 0, 0).into();
    close.push(poll_at(2, 50));
    let a = check_text(&close.join("\n"), Expectations::default()).expect("valid history");
    let class = a
        .anomaly(AnomalyKind::UncommittedRead)
        .expect("uncommitted_read");
    assert_eq!(class.count, 1, "{:?}", class.cases);
}
