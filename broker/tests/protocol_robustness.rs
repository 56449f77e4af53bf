//! Protocol robustness against a real broker process: garbage, truncated frames, bad lengths,
//! unknown or unimplemented APIs and versions close that connection (or get an error), and
//! another connection is served before and after every case.

mod common;

use std::net::Shutdown;

use common::*;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    ProduceRequest,
};

fn start() -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), "\"message.max.bytes\" = 2000\n");
    (dir, broker)
}

/// Runs `case` on its own connection and asserts the broker closed it; checks another
/// connection is served before and after.
fn assert_closes(broker: &mut BrokerProcess, what: &str, case: impl FnOnce(&mut RawClient)) {
    assert_api_versions_served(broker.address);
    let mut client = RawClient::connect(broker.address);
    case(&mut client);
    assert!(
        client.is_closed_by_broker(),
        "{what}: connection not closed"
    );
    assert!(
        broker.is_running(),
        "{what}: broker died; log:\n{}",
        broker.log_text()
    );
    assert_api_versions_served(broker.address);
}

#[test]
fn bad_frames_close_only_their_connection() {
    let (_dir, mut broker) = start();
    // A second connection stays open through every case and is served at the end.
    let mut bystander = RawClient::connect(broker.address);

    assert_closes(&mut broker, "garbage", |c| {
        c.send_raw(b"\x00\x00\x00\x10GARBAGE-GARBAGE!")
    });
    assert_closes(&mut broker, "random bytes", |c| {
        c.send_raw(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    });
    assert_closes(&mut broker, "negative length", |c| {
        c.send_raw(&(-5i32).to_be_bytes())
    });
    assert_closes(&mut broker, "oversized length", |c| {
        c.send_raw(&i32::MAX.to_be_bytes())
    });
    assert_closes(&mut broker, "length below a header", |c| {
        c.send_raw(&[0, 0, 0, 2, 0, 18])
    });
    assert_closes(&mut broker, "truncated frame", |c| {
        c.send_raw(&[0, 0, 0, 100, 0, 18, 0, 3, 0, 0, 0, 1]);
        c.stream.shutdown(Shutdown::Write).expect("shutdown write");
    });
    assert_closes(&mut broker, "unknown api key", |c| {
        c.send_frame(&[0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
    });
    assert_closes(&mut broker, "unimplemented api (ElectLeaders)", |c| {
        c.send(
            ApiKey::ElectLeaders,
            1,
            &kafka_protocol::messages::ElectLeadersRequest::default(),
        );
    });
    assert_closes(&mut broker, "unsupported Produce version 13", |c| {
        c.send(ApiKey::Produce, 13, &ProduceRequest::default().with_acks(1));
    });
    assert_closes(&mut broker, "unsupported Metadata version 13", |c| {
        c.send(ApiKey::Metadata, 13, &MetadataRequest::default());
    });
    assert_closes(&mut broker, "malformed body", |c| {
        // ApiVersions v3 header (flexible) followed by a compact string claiming 100 bytes.
        c.send_frame(&[0, 18, 0, 3, 0, 0, 0, 1, 0, 0, 0, 101, b'x']);
    });
    assert_closes(&mut broker, "truncated Metadata body", |c| {
        c.send_frame(&[0, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 5, 0, 1]);
    });

    // The bystander connection is still served.
    let correlation_id = bystander.send(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
    let (got, response): (i32, ApiVersionsResponse) = decode_response(
        ApiKey::ApiVersions,
        0,
        bystander.read_frame().expect("bystander answered"),
    );
    assert_eq!((got, response.error_code), (correlation_id, 0));
}

#[test]
fn api_versions_above_max_gets_unsupported_version_as_v0() {
    let (_dir, broker) = start();
    let mut client = RawClient::connect(broker.address);
    let correlation_id = client.send(ApiKey::ApiVersions, 4, &ApiVersionsRequest::default());
    let frame = client.read_frame().expect("answered, not closed");
    let (got, response): (i32, ApiVersionsResponse) =
        decode_response(ApiKey::ApiVersions, 0, frame);
    assert_eq!(got, correlation_id);
    assert_eq!(response.error_code, 35, "UNSUPPORTED_VERSION");
    let advertised: Vec<(i16, i16, i16)> = response
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    assert!(
        advertised.contains(&(ApiKey::ApiVersions as i16, 0, 3)),
        "{advertised:?}"
    );
    // The connection stays usable, as with Kafka.
    assert_api_versions_served(broker.address);
    let again = client.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let (got, response): (i32, ApiVersionsResponse) = decode_response(
        ApiKey::ApiVersions,
        3,
        client.read_frame().expect("answered"),
    );
    assert_eq!((got, response.error_code), (again, 0));
    let advertised: Vec<(i16, i16, i16)> = response
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    let implemented: Vec<(i16, i16, i16)> =
        broker::api::table::advertised(broker::api::table::Role::SingleBroker)
            .into_iter()
            .map(|(api, min, max)| (api as i16, min, max))
            .collect();
    assert_eq!(advertised, implemented, "exactly the implemented APIs");
}

#[test]
fn produce_errors_per_partition_and_acks_zero_is_silent() {
    let (_dir, broker) = start();
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "robust", 1, 1, false), 0);

    // Bad CRC: CORRUPT_MESSAGE.
    let mut corrupt = broker::wire::batch::build_batch(0, 1, &[b"payload"]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x01;
    assert_eq!(
        produce_records(&mut client, "robust", 0, corrupt, 1)
            .expect("answer")
            .0,
        2
    );
    // Not a batch at all: CORRUPT_MESSAGE.
    assert_eq!(
        produce_records(
            &mut client,
            "robust",
            0,
            b"definitely not a batch".to_vec(),
            1
        )
        .expect("answer")
        .0,
        2
    );
    // Larger than message.max.bytes (2000): MESSAGE_TOO_LARGE.
    let big = broker::wire::batch::build_batch(0, 1, &[&[7u8; 3000]]);
    assert_eq!(
        produce_records(&mut client, "robust", 0, big, 1)
            .expect("answer")
            .0,
        10
    );
    // Unknown topic and partition: UNKNOWN_TOPIC_OR_PARTITION.
    assert_eq!(
        produce_values(&mut client, "no-such-topic", 0, &[b"x"]).0,
        3
    );
    assert_eq!(produce_values(&mut client, "robust", 7, &[b"x"]).0, 3);
    // Invalid acks.
    let batch = broker::wire::batch::build_batch(0, 1, &[b"x"]);
    assert_eq!(
        produce_records(&mut client, "robust", 0, batch, 5)
            .expect("answer")
            .0,
        21
    );
    // Nothing was appended by the failures.
    assert_eq!(list_offset(&mut client, "robust", 0, -1), (0, 0));

    // acks=0: no response; the next request's answer comes first.
    let batch = broker::wire::batch::build_batch(0, 1, &[b"silent"]);
    assert!(produce_records(&mut client, "robust", 0, batch, 0).is_none());
    let correlation_id = client.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let (got, _): (i32, ApiVersionsResponse) = decode_response(
        ApiKey::ApiVersions,
        3,
        client.read_frame().expect("answered"),
    );
    assert_eq!(
        got, correlation_id,
        "the acks=0 produce must not be answered"
    );
    assert_eq!(
        list_offset(&mut client, "robust", 0, -1),
        (0, 1),
        "acks=0 batch appended"
    );

    // Good batches get consecutive offsets; the fetch returns them.
    assert_eq!(
        produce_values(&mut client, "robust", 0, &[b"a", b"b"]),
        (0, 1)
    );
    assert_eq!(produce_values(&mut client, "robust", 0, &[b"c"]), (0, 3));
    let values: Vec<Vec<u8>> = fetch_all(&mut client, "robust", 0, 0)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        values,
        vec![
            b"silent".to_vec(),
            b"a".to_vec(),
            b"b".to_vec(),
            b"c".to_vec()
        ]
    );
    // Out of range fetch: OFFSET_OUT_OF_RANGE; earliest is 0.
    assert_eq!(fetch_once(&mut client, "robust", 0, 99, 0).0, 1);
    assert_eq!(list_offset(&mut client, "robust", 0, -2), (0, 0));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (_dir, broker) = start();
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "pipe", 1, 1, false), 0);
    let mut expected = Vec::new();
    for i in 0..200 {
        let id = match i % 3 {
            0 => client.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()),
            1 => client.send(
                ApiKey::Metadata,
                12,
                &MetadataRequest::default().with_topics(None),
            ),
            _ => {
                let batch = broker::wire::batch::build_batch(0, 1, &[b"p"]);
                let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
                    kafka_protocol::messages::produce_request::TopicProduceData::default()
                        .with_name(topic_name("pipe"))
                        .with_partition_data(vec![kafka_protocol::messages::produce_request::PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(bytes::Bytes::from(batch)))]),
                ]);
                client.send(ApiKey::Produce, 9, &request)
            }
        };
        expected.push(id);
    }
    for id in expected {
        let frame = client.read_frame().expect("answer");
        let got = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        assert_eq!(got, id, "responses out of order");
    }
    assert_eq!(list_offset(&mut client, "pipe", 0, -1), (0, 66));
}

