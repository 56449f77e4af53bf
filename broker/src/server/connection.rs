//! One client connection: the only place that touches sockets. A reader reads frames and hands
//! them to the API layer in order; a writer sends the replies in the same order (pipelining).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};

use crate::api::{CloseReason, Reply};
use crate::limits;
use crate::wire::frame;

/// What a connection hands each request frame to: the broker's or the controller's API layer.
pub type FrameHandler = Arc<dyn Fn(Bytes) -> Result<Reply, CloseReason> + Send + Sync>;

/// Serves one connection until the client closes it or breaks the protocol.
pub async fn run(
    handler: FrameHandler,
    stream: TcpStream,
    peer: SocketAddr,
    request_bytes: Arc<Semaphore>,
) {
    let _ = stream.set_nodelay(true);
    let (read_half, write_half) = stream.into_split();
    let (sender, receiver) = mpsc::channel(limits::IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX);
    let writer = tokio::spawn(write_replies(write_half, receiver, peer));
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
        let mut frame_bytes = vec![0u8; length_bytes];
        if let Err(e) = reader.read_exact(&mut frame_bytes).await {
            tracing::debug!(%peer, error = %e, "connection closed inside a frame");
            break;
        }
        let handled = handler(Bytes::from(frame_bytes));
        // The frame is consumed (records appended, request decoded): its budget is free again, so a
        // client that does not read its responses cannot hold other connections' budget.
        drop(budget);
        match handled {
            Ok(reply) => {
                if sender.send(reply).await.is_err() {
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

async fn write_replies(
    mut socket: OwnedWriteHalf,
    mut receiver: mpsc::Receiver<Reply>,
    peer: SocketAddr,
) {
    while let Some(reply) = receiver.recv().await {
        let bytes = match reply {
            Reply::Now(bytes) => Some(bytes),
            Reply::Later(future) => future.await,
            Reply::Nothing => None,
        };
        if let Some(bytes) = bytes {
            if let Err(e) = socket.write_all(&bytes).await {
                tracing::debug!(%peer, error = %e, "write failed");
                return;
            }
        }
    }
    let _ = socket.shutdown().await;
}
