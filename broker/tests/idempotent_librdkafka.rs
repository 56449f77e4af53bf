//! librdkafka's idempotent producer (enable.idempotence=true, acks=all) against a 3-broker
//! cluster, across a leader SIGKILL and lost responses: every broker is reached through a proxy
//! that loses the response of every Nth Produce request after the broker appended it, so the
//! client retries batches that are already in the log. With idempotence the final log holds every
//! message exactly once and in order; the same run without idempotence holds duplicates (the
//! proxy makes them certain, so the first test cannot pass vacuously).

mod cluster;
mod common;
mod proxy;
mod rdk;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::*;
use proxy::Proxy;
use rdk::Deliveries;
use rdkafka::producer::Producer;

/// Messages each run sends.
const MESSAGES: u64 = 3_000;
/// The response of every Nth Produce request (per broker) is lost.
const LOSE_EVERY: usize = 7;

struct Run {
    acked: BTreeMap<u64, i64>,
    failed: Vec<String>,
    fatal: Option<String>,
    /// The final log: (offset, message id).
    log: Vec<(i64, Option<u64>)>,
    lost_responses: usize,
}

fn run(idempotence: bool) -> Run {
    let proxies: Vec<Proxy> = (0..3).map(|_| Proxy::start(LOSE_EVERY)).collect();
    let config = "\"broker.session.timeout.ms\" = 2000\n\"broker.heartbeat.interval.ms\" = 200\n\"replica.fetch.wait.max.ms\" = 50\n\"min.insync.replicas\" = 2\n";
    let advertised: Vec<String> = proxies
        .iter()
        .map(|p| format!("\"advertised.listener\" = \"{}\"\n", p.address))
        .collect();
    let extra: Vec<(i32, &str)> = advertised
        .iter()
        .enumerate()
        .map(|(i, lines)| (i as i32 + 1, lines.as_str()))
        .collect();
    let mut cluster = Cluster::start_with(3, config, &extra);
    for (i, proxy) in proxies.iter().enumerate() {
        proxy.set_upstream(cluster.address(i as i32 + 1));
    }
    assert_eq!(create_topic(cluster.address(1), "idem", 1, 3), 0);
    let (leader, epoch, _, _) =
        cluster.wait_partition("leader, ISR of 3", "idem", 0, |l, _, _, isr| {
            l > 0 && isr.len() == 3
        });
    for id in 1..=3 {
        cluster.wait_topic_on(id, "idem");
    }
    let deliveries = Arc::new(Deliveries::default());
    let done = Arc::new(AtomicBool::new(false));
    let bootstrap: String = proxies
        .iter()
        .map(|p| p.address.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let producer_thread = {
        let (deliveries, done) = (Arc::clone(&deliveries), Arc::clone(&done));
        std::thread::spawn(move || {
            let idempotence = idempotence.to_string();
            let producer = rdk::producer(
                &bootstrap,
                &[
                    ("enable.idempotence", idempotence.as_str()),
                    ("acks", "all"),
                    ("linger.ms", "2"),
                    ("batch.num.messages", "50"),
                    ("retry.backoff.ms", "20"),
                    ("message.timeout.ms", "90000"),
                    ("topic.metadata.refresh.interval.ms", "1000"),
                ],
                &deliveries,
            );
            let started = Instant::now();
            for id in 0..MESSAGES {
                // A fatal idempotence error: stop, the assertions report it.
                if let Err(e) = rdk::send(&producer, "idem", 0, id) {
                    eprintln!("send of id {id} failed: {e}");
                    break;
                }
                producer.poll(Duration::from_millis(1));
            }
            eprintln!("idempotence={idempotence}: sent in {:?}", started.elapsed());
            rdk::drain(&producer, Duration::from_secs(120));
            done.store(true, Ordering::SeqCst);
            producer
                .client()
                .fatal_error()
                .map(|(code, reason)| format!("{code:?}: {reason}"))
        })
    };
    let acked = |d: &Deliveries| d.acked_count();
    wait_until("a third acknowledged before the kill", 2400, || {
        (acked(&deliveries) as u64 >= MESSAGES / 3 || done.load(Ordering::SeqCst)).then_some(())
    });
    cluster.kill_broker(leader);
    let (new_leader, _, _, _) = cluster.wait_partition("failover", "idem", 0, |l, e, _, _| {
        l > 0 && l != leader && e > epoch
    });
    let fatal = producer_thread.join().expect("producer thread");
    cluster.wait_topic_on(new_leader, "idem");
    // message id → offset
    let acknowledged: BTreeMap<u64, i64> = deliveries
        .acked_on(0)
        .into_iter()
        .map(|(offset, id)| (id, offset))
        .collect();
    let failed = deliveries.failed();
    let last_acked = acknowledged.values().copied().max().unwrap_or(-1);
    let log = read_ids_past(cluster.address(new_leader), "idem", 0, last_acked);
    let lost_responses = proxies.iter().map(Proxy::lost_responses).sum();
    eprintln!("idempotence={idempotence}: {} acked, {} failed, {} records, {lost_responses} responses lost, {} produce requests", acknowledged.len(), failed.len(), log.len(), proxies.iter().map(Proxy::produce_requests).sum::<usize>());
    Run {
        acked: acknowledged,
        failed,
        fatal,
        log,
        lost_responses,
    }
}

/// Message ids that appear more than once in the log.
fn duplicated(log: &[(i64, Option<u64>)]) -> Vec<u64> {
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for (_, id) in log {
        *counts.entry(id.expect("every record is ours")).or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(id, _)| id)
        .collect()
}

#[test]
fn idempotent_librdkafka_writes_exactly_once_across_lost_responses_and_a_leader_kill() {
    let run = run(true);
    assert!(run.lost_responses > 0, "the proxy lost no response");
    assert_eq!(
        run.fatal, None,
        "librdkafka raised a fatal idempotence error"
    );
    assert!(
        run.failed.is_empty(),
        "failed deliveries: {:?}",
        &run.failed[..run.failed.len().min(5)]
    );
    assert_eq!(
        run.acked.len() as u64,
        MESSAGES,
        "every message acknowledged"
    );
    assert_eq!(
        duplicated(&run.log),
        Vec::<u64>::new(),
        "duplicates in the log"
    );
    // Every acknowledged message at its acknowledged offset, exactly once, in send order.
    let by_offset: BTreeMap<i64, u64> = run
        .log
        .iter()
        .map(|(o, id)| (*o, id.expect("ours")))
        .collect();
    for (id, offset) in &run.acked {
        assert_eq!(
            by_offset.get(offset),
            Some(id),
            "acknowledged id {id} at offset {offset}"
        );
    }
    let ids: Vec<u64> = run.log.iter().map(|(_, id)| id.expect("ours")).collect();
    assert_eq!(
        ids,
        (0..MESSAGES).collect::<Vec<_>>(),
        "the log is every message once, in order"
    );
}

#[test]
fn without_idempotence_the_same_run_duplicates() {
    let run = run(false);
    assert!(run.lost_responses > 0, "the proxy lost no response");
    let duplicates = duplicated(&run.log);
    assert!(
        !duplicates.is_empty(),
        "{} responses lost and no duplicate: retries should have appended again",
        run.lost_responses
    );
    // Nothing acknowledged is lost (acks=all, min.insync 2).
    let in_log: std::collections::BTreeSet<u64> =
        run.log.iter().filter_map(|(_, id)| *id).collect();
    for id in run.acked.keys() {
        assert!(in_log.contains(id), "acknowledged id {id} lost");
    }
}
