//! Connection limits against a real broker process: clients that announce large frames and send
//! nothing, slow senders (`socket.request.read.timeout.ms`), idle connections
//! (`connections.max.idle.ms`), `max.connections` (the least recently used idle connection is
//! closed for a new one; busy ones never are) and `max.connections.per.ip` with its overrides.
//! Small values in each test's config keep every wait short and bounded.

mod common;

use std::io::{ErrorKind, Read};
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

fn start(config: &str) -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), config);
    (dir, broker)
}

/// ApiVersions v3 answered on this connection.
fn served(client: &mut RawClient) -> bool {
    let correlation_id = client.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    match client.read_frame() {
        Some(frame) => {
            let (got, response): (i32, ApiVersionsResponse) =
                decode_response(ApiKey::ApiVersions, 3, frame);
            got == correlation_id && response.error_code == 0
        }
        None => false,
    }
}

/// The broker has not closed this connection (nothing to read, no EOF, within `wait`).
fn still_open(client: &mut RawClient, wait: Duration) -> bool {
    client.stream.set_read_timeout(Some(wait)).expect("timeout");
    let mut byte = [0u8; 1];
    let open = matches!(client.stream.read(&mut byte), Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut));
    client
        .stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    open
}

/// A connection from `source` (an address of 127/8) to `to`.
fn connect_from(source: &str, to: SocketAddr) -> RawClient {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(format!("{source}:0").parse().expect("source address"))?;
            socket.connect(to).await
        })
        .expect("connect");
    let stream = stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    RawClient::from_stream(stream)
}

#[test]
fn clients_announcing_100_mib_frames_and_sending_nothing_do_not_stall_others() {
    let (_dir, broker) = start("");
    // Six connections announce 100 MiB frames (600 MiB: more than the 512 MiB request budget),
    // send a few bytes of them, then nothing.
    let mut hostile: Vec<RawClient> = (0..6)
        .map(|_| {
            let mut client = RawClient::connect(broker.address);
            client.send_raw(&(100_i32 << 20).to_be_bytes());
            client.send_raw(&[0, 0, 0, 9]);
            client
        })
        .collect();
    // Let the broker read those prefixes before the client's requests (the order matters only to
    // reproduce the stall: without it the client could pass before the budget was taken).
    std::thread::sleep(Duration::from_millis(500));
    let mut client = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut client, "t", 1, 1, false), 0);
    assert_eq!(
        produce_values(&mut client, "t", 0, &[b"one", b"two"]),
        (0, 0)
    );
    let values: Vec<Vec<u8>> = fetch_all(&mut client, "t", 0, 0)
        .into_iter()
        .map(|(_, value)| value)
        .collect();
    assert_eq!(values, vec![b"one".to_vec(), b"two".to_vec()]);
    // The hostile connections are still there (their 30 s read timeout has not run out).
    for connection in &mut hostile {
        assert!(still_open(connection, Duration::from_millis(50)));
    }
}

#[test]
fn a_frame_slower_than_socket_request_read_timeout_closes_its_connection() {
    let (_dir, broker) = start("\"socket.request.read.timeout.ms\" = 500\n");
    let mut served_before = RawClient::connect(broker.address);
    assert!(served(&mut served_before));
    // A frame of 1000 bytes of which 10 arrive.
    let mut slow = RawClient::connect(broker.address);
    slow.send_raw(&1000_i32.to_be_bytes());
    slow.send_raw(&[0; 10]);
    // Only the length prefix of a 100 MiB frame.
    let mut announcer = RawClient::connect(broker.address);
    announcer.send_raw(&(100_i32 << 20).to_be_bytes());
    // Half a length prefix.
    let mut half = RawClient::connect(broker.address);
    half.send_raw(&[0, 0]);
    for (what, client) in [
        ("slow frame", &mut slow),
        ("announced frame", &mut announcer),
        ("half a length", &mut half),
    ] {
        assert!(client.is_closed_by_broker(), "{what}: not closed");
    }
    // Other connections are untouched.
    assert!(served(&mut served_before));
    assert!(served(&mut RawClient::connect(broker.address)));
}

