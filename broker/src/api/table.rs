//! The table of Kafka APIs: per API its key, the versions advertised, and the handler of each
//! role that serves it (the broker — some APIs only in a cluster — and the controller). Admission
//! (frame → header → version check) and dispatch (decode → handler → reply) are the same code
//! for both roles; ApiVersions answers from the same table.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, AlterConfigsRequest, ApiKey,
    ApiVersionsRequest, CreateAclsRequest, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteAclsRequest, DeleteGroupsRequest, DeleteRecordsRequest, DeleteTopicsRequest,
    DescribeAclsRequest, DescribeClusterRequest, DescribeConfigsRequest, DescribeGroupsRequest,
    DescribeLogDirsRequest, EndTxnRequest, FetchRequest, FindCoordinatorRequest, HeartbeatRequest,
    IncrementalAlterConfigsRequest, InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest,
    ListGroupsRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest,
    OffsetDeleteRequest, OffsetFetchRequest, OffsetForLeaderEpochRequest, ProduceRequest,
    RequestHeader, SyncGroupRequest, TxnOffsetCommitRequest, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::Decodable;

use crate::api::{
    acls, add_offsets_to_txn, add_partitions_to_txn, alter_configs, api_versions,
    controller as on_controller, create_partitions, create_topics, delete_groups, delete_records,
    delete_topics, describe_cluster, describe_configs, describe_groups, describe_log_dirs, end_txn,
    fetch, find_coordinator, heartbeat, init_producer_id, join_group, leave_group, list_groups,
    list_offsets, malformed, metadata, offset_commit, offset_fetch, offset_for_leader_epoch,
    produce, sync_group, txn_offset_commit, write_txn_markers, Admission, Admitted, Answer,
    CloseReason, Reply,
};
use crate::cluster::ControllerLink;
use crate::controller::Controller;
use crate::limits;
use crate::state::Broker;
use crate::wire::frame;

/// The process that serves a request, as far as the APIs it serves differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A broker on its own (no controller).
    SingleBroker,
    /// A broker in a cluster: also the APIs its peers use (OffsetForLeaderEpoch).
    ClusterBroker,
    Controller,
}

impl Role {
    /// The role of `broker`.
    pub fn of(broker: &Broker) -> Role {
        if broker.in_cluster() {
            Role::ClusterBroker
        } else {
            Role::SingleBroker
        }
    }
}

/// A handler: the admitted request in, the reply out (a malformed body closes the connection).
pub type Handler<S> = fn(&Arc<S>, Admitted) -> Result<Reply, CloseReason>;

/// How a broker serves an API.
#[derive(Clone, Copy)]
pub enum OnBroker {
    No,
    Always(Handler<Broker>),
    /// Only in a cluster.
    InCluster(Handler<Broker>),
}

/// One API: its key, the versions advertised (each one the codec decodes: see the test below),
/// and its handlers.
pub struct Api {
    pub key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
    pub broker: OnBroker,
    pub controller: Option<Handler<Controller>>,
}

impl Api {
    /// Whether `role` serves this API.
    pub fn served_by(&self, role: Role) -> bool {
        match (role, self.broker) {
            (Role::Controller, _) => self.controller.is_some(),
            (_, OnBroker::Always(_)) | (Role::ClusterBroker, OnBroker::InCluster(_)) => true,
            _ => false,
        }
    }
}

const fn api(key: ApiKey, min_version: i16, max_version: i16, broker: OnBroker) -> Api {
    Api {
        key,
        min_version,
        max_version,
        broker,
        controller: None,
    }
}

const fn both(
    key: ApiKey,
    min: i16,
    max: i16,
    broker: Handler<Broker>,
    c: Handler<Controller>,
) -> Api {
    Api {
        key,
        min_version: min,
        max_version: max,
        broker: OnBroker::Always(broker),
        controller: Some(c),
    }
}

