//! The final read (drain): after the faults heal, a fresh reader asks every partition for its
//! start and end offsets, then reads each from its start up to the end offset the broker reported.
//! Because it reads to a known end, a message missing from it is lost, not late. It exits non-zero
//! when it could not reach every end within its timeout, and the harness records that. A topic
//! that every Metadata answer says does not exist is a complete read of nothing: its `end_offsets`
//! says `topic_missing` with the error.

use crate::consumer::{create, lookup_partitions, poll_batch, Events};
use crate::limits::{
    FINAL_READ_SETTLE_MS, FINAL_READ_SETTLE_ROUNDS_MAX, METADATA_ATTEMPTS_MAX, METADATA_TIMEOUT_MS,
    POLL_WAIT_MS,
};
use crate::ops::{OpSink, OpType, F};
use crate::spec::FinalReadSpec;
use crate::WorkloadError;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub fn run(
    spec: &FinalReadSpec,
    sink: &mut OpSink,
    stop: &AtomicBool,
) -> Result<(), WorkloadError> {
    let deadline = Instant::now() + Duration::from_millis(spec.timeout_ms);
    let consumer = create(
        &spec.bootstrap,
        &spec.config,
        true,
        Events::new(&spec.topic, &spec.config, false, false),
    )?;
    let partitions = match lookup_partitions(consumer.client(), &spec.topic, stop) {
        Ok(partitions) => partitions,
        Err(e) if e.unknown_every_time => {
            return record_topic_missing(sink, &spec.topic, &e.last_error)
        }
        Err(e) => return Err(e.into_error(&spec.topic)),
    };

    sink.op(
        OpType::Invoke,
        F::EndOffsets,
        json!({"topic": spec.topic}),
        None,
    );
    sink.flush()?;
    let ends = settled_ends(&consumer, spec, &partitions, deadline, sink)?;
    let listed: Vec<_> = ends
        .iter()
        .map(|(p, (low, high))| json!({"partition": p, "low": low, "high": high}))
        .collect();
    sink.op(
        OpType::Ok,
        F::EndOffsets,
        json!({"topic": spec.topic, "partitions": listed}),
        None,
    );
    sink.flush()?;

    // Read each non-empty partition from its start; done when the next offset to read reaches the end.
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for (&p, &(low, high)) in &ends {
        if high > low {
            next.insert(p, low);
            tpl.add_partition_offset(&spec.topic, p, Offset::Offset(low))
                .map_err(WorkloadError::kafka("building the assignment"))?;
        }
    }
    consumer
        .assign(&tpl)
        .map_err(WorkloadError::kafka("assigning partitions"))?;
    let done = |next: &BTreeMap<i32, i64>| {
        next.iter()
            .all(|(p, n)| ends.get(p).is_some_and(|&(_, high)| *n >= high))
    };
    while !done(&next) {
        if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
            let missing: Vec<_> = next
                .iter()
                .filter_map(|(p, n)| {
                    ends.get(p)
                        .filter(|(_, high)| n < high)
                        .map(|(_, high)| format!("partition {p}: at {n} of {high}"))
                })
                .collect();
            return Err(WorkloadError::Incomplete(format!(
                "final read did not reach the end: {}",
                missing.join(", ")
            )));
        }
        let mut at_end = false;
        poll_batch(&consumer, sink, |r| {
            if r.offset >= 0 {
                if let Some(n) = next.get_mut(&r.partition) {
                    *n = (*n).max(r.offset + 1);
                }
            } else {
                at_end = true;
            }
        })?;
        if at_end {
            advance_to_positions(&consumer, &mut next);
        }
    }
    Ok(())
}

/// Every answer said the topic does not exist: the read is complete, and found nothing. The
/// checker decides what that means (a loss of everything acknowledged to the topic, or nothing
/// verified when nothing was).
fn record_topic_missing(sink: &mut OpSink, topic: &str, error: &str) -> Result<(), WorkloadError> {
    sink.op(OpType::Invoke, F::EndOffsets, json!({"topic": topic}), None);
    sink.op(
        OpType::Ok,
        F::EndOffsets,
        json!({"topic": topic, "partitions": [], "topic_missing": error}),
        None,
    );
    sink.flush()?;
    Ok(())
}

/// The end offsets are the partitions' high watermarks, which may still be moving when the read
/// starts (after heal, followers are catching up and the HW follows them, so records that were
/// acknowledged and read earlier can sit just above it). Read them until two readings a second
/// apart agree (bounded), so that the read goes to the end of what the cluster committed.
fn settled_ends(
    consumer: &crate::consumer::KaosConsumer,
    spec: &FinalReadSpec,
    partitions: &[i32],
    deadline: Instant,
    sink: &mut OpSink,
) -> Result<BTreeMap<i32, (i64, i64)>, WorkloadError> {
    let mut ends = watermarks(consumer, spec, partitions, deadline, sink)?;
    for _ in 0..FINAL_READ_SETTLE_ROUNDS_MAX {
        std::thread::sleep(Duration::from_millis(FINAL_READ_SETTLE_MS));
        let again = watermarks(consumer, spec, partitions, deadline, sink)?;
        let settled = again == ends;
        ends = again;
        if settled {
            break;
        }
    }
    Ok(ends)
}

/// The end of a partition may be a transaction marker (a control record, which a consumer never
/// returns) or an aborted transaction's records, which read_committed skips: at a partition's end
/// the consumer's position, not the last record read, says how far it got.
fn advance_to_positions(consumer: &crate::consumer::KaosConsumer, next: &mut BTreeMap<i32, i64>) {
    if let Ok(positions) = consumer.position() {
        for e in positions.elements() {
            if let (Offset::Offset(at), Some(n)) = (e.offset(), next.get_mut(&e.partition())) {
                *n = (*n).max(at);
            }
        }
    }
}

/// Low and high watermarks of every partition, retried per partition (bounded).
fn watermarks(
    consumer: &crate::consumer::KaosConsumer,
    spec: &FinalReadSpec,
    partitions: &[i32],
    deadline: Instant,
    sink: &mut OpSink,
) -> Result<BTreeMap<i32, (i64, i64)>, WorkloadError> {
    let mut ends: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for &p in partitions {
        let mut attempt = 0;
        let watermarks = loop {
            attempt += 1;
            match consumer.fetch_watermarks(
                &spec.topic,
                p,
                Duration::from_millis(METADATA_TIMEOUT_MS),
            ) {
                Ok(w) => break w,
                Err(e) if attempt >= METADATA_ATTEMPTS_MAX || Instant::now() > deadline => {
                    sink.op(
                        OpType::Fail,
                        F::EndOffsets,
                        json!({"topic": spec.topic}),
                        Some(&e.to_string()),
                    );
                    sink.flush()?;
                    return Err(WorkloadError::kafka(format!(
                        "end offsets of partition {p}"
                    ))(e));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(POLL_WAIT_MS * 5)),
            }
        };
        ends.insert(p, watermarks);
    }
    Ok(ends)
}
