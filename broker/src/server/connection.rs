//! One client connection: the only place that touches sockets. A reader reads frames and hands
//! them to the API layer in order; a writer sends the replies in the same order (pipelining).
//! Both stamp the times of measured requests for [`crate::metrics`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};

use crate::api::{CloseReason, Reply};
use crate::limits;
use crate::metrics::{RequestMetrics, RequestTimes, Stages};
use crate::wire::frame;

/// What a connection hands each request frame to: the broker's or the controller's API layer.
pub type FrameHandler = Arc<dyn Fn(Bytes) -> Result<Reply, CloseReason> + Send + Sync>;

/// Serves one connection until the client closes it or breaks the protocol.
pub async fn run(
    handler: FrameHandler,
    stream: TcpStream,
    peer: SocketAddr,
    request_bytes: Arc<Semaphore>,
    metrics: Option<Arc<RequestMetrics>>,
) {
    let _ = stream.set_nodelay(true);
    let (read_half, write_half) = stream.into_split();
    let (sender, receiver) = mpsc::channel(limits::IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX);
    let writer = tokio::spawn(write_replies(write_half, receiver, peer, metrics.clone()));
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    loop {
        let length = match reader.read_i32().await {
            Ok(length) => length,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::UnexpectedEof {
                    tracing::debug!(%peer, error = %e, "read failed");
                }
                break;
            }
        };
        let length_bytes = match frame::check_frame_length(length) {
            Ok(length_bytes) => length_bytes,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection: bad frame length");
                break;
            }
        };
        // Bounded memory: wait for budget before reading the frame.
        let Ok(budget) = Arc::clone(&request_bytes)
            .acquire_many_owned(length_bytes as u32)
            .await
        else {
            break;
        };
        // Read into spare capacity (not zeroed first), and past the BufReader's buffer once it is
        // drained: a produce frame is mostly record bytes, each copied once, from the socket.
        let mut frame_bytes = BytesMut::with_capacity(length_bytes);
        let mut frame_reader = (&mut reader).take(length_bytes as u64);
        let mut complete = true;
        while frame_bytes.len() < length_bytes {
            match frame_reader.read_buf(&mut frame_bytes).await {
                Ok(0) => {
                    tracing::debug!(%peer, "connection closed inside a frame");
                    complete = false;
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "connection closed inside a frame");
                    complete = false;
                    break;
                }
            }
        }
        if !complete {
            break;
        }
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

/// A reply and, for a measured request, its API key, when it was received and when handled.
type Queued = (Reply, Option<(i16, Instant, Instant)>);

async fn write_replies(
    mut socket: OwnedWriteHalf,
    mut receiver: mpsc::Receiver<Queued>,
    peer: SocketAddr,
    metrics: Option<Arc<RequestMetrics>>,
) {
    while let Some((reply, times)) = receiver.recv().await {
        let bytes = match reply {
            Reply::Now(bytes) => Some(bytes),
            Reply::Later(future) => future.await,
            Reply::Nothing => None,
        };
        let ready = Instant::now();
        if let Some(bytes) = bytes {
            if let Err(e) = socket.write_all(&bytes).await {
                tracing::debug!(%peer, error = %e, "write failed");
                return;
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