const fn controller_only(key: ApiKey, min: i16, max: i16, c: Handler<Controller>) -> Api {
    Api {
        key,
        min_version: min,
        max_version: max,
        broker: OnBroker::No,
        controller: Some(c),
    }
}

/// Every API either role serves, in the order ApiVersions lists them.
pub const APIS: &[Api] = &[
    api(ApiKey::Produce, 3, 11, OnBroker::Always(produce_on_broker)),
    // Fetch on the controller is only its metadata watch; v12 is the last that names topics.
    both(ApiKey::Fetch, 4, 12, fetch_on_broker, on_controller::fetch),
    api(
        ApiKey::ListOffsets,
        1,
        7,
        OnBroker::Always(list_offsets_on_broker),
    ),
    both(
        ApiKey::Metadata,
        0,
        12,
        metadata_on_broker,
        on_controller::metadata,
    ),
    both(
        ApiKey::ApiVersions,
        0,
        3,
        api_versions_on_broker,
        api_versions_on_controller,
    ),
    both(
        ApiKey::CreateTopics,
        2,
        7,
        create_topics_on_broker,
        on_controller::create_topics,
    ),
    // The group coordinator, at the versions librdkafka 2.12 asks for (rdkafka_request.c).
    api(
        ApiKey::FindCoordinator,
        0,
        2,
        OnBroker::Always(find_coordinator_on_broker),
    ),
    api(
        ApiKey::JoinGroup,
        0,
        5,
        OnBroker::Always(join_group_on_broker),
    ),
    api(
        ApiKey::SyncGroup,
        0,
        3,
        OnBroker::Always(sync_group_on_broker),
    ),
    api(
        ApiKey::Heartbeat,
        0,
        3,
        OnBroker::Always(heartbeat_on_broker),
    ),
    // LeaveGroup v3+ lists members by id or instance id (KIP-345), as Java clients send it.
    api(
        ApiKey::LeaveGroup,
        0,
        5,
        OnBroker::Always(leave_group_on_broker),
    ),
    // From v2: kafka-protocol 0.18 decodes no older OffsetCommit (nor OffsetFetch v0).
    api(
        ApiKey::OffsetCommit,
        2,
        9,
        OnBroker::Always(offset_commit_on_broker),
    ),
    api(
        ApiKey::OffsetFetch,
        1,
        9,
        OnBroker::Always(offset_fetch_on_broker),
    ),
    // v5 only adds KIP-890's semantics for transactional producers.
    api(
        ApiKey::InitProducerId,
        0,
        4,
        OnBroker::Always(init_producer_id_on_broker),
    ),
    api(
        ApiKey::DescribeGroups,
        0,
        4,
        OnBroker::Always(describe_groups_on_broker),
    ),
    api(
        ApiKey::ListGroups,
        0,
        5,
        OnBroker::Always(list_groups_on_broker),
    ),
    // Answered by the group's coordinator: tombstones in __consumer_offsets.
    api(
        ApiKey::DeleteGroups,
        0,
        2,
        OnBroker::Always(delete_groups_on_broker),
    ),
    api(
        ApiKey::OffsetDelete,
        0,
        0,
        OnBroker::Always(offset_delete_on_broker),
    ),
    // kafka-protocol 0.18 decodes DeleteTopics from v1. In a cluster brokers forward both to
    // the controller, which changes its state (brokers follow its image).
    both(
        ApiKey::DeleteTopics,
        1,
        6,
        delete_topics_on_broker,
        on_controller::delete_topics,
    ),
    both(
        ApiKey::CreatePartitions,
        0,
        3,
        create_partitions_on_broker,
        on_controller::create_partitions,
    ),
    // DescribeConfigs v0 is not decoded by kafka-protocol 0.18. On the controller: the topics'
    // stored configs (brokers pull them with their image).
    both(
        ApiKey::DescribeConfigs,
        1,
        4,
        describe_configs_on_broker,
        on_controller::describe_configs,
    ),
    // Topics' configs: stored by a single broker itself, in a cluster by the controller (brokers
    // forward to it, KRaft-style).
    both(
        ApiKey::AlterConfigs,
        0,
        2,
        alter_configs_on_broker,
        on_controller::alter_configs,
    ),
    both(
        ApiKey::IncrementalAlterConfigs,
        0,
        1,
        incremental_alter_configs_on_broker,
        on_controller::incremental_alter_configs,
    ),
    // ACL bindings (KIP-140, KIP-290 from v1; kafka-protocol 0.18 decodes v1+, as Kafka 4 serves):
    // stored by a single broker itself, in a cluster by the controller (brokers forward).
    both(
        ApiKey::DescribeAcls,
        1,
        3,
        describe_acls_on_broker,
        on_controller::describe_acls,
    ),
    both(
        ApiKey::CreateAcls,
        1,
        3,
        create_acls_on_broker,
        on_controller::create_acls,
    ),
    both(
        ApiKey::DeleteAcls,
        1,
        3,
        delete_acls_on_broker,
        on_controller::delete_acls,
    ),
    // SCRAM credentials (KIP-554): stored by a single broker itself, in a cluster by the
    // controller (brokers forward); not used to authenticate (no SASL).
    both(
        ApiKey::DescribeUserScramCredentials,
        0,
        0,
        describe_user_scram_credentials_on_broker,
        on_controller::describe_user_scram_credentials,
    ),
    both(
        ApiKey::AlterUserScramCredentials,
        0,
        0,
        alter_user_scram_credentials_on_broker,
        on_controller::alter_user_scram_credentials,
    ),
    // Sent to each partition's leader, as Produce.
    api(
        ApiKey::DeleteRecords,
        0,
        2,
        OnBroker::Always(delete_records_on_broker),
    ),
    // kafka-protocol 0.18 decodes DescribeLogDirs from v1.
    api(
        ApiKey::DescribeLogDirs,
        1,
        4,
        OnBroker::Always(describe_log_dirs_on_broker),
    ),
    api(
        ApiKey::DescribeCluster,
        0,
        2,
        OnBroker::Always(describe_cluster_on_broker),
    ),
    // The transaction coordinator (KIP-98), at the versions before KIP-890's client changes
    // (AddPartitionsToTxn v4+ is the brokers' batched verification; v4+ of the others only add
    // TRANSACTION_ABORTABLE or the epoch bump of KIP-890 part 2).
    api(
        ApiKey::AddPartitionsToTxn,
        0,
        3,
        OnBroker::Always(add_partitions_to_txn_on_broker),
    ),
    api(
        ApiKey::AddOffsetsToTxn,
        0,
        3,
        OnBroker::Always(add_offsets_to_txn_on_broker),
    ),
    api(ApiKey::EndTxn, 0, 3, OnBroker::Always(end_txn_on_broker)),
    api(
        ApiKey::TxnOffsetCommit,
        0,
        3,
        OnBroker::Always(txn_offset_commit_on_broker),
    ),
    // A transaction coordinator asks the leaders of its transaction's partitions for markers.
    api(
        ApiKey::WriteTxnMarkers,
        1,
        1,
        OnBroker::InCluster(write_txn_markers_on_broker),
    ),
    // KIP-101/320: followers ask their leader where their log diverges.
    api(
        ApiKey::OffsetForLeaderEpoch,
        2,
        4,
        OnBroker::InCluster(offset_for_leader_epoch_on_broker),
    ),
    controller_only(ApiKey::AlterPartition, 2, 3, on_controller::alter_partition),
    controller_only(
        ApiKey::BrokerRegistration,
        0,
        4,
        on_controller::broker_registration,
    ),
    controller_only(
        ApiKey::BrokerHeartbeat,
        0,
        1,
        on_controller::broker_heartbeat,
    ),
];

