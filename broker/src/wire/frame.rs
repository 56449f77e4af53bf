//! Request/response framing: 4-byte big-endian length, header, body. Bytes only, no I/O.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use crate::limits;

/// Why a frame length is refused (the connection is closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {length} is negative")]
    Negative { length: i32 },
    #[error("frame length {length} is below the minimum {min}")]
    TooShort { length: i32, min: usize },
    #[error("frame length {length} is above the maximum {max}")]
    TooLong { length: i32, max: usize },
}

/// Validates the length prefix of a request frame.
pub fn check_frame_length(length: i32) -> Result<usize, FrameError> {
    if length < 0 {
        return Err(FrameError::Negative { length });
    }
    let length_bytes = length as usize;
    if length_bytes < limits::FRAME_BYTES_MIN {
        return Err(FrameError::TooShort {
            length,
            min: limits::FRAME_BYTES_MIN,
        });
    }
    if length_bytes > limits::FRAME_BYTES_MAX {
        return Err(FrameError::TooLong {
            length,
            max: limits::FRAME_BYTES_MAX,
        });
    }
    Ok(length_bytes)
}

/// `(api key, api version, correlation id)` from the first 8 bytes of a request frame.
pub fn peek_request(frame: &[u8]) -> Option<(i16, i16, i32)> {
    if frame.len() < 8 {
        return None;
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    Some((api_key, api_version, correlation_id))
}

/// Error encoding a response (a bug or a value out of the version's range, never input).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {api:?} v{version} response: {message}")]
pub struct EncodeError {
    pub api: ApiKey,
    pub version: i16,
    pub message: String,
}

/// Encodes a whole response frame: length prefix, response header, body.
pub fn encode_response<R: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Bytes, EncodeError> {
    let fail = |e: anyhow::Error| EncodeError {
        api,
        version,
        message: format!("{e:#}"),
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = api.response_header_version(version);
    let size_bytes = header.compute_size(header_version).map_err(fail)?
        + body.compute_size(version).map_err(fail)?;
    let mut buf = BytesMut::with_capacity(4 + size_bytes);
    buf.put_i32(size_bytes as i32);
    header.encode(&mut buf, header_version).map_err(fail)?;
    body.encode(&mut buf, version).map_err(fail)?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lengths() {
        assert_eq!(
            check_frame_length(-1),
            Err(FrameError::Negative { length: -1 })
        );
        assert!(check_frame_length(3).is_err());
        assert!(check_frame_length(i32::MAX).is_err());
        assert_eq!(check_frame_length(100), Ok(100));
    }
}
