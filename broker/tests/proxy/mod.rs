//! A Kafka-aware TCP proxy for tests: forwards frames both ways between a client and one broker,
//! and loses the response of every Nth Produce request deterministically — the request reaches
//! the broker (which appends and answers), then the connection is shut down instead of the
//! response being forwarded. The client sees a lost response and retries.
//!
//! Brokers advertise the proxy (`advertised.listener`) so that clients reach them only through
//! it. Threads only; everything stops when the `Proxy` is dropped.
#![allow(dead_code)]

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Largest frame the proxy forwards.
const FRAME_BYTES_MAX: usize = 100 * 1024 * 1024;
/// How long a connection waits for the proxy to learn its upstream.
const UPSTREAM_WAIT: Duration = Duration::from_secs(30);
/// Kafka's Produce API key.
const PRODUCE: i16 = 0;

#[derive(Default)]
struct Shared {
    upstream: Mutex<Option<SocketAddr>>,
    stop: AtomicBool,
    /// Produce requests forwarded, and responses lost on purpose.
    produce_requests: AtomicUsize,
    lost_responses: AtomicUsize,
    /// Every socket of every connection, shut down on drop.
    sockets: Mutex<Vec<TcpStream>>,
}

pub struct Proxy {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on 127.0.0.1 (free port). `lose_every`: lose the response of every Nth Produce
    /// request (0 = never).
    pub fn start(lose_every: usize) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let address = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared::default());
        let accepting = Arc::clone(&shared);
        let accept_thread = std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let connection = Arc::clone(&accepting);
                std::thread::spawn(move || serve(connection, client, lose_every));
            }
        });
        Proxy {
            address,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    /// Where to forward (set once the broker has started).
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.shared.upstream.lock().expect("lock") = Some(upstream);
    }

    pub fn produce_requests(&self) -> usize {
        self.shared.produce_requests.load(Ordering::SeqCst)
    }

    pub fn lost_responses(&self) -> usize {
        self.shared.lost_responses.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for socket in self.shared.sockets.lock().expect("lock").drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).ok()?;
    let length = usize::try_from(i32::from_be_bytes(length)).ok()?;
    if length > FRAME_BYTES_MAX {
        return None;
    }
    let mut frame = vec![0u8; 4 + length];
    frame[..4].copy_from_slice(&(length as i32).to_be_bytes());
    stream.read_exact(&mut frame[4..]).ok()?;
    Some(frame)
}

fn serve(shared: Arc<Shared>, mut client: TcpStream, lose_every: usize) {
    let started = Instant::now();
    let upstream = loop {
        if let Some(address) = *shared.upstream.lock().expect("lock") {
            break address;
        }
        if started.elapsed() > UPSTREAM_WAIT || shared.stop.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let Ok(mut broker) = TcpStream::connect_timeout(&upstream, Duration::from_secs(3)) else {
        return;
    };
    let (Ok(client_out), Ok(mut broker_in)) = (client.try_clone(), broker.try_clone()) else {
        return;
    };
    {
        let mut sockets = shared.sockets.lock().expect("lock");
        for s in [&client, &broker] {
            if let Ok(s) = s.try_clone() {
                sockets.push(s);
            }
        }
    }
    let doomed: Arc<Mutex<HashSet<i32>>> = Arc::default();
    let responses = {
        let (shared, doomed) = (Arc::clone(&shared), Arc::clone(&doomed));
        let mut client_out = client_out;
        std::thread::spawn(move || {
            while let Some(frame) = read_frame(&mut broker_in) {
                let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                if doomed.lock().expect("lock").remove(&correlation_id) {
                    shared.lost_responses.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                if client_out.write_all(&frame).is_err() {
                    break;
                }
            }
            let _ = client_out.shutdown(Shutdown::Both);
            let _ = broker_in.shutdown(Shutdown::Both);
        })
    };
    while let Some(frame) = read_frame(&mut client) {
        if frame.len() >= 12 {
            let api_key = i16::from_be_bytes([frame[4], frame[5]]);
            let correlation_id = i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
            if api_key == PRODUCE {
                let count = shared.produce_requests.fetch_add(1, Ordering::SeqCst) + 1;
                if lose_every > 0 && count % lose_every == 0 {
                    doomed.lock().expect("lock").insert(correlation_id);
                }
            }
        }
        if broker.write_all(&frame).is_err() {
            break;
        }
    }
    let _ = broker.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
    let _ = responses.join();
}