/// The APIs `role` serves, with the version ranges it advertises.
pub fn advertised(role: Role) -> Vec<(ApiKey, i16, i16)> {
    APIS.iter()
        .filter(|a| a.served_by(role))
        .map(|a| (a.key, a.min_version, a.max_version))
        .collect()
}

/// Whether `role` serves `key`.
pub fn serves(role: Role, key: ApiKey) -> bool {
    entry(role, key).is_some()
}

/// The entry of `key` if `role` serves it.
fn entry(role: Role, key: ApiKey) -> Option<&'static Api> {
    APIS.iter().find(|a| a.key == key && a.served_by(role))
}

/// Admits one request frame (without its length prefix) as `role`: an unknown API or version
/// closes the connection, except that ApiVersions newer than ours gets UNSUPPORTED_VERSION
/// encoded as v0, still listing our APIs (as Kafka answers it).
pub fn admit(frame_bytes: Bytes, role: Role) -> Result<Admission, CloseReason> {
    let (api_key, version, correlation_id) =
        frame::peek_request(&frame_bytes).ok_or(CloseReason::TooShort)?;
    let api = ApiKey::try_from(api_key).map_err(|_| CloseReason::UnknownApiKey { api_key })?;
    let entry = entry(role, api).ok_or(CloseReason::UnsupportedApi { api })?;
    if version < entry.min_version || version > entry.max_version {
        if api == ApiKey::ApiVersions && version > entry.max_version {
            let response = api_versions::unsupported_version_response_for(&advertised(role));
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

/// Admits a frame as `role` and runs the handler `pick` finds for it in the table.
fn dispatch<S>(
    state: &Arc<S>,
    frame_bytes: Bytes,
    role: Role,
    pick: fn(&Api) -> Option<Handler<S>>,
) -> Result<Reply, CloseReason> {
    let admitted = match admit(frame_bytes, role)? {
        Admission::Request(admitted) => admitted,
        Admission::Answered(reply) => return Ok(reply),
    };
    let api = admitted.api;
    tracing::trace!(?api, version = admitted.version, correlation_id = admitted.correlation_id,
        client_id = ?admitted.header.client_id, "request");
    let handler = entry(role, api)
        .and_then(pick)
        .ok_or(CloseReason::UnsupportedApi { api })?;
    handler(state, admitted)
}

/// Handles one request frame (without its length prefix) on a broker.
pub fn handle_on_broker(broker: &Arc<Broker>, frame_bytes: Bytes) -> Result<Reply, CloseReason> {
    dispatch(broker, frame_bytes, Role::of(broker), |api| {
        match api.broker {
            OnBroker::Always(handler) | OnBroker::InCluster(handler) => Some(handler),
            OnBroker::No => None,
        }
    })
}

/// Handles one request frame (without its length prefix) on the controller.
pub fn handle_on_controller(
    controller: &Arc<Controller>,
    frame_bytes: Bytes,
) -> Result<Reply, CloseReason> {
    dispatch(controller, frame_bytes, Role::Controller, |api| {
        api.controller
    })
}

fn api_versions_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    r.decode::<ApiVersionsRequest>()?;
    r.reply(Answer::Now(api_versions::response_for(&advertised(
        Role::of(broker),
    ))))
}

fn api_versions_on_controller(_: &Arc<Controller>, mut r: Admitted) -> Result<Reply, CloseReason> {
    r.decode::<ApiVersionsRequest>()?;
    r.reply(Answer::Now(api_versions::response_for(&advertised(
        Role::Controller,
    ))))
}

fn metadata_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: MetadataRequest = r.decode()?;
    if broker.in_cluster()
        && broker.config.replication.metadata_waits_for_image
        && !*broker.cluster.ready.borrow()
    {
        // Before its first image this broker knows no broker, not even itself: its answer would
        // list none, and librdkafka decommissions every broker a Metadata response leaves out
        // (their coordinators with them: a transactional producer then hangs, librdkafka issue
        // #5511). Kafka serves no client before its metadata has caught up; this broker answers
        // once it holds the image (or after `METADATA_BEFORE_IMAGE_WAIT_MS`, with what it has).
        // `metadata.before.image = "answer"` (a bug switch) skips this wait.
        let broker = Arc::clone(broker);
        let version = r.version;
        let mut ready = broker.cluster.ready.subscribe();
        return r.reply(Answer::Later(Box::pin(async move {
            let wait = std::time::Duration::from_millis(limits::METADATA_BEFORE_IMAGE_WAIT_MS);
            let _ = tokio::time::timeout(wait, ready.wait_for(|r| *r)).await;
            metadata_response(&broker, &request, version)
        })));
    }
    r.reply(Answer::Now(metadata_response(broker, &request, r.version)))
}

/// The Metadata answer, the topics it names for auto-creation sent to the controller.
fn metadata_response(
    broker: &Arc<Broker>,
    request: &MetadataRequest,
    version: i16,
) -> kafka_protocol::messages::MetadataResponse {
    let answer = metadata::answer(broker, request, version);
    if !answer.create.is_empty() {
        broker.cluster.auto_create(answer.create);
    }
    answer.response
}

fn create_topics_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: CreateTopicsRequest = r.decode()?;
    if broker.in_cluster() {
        // KRaft-style: any broker forwards to the controller.
        return r.reply(Answer::Later(broker.cluster.forward_create_topics(request)));
    }
    r.reply(Answer::Now(create_topics::handle(
        broker, &request, r.version,
    )))
}

