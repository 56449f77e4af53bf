//! A client connection to a peer (controller or leader) speaking the Kafka protocol: one request
//! at a time, each with a timeout. After any error the connection must be dropped.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::limits;

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("cannot connect to {address}: {message}")]
    Connect { address: String, message: String },
    #[error("I/O error talking to {address}: {source}")]
    Io {
        address: String,
        source: std::io::Error,
    },
    #[error("{address} did not answer {api:?} within {timeout_ms} ms")]
    Timeout {
        address: String,
        api: ApiKey,
        timeout_ms: u64,
    },
    #[error("bad {api:?} exchange with {address}: {message}")]
    Protocol {
        address: String,
        api: ApiKey,
        message: String,
    },
}

/// One connection to a peer.
#[derive(Debug)]
pub struct PeerConnection {
    address: String,
    stream: TcpStream,
    correlation_id: i32,
    client_id: StrBytes,
}

impl PeerConnection {
    pub async fn connect(address: &str, client_id: &str) -> Result<PeerConnection, PeerError> {
        let connecting = TcpStream::connect(address);
        let stream = match tokio::time::timeout(
            Duration::from_millis(limits::PEER_CONNECT_TIMEOUT_MS),
            connecting,
        )
        .await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                return Err(PeerError::Connect {
                    address: address.to_string(),
                    message: e.to_string(),
                })
            }
            Err(_) => {
                return Err(PeerError::Connect {
                    address: address.to_string(),
                    message: "timed out".to_string(),
                })
            }
        };
        let _ = stream.set_nodelay(true);
        Ok(PeerConnection {
            address: address.to_string(),
            stream,
            correlation_id: 0,
            client_id: StrBytes::from_string(client_id.to_string()),
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends `request` and waits at most `wait` (plus the peer request timeout) for its response.
    pub async fn request<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Req,
        wait: Duration,
    ) -> Result<Resp, PeerError> {
        let timeout = wait + Duration::from_millis(limits::PEER_REQUEST_TIMEOUT_MS);
        match tokio::time::timeout(timeout, self.exchange(api, version, request)).await {
            Ok(result) => result,
            Err(_) => Err(PeerError::Timeout {
                address: self.address.clone(),
                api,
                timeout_ms: timeout.as_millis() as u64,
            }),
        }
    }

    async fn exchange<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Req,
    ) -> Result<Resp, PeerError> {
        let protocol = |message: String| PeerError::Protocol {
            address: self.address.clone(),
            api,
            message,
        };
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let correlation_id = self.correlation_id;
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, api.request_header_version(version))
            .map_err(|e| protocol(format!("encoding the header: {e:#}")))?;
        request
            .encode(&mut body, version)
            .map_err(|e| protocol(format!("encoding the request: {e:#}")))?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.put_slice(&body);
        let io = |source| PeerError::Io {
            address: self.address.clone(),
            source,
        };
        self.stream.write_all(&frame).await.map_err(io)?;
        let length = self.stream.read_i32().await.map_err(io)?;
        let length = usize::try_from(length)
            .ok()
            .filter(|&l| l <= limits::PEER_RESPONSE_BYTES_MAX)
            .ok_or_else(|| protocol(format!("bad response length {length}")))?;
        let mut data = vec![0u8; length];
        self.stream.read_exact(&mut data).await.map_err(io)?;
        let mut data = Bytes::from(data);
        let header = ResponseHeader::decode(&mut data, api.response_header_version(version))
            .map_err(|e| protocol(format!("decoding the response header: {e:#}")))?;
        if header.correlation_id != correlation_id {
            return Err(protocol(format!(
                "correlation id {} for request {correlation_id}",
                header.correlation_id
            )));
        }
        Resp::decode(&mut data, version)
            .map_err(|e| protocol(format!("decoding the response: {e:#}")))
    }
}