#[test]
fn connections_max_idle_ms_closes_idle_connections_only() {
    let (_dir, broker) = start("\"connections.max.idle.ms\" = 1500\n");
    let mut never_sent = RawClient::connect(broker.address);
    let mut idle_after_a_request = RawClient::connect(broker.address);
    assert!(served(&mut idle_after_a_request));
    let mut active = RawClient::connect(broker.address);
    // Bounded: 30 requests, 100 ms apart (3 s: twice the idle time).
    for _ in 0..30 {
        assert!(served(&mut active), "an active connection was closed");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(never_sent.is_closed_by_broker());
    assert!(idle_after_a_request.is_closed_by_broker());
    assert!(served(&mut active));
}

#[test]
fn max_connections_closes_the_least_recently_used_idle_connection_never_a_busy_one() {
    let (_dir, broker) = start("\"max.connections\" = 3\n");
    // a, b, c used in that order: a is the least recently used.
    let mut a = RawClient::connect(broker.address);
    assert_eq!(create_topic(&mut a, "t", 1, 1, false), 0);
    let mut b = RawClient::connect(broker.address);
    assert!(served(&mut b));
    let mut c = RawClient::connect(broker.address);
    assert!(served(&mut c));
    let mut d = RawClient::connect(broker.address);
    assert!(
        served(&mut d),
        "a new connection is admitted at max.connections"
    );
    assert!(
        a.is_closed_by_broker(),
        "the least recently used idle connection ({:?}) is closed; b {:?}, c {:?}; log:\n{}",
        a.stream.local_addr(),
        b.stream.local_addr(),
        c.stream.local_addr(),
        broker.log_text()
    );
    let mut e = RawClient::connect(broker.address);
    assert!(served(&mut e));
    assert!(b.is_closed_by_broker(), "then the next least recently used");
    // Now every connection is busy: a 2 s long-poll fetch on an empty partition each.
    let busy: Vec<(i32, &mut RawClient)> = [&mut c, &mut d, &mut e]
        .into_iter()
        .map(|client| (send_fetch(client, "t", 0, 0, 2_000), client))
        .collect();
    // Let the broker read those fetches first (a connection whose request it has not read yet
    // is idle and may go).
    std::thread::sleep(Duration::from_millis(500));
    let mut waiting = RawClient::connect(broker.address);
    let versions = waiting.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    // No busy connection is closed for it: each gets its fetch response.
    for (correlation_id, client) in busy {
        let (error_code, high_watermark, records) = read_fetch(client, correlation_id);
        assert_eq!((error_code, high_watermark, records.len()), (0, 0, 0));
    }
    // Once they are idle again, one of them makes room and the waiting connection is served.
    let frame = waiting
        .read_frame()
        .expect("served once a connection is idle");
    let (got, _): (i32, ApiVersionsResponse) = decode_response(ApiKey::ApiVersions, 3, frame);
    assert_eq!(got, versions);
}

#[test]
fn max_connections_per_ip_refuses_one_more_and_its_override_allows_more() {
    let (_dir, broker) = start(
        "\"max.connections.per.ip\" = 2\n\"max.connections.per.ip.overrides\" = \"127.0.0.2:3\"\n",
    );
    let mut first = connect_from("127.0.0.1", broker.address);
    let mut second = connect_from("127.0.0.1", broker.address);
    assert!(served(&mut first) && served(&mut second));
    let mut third = connect_from("127.0.0.1", broker.address);
    assert!(
        third.is_closed_by_broker(),
        "a third from 127.0.0.1 is refused"
    );
    let mut overridden: Vec<RawClient> = (0..3)
        .map(|_| connect_from("127.0.0.2", broker.address))
        .collect();
    for client in &mut overridden {
        assert!(served(client), "127.0.0.2 may hold 3");
    }
    let mut fourth = connect_from("127.0.0.2", broker.address);
    assert!(
        fourth.is_closed_by_broker(),
        "a fourth from 127.0.0.2 is refused"
    );
    // A closed connection frees its address's slot (the broker sees the close asynchronously).
    drop(first);
    let admitted = poll_until(100, Duration::from_millis(50), || {
        let mut client = connect_from("127.0.0.1", broker.address);
        served(&mut client).then_some(())
    });
    assert!(
        admitted.is_some(),
        "127.0.0.1 is admitted again after a close"
    );
}
