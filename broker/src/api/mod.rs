//! Kafka APIs: decode a request frame, run the handler for its API, encode the response.
//! No socket I/O here: `server::connection` hands frames in and writes the replies out.
//!
//! [`table`] lists every API (key, versions, the broker's and the controller's handler), admits a
//! frame against it and dispatches; one module per API holds the handler, which takes the decoded
//! request and returns an [`Answer`]: now, or (produce with acks=-1, fetch long-poll) a future
//! resolved by the connection writer, which keeps responses in request order. This module holds
//! what they share, and uses none of them.

pub mod acls;
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod api_versions;
pub mod controller;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;
pub mod table;
pub mod txn_offset_commit;
pub mod write_txn_markers;

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;

use crate::wire::frame::{self, EncodeError};

/// A response on its way: ready bytes, bytes a future will produce, or nothing (acks=0).
pub enum Reply {
    Now(Bytes),
    Later(Pin<Box<dyn Future<Output = Option<Bytes>> + Send>>),
    Nothing,
}

/// A handler's answer: now, or once a future resolves (it then goes out in request order).
pub enum Answer<R> {
    Now(R),
    Later(Pin<Box<dyn Future<Output = R> + Send>>),
    /// No response at all (Produce with acks=0).
    Nothing,
}

impl<R: kafka_protocol::protocol::Encodable + Send + 'static> Answer<R> {
    pub fn into_reply(
        self,
        api: ApiKey,
        version: i16,
        correlation_id: i32,
    ) -> Result<Reply, CloseReason> {
        match self {
            Answer::Now(response) => Ok(Reply::Now(frame::encode_response(
                api,
                version,
                correlation_id,
                &response,
            )?)),
            Answer::Later(pending) => Ok(Reply::Later(Box::pin(async move {
                let response = pending.await;
                encode_logged(api, version, correlation_id, &response)
            }))),
            Answer::Nothing => Ok(Reply::Nothing),
        }
    }
}

/// Why a connection must be closed (Kafka's answer to requests it cannot parse or serve).
#[derive(Debug, thiserror::Error)]
pub enum CloseReason {
    #[error("frame too short for a request header")]
    TooShort,
    #[error("unknown API key {api_key}")]
    UnknownApiKey { api_key: i16 },
    #[error("API {api:?} is not implemented")]
    UnsupportedApi { api: ApiKey },
    #[error("API {api:?} version {version} is not supported")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("malformed {api:?} v{version} request: {message}")]
    Malformed {
        api: ApiKey,
        version: i16,
        message: String,
    },
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// A request frame past admission: an implemented API in a supported version, header decoded;
/// `body` is what follows the header.
pub struct Admitted {
    pub api: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    pub header: RequestHeader,
    pub body: Bytes,
}

impl Admitted {
    /// Decodes the body as the request `Q` of this API and version.
    pub fn decode<Q: Decodable>(&mut self) -> Result<Q, CloseReason> {
        Q::decode(&mut self.body, self.version).map_err(malformed(self.api, self.version))
    }

    /// The reply to this request: the handler's answer, encoded at the request's version.
    pub fn reply<R: kafka_protocol::protocol::Encodable + Send + 'static>(
        &self,
        answer: Answer<R>,
    ) -> Result<Reply, CloseReason> {
        answer.into_reply(self.api, self.version, self.correlation_id)
    }
}

/// What admission makes of a frame: a request to handle, or the answer already (Kafka's
/// ApiVersions fallback for a version newer than ours).
pub enum Admission {
    Request(Admitted),
    Answered(Reply),
}

/// The close reason for a request body of `api` `version` that does not decode.
pub fn malformed(api: ApiKey, version: i16) -> impl Fn(anyhow::Error) -> CloseReason {
    move |e| CloseReason::Malformed {
        api,
        version,
        message: format!("{e:#}"),
    }
}

/// Encodes a deferred response; an encoding failure (a bug) drops the response and is logged,
/// and the client times the request out.
pub fn encode_logged<R: kafka_protocol::protocol::Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &R,
) -> Option<Bytes> {
    match frame::encode_response(api, version, correlation_id, response) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            tracing::error!(error = %e, "dropping response that cannot be encoded");
            None
        }
    }
}

/// The names a request gives more than once (CreateTopics, CreatePartitions refuse each such
/// topic with INVALID_REQUEST, as Kafka does).
pub fn repeated_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> std::collections::BTreeSet<&'a str> {
    let mut seen = std::collections::BTreeSet::new();
    names
        .into_iter()
        .filter(|name| !seen.insert(*name))
        .collect()
}

/// A response's topics, in the request's order, each with the answers of its partitions:
/// `answer(topic, partition)` for each of `partitions(topic)`, then `topic_result(topic,
/// answers)`, `answer` called in the request's order. The per-partition APIs (DeleteRecords,
/// OffsetForLeaderEpoch, AlterPartition, OffsetCommit, TxnOffsetCommit) nest their answers so.
pub fn per_partition<T, P, A, R>(
    topics: &[T],
    partitions: impl Fn(&T) -> &[P],
    mut answer: impl FnMut(&T, &P) -> A,
    topic_result: impl Fn(&T, Vec<A>) -> R,
) -> Vec<R> {
    topics
        .iter()
        .map(|topic| {
            let answers = partitions(topic).iter().map(|p| answer(topic, p)).collect();
            topic_result(topic, answers)
        })
        .collect()
}

/// Checks a client's `current_leader_epoch` (-1 = not given) against the partition's.
pub fn leader_epoch_error(current_leader_epoch: i32, leader_epoch: i32) -> Option<i16> {
    if current_leader_epoch < 0 || current_leader_epoch == leader_epoch {
        None
    } else if current_leader_epoch > leader_epoch {
        Some(ResponseError::UnknownLeaderEpoch.code())
    } else {
        Some(ResponseError::FencedLeaderEpoch.code())
    }
}
