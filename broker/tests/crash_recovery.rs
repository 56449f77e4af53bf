//! Crash recovery with real processes: SIGKILL during produce keeps every acknowledged message;
//! a corrupt batch or a torn tail in the last segment is cut at recovery, everything before it
//! stays readable, and new produces continue from the cut.

mod common;
mod rdk;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rdk::{ValueDeliveries, ValueReports};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord};

#[test]
fn sigkill_during_produce_keeps_every_acknowledged_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let config = "\"segment.bytes\" = 65536\n\"index.interval.bytes\" = 1024\n";
    let broker = BrokerProcess::start(&data_dir, config);
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "crash", 2, 1, false), 0);

    let acks = Arc::new(ValueDeliveries::default());
    let stop = Arc::new(AtomicBool::new(false));
    let producer_thread = {
        let (acks, stop, bootstrap) = (Arc::clone(&acks), Arc::clone(&stop), broker.bootstrap());
        std::thread::spawn(move || {
            let producer: BaseProducer<ValueReports> = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("acks", "all")
                .set("linger.ms", "2")
                .set("batch.num.messages", "100")
                .set("message.timeout.ms", "3000")
                .set("reconnect.backoff.max.ms", "200")
                .create_with_context(ValueReports {
                    deliveries: Arc::clone(&acks),
                    one_ack_per_offset: false,
                })
                .expect("producer");
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) && sent < 2_000_000 {
                let key = format!("k{sent}");
                let value = format!("message-{sent:010}");
                match producer.send(BaseRecord::to("crash").key(&key).payload(&value)) {
                    Ok(()) => sent += 1,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {}
                    Err((e, _)) => panic!("send: {e}"),
                }
                producer.poll(Duration::ZERO);
            }
            // Let every outstanding message be reported (acked or timed out).
            let started = Instant::now();
            while rdkafka::producer::Producer::in_flight_count(&producer) > 0
                && started.elapsed() < Duration::from_secs(30)
            {
                producer.poll(Duration::from_millis(100));
            }
            sent
        })
    };
    let enough = poll_until(1200, Duration::from_millis(50), || {
        (acks.acked.lock().expect("lock").len() >= 20_000).then_some(())
    });
    assert!(
        enough.is_some(),
        "producer did not get 20000 acks; broker log:\n{}",
        broker.log_text()
    );
    broker.kill(); // SIGKILL while the producer is still writing
    std::thread::sleep(Duration::from_millis(300)); // let the producer notice while still sending
    stop.store(true, Ordering::Relaxed);
    let sent = producer_thread.join().expect("producer thread");
    let acked = acks.acked.lock().expect("lock").clone();
    assert!(
        sent as usize > acked.len(),
        "the kill must happen while messages are in flight"
    );

    let restarted = BrokerProcess::start(&data_dir, config);
    assert!(
        restarted.log_text().contains("clean_shutdown=false"),
        "{}",
        restarted.log_text()
    );
    let mut client = RawClient::connect(restarted.address);
    let mut read = BTreeMap::new();
    for partition in 0..2 {
        for (offset, value) in fetch_all(&mut client, "crash", partition, 0) {
            read.insert((partition, offset), value);
        }
    }
    let lost: Vec<_> = acked
        .iter()
        .filter(|(key, value)| read.get(key) != Some(value))
        .take(5)
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged messages missing or different after restart: {lost:?}"
    );
    assert!(read.len() >= acked.len());
    assert_eq!(restarted.terminate(), Some(0));
    for partition in 0..2 {
        let log_end_offset = validate_partition_dir(&data_dir.join(format!("crash-{partition}")));
        let read_count = read.keys().filter(|(p, _)| *p == partition).count() as i64;
        assert_eq!(log_end_offset, read_count);
    }
}

const BATCHES: usize = 40;

fn batch_values(batch: usize) -> Vec<Vec<u8>> {
    (0..3)
        .map(|record| format!("batch-{batch:03}-record-{record}-{}", "x".repeat(40)).into_bytes())
        .collect()
}

