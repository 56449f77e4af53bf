//! One client connection: the only place that touches sockets. A reader reads frames and hands
//! them to the API layer in order; a writer sends the replies in the same order (pipelining).
//! Both stamp the times of measured requests for [`crate::metrics`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::api::{CloseReason, Reply};
use crate::limits;
use crate::metrics::{RequestMetrics, RequestTimes, Stages};
use crate::server::connections::{Admitted, Budget, Held};
use crate::wire::frame;

/// What a connection hands each request frame to: the broker's or the controller's API layer.
pub type FrameHandler = Arc<dyn Fn(Bytes) -> Result<Reply, CloseReason> + Send + Sync>;

/// Serves one connection until the client closes it, breaks the protocol, stays idle for
/// `connections.max.idle.ms`, sends a frame slower than `socket.request.read.timeout.ms`, or the
/// registry closes it to admit another at `max.connections`.
pub async fn run(
    handler: FrameHandler,
    stream: TcpStream,
    peer: SocketAddr,
    request_bytes: Arc<Budget>,
    metrics: Option<Arc<RequestMetrics>>,
    admitted: Admitted,
) {
    let _ = stream.set_nodelay(true);
    let admitted = Arc::new(admitted);
    let (read_half, write_half) = stream.into_split();
    let (sender, receiver) = mpsc::channel(limits::IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX);
    let writer = tokio::spawn(write_replies(
        write_half,
        receiver,
        peer,
        metrics.clone(),
        Arc::clone(&admitted),
    ));
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    loop {
        if let Err(reason) = wait_for_request(&mut reader, &admitted, &sender).await {
            match reason {
                Closing::Eof | Closing::WriterGone => {}
                Closing::Io(e) => tracing::debug!(%peer, error = %e, "read failed"),
                Closing::Idle => {
                    tracing::debug!(%peer, "closing idle connection (connections.max.idle.ms)")
                }
                Closing::Evicted => {
                    tracing::info!(%peer, "closing idle connection to admit a new one (max.connections)")
                }
            }
            break;
        }
        admitted.request_started();
        let (frame_bytes, budget) = match read_frame(&mut reader, &request_bytes, &admitted).await {
            Ok(read) => read,
            Err(FrameReadError::Length(e)) => {
                tracing::warn!(%peer, error = %e, "closing connection: bad frame length");
                break;
            }
            Err(FrameReadError::TimedOut { received, length }) => {
                tracing::warn!(%peer, received, length, timeout_ms = admitted.request_read_timeout().as_millis() as u64,
                    "closing connection: request frame not received within socket.request.read.timeout.ms");
                break;
            }
            Err(FrameReadError::Closed(e)) => {
                tracing::debug!(%peer, error = ?e, "connection closed inside a frame");
                break;
            }
        };
        let received = Instant::now();
        let api_key = frame_bytes
            .first_chunk::<2>()
            .map_or(-1, |key| i16::from_be_bytes(*key));
        let measured = metrics
            .as_ref()
            .is_some_and(|m| m.stages(api_key).is_some());
        let handled = handler(frame_bytes.freeze());
        let times = measured.then(|| (api_key, received, Instant::now()));
        // The frame is consumed (records appended, request decoded): its budget is free again, so a
        // client that does not read its responses cannot hold other connections' budget.
        drop(budget);
        match handled {
            Ok(reply) => {
                if sender.send((reply, times)).await.is_err() {
                    break; // the writer stopped: the socket is gone
                }
            }
            Err(reason) => {
                tracing::warn!(%peer, %reason, "closing connection");
                break;
            }
        }
    }
    drop(sender);
    // Replies already queued are still written, then the socket closes.
    let _ = writer.await;
}

/// Why a connection stops waiting for its next request.
enum Closing {
    Eof,
    Io(std::io::Error),
    Idle,
    Evicted,
    /// The writer stopped (the socket broke or the client took no reply bytes).
    WriterGone,
}

/// Waits for the first byte of the next request: `Ok` once it is buffered.
async fn wait_for_request(
    reader: &mut BufReader<OwnedReadHalf>,
    admitted: &Admitted,
    sender: &mpsc::Sender<Queued>,
) -> Result<(), Closing> {
    let mut close = admitted.close_requested();
    // Bounded: each pass ends in a return or waits at least until the idle deadline moved on.
    loop {
        let deadline = admitted.idle_deadline();
        tokio::select! {
            biased;
            _ = close.wait_for(|closing| *closing) => return Err(Closing::Evicted),
            () = sender.closed() => return Err(Closing::WriterGone),
            filled = reader.fill_buf() => {
                return match filled {
                    Ok([]) => Err(Closing::Eof),
                    Ok(_) => Ok(()),
                    Err(e) => Err(Closing::Io(e)),
                };
            }
            () = tokio::time::sleep_until(deadline) => {
                if admitted.is_idle() {
                    return Err(Closing::Idle);
                }
            }
        }
    }
}

