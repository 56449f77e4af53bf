//! Kafka APIs: decode a request frame, run the handler for its API, encode the response.
//! No socket I/O here: the connection module hands frames in and writes the replies out.
//!
//! One module per API. Handlers take decoded requests and return responses; the ones that may
//! wait (produce with acks=-1, fetch long-poll) return a future resolved by the connection writer,
//! which keeps responses in request order.

pub mod api_versions;
pub mod create_topics;
pub mod describe_groups;
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

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, CreateTopicsRequest, DescribeGroupsRequest, FetchRequest,
    FindCoordinatorRequest, HeartbeatRequest, InitProducerIdRequest, JoinGroupRequest,
    LeaveGroupRequest, ListGroupsRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest,
    OffsetFetchRequest, OffsetForLeaderEpochRequest, ProduceRequest, RequestHeader,
    SyncGroupRequest,
};
use kafka_protocol::protocol::Decodable;

use crate::log::LogError;
use crate::state::Broker;
use crate::wire::frame::{self, EncodeError};

/// The APIs a single-node broker implements, with the version ranges it advertises.
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    // The group coordinator, at the versions librdkafka 2.12 asks for (rdkafka_request.c).
    (ApiKey::FindCoordinator, 0, 2),
    (ApiKey::JoinGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 3),
    (ApiKey::Heartbeat, 0, 3),
    (ApiKey::LeaveGroup, 0, 1),
    (ApiKey::OffsetCommit, 0, 9),
    (ApiKey::OffsetFetch, 0, 9),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeGroups, 0, 4),
    (ApiKey::ListGroups, 0, 5),
];

/// The APIs a broker in a cluster implements: the above plus OffsetForLeaderEpoch (KIP-101/320),
/// built from [`SUPPORTED_APIS`] so that the two lists cannot drift apart.
/// InitProducerId stops at v4: v5 only adds KIP-890's semantics for transactional producers.
pub const CLUSTER_APIS: &[(ApiKey, i16, i16)] = &CLUSTER_APIS_LIST;

const CLUSTER_ONLY_API: (ApiKey, i16, i16) = (ApiKey::OffsetForLeaderEpoch, 2, 4);

const CLUSTER_APIS_LIST: [(ApiKey, i16, i16); SUPPORTED_APIS.len() + 1] = {
    let mut list = [CLUSTER_ONLY_API; SUPPORTED_APIS.len() + 1];
    let mut i = 0;
    while i < SUPPORTED_APIS.len() {
        list[i] = SUPPORTED_APIS[i];
        i += 1;
    }
    list
};

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
}