fn offset_for_leader_epoch_on_broker(
    broker: &Arc<Broker>,
    mut r: Admitted,
) -> Result<Reply, CloseReason> {
    let request: OffsetForLeaderEpochRequest = r.decode()?;
    r.reply(Answer::Now(offset_for_leader_epoch::handle(
        broker, &request,
    )))
}

fn init_producer_id_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: InitProducerIdRequest = r.decode()?;
    r.reply(init_producer_id::handle(broker, &request))
}

fn list_offsets_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: ListOffsetsRequest = r.decode()?;
    r.reply(Answer::Now(list_offsets::handle(
        broker, &request, r.version,
    )))
}

fn produce_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: ProduceRequest = r.decode()?;
    r.reply(match produce::handle(broker, request) {
        produce::Outcome::NoResponse => Answer::Nothing,
        produce::Outcome::Ready(response) => Answer::Now(response),
        produce::Outcome::Wait(pending) => Answer::Later(pending),
    })
}

fn fetch_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: FetchRequest = r.decode()?;
    let broker = Arc::clone(broker);
    let version = r.version;
    r.reply(Answer::Later(Box::pin(async move {
        fetch::handle(&broker, request, version).await
    })))
}

fn find_coordinator_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: FindCoordinatorRequest = r.decode()?;
    r.reply(Answer::Now(find_coordinator::handle(
        broker, &request, r.version,
    )))
}

