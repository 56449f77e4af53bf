//! A userspace TCP proxy in front of a broker, for the link faults the kernel cannot do here (no
//! netem): delay, jitter, bandwidth limit, connection reset, blackhole, dropped responses. Each broker advertises its
//! proxy's address, so clients and the other brokers reach it through the proxy; the proxy tells
//! a broker's connection from a client's by the peer address (a node's own address in the run's
//! network) and applies a fault to the links it names (`clients`, `brokers` or `all`).
//!
//! Bytes are forwarded in chunks in order; a delayed chunk is held until its deadline (the
//! deadlines never decrease, so jitter does not reorder a stream); a bandwidth limit sleeps after
//! each chunk for its size over the rate; a blackhole reads and discards (the connection stays
//! open, nothing arrives, as when packets vanish); dropped responses discard only what the broker
//! sends back (its requests arrive and are carried out, their answers never do), and lifting
//! that fault resets the connections it hit, so that a client retries every request it has in
//! flight at once (several appended batches retried together); a reset closes both sockets with SO_LINGER 0 so
//! that both peers get an RST and whatever was buffered in the proxy is lost.
//!
//! The proxy reads the Kafka framing (a 4-byte length before each request and response) to count
//! each connection's requests in flight: requests forwarded to the broker less responses
//! delivered back. With `reset_in_flight_min` a fault that drops responses resets a connection
//! the moment it has that many requests in flight (the idempotence window: several appended
//! batches retried at once), and [`Proxy::take_in_flight`] reports the most seen and the resets.
//!
//! A reset that cuts a request (`reset(links, true)`, the scenario's `reset_cuts_request`) is aimed
//! at the moment a reset costs most: each connection it covers holds its next request whole (its
//! sender has written all of it, so a producer with acks=0 counts its messages delivered), never
//! forwards it, and is reset then; a connection that sends no request within [`CUT_WAIT_MAX`] is
//! reset as it is. The requests cut are counted for [`Proxy::take_in_flight`].

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Bytes read at once from one side.
const CHUNK_BYTES: usize = 16 * 1024;
/// Chunks held per direction (delayed or waiting for bandwidth) before reading pauses.
const CHUNKS_HELD_MAX: usize = 256;
/// How long a connection that reached `reset_in_flight_min` is left before its reset, so that
/// the broker reads and carries out the requests in flight (its responses are dropped meanwhile).
const IN_FLIGHT_RESET_SETTLE: Duration = Duration::from_millis(200);
/// How long a reset that cuts a request waits for a connection's next request before it resets
/// the connection anyway.
pub const CUT_WAIT_MAX: Duration = Duration::from_secs(1);

/// Which connections through a proxy a fault hits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Links {
    /// Every connection.
    #[default]
    All,
    /// Connections from client processes.
    Clients,
    /// Connections from the other brokers (replication, and anything a broker sends a broker).
    Brokers,
}

impl Links {
    fn covers(self, from_broker: bool) -> bool {
        match self {
            Links::All => true,
            Links::Clients => !from_broker,
            Links::Brokers => from_broker,
        }
    }
}

/// A fault on the links through one proxy; zero values do nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LinkFault {
    pub links: Links,
    pub delay_ms: u64,
    pub jitter_ms: u64,
    pub bandwidth_bytes_per_s: u64,
    pub blackhole: bool,
    /// Discard what the broker sends (responses), forward what it is sent (requests).
    pub drop_responses: bool,
    /// With `drop_responses`: reset a connection as soon as it has this many requests in flight
    /// (0: only when the fault is lifted).
    pub reset_in_flight_min: u64,
    /// A reset (the `reset` fault) cuts each connection's next request: see the module's docs.
    pub reset_cuts_request: bool,
}

/// How the proxy tells brokers from clients and which source address it relays each from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The nodes' addresses: a connection from one of them is a broker's.
    pub node_ips: Vec<Ipv4Addr>,
    /// The relayed connection of a client comes from here …
    pub client_src: Ipv4Addr,
    /// … and that of a broker from here, so that the node behind the proxy can tell them apart.
    pub relay_src: Ipv4Addr,
}