impl<R: kafka_protocol::protocol::Encodable + Send + 'static> Answer<R> {
    fn into_reply(
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

/// Version range advertised for `api` in `apis`, if implemented.
pub fn supported_range(apis: &[(ApiKey, i16, i16)], api: ApiKey) -> Option<(i16, i16)> {
    apis.iter()
        .find(|(key, _, _)| *key == api)
        .map(|&(_, min, max)| (min, max))
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

/// What admission makes of a frame: a request to handle, or the answer already (Kafka's
/// ApiVersions fallback for a version newer than ours).
pub enum Admission {
    Request(Admitted),
    Answered(Reply),
}

/// Admits one request frame (without its length prefix) against the `apis` a server implements:
/// an unknown API or version closes the connection, except that ApiVersions newer than ours gets
/// UNSUPPORTED_VERSION encoded as v0, still listing our APIs (as Kafka answers it).
pub fn admit(frame_bytes: Bytes, apis: &[(ApiKey, i16, i16)]) -> Result<Admission, CloseReason> {
    let (api_key, version, correlation_id) =
        frame::peek_request(&frame_bytes).ok_or(CloseReason::TooShort)?;
    let api = ApiKey::try_from(api_key).map_err(|_| CloseReason::UnknownApiKey { api_key })?;
    let (min_version, max_version) =
        supported_range(apis, api).ok_or(CloseReason::UnsupportedApi { api })?;
    if version < min_version || version > max_version {
        if api == ApiKey::ApiVersions && version > max_version {
            let response = api_versions::unsupported_version_response_for(apis);
            return Ok(Admission::Answered(Reply::Now(frame::encode_response(
                api,
                0,
                correlation_id,
                &response,
            )?)));
        }
        return Err(CloseReason::UnsupportedVersion { api, version });
    }
    let mut body = frame_bytes;
    let header = RequestHeader::decode(&mut body, api.request_header_version(version))
        .map_err(malformed(api, version))?;
    Ok(Admission::Request(Admitted {
        api,
        version,
        correlation_id,
        header,
        body,
    }))
}

/// The close reason for a request body of `api` `version` that does not decode.
pub fn malformed(api: ApiKey, version: i16) -> impl Fn(anyhow::Error) -> CloseReason {
    move |e| CloseReason::Malformed {
        api,
        version,
        message: format!("{e:#}"),
    }
}

/// Handles one request frame (without its length prefix).
pub fn handle_frame(broker: &Arc<Broker>, frame_bytes: Bytes) -> Result<Reply, CloseReason> {
    let apis = if broker.in_cluster() {
        CLUSTER_APIS
    } else {
        SUPPORTED_APIS
    };
    let Admitted {
        api,
        version,
        correlation_id,
        header,
        mut body,
    } = match admit(frame_bytes, apis)? {
        Admission::Request(admitted) => admitted,
        Admission::Answered(reply) => return Ok(reply),
    };
    let malformed = malformed(api, version);
    tracing::trace!(?api, version, correlation_id, client_id = ?header.client_id, "request");
    let encode_now = |bytes: Result<Bytes, EncodeError>| -> Result<Reply, CloseReason> {
        Ok(Reply::Now(bytes?))
    };
    match api {
        ApiKey::ApiVersions => {
            ApiVersionsRequest::decode(&mut body, version).map_err(malformed)?;
            let response = api_versions::response_for(apis);
            encode_now(frame::encode_response(
                api,
                version,
                correlation_id,
                &response,
            ))
        }
        ApiKey::Metadata => {
            let request = MetadataRequest::decode(&mut body, version).map_err(malformed)?;
            let answer = metadata::answer(broker, &request, version);
            if !answer.create.is_empty() {
                crate::server::cluster::spawn_auto_create(broker, answer.create);
            }
            encode_now(frame::encode_response(
                api,
                version,
                correlation_id,
                &answer.response,
            ))
        }
        ApiKey::CreateTopics => {
            let request = CreateTopicsRequest::decode(&mut body, version).map_err(malformed)?;
            if broker.in_cluster() {
                // KRaft-style: any broker forwards to the controller.
                let forwarding = crate::server::cluster::forward_create_topics(broker, request);
                return Ok(Reply::Later(Box::pin(async move {
                    let response = forwarding.await;
                    encode_logged(api, version, correlation_id, &response)
                })));
            }
            let response = create_topics::handle(broker, &request, version);
            encode_now(frame::encode_response(
                api,
                version,
                correlation_id,
                &response,
            ))
        }
        ApiKey::OffsetForLeaderEpoch => {
            let request =
                OffsetForLeaderEpochRequest::decode(&mut body, version).map_err(malformed)?;
            let response = offset_for_leader_epoch::handle(broker, &request);
            encode_now(frame::encode_response(
                api,
                version,
                correlation_id,
                &response,
            ))
        }
        ApiKey::InitProducerId => {
            let request = InitProducerIdRequest::decode(&mut body, version).map_err(malformed)?;
            let response = init_producer_id::handle(broker, &request);
            encode_now(frame::encode_response(
                api,
                version,
                correlation_id,
                &response,
            ))
        }
        ApiKey::ListOffsets => {
            let request = ListOffsetsRequest::decode(&mut body, version).map_err(malformed)?;
            let response = list_offsets::handle(broker, &request, version);
            encode_now(frame::encode_response(
                api,
                version,
                correlation_id,
                &response,
            ))
        }
        ApiKey::Produce => {
            let request = ProduceRequest::decode(&mut body, version).map_err(malformed)?;
            match produce::handle(broker, request) {
                produce::Outcome::NoResponse => Ok(Reply::Nothing),
                produce::Outcome::Ready(response) => encode_now(frame::encode_response(
                    api,
                    version,
                    correlation_id,
                    &response,
                )),
                produce::Outcome::Wait(pending) => Ok(Reply::Later(Box::pin(async move {
                    let response = pending.await;
                    encode_logged(api, version, correlation_id, &response)
                }))),
            }
        }
        ApiKey::Fetch => {
            let request = FetchRequest::decode(&mut body, version).map_err(malformed)?;
            let broker = Arc::clone(broker);
            Ok(Reply::Later(Box::pin(async move {
                let response = fetch::handle(&broker, request, version).await;
                encode_logged(api, version, correlation_id, &response)
            })))
        }
        ApiKey::FindCoordinator => {
            let request = FindCoordinatorRequest::decode(&mut body, version).map_err(malformed)?;
            Answer::Now(find_coordinator::handle(broker, &request, version)).into_reply(
                api,
                version,
                correlation_id,
            )
        }
        ApiKey::JoinGroup => {
            let request = JoinGroupRequest::decode(&mut body, version).map_err(malformed)?;
            let client_id = header.client_id.as_ref().map_or("", |c| c.as_str());
            join_group::handle(broker, request, version, client_id).into_reply(
                api,
                version,
                correlation_id,
            )
        }
        ApiKey::SyncGroup => {
            let request = SyncGroupRequest::decode(&mut body, version).map_err(malformed)?;
            sync_group::handle(broker, request, version).into_reply(api, version, correlation_id)
        }
        ApiKey::Heartbeat => {
            let request = HeartbeatRequest::decode(&mut body, version).map_err(malformed)?;
            Answer::Now(heartbeat::handle(broker, &request)).into_reply(
                api,
                version,
                correlation_id,
            )
        }
        ApiKey::LeaveGroup => {
            let request = LeaveGroupRequest::decode(&mut body, version).map_err(malformed)?;
            Answer::Now(leave_group::handle(broker, &request)).into_reply(
                api,
                version,
                correlation_id,
            )
        }
        ApiKey::OffsetCommit => {
            let request = OffsetCommitRequest::decode(&mut body, version).map_err(malformed)?;
            offset_commit::handle(broker, request, version).into_reply(api, version, correlation_id)
        }
        ApiKey::OffsetFetch => {
            let request = OffsetFetchRequest::decode(&mut body, version).map_err(malformed)?;
            Answer::Now(offset_fetch::handle(broker, &request, version)).into_reply(
                api,
                version,
                correlation_id,
            )
        }
        ApiKey::DescribeGroups => {
            let request = DescribeGroupsRequest::decode(&mut body, version).map_err(malformed)?;
            Answer::Now(describe_groups::handle(broker, &request, version)).into_reply(
                api,
                version,
                correlation_id,
            )
        }
        ApiKey::ListGroups => {
            let request = ListGroupsRequest::decode(&mut body, version).map_err(malformed)?;
            Answer::Now(list_groups::handle(broker, &request, version)).into_reply(
                api,
                version,
                correlation_id,
            )
        }
        _ => Err(CloseReason::UnsupportedApi { api }),
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

/// The Kafka error code for a log error. An inconsistent log stops the broker (it must not serve
/// a wrong offset).
pub fn log_error_code(error: &LogError, context: &str) -> i16 {
    match error {
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
        LogError::Closed => ResponseError::NotLeaderOrFollower.code(),
        LogError::NonContiguous { .. } => ResponseError::CorruptMessage.code(),
        LogError::Io { .. } | LogError::Failed => {
            tracing::error!(error = %error, context, "storage error");
            ResponseError::KafkaStorageError.code()
        }
        LogError::Inconsistent(message) => crate::fatal(&format!("{context}: {message}")),
    }
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
