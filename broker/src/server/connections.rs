//! Which connections are admitted and which are closed, with Kafka's settings
//! (`max.connections`, `max.connections.per.ip` and its overrides, `connections.max.idle.ms`),
//! and the request memory budget they share.
//!
//! Kafka blocks accepts at `max.connections`, except on its inter-broker listener, where it
//! accepts and closes the least recently used connection (`Selector.lowestPriorityChannel`).
//! kaos-broker has one listener that carries both, so at the limit it closes the least recently
//! active connection that has nothing in flight, and only when every connection is busy does
//! the accept wait. One more connection from an address at its `max.connections.per.ip` is
//! accepted and closed at once, as Kafka does.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

use crate::config::ConnectionConfig;
use crate::limits;

/// Every open connection and the admission rules.
#[derive(Debug)]
pub struct Registry {
    config: ConnectionConfig,
    epoch: Instant,
    inner: Mutex<Inner>,
    /// A connection closed (wakes the accept loop waiting for a slot).
    freed: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    open: HashMap<u64, Arc<Activity>>,
    per_ip: HashMap<IpAddr, usize>,
}

/// One connection's activity, shared by its reader, its writer and the registry.
#[derive(Debug)]
pub struct Activity {
    peer: SocketAddr,
    /// Nanoseconds since the registry's epoch of the last byte read or written (fine enough to
    /// order connections used one after the other).
    last_ns: AtomicU64,
    /// Requests started (first byte read) whose reply is not ready yet.
    in_flight: AtomicUsize,
    /// Set once the registry asked this connection to close.
    closing: AtomicBool,
    close: watch::Sender<bool>,
}

/// Why a connection was refused at accept.
#[derive(Debug, thiserror::Error)]
#[error("{ip} already has the configured maximum of {max} connections (max.connections.per.ip)")]
pub struct Refused {
    pub ip: IpAddr,
    pub max: usize,
}

/// An admitted connection: deregistered (and the accept loop woken) when dropped.
#[derive(Debug)]
pub struct Admitted {
    registry: Arc<Registry>,
    id: u64,
    pub activity: Arc<Activity>,
}

impl Registry {
    pub fn new(config: ConnectionConfig) -> Arc<Registry> {
        Arc::new(Registry {
            config,
            epoch: Instant::now(),
            inner: Mutex::new(Inner::default()),
            freed: Notify::new(),
        })
    }

    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection just accepted from `ip`: refused when `ip` is at its limit; at
    /// `max.connections`, closes the least recently used idle connection and waits for it to go
    /// (or, with none idle, for any connection to close).
    pub async fn admit(self: &Arc<Self>, peer: SocketAddr) -> Result<Admitted, Refused> {
        let ip = peer.ip();
        loop {
            {
                let mut inner = self.lock();
                let max = self.config.max_for(ip);
                if inner.per_ip.get(&ip).copied().unwrap_or(0) >= max {
                    return Err(Refused { ip, max });
                }
                if inner.open.len() < self.config.max_connections {
                    return Ok(self.register(&mut inner, peer));
                }
                if !inner
                    .open
                    .values()
                    .any(|a| a.closing.load(Ordering::Relaxed))
                {
                    self.close_least_recently_used(&inner);
                }
            }
            tokio::select! {
                () = self.freed.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(limits::ACCEPT_RECHECK_MS)) => {}
            }
        }
    }

    fn register(self: &Arc<Self>, inner: &mut Inner, peer: SocketAddr) -> Admitted {
        let id = inner.next_id;
        inner.next_id += 1;
        let (close, _) = watch::channel(false);
        let activity = Arc::new(Activity {
            peer,
            last_ns: AtomicU64::new(self.now_ns()),
            in_flight: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            close,
        });
        inner.open.insert(id, Arc::clone(&activity));
        *inner.per_ip.entry(peer.ip()).or_default() += 1;
        Admitted {
            registry: Arc::clone(self),
            id,
            activity,
        }
    }

    /// Asks the least recently active connection with nothing in flight to close.
    fn close_least_recently_used(&self, inner: &Inner) {
        let idle = inner
            .open
            .values()
            .filter(|a| a.in_flight.load(Ordering::Relaxed) == 0)
            .min_by_key(|a| a.last_ns.load(Ordering::Relaxed));
        if let Some(activity) = idle {
            tracing::info!(
                peer = %activity.peer,
                max_connections = self.config.max_connections,
                "max.connections reached: closing the least recently used idle connection"
            );
            activity.closing.store(true, Ordering::Relaxed);
            activity.close.send_replace(true);
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        inner.open.remove(&self.id);
        let ip = self.activity.peer.ip();
        if let Some(count) = inner.per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                inner.per_ip.remove(&ip);
            }
        }
        drop(inner);
        self.registry.freed.notify_one();
    }
}

impl Admitted {
    /// Bytes were read or written.
    pub fn touch(&self) {
        self.touch_at(self.now_ns());
    }

    /// Now, as the registry stamps activity.
    pub fn now_ns(&self) -> u64 {
        self.registry.now_ns()
    }