#[test]
fn metadata_auto_create_follows_config_and_request_flag() {
    let (_dir, broker) = start();
    let mut client = RawClient::connect(broker.address);
    let ask = |client: &mut RawClient, version: i16, name: &str, allow: bool| -> MetadataResponse {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name(name)))
            ]))
            // The flag exists from v4 on (older versions always allow).
            .with_allow_auto_topic_creation(allow || version < 4);
        client.send(ApiKey::Metadata, version, &request);
        decode_response::<MetadataResponse>(
            ApiKey::Metadata,
            version,
            client.read_frame().expect("answer"),
        )
        .1
    };
    let refused = ask(&mut client, 12, "not-allowed", false);
    assert_eq!(refused.topics[0].error_code, 3);
    let created = ask(&mut client, 12, "allowed", true);
    assert_eq!(created.topics[0].error_code, 0);
    assert_eq!(created.topics[0].partitions.len(), 1);
    assert!(!created.topics[0].topic_id.is_nil());
    assert_eq!(created.controller_id.0, 1);
    assert_eq!(created.brokers[0].port, i32::from(broker.address.port()));
    // v1 has no flag: auto-create always.
    assert_eq!(
        ask(&mut client, 1, "old-client", false).topics[0].error_code,
        0
    );
    // Invalid names are refused, never turned into paths.
    assert_eq!(
        ask(&mut client, 12, "../escape", true).topics[0].error_code,
        17
    );
    // CreateTopics errors.
    assert_eq!(
        create_topic(&mut client, "allowed", 1, 1, false),
        36,
        "TOPIC_ALREADY_EXISTS"
    );
    assert_eq!(
        create_topic(&mut client, "rf3", 1, 3, false),
        38,
        "INVALID_REPLICATION_FACTOR"
    );
    assert_eq!(
        create_topic(&mut client, "zero", 0, 1, false),
        37,
        "INVALID_PARTITIONS"
    );
    assert_eq!(create_topic(&mut client, "dry-run", 2, 1, true), 0);
    assert_eq!(
        create_topic(&mut client, "dry-run", 2, -1, false),
        0,
        "validate_only created nothing"
    );
}

#[test]
fn long_poll_fetch_is_woken_by_a_produce() {
    let (_dir, broker) = start();
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "poll", 1, 1, false), 0);
    // The fetch is sent before the produce and waits up to 30 s: had the produce not woken
    // it, it would come back empty.
    let mut fetch_client = RawClient::connect(broker.address);
    let correlation_id = send_fetch(&mut fetch_client, "poll", 0, 0, 30_000);
    assert_eq!(
        produce_values(&mut client, "poll", 0, &[b"wake up"]),
        (0, 0)
    );
    let (error_code, high_watermark, records) = read_fetch(&mut fetch_client, correlation_id);
    assert_eq!((error_code, high_watermark), (0, 1));
    assert!(
        !records.is_empty(),
        "long poll returned without the produced batch"
    );
}