struct Shared {
    fault: Mutex<Option<LinkFault>>,
    /// A reset generation, the links it hits and whether it cuts a request; every connection
    /// watches it.
    reset: watch::Sender<(u64, Links, bool)>,
    /// The most requests in flight on one connection a fault covered, since the last take.
    in_flight_max: AtomicU64,
    /// Connections reset for reaching `reset_in_flight_min`, since the last take.
    in_flight_resets: AtomicU64,
    /// Requests held and never forwarded by resets that cut one, since the last take.
    requests_cut: AtomicU64,
}

/// What the proxy saw of requests in flight while faults were in force ([`Proxy::take_in_flight`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InFlight {
    /// The most requests without a response on one connection a fault covered.
    pub max: u64,
    /// Connections reset on reaching `reset_in_flight_min`.
    pub resets: u64,
    /// Requests cut by resets (held whole, never forwarded, then the connection reset).
    pub cut: u64,
}

/// Counts the Kafka frames (a 4-byte big-endian length, then that many bytes) of one direction of
/// a connection as its bytes pass, in chunks cut anywhere.
#[derive(Debug, Default)]
struct Frames {
    header: [u8; 4],
    header_bytes: usize,
    /// Bytes of the current frame still to come.
    left: u64,
    /// Frames that ended (all their bytes passed).
    completed: u64,
}

impl Frames {
    /// Takes in `bytes`; returns how many frames started in them (their length read whole).
    fn feed(&mut self, mut bytes: &[u8]) -> u64 {
        let mut started = 0;
        while !bytes.is_empty() {
            if self.left > 0 {
                let n = usize::try_from(self.left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                self.left -= n as u64;
                bytes = &bytes[n..];
                if self.left == 0 {
                    self.completed += 1;
                }
                continue;
            }
            let n = (4 - self.header_bytes).min(bytes.len());
            self.header[self.header_bytes..self.header_bytes + n].copy_from_slice(&bytes[..n]);
            self.header_bytes += n;
            bytes = &bytes[n..];
            if self.header_bytes == 4 {
                self.header_bytes = 0;
                // A negative length is no Kafka frame; the broker closes such a connection.
                self.left = u64::try_from(i32::from_be_bytes(self.header)).unwrap_or(0);
                started += 1;
                if self.left == 0 {
                    self.completed += 1;
                }
            }
        }
        started
    }

    /// Whether the bytes so far end inside a frame (its length or its body).
    fn inside(&self) -> bool {
        self.left > 0 || self.header_bytes > 0
    }
}

impl Shared {
    fn fault_for(&self, from_broker: bool) -> Option<LinkFault> {
        let fault = *self.fault.lock().unwrap_or_else(|e| e.into_inner());
        fault.filter(|f| f.links.covers(from_broker))
    }
}

/// Node `i`'s proxy among a platform's (one per broker when the run has link faults; none for the
/// controller): the error names the node.
pub fn of_node<'a>(proxies: &'a [Option<Proxy>], i: usize, name: &str) -> Result<&'a Proxy> {
    proxies
        .get(i)
        .and_then(Option::as_ref)
        .with_context(|| format!("node {name} has no proxy"))
}

pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on `listen` (port 0 picks one) and forwards every connection to `upstream`.
    pub async fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        sources: Option<Sources>,
    ) -> Result<Proxy> {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("proxy: binding {listen}"))?;
        let addr = listener.local_addr()?;
        let (reset, _) = watch::channel((0, Links::All, false));
        let shared = Arc::new(Shared {
            fault: Mutex::new(None),
            reset,
            in_flight_max: AtomicU64::new(0),
            in_flight_resets: AtomicU64::new(0),
            requests_cut: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, upstream, sources, shared.clone()));
        Ok(Proxy { addr, shared, task })
    }

    /// Puts `fault` in force (replacing any other), or none. Lifting a fault that dropped
    /// responses resets the connections it hit: their clients wait for answers that were
    /// discarded, and retry every request in flight when their connection goes.
    pub fn set_fault(&self, fault: Option<LinkFault>) {
        let previous = std::mem::replace(
            &mut *self.shared.fault.lock().unwrap_or_else(|e| e.into_inner()),
            fault,
        );
        if let Some(p) = previous.filter(|p| p.drop_responses) {
            if !fault.is_some_and(|f| f.drop_responses && f.links == p.links) {
                self.reset(p.links, false);
            }
        }
    }

    /// The most requests in flight on one connection a fault covered, the connections reset on
    /// reaching `reset_in_flight_min` and the requests cut by resets, since the last call; all
    /// start again from 0.
    pub fn take_in_flight(&self) -> InFlight {
        InFlight {
            max: self.shared.in_flight_max.swap(0, Ordering::Relaxed),
            resets: self.shared.in_flight_resets.swap(0, Ordering::Relaxed),
            cut: self.shared.requests_cut.swap(0, Ordering::Relaxed),
        }
    }

    /// Resets (RST to both peers) every connection open now on the given links; with
    /// `cut_request`, each after holding back its next request (see the module's docs).
    pub fn reset(&self, links: Links, cut_request: bool) {
        self.shared.reset.send_modify(|(generation, l, cut)| {
            *generation += 1;
            *l = links;
            *cut = cut_request;
        });
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    sources: Option<Sources>,
    shared: Arc<Shared>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    // Out of descriptors or similar: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let from_broker = match (&sources, peer.ip()) {
                    (Some(s), IpAddr::V4(ip)) => s.node_ips.contains(&ip),
                    _ => false,
                };
                let src = sources.as_ref().map(|s| if from_broker { s.relay_src } else { s.client_src });
                connections.spawn(serve(stream, from_broker, upstream, src, shared.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn connect(upstream: SocketAddr, src: Option<Ipv4Addr>) -> std::io::Result<TcpStream> {
    match src {
        Some(ip) => {
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from((ip, 0)))?;
            socket.connect(upstream).await
        }
        None => TcpStream::connect(upstream).await,
    }
}

async fn serve(
    mut client: TcpStream,
    from_broker: bool,
    upstream: SocketAddr,
    src: Option<Ipv4Addr>,
    shared: Arc<Shared>,
) {
    let mut resets = shared.reset.subscribe();
    resets.borrow_and_update();
    let _ = client.set_nodelay(true);
    let Ok(Ok(mut up)) =
        tokio::time::timeout(Duration::from_secs(10), connect(upstream, src)).await
    else {
        // The broker is down or unreachable: the client sees its connection close.
        return;
    };
    let _ = up.set_nodelay(true);
    let reset = {
        let (cr, cw) = client.split();
        let (ur, uw) = up.split();
        let link = Link {
            from_broker,
            shared: &shared,
            in_flight: AtomicU64::new(0),
            tripped: Notify::new(),
            cut_pending: AtomicBool::new(false),
            cut: Notify::new(),
        };
        let both =
            async { tokio::try_join!(pump(cr, uw, false, &link), pump(ur, cw, true, &link)) };
        let reset = async {
            loop {
                if resets.changed().await.is_err() {
                    return std::future::pending().await;
                }
                let (_, links, cut_request) = *resets.borrow_and_update();
                if links.covers(from_broker) {
                    if cut_request {
                        link.cut_pending.store(true, Ordering::Relaxed);
                        let _ = tokio::time::timeout(CUT_WAIT_MAX, link.cut.notified()).await;
                    }
                    return;
                }
            }
        };
        tokio::select! {
            _ = both => false,
            () = reset => true,
            () = async {
                link.tripped.notified().await;
                // The requests sent are carried out before the reset: an RST takes the bytes
                // unread in the broker's socket with it, and those would be retried as new.
                tokio::time::sleep(IN_FLIGHT_RESET_SETTLE).await;
            } => true,
        }
    };
    if reset {
        let _ = client.set_zero_linger();
        let _ = up.set_zero_linger();
    }
}

/// One connection through the proxy, as both directions see it.
struct Link<'a> {
    from_broker: bool,
    shared: &'a Shared,
    /// Requests forwarded to the broker less responses delivered back.
    in_flight: AtomicU64,
    /// Notified when the connection reached `reset_in_flight_min` under a fault: reset it.
    tripped: Notify,
    /// A reset waits for the next request from the connection's client to hold back.
    cut_pending: AtomicBool,
    /// Notified when that request was held whole: reset now.
    cut: Notify,
}

