//! No array count or length in a request allocates more than its frame holds (issue 13): for every
//! API and version the broker and the controller decode, each count of a request with an element
//! at every nesting level is replaced by 0x7FFFFFFF. In process, decoding refuses it with a named
//! error and allocates nothing large; against real processes, each such frame closes only its
//! connection and normal clients are served afterwards.

mod alloc_meter;
mod cluster;
mod common;
mod hostile;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use broker::api::table::{serves, Role};
use bytes::Bytes;
use kafka_protocol::messages::ApiKey;

/// Largest allocation decoding one of these small frames may make (they are < 1 KiB; a decoded
/// request is a few times its wire size).
const DECODE_ALLOCATION_BYTES_MAX: usize = 64 * 1024;

/// APIs whose requests hold no array at the versions served (nothing to make hostile but strings).
const WITHOUT_ARRAYS: &[ApiKey] = &[
    ApiKey::ApiVersions,
    ApiKey::FindCoordinator,
    ApiKey::Heartbeat,
    ApiKey::InitProducerId,
    ApiKey::DescribeCluster,
    ApiKey::DescribeAcls,
    ApiKey::AddOffsetsToTxn,
    ApiKey::EndTxn,
];

/// Every version the broker or the controller advertises of every API is one the codec decodes
/// (kafka-protocol 0.18 has no OffsetCommit v0-1 nor OffsetFetch v0: advertising them made a
/// client's request close its connection): a request of each, with an element at every nesting
/// level, encodes and decodes.
#[test]
fn every_advertised_version_of_every_api_decodes() {
    let mut undecodable = Vec::new();
    for (api, version) in hostile::all_api_versions() {
        let decodes = hostile::populated_body(api, version)
            .is_some_and(|body| hostile::decode_body(api, version, Bytes::from(body)).is_ok());
        if !decodes {
            undecodable.push((api, version));
        }
    }
    assert!(
        undecodable.is_empty(),
        "advertised but not decodable: {undecodable:?}"
    );
}

#[test]
fn hostile_counts_are_refused_in_process_without_large_allocations() {
    let mut refused_by_api: Vec<(ApiKey, usize)> = Vec::new();
    for (api, version) in hostile::all_api_versions() {
        let body = hostile::populated_body(api, version)
            .unwrap_or_else(|| panic!("no request to make hostile for {api:?} v{version}"));
        hostile::decode_body(api, version, Bytes::from(body.clone()))
            .unwrap_or_else(|e| panic!("the populated {api:?} v{version} does not decode: {e:#}"));
        for hostile_body in hostile::hostile_counts(&body) {
            let (decoded, largest) = alloc_meter::measure(|| {
                hostile::decode_body(api, version, Bytes::from(hostile_body.clone()))
            });
            assert!(
                largest <= DECODE_ALLOCATION_BYTES_MAX,
                "{api:?} v{version}: decoding {:02x?} allocated {largest} bytes at once",
                hostile_body
            );
            if let Err(e) = decoded {
                let message = format!("{e:#}");
                assert!(!message.is_empty());
                if message.contains("array length 2147483647 is larger than the") {
                    match refused_by_api.iter_mut().find(|(a, _)| *a == api) {
                        Some((_, count)) => *count += 1,
                        None => refused_by_api.push((api, 1)),
                    }
                }
            }
        }
    }
    for (api, version) in hostile::all_api_versions() {
        let refused = refused_by_api.iter().any(|(a, _)| *a == api);
        assert!(
            refused || WITHOUT_ARRAYS.contains(&api),
            "no hostile array count of {api:?} (e.g. v{version}) was refused by its length check"
        );
    }
}

/// Sends `frame` (without its length prefix) on a fresh connection and closes it.
fn send_and_close(address: SocketAddr, frame: &[u8]) {
    let mut stream =
        TcpStream::connect_timeout(&address, Duration::from_secs(10)).expect("connect");
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut bytes = (frame.len() as i32).to_be_bytes().to_vec();
    bytes.extend_from_slice(frame);
    // The broker may close first (it refuses the frame): that is the expected answer.
    let _ = stream.write_all(&bytes);
}

#[test]
fn hostile_counts_close_only_their_connection_on_broker_and_controller() {
    let mut cluster = cluster::Cluster::start(1, "");
    let broker_address = cluster.address(1);
    let controller_address = cluster.controller_address;
    // Created before the hostile frames: some of those that still decode register made-up
    // brokers with the controller (it checks no cluster id), which a new topic could land on.
    assert_eq!(
        cluster::create_topic(broker_address, "after-hostile", 1, 1),
        0
    );
    cluster.wait_topic_on(1, "after-hostile");
    let mut sent = 0;
    for (api, version) in hostile::all_api_versions() {
        let Some(body) = hostile::populated_body(api, version) else {
            continue;
        };
        let in_broker = serves(Role::ClusterBroker, api);
        let in_controller = serves(Role::Controller, api);
        for hostile_body in hostile::hostile_counts(&body) {
            let frame = hostile::frame(api, version, 7, &hostile_body);
            if in_broker {
                send_and_close(broker_address, &frame);
            }
            if in_controller {
                send_and_close(controller_address, &frame);
            }
            sent += 1;
        }
        assert!(
            cluster.controller.as_mut().is_some_and(|c| c.is_running()),
            "the controller died on hostile {api:?} v{version}; log:\n{}",
            cluster
                .controller
                .as_ref()
                .map(|c| c.log_text())
                .unwrap_or_default()
        );
        assert!(
            cluster
                .brokers
                .get_mut(&1)
                .and_then(Option::as_mut)
                .is_some_and(|b| b.is_running()),
            "the broker died on hostile {api:?} v{version}; log:\n{}",
            cluster.broker(1).log_text()
        );
    }
    assert!(sent > 1000, "only {sent} hostile frames");
    // Both still serve normal clients: metadata from each, and a produce read back.
    common::assert_api_versions_served(broker_address);
    assert!(cluster
        .controller_metadata()
        .brokers
        .iter()
        .any(|b| b.node_id.0 == 1));
    let mut client = common::RawClient::connect(broker_address);
    assert_eq!(
        common::produce_values(&mut client, "after-hostile", 0, &[b"still here"]),
        (0, 0)
    );
    assert!(cluster
        .broker(1)
        .log_text()
        .contains("array length 2147483647 is larger than the"));
}