enum FrameReadError {
    Length(frame::FrameError),
    TimedOut { received: usize, length: usize },
    Closed(Option<std::io::Error>),
}

/// Reads one request frame (after its length) within `socket.request.read.timeout.ms` of its
/// first byte. Request memory is reserved as the bytes arrive, doubling from
/// [`limits::FRAME_READ_FIRST_BYTES`], so an announced length costs nothing until it is sent.
async fn read_frame(
    reader: &mut BufReader<OwnedReadHalf>,
    budget: &Arc<Budget>,
    admitted: &Admitted,
) -> Result<(BytesMut, Held), FrameReadError> {
    let deadline = tokio::time::Instant::now() + admitted.request_read_timeout();
    let timed_out = |received, length| FrameReadError::TimedOut { received, length };
    let length = match tokio::time::timeout_at(deadline, reader.read_i32()).await {
        Err(_) => return Err(timed_out(0, 0)),
        Ok(Err(e)) => return Err(FrameReadError::Closed(Some(e))),
        Ok(Ok(length)) => length,
    };
    let length_bytes = frame::check_frame_length(length).map_err(FrameReadError::Length)?;
    admitted.touch();
    let mut held = budget.none();
    let mut frame_bytes = BytesMut::new();
    while frame_bytes.len() < length_bytes {
        if frame_bytes.len() == frame_bytes.capacity() {
            let target = (frame_bytes.capacity() * 2)
                .max(limits::FRAME_READ_FIRST_BYTES)
                .min(length_bytes);
            let more = target - frame_bytes.capacity();
            // The wait for memory counts against the deadline too: connections each holding part
            // of the budget and waiting for more are freed by it.
            if tokio::time::timeout_at(deadline, budget.reserve(&mut held, more))
                .await
                .is_err()
            {
                return Err(timed_out(frame_bytes.len(), length_bytes));
            }
            frame_bytes.reserve(more);
        }
        // Into spare capacity (not zeroed first), and past the BufReader's buffer once it is
        // drained: a produce frame is mostly record bytes, each copied once from the socket.
        let remaining = (length_bytes - frame_bytes.len()) as u64;
        let mut frame_reader = (&mut *reader).take(remaining);
        match tokio::time::timeout_at(deadline, frame_reader.read_buf(&mut frame_bytes)).await {
            Err(_) => return Err(timed_out(frame_bytes.len(), length_bytes)),
            Ok(Ok(0)) => return Err(FrameReadError::Closed(None)),
            Ok(Ok(_)) => admitted.touch(),
            Ok(Err(e)) => return Err(FrameReadError::Closed(Some(e))),
        }
    }
    Ok((frame_bytes, held))
}

/// A reply and, for a measured request, its API key, when it was received and when handled.
type Queued = (Reply, Option<(i16, Instant, Instant)>);

/// Writes the replies in order. A client that takes no reply bytes for
/// `connections.max.idle.ms` is closed (Kafka's idle expiry counts writes as activity).
async fn write_replies(
    mut socket: OwnedWriteHalf,
    mut receiver: mpsc::Receiver<Queued>,
    peer: SocketAddr,
    metrics: Option<Arc<RequestMetrics>>,
    admitted: Arc<Admitted>,
) {
    let idle = std::time::Duration::from_millis(admitted.idle_ms());
    while let Some((reply, times)) = receiver.recv().await {
        let bytes = match reply {
            Reply::Now(bytes) => Some(bytes),
            Reply::Later(future) => future.await,
            Reply::Nothing => None,
        };
        admitted.request_done();
        let ready = Instant::now();
        if let Some(mut bytes) = bytes {
            while !bytes.is_empty() {
                let started_ns = admitted.now_ns();
                match tokio::time::timeout(idle, socket.write(&bytes)).await {
                    Ok(Ok(written)) if written > 0 => {
                        admitted.touch_at(started_ns);
                        bytes = bytes.slice(written..);
                    }
                    Ok(Ok(_)) => return,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "write failed");
                        return;
                    }
                    Err(_) => {
                        tracing::info!(%peer, "closing connection: the client took no reply bytes for connections.max.idle.ms");
                        return;
                    }
                }
            }
            let stages: Option<&Stages> = times
                .and_then(|(api_key, _, _)| metrics.as_deref().and_then(|m| m.stages(api_key)));
            if let (Some(stages), Some((_, received, handled))) = (stages, times) {
                stages.record(&RequestTimes {
                    received,
                    handled,
                    ready,
                    written: Instant::now(),
                });
            }
        }
    }
    let _ = socket.shutdown().await;
}