fn join_group_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: JoinGroupRequest = r.decode()?;
    let client_id = r.header.client_id.as_ref().map_or("", |c| c.as_str());
    r.reply(join_group::handle(broker, request, r.version, client_id))
}

fn sync_group_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: SyncGroupRequest = r.decode()?;
    r.reply(sync_group::handle(broker, request, r.version))
}

fn heartbeat_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: HeartbeatRequest = r.decode()?;
    r.reply(Answer::Now(heartbeat::handle(broker, &request)))
}

fn leave_group_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: LeaveGroupRequest = r.decode()?;
    r.reply(Answer::Now(leave_group::handle(
        broker, &request, r.version,
    )))
}

fn offset_commit_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: OffsetCommitRequest = r.decode()?;
    r.reply(offset_commit::handle(broker, request, r.version))
}

fn offset_fetch_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: OffsetFetchRequest = r.decode()?;
    r.reply(Answer::Now(offset_fetch::handle(
        broker, &request, r.version,
    )))
}

fn delete_groups_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: DeleteGroupsRequest = r.decode()?;
    r.reply(delete_groups::handle(broker, request))
}

fn offset_delete_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: OffsetDeleteRequest = r.decode()?;
    r.reply(delete_groups::handle_offset_delete(broker, request))
}

fn describe_groups_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: DescribeGroupsRequest = r.decode()?;
    r.reply(Answer::Now(describe_groups::handle(
        broker, &request, r.version,
    )))
}

