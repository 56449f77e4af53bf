//! A peer client: Python confluent-kafka (its wheel bundles its own librdkafka) produces
//! idempotently (enable.idempotence, acks=all) through a proxy that loses the response of every
//! Nth Produce request; the broker's log then holds every message exactly once, in order, at the
//! offsets the delivery reports gave. Needs `python3` with `confluent_kafka` (`.ci/run` installs
//! it with pip); without them the test fails and says so.

mod common;
mod proxy;

use std::collections::BTreeMap;

use common::*;
use proxy::Proxy;

const MESSAGES: u64 = 2_000;
const LOSE_EVERY: usize = 5;

#[test]
fn confluent_kafka_idempotent_producer_writes_exactly_once_across_lost_responses() {
    let proxy = Proxy::start(LOSE_EVERY);
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &format!("\"advertised.listener\" = \"{}\"\n", proxy.address),
    );
    proxy.set_upstream(broker.address);
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "py-idem", 1, 1, false), 0);

    let report = run_python_report(
        "idempotent_producer.py",
        &[
            proxy.address.to_string(),
            "py-idem".into(),
            MESSAGES.to_string(),
        ],
    );
    eprintln!(
        "confluent-kafka with librdkafka {}: {} responses lost of {} produce requests",
        report["librdkafka"],
        proxy.lost_responses(),
        proxy.produce_requests()
    );
    assert!(proxy.lost_responses() > 0, "the proxy lost no response");
    assert_eq!(
        report["fatal"],
        serde_json::Value::Null,
        "fatal error: {report}"
    );
    assert_eq!(report["errors"], serde_json::json!([]), "delivery errors");
    assert_eq!(report["remaining"], 0, "messages still in flight");
    let acked: BTreeMap<u64, i64> = report["acked"]
        .as_array()
        .expect("acked list")
        .iter()
        .map(|pair| {
            (
                pair[0].as_u64().expect("id"),
                pair[1].as_i64().expect("offset"),
            )
        })
        .collect();
    assert_eq!(acked.len() as u64, MESSAGES, "every message acknowledged");

    let log = fetch_all(&mut client, "py-idem", 0, 0);
    let ids: Vec<u64> = log
        .iter()
        .map(|(_, value)| broker::dump::message_id(value).expect("our message"))
        .collect();
    assert_eq!(
        ids,
        (0..MESSAGES).collect::<Vec<_>>(),
        "the log is every message exactly once, in order"
    );
    for (id, offset) in &acked {
        assert_eq!(
            ids.get(usize::try_from(*offset).expect("offset")),
            Some(id),
            "acknowledged offset"
        );
    }
}