impl Link<'_> {
    /// Counts `frames` requests forwarded (or responses delivered, `responses`) and, with a fault
    /// in force, notes the most in flight and trips a reset at its `reset_in_flight_min`.
    fn count(&self, frames: u64, responses: bool, fault: Option<LinkFault>) {
        if frames == 0 {
            return;
        }
        let in_flight = if responses {
            let before = self
                .in_flight
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_sub(frames))
                })
                .unwrap_or(0);
            before.saturating_sub(frames)
        } else {
            self.in_flight.fetch_add(frames, Ordering::Relaxed) + frames
        };
        let Some(fault) = fault else {
            return;
        };
        self.shared
            .in_flight_max
            .fetch_max(in_flight, Ordering::Relaxed);
        let min = fault.reset_in_flight_min;
        if fault.drop_responses && min > 0 && in_flight >= min && !responses {
            self.shared.in_flight_resets.fetch_add(1, Ordering::Relaxed);
            self.tripped.notify_one();
        }
    }
}

/// Forwards one direction until its end (then shuts the other side's writing half);
/// `responses`: the direction from the broker behind the proxy.
async fn pump<R, W>(mut from: R, mut to: W, responses: bool, link: &Link<'_>) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (from_broker, shared) = (link.from_broker, link.shared);
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(CHUNKS_HELD_MAX);
    let read = async move {
        let mut last = Instant::now();
        let mut frames = Frames::default();
        // Under a reset that cuts a request: the count of ended frames at which the request held
        // back is whole.
        let mut cut_at: Option<u64> = None;
        loop {
            let mut buf = vec![0u8; CHUNK_BYTES];
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            buf.truncate(n);
            let in_force = shared.fault_for(from_broker);
            let fault = in_force.unwrap_or_default();
            let (inside, completed) = (frames.inside(), frames.completed);
            let started = frames.feed(&buf);
            if !responses && link.cut_pending.load(Ordering::Relaxed) {
                // Held back from here on: the end of a frame already under way, then the next
                // request whole; the connection is reset once that request has arrived.
                let at = *cut_at.get_or_insert(completed + 1 + u64::from(inside));
                if frames.completed >= at {
                    link.cut_pending.store(false, Ordering::Relaxed);
                    shared.requests_cut.fetch_add(1, Ordering::Relaxed);
                    link.cut.notify_one();
                }
                continue;
            }
            if fault.blackhole || (responses && fault.drop_responses) {
                // A discarded response never reaches the client: its request stays in flight.
                continue;
            }
            link.count(started, responses, in_force);
            let jitter = if fault.jitter_ms > 0 {
                rand::random_range(0..=fault.jitter_ms)
            } else {
                0
            };
            let deadline =
                (Instant::now() + Duration::from_millis(fault.delay_ms + jitter)).max(last);
            last = deadline;
            if tx.send((deadline, buf)).await.is_err() {
                return Ok(());
            }
        }
    };
    let write = async {
        while let Some((deadline, buf)) = rx.recv().await {
            tokio::time::sleep_until(deadline).await;
            // A chunk leaves once the link would have carried it: its size over the rate.
            let rate = shared
                .fault_for(from_broker)
                .map_or(0, |f| f.bandwidth_bytes_per_s);
            if rate > 0 {
                tokio::time::sleep(Duration::from_secs_f64(buf.len() as f64 / rate as f64)).await;
            }
            to.write_all(&buf).await?;
        }
        to.shutdown().await
    };
    tokio::try_join!(read, write).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant as StdInstant;

    /// An echo server on loopback that serves until the test ends.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    /// Writes `n` bytes and reads them back; the time it took, or the error.
    async fn round_trip(s: &mut TcpStream, n: usize) -> std::io::Result<Duration> {
        let t = StdInstant::now();
        let out = vec![5u8; n];
        s.write_all(&out).await?;
        let mut back = vec![0u8; n];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "no echo within 5 s")
            })??;
        assert_eq!(back, out);
        Ok(t.elapsed())
    }

    #[tokio::test]
    async fn the_proxy_forwards_delays_limits_blackholes_and_resets() {
        let upstream = echo().await;
        let proxy = Proxy::start("127.0.0.1:0".parse().expect("addr"), upstream, None)
            .await
            .expect("proxy");
        let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
        round_trip(&mut s, 100).await.expect("plain forwarding");

        // Delay: each direction holds the bytes 150 ms, so a round trip takes at least 300 ms.
        proxy.set_fault(Some(LinkFault {
            delay_ms: 150,
            jitter_ms: 20,
            ..Default::default()
        }));
        let took = round_trip(&mut s, 100).await.expect("delayed");
        assert!(
            took >= Duration::from_millis(300),
            "a delayed round trip took {took:?}"
        );

        // Bandwidth: 64 KiB at 128 KiB/s, each way, cannot come back in less than half a second.
        proxy.set_fault(Some(LinkFault {
            bandwidth_bytes_per_s: 128 * 1024,
            ..Default::default()
        }));
        let took = round_trip(&mut s, 64 * 1024).await.expect("limited");
        assert!(
            took >= Duration::from_millis(500),
            "64 KiB at 128 KiB/s took {took:?}"
        );

        // A fault on broker links only does not touch a client connection.
        proxy.set_fault(Some(LinkFault {
            links: Links::Brokers,
            blackhole: true,
            ..Default::default()
        }));
        round_trip(&mut s, 10)
            .await
            .expect("client links are not hit by a broker-links fault");

        // Blackhole: nothing comes back, the connection stays open; after it, bytes flow again.
        proxy.set_fault(Some(LinkFault {
            blackhole: true,
            ..Default::default()
        }));
        s.write_all(b"lost")
            .await
            .expect("write into the blackhole");
        let mut b = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_millis(500), s.read(&mut b)).await;
        assert!(r.is_err(), "a blackholed connection answered: {r:?}");
        proxy.set_fault(None);
        round_trip(&mut s, 10).await.expect("after the blackhole");

        // Reset: the client gets an RST (ECONNRESET), not an orderly end.
        proxy.reset(Links::All, false);
        let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b))
            .await
            .expect("the reset arrives");
        let kind = r.as_ref().err().map(|e| e.kind());
        assert_eq!(kind, Some(std::io::ErrorKind::ConnectionReset), "{r:?}");
        // A new connection works.
        let mut s2 = TcpStream::connect(proxy.addr).await.expect("connect again");
        round_trip(&mut s2, 10).await.expect("after the reset");
    }

    #[tokio::test]
    async fn dropped_responses_let_requests_through_and_lifting_them_resets_the_connection() {
        // An upstream that counts the bytes it receives and echoes them.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream = listener.local_addr().expect("addr");
        let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = received.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        counted.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        let proxy = Proxy::start("127.0.0.1:0".parse().expect("addr"), upstream, None)
            .await
            .expect("proxy");
        let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
        round_trip(&mut s, 10).await.expect("plain forwarding");
        proxy.set_fault(Some(LinkFault {
            drop_responses: true,
            ..Default::default()
        }));
        s.write_all(b"request").await.expect("write");
        let mut b = [0u8; 16];
        let r = tokio::time::timeout(Duration::from_millis(500), s.read(&mut b)).await;
        assert!(r.is_err(), "a response came back: {r:?}");
        assert_eq!(
            received.load(std::sync::atomic::Ordering::SeqCst),
            10 + 7,
            "the request reached the broker"
        );
        proxy.set_fault(None);
        let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b))
            .await
            .expect("the reset arrives");
        let kind = r.as_ref().err().map(|e| e.kind());
        assert_eq!(kind, Some(std::io::ErrorKind::ConnectionReset), "{r:?}");
    }

    /// A Kafka frame: its 4-byte length, then `body`.
    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = (body.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn frames_are_counted_whatever_the_chunks() {
        let mut stream = Vec::new();
        for body in [&b"abc"[..], b"", b"0123456789"] {
            stream.extend(frame(body));
        }
        for cut in 1..stream.len() {
            let mut frames = Frames::default();
            let counted: u64 = stream.chunks(cut).map(|c| frames.feed(c)).sum();
            assert_eq!(counted, 3, "chunks of {cut} bytes");
        }
    }

    /// An upstream that answers every frame with a frame, as a broker answers requests, and
    /// counts the frames it received whole.
    async fn answering(received: Arc<AtomicU64>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let received = received.clone();
                tokio::spawn(async move {
                    let mut length = [0u8; 4];
                    while s.read_exact(&mut length).await.is_ok() {
                        let mut body = vec![0u8; i32::from_be_bytes(length) as usize];
                        if s.read_exact(&mut body).await.is_err() {
                            break;
                        }
                        received.fetch_add(1, Ordering::SeqCst);
                        if s.write_all(&frame(b"answer")).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        upstream
    }

    #[tokio::test]
    async fn a_reset_that_cuts_a_request_holds_the_next_one_whole_and_never_forwards_it() {
        let received = Arc::new(AtomicU64::new(0));
        let upstream = answering(received.clone()).await;
        let proxy = Proxy::start("127.0.0.1:0".parse().expect("addr"), upstream, None)
            .await
            .expect("proxy");
        let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
        let mut answer = [0u8; 10];
        s.write_all(&frame(b"request")).await.expect("write");
        s.read_exact(&mut answer).await.expect("answer");
        proxy.reset(Links::All, true);
        // Requests written whole, one at a time: those the proxy forwarded before it took the
        // reset are answered; the first after it is held and the connection reset.
        let mut answered = 1;
        let reset = loop {
            assert!(answered < 1000, "no reset after {answered} requests");
            if let Err(e) = s.write_all(&frame(b"request")).await {
                break e;
            }
            match tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut answer)).await {
                Ok(Ok(_)) => answered += 1,
                Ok(Err(e)) => break e,
                Err(_) => panic!("neither an answer nor a reset within 5 s"),
            }
        };
        assert_eq!(
            reset.kind(),
            std::io::ErrorKind::ConnectionReset,
            "{reset:?}"
        );
        assert_eq!(
            received.load(Ordering::SeqCst),
            answered,
            "the request cut never reached the upstream"
        );
        assert_eq!(
            proxy.take_in_flight(),
            InFlight {
                cut: 1,
                ..Default::default()
            }
        );

        // A connection that sends nothing is reset all the same, with nothing cut.
        let mut idle = TcpStream::connect(proxy.addr).await.expect("connect");
        idle.write_all(&frame(b"request")).await.expect("write");
        idle.read_exact(&mut answer).await.expect("answer");
        proxy.reset(Links::All, true);
        let r = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut answer))
            .await
            .expect("the reset arrives");
        let kind = r.as_ref().err().map(|e| e.kind());
        assert_eq!(kind, Some(std::io::ErrorKind::ConnectionReset), "{r:?}");
        assert_eq!(proxy.take_in_flight(), InFlight::default());
    }

    #[test]
    fn frames_know_where_they_end() {
        let stream = [frame(b"abc"), frame(b""), frame(b"0123456789")].concat();
        for cut in 1..stream.len() {
            let mut frames = Frames::default();
            let mut ends = Vec::new();
            for chunk in stream.chunks(cut) {
                frames.feed(chunk);
                ends.push((frames.completed, frames.inside()));
            }
            assert_eq!(ends.last(), Some(&(3, false)), "chunks of {cut} bytes");
            assert!(ends.windows(2).all(|w| w[0].0 <= w[1].0));
        }
    }

    #[tokio::test]
    async fn a_connection_is_reset_once_it_has_reset_in_flight_min_requests_unanswered() {
        // An upstream that answers every frame with a frame, as a broker answers requests.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut length = [0u8; 4];
                    while s.read_exact(&mut length).await.is_ok() {
                        let mut body = vec![0u8; i32::from_be_bytes(length) as usize];
                        if s.read_exact(&mut body).await.is_err()
                            || s.write_all(&frame(b"answer")).await.is_err()
                        {
                            break;
                        }
                    }
                });
            }
        });
        let proxy = Proxy::start("127.0.0.1:0".parse().expect("addr"), upstream, None)
            .await
            .expect("proxy");
        let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
        // Answered requests leave nothing in flight.
        let mut answer = [0u8; 10];
        for _ in 0..4 {
            s.write_all(&frame(b"request")).await.expect("write");
            s.read_exact(&mut answer).await.expect("answer");
        }
        proxy.set_fault(Some(LinkFault {
            drop_responses: true,
            reset_in_flight_min: 3,
            ..Default::default()
        }));
        s.write_all(&frame(b"one")).await.expect("write");
        s.write_all(&frame(b"two")).await.expect("write");
        let r = tokio::time::timeout(Duration::from_millis(300), s.read(&mut answer)).await;
        assert!(r.is_err(), "two in flight: no answer, no reset: {r:?}");
        s.write_all(&frame(b"three")).await.expect("write");
        let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut answer))
            .await
            .expect("the reset arrives");
        let kind = r.as_ref().err().map(|e| e.kind());
        assert_eq!(kind, Some(std::io::ErrorKind::ConnectionReset), "{r:?}");
        assert_eq!(
            proxy.take_in_flight(),
            InFlight {
                max: 3,
                resets: 1,
                cut: 0
            }
        );
        assert_eq!(proxy.take_in_flight(), InFlight::default(), "taken");
    }

    /// An upstream that writes back the peer address it sees, then echoes.
    async fn tell_peer() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, peer)) = listener.accept().await {
                tokio::spawn(async move {
                    let ip = peer.ip().to_string();
                    let _ = s.write_all(format!("{ip:<16}").as_bytes()).await;
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn connect_from(src: Ipv4Addr, to: SocketAddr) -> (TcpStream, String) {
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::from((src, 0)))
            .expect("bind source");
        let mut s = socket.connect(to).await.expect("connect");
        let mut seen = [0u8; 16];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut seen))
            .await
            .expect("in time")
            .expect("peer line");
        (s, String::from_utf8_lossy(&seen).trim().to_string())
    }

    #[tokio::test]
    async fn brokers_and_clients_are_told_apart_and_relayed_from_their_own_addresses() {
        let upstream = tell_peer().await;
        let node = Ipv4Addr::new(127, 0, 0, 3);
        let sources = Sources {
            node_ips: vec![node],
            client_src: Ipv4Addr::new(127, 0, 0, 1),
            relay_src: Ipv4Addr::new(127, 0, 0, 2),
        };
        let proxy = Proxy::start(
            "127.0.0.1:0".parse().expect("addr"),
            upstream,
            Some(sources),
        )
        .await
        .expect("proxy");
        let (mut from_node, seen) = connect_from(node, proxy.addr).await;
        assert_eq!(
            seen, "127.0.0.2",
            "a broker's connection is relayed from the relay address"
        );
        let (mut from_client, seen) = connect_from(Ipv4Addr::new(127, 0, 0, 9), proxy.addr).await;
        assert_eq!(
            seen, "127.0.0.1",
            "a client's connection is relayed from the clients' address"
        );

        // A blackhole on broker links: the broker's connection goes silent, the client's does not.
        proxy.set_fault(Some(LinkFault {
            links: Links::Brokers,
            blackhole: true,
            ..Default::default()
        }));
        round_trip(&mut from_client, 10)
            .await
            .expect("the client link works");
        from_node.write_all(b"x").await.expect("write");
        let mut b = [0u8; 1];
        assert!(
            tokio::time::timeout(Duration::from_millis(500), from_node.read(&mut b))
                .await
                .is_err(),
            "the broker link is blackholed"
        );

        // A reset of client links leaves the broker's connection open.
        proxy.set_fault(None);
        proxy.reset(Links::Clients, false);
        let r = tokio::time::timeout(Duration::from_secs(5), from_client.read(&mut b))
            .await
            .expect("the reset arrives");
        assert!(r.is_err(), "the client connection was reset: {r:?}");
        round_trip(&mut from_node, 10)
            .await
            .expect("the broker link survives a reset of client links");
    }
}