fn list_groups_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: ListGroupsRequest = r.decode()?;
    r.reply(Answer::Now(list_groups::handle(
        broker, &request, r.version,
    )))
}

fn describe_configs_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: DescribeConfigsRequest = r.decode()?;
    r.reply(Answer::Now(describe_configs::handle(
        broker, &request, r.version,
    )))
}

fn describe_cluster_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: DescribeClusterRequest = r.decode()?;
    r.reply(Answer::Now(describe_cluster::handle(
        broker, &request, r.version,
    )))
}

/// The broker's handler `$handler` of an API that a broker in a cluster forwards to the
/// controller (KRaft-style: the APIs that change the controller's state): `$send` puts the
/// request on the controller link, `$refused` answers it when the controller cannot be asked,
/// `$local` is a single broker's own answer. Each takes the request and its version.
macro_rules! forwarded {
    ($handler:ident, $request:ty, $send:expr, $refused:expr, $local:expr) => {
        fn $handler(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
            let request: $request = r.decode()?;
            let version = r.version;
            if !broker.in_cluster() {
                return r.reply(Answer::Now(($local)(&**broker, &request, version)));
            }
            let link = broker.cluster.controller_link.get();
            let forwarded = link.map(|link| ($send)(link.as_ref(), request.clone(), version));
            let refused = move |e| ($refused)(&request, version, e);
            r.reply(Answer::Later(Box::pin(alter_configs::answer_of(
                forwarded, refused,
            ))))
        }
    };
}

forwarded!(
    alter_configs_on_broker,
    AlterConfigsRequest,
    |link: &dyn ControllerLink, q, _| link.alter_configs(q),
    |q, _, e| alter_configs::refused(q, e),
    |b, q, _| alter_configs::handle(b, q)
);
forwarded!(
    incremental_alter_configs_on_broker,
    IncrementalAlterConfigsRequest,
    |link: &dyn ControllerLink, q, _| link.incremental_alter_configs(q),
    |q, _, e| alter_configs::refused_incremental(q, e),
    |b, q, _| alter_configs::handle_incremental(b, q)
);
forwarded!(
    delete_topics_on_broker,
    DeleteTopicsRequest,
    |link: &dyn ControllerLink, q, v| link.delete_topics(q, v),
    delete_topics::refused,
    delete_topics::handle
);
forwarded!(
    create_partitions_on_broker,
    CreatePartitionsRequest,
    |link: &dyn ControllerLink, q, _| link.create_partitions(q),
    |q, _, e| create_partitions::refused(q, e),
    |b, q, _| create_partitions::handle(b, q)
);

fn describe_log_dirs_on_broker(
    broker: &Arc<Broker>,
    mut r: Admitted,
) -> Result<Reply, CloseReason> {
    let request: DescribeLogDirsRequest = r.decode()?;
    r.reply(Answer::Now(describe_log_dirs::handle(broker, &request)))
}

fn delete_records_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: DeleteRecordsRequest = r.decode()?;
    r.reply(Answer::Now(delete_records::handle(broker, &request)))
}

fn add_partitions_to_txn_on_broker(
    broker: &Arc<Broker>,
    mut r: Admitted,
) -> Result<Reply, CloseReason> {
    let request: AddPartitionsToTxnRequest = r.decode()?;
    r.reply(add_partitions_to_txn::handle(broker, request))
}

fn add_offsets_to_txn_on_broker(
    broker: &Arc<Broker>,
    mut r: Admitted,
) -> Result<Reply, CloseReason> {
    let request: AddOffsetsToTxnRequest = r.decode()?;
    r.reply(add_offsets_to_txn::handle(broker, request))
}

fn end_txn_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: EndTxnRequest = r.decode()?;
    r.reply(end_txn::handle(broker, request))
}