    /// Bytes were read or written at `ns` (a stamp taken before the I/O began: a write's stamp
    /// taken after it returns may land after the peer has read the reply and gone on to use
    /// another connection, which would then look less recently used than this one). Never moves
    /// the stamp back.
    pub fn touch_at(&self, ns: u64) {
        self.activity.last_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// A request's first byte arrived.
    pub fn request_started(&self) {
        self.activity.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A request's reply is ready (or there is none).
    pub fn request_done(&self) {
        self.activity.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Completes when the registry asks this connection to close.
    pub fn close_requested(&self) -> watch::Receiver<bool> {
        self.activity.close.subscribe()
    }

    /// When this connection becomes idle if nothing happens meanwhile (`connections.max.idle.ms`
    /// after its last byte; with a request in flight, not before one more period).
    pub fn idle_deadline(&self) -> tokio::time::Instant {
        let idle_ns = self.idle_ns();
        let now_ns = self.registry.now_ns();
        let due_ns = if self.activity.in_flight.load(Ordering::Relaxed) > 0 {
            now_ns + idle_ns
        } else {
            self.activity.last_ns.load(Ordering::Relaxed) + idle_ns
        };
        tokio::time::Instant::now() + Duration::from_nanos(due_ns.saturating_sub(now_ns))
    }

    /// Nothing in flight and nothing read or written for `connections.max.idle.ms`.
    pub fn is_idle(&self) -> bool {
        self.activity.in_flight.load(Ordering::Relaxed) == 0
            && self.registry.now_ns()
                >= self.activity.last_ns.load(Ordering::Relaxed) + self.idle_ns()
    }

    fn idle_ns(&self) -> u64 {
        self.registry.config.idle_ms * 1_000_000
    }

    pub fn idle_ms(&self) -> u64 {
        self.registry.config.idle_ms
    }

    pub fn request_read_timeout(&self) -> Duration {
        Duration::from_millis(self.registry.config.request_read_timeout_ms)
    }
}

/// The request bytes every connection together may hold ([`limits::IN_FLIGHT_REQUEST_BYTES_MAX`]).
/// Not first-come first-served, unlike a semaphore: a small reservation is granted whenever the
/// bytes are free, even while a large one waits, so connections reading large frames slowly
/// cannot queue everyone else behind them.
#[derive(Debug)]
pub struct Budget {
    bytes: Arc<Semaphore>,
    released: Notify,
}

/// Bytes held from a [`Budget`], given back on drop.
#[derive(Debug)]
pub struct Held {
    budget: Arc<Budget>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Budget {
    pub fn new(bytes: usize) -> Arc<Budget> {
        Arc::new(Budget {
            bytes: Arc::new(Semaphore::new(bytes)),
            released: Notify::new(),
        })
    }

    /// Nothing held yet.
    pub fn none(self: &Arc<Self>) -> Held {
        Held {
            budget: Arc::clone(self),
            permit: None,
        }
    }

    /// Adds `bytes` to `held`, waiting until they are free.
    pub async fn reserve(&self, held: &mut Held, bytes: usize) {
        let count = u32::try_from(bytes).unwrap_or(u32::MAX);
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Ok(permit) = Arc::clone(&self.bytes).try_acquire_many_owned(count) {
                match &mut held.permit {
                    Some(p) => p.merge(permit),
                    None => held.permit = Some(permit),
                }
                return;
            }
            released.await;
        }
    }
}

impl Held {
    pub fn bytes(&self) -> usize {
        self.permit.as_ref().map_or(0, |p| p.num_permits())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.permit.take().is_some() {
            self.budget.released.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_small_reservation_passes_a_large_one_waiting() {
        let budget = Budget::new(100);
        let mut first = budget.none();
        budget.reserve(&mut first, 60).await;
        let large = {
            let budget = Arc::clone(&budget);
            tokio::spawn(async move {
                let mut held = budget.none();
                budget.reserve(&mut held, 80).await;
                held.bytes()
            })
        };
        tokio::task::yield_now().await;
        let mut small = budget.none();
        // A FIFO semaphore would hold this behind the 80-byte waiter.
        tokio::time::timeout(Duration::from_secs(10), budget.reserve(&mut small, 30))
            .await
            .expect("the small reservation is granted while the large one waits");
        assert_eq!(small.bytes(), 30);
        drop(first);
        drop(small);
        assert_eq!(large.await.expect("task"), 80);
    }

    #[tokio::test]
    async fn per_ip_limit_refuses_and_a_closed_connection_frees_its_slot() {
        let file = crate::config::FileConfig::parse(
            "\"max.connections.per.ip\" = 1\n\"max.connections.per.ip.overrides\" = \"127.0.0.2:2\"\n",
        )
        .expect("parses");
        let registry = Registry::new(ConnectionConfig::resolve(&file).expect("valid"));
        let one: SocketAddr = "127.0.0.1:1".parse().expect("address");
        let two: SocketAddr = "127.0.0.2:1".parse().expect("address");
        let first = registry.admit(one).await.expect("first");
        assert!(registry.admit(one).await.is_err());
        let _a = registry.admit(two).await.expect("override");
        let _b = registry.admit(two).await.expect("override");
        assert!(registry.admit(two).await.is_err());
        drop(first);
        registry.admit(one).await.expect("freed");
    }
}