/// Writes BATCHES batches of 3 records to a 1-partition topic and stops the broker gracefully.
fn write_and_stop(data_dir: &std::path::Path, config: &str) -> Vec<Vec<u8>> {
    let broker = BrokerProcess::start(data_dir, config);
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "cut", 1, 1, false), 0);
    let mut all = Vec::new();
    for batch in 0..BATCHES {
        let values = batch_values(batch);
        let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        assert_eq!(
            produce_values(&mut client, "cut", 0, &refs),
            (0, (batch * 3) as i64)
        );
        all.extend(values);
    }
    assert_eq!(broker.terminate(), Some(0));
    assert!(data_dir.join(::broker::CLEAN_SHUTDOWN_FILE_NAME).exists());
    all
}

/// Restarts on a damaged log and checks: LEO = `cut`, records below it intact, new produce at `cut`.
fn restart_and_check_cut(data_dir: &std::path::Path, config: &str, all: &[Vec<u8>], cut: i64) {
    std::fs::remove_file(data_dir.join(::broker::CLEAN_SHUTDOWN_FILE_NAME)).expect("remove marker");
    let broker = BrokerProcess::start(data_dir, config);
    assert!(
        broker.log_text().contains("recovery truncated the log"),
        "{}",
        broker.log_text()
    );
    let mut client = RawClient::connect(broker.address);
    assert_eq!(
        list_offset(&mut client, "cut", 0, -1),
        (0, cut),
        "LEO/HW after recovery"
    );
    let read = fetch_all(&mut client, "cut", 0, 0);
    assert_eq!(read.len() as i64, cut);
    for (offset, value) in &read {
        assert_eq!(value, &all[*offset as usize], "offset {offset}");
    }
    assert_eq!(
        produce_values(&mut client, "cut", 0, &[b"after-recovery"]),
        (0, cut)
    );
    let read = fetch_all(&mut client, "cut", 0, cut);
    assert_eq!(read, vec![(cut, b"after-recovery".to_vec())]);
    assert_eq!(broker.terminate(), Some(0));
    assert_eq!(validate_partition_dir(&data_dir.join("cut-0")), cut + 1);
}

const SMALL_SEGMENTS: &str = "\"segment.bytes\" = 2048\n\"index.interval.bytes\" = 256\n";

#[test]
fn corrupt_batch_in_the_last_segment_is_cut_at_recovery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let all = write_and_stop(&data_dir, SMALL_SEGMENTS);
    let segments = segment_files(&data_dir.join("cut-0"));
    assert!(segments.len() >= 3, "several segments: {segments:?}");
    let last = segments.last().expect("a segment");
    let positions = batch_positions(last);
    assert!(
        positions.len() >= 3,
        "batches in the last segment: {positions:?}"
    );
    let (position, total_bytes) = positions[positions.len() / 2];
    let mut data = std::fs::read(last).expect("read");
    let cut = i64::from_be_bytes(data[position..position + 8].try_into().expect("8 bytes"));
    data[position + total_bytes - 10] ^= 0x5a; // inside the records: only the CRC can tell
    std::fs::write(last, &data).expect("write");
    restart_and_check_cut(&data_dir, SMALL_SEGMENTS, &all, cut);
}

#[test]
fn torn_tail_is_cut_at_recovery_even_with_a_garbage_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let all = write_and_stop(&data_dir, SMALL_SEGMENTS);
    let last = segment_files(&data_dir.join("cut-0"))
        .pop()
        .expect("a segment");
    let positions = batch_positions(&last);
    let (position, total_bytes) = *positions.last().expect("a batch");
    let data = std::fs::read(&last).expect("read");
    let cut = i64::from_be_bytes(data[position..position + 8].try_into().expect("8 bytes"));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .expect("open");
    file.set_len((position + total_bytes / 2) as u64)
        .expect("tear");
    drop(file);
    std::fs::write(
        data_dir.join("recovery-point-offset-checkpoint"),
        b"\x00garbage\nnot a checkpoint",
    )
    .expect("write");
    restart_and_check_cut(&data_dir, SMALL_SEGMENTS, &all, cut);
    let checkpoint = std::fs::read_to_string(data_dir.join("recovery-point-offset-checkpoint"))
        .expect("rewritten");
    assert_eq!(checkpoint, format!("0\n1\ncut 0 {}\n", cut + 1));
}