fn txn_offset_commit_on_broker(
    broker: &Arc<Broker>,
    mut r: Admitted,
) -> Result<Reply, CloseReason> {
    let request: TxnOffsetCommitRequest = r.decode()?;
    let version = r.version;
    let unanswered = broker
        .unanswered_txn_offset_commits
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok();
    if unanswered {
        // `debug.txn.offset.commit.unanswered`: carried out, never answered.
        tracing::warn!(
            transactional_id = request.transactional_id.as_str(),
            "debug.txn.offset.commit.unanswered: leaving this TxnOffsetCommit without an answer"
        );
        if let Answer::Later(pending) = txn_offset_commit::handle(broker, request, version) {
            tokio::spawn(pending);
        }
        return r.reply(Answer::<kafka_protocol::messages::TxnOffsetCommitResponse>::Nothing);
    }
    r.reply(txn_offset_commit::handle(broker, request, version))
}

fn write_txn_markers_on_broker(
    broker: &Arc<Broker>,
    mut r: Admitted,
) -> Result<Reply, CloseReason> {
    let request: WriteTxnMarkersRequest = r.decode()?;
    r.reply(write_txn_markers::handle(broker, request))
}

fn create_acls_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: CreateAclsRequest = r.decode()?;
    if broker.in_cluster() {
        let link = broker.cluster.controller_link.get();
        let forwarded = link.map(|link| link.create_acls(request.clone()));
        return r.reply(Answer::Later(Box::pin(alter_configs::answer_of(
            forwarded,
            move |e| acls::create_refused(&request, e),
        ))));
    }
    r.reply(Answer::Now(acls::create(&**broker, &request)))
}

fn describe_acls_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: DescribeAclsRequest = r.decode()?;
    if broker.in_cluster() {
        let link = broker.cluster.controller_link.get();
        let forwarded = link.map(|link| link.describe_acls(request.clone()));
        return r.reply(Answer::Later(Box::pin(alter_configs::answer_of(
            forwarded,
            acls::describe_refused,
        ))));
    }
    r.reply(Answer::Now(acls::describe(&**broker, &request)))
}

fn delete_acls_on_broker(broker: &Arc<Broker>, mut r: Admitted) -> Result<Reply, CloseReason> {
    let request: DeleteAclsRequest = r.decode()?;
    if broker.in_cluster() {
        let link = broker.cluster.controller_link.get();
        let forwarded = link.map(|link| link.delete_acls(request.clone()));
        return r.reply(Answer::Later(Box::pin(alter_configs::answer_of(
            forwarded,
            move |e| acls::delete_refused(&request, e),
        ))));
    }
    r.reply(Answer::Now(acls::delete(&**broker, &request)))
}

fn describe_user_scram_credentials_on_broker(
    broker: &Arc<Broker>,
    mut r: Admitted,
) -> Result<Reply, CloseReason> {
    let request: kafka_protocol::messages::DescribeUserScramCredentialsRequest = r.decode()?;
    if broker.in_cluster() {
        let link = broker.cluster.controller_link.get();
        let forwarded = link.map(|link| link.describe_user_scram_credentials(request.clone()));
        return r.reply(Answer::Later(Box::pin(alter_configs::answer_of(
            forwarded,
            crate::scram::describe_refused,
        ))));
    }
    r.reply(Answer::Now(crate::scram::describe(&broker.scram, &request)))
}

fn alter_user_scram_credentials_on_broker(
    broker: &Arc<Broker>,
    mut r: Admitted,
) -> Result<Reply, CloseReason> {
    let request: kafka_protocol::messages::AlterUserScramCredentialsRequest = r.decode()?;
    if broker.in_cluster() {
        let link = broker.cluster.controller_link.get();
        let forwarded = link.map(|link| link.alter_user_scram_credentials(request.clone()));
        return r.reply(Answer::Later(Box::pin(alter_configs::answer_of(
            forwarded,
            move |e| crate::scram::alter_refused(&request, e),
        ))));
    }
    r.reply(Answer::Now(crate::scram::alter(&broker.scram, &request)))
}
