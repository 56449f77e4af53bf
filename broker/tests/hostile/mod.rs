//! Hostile request frames for every API and version the broker or the controller decodes:
//! a request with one element in every array (at every nesting level) encoded at each version,
//! then every array count or length it holds replaced, one at a time, by 0x7FFFFFFF.
//! Also the in-process decoder dispatch that the fuzz test and the allocation test share.
#![allow(dead_code)]

use broker::api::table::{advertised, Role};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{self as m, ApiKey, BrokerId, GroupId, RequestHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Every (API, version) either process decodes: the broker (on its own and in a cluster) and the
/// controller.
pub fn all_api_versions() -> Vec<(ApiKey, i16)> {
    let mut all: Vec<(ApiKey, i16)> = Vec::new();
    for role in [Role::SingleBroker, Role::ClusterBroker, Role::Controller] {
        for (api, min, max) in advertised(role) {
            for version in min..=max {
                if !all.contains(&(api, version)) {
                    all.push((api, version));
                }
            }
        }
    }
    all
}

fn s(text: &'static str) -> StrBytes {
    StrBytes::from_static_str(text)
}

fn topic() -> TopicName {
    TopicName(s("hostile"))
}

/// Encodes the first of `candidates` that `version` can carry (later candidates drop fields
/// that older versions lack).
fn first_encodable<R: Encodable>(version: i16, candidates: Vec<R>) -> Option<Vec<u8>> {
    candidates.into_iter().find_map(|request| {
        let mut body = BytesMut::new();
        request.encode(&mut body, version).ok()?;
        Some(body.to_vec())
    })
}

/// A request of `api` with one element in each of its arrays, encoded at `version` (body only).
pub fn populated_body(api: ApiKey, version: i16) -> Option<Vec<u8>> {
    let v = version;
    match api {
        ApiKey::Produce => first_encodable(v, vec![produce()]),
        ApiKey::Fetch => first_encodable(v, vec![fetch(true), fetch(false)]),
        ApiKey::ListOffsets => first_encodable(v, vec![list_offsets()]),
        ApiKey::Metadata => first_encodable(v, vec![metadata()]),
        ApiKey::ApiVersions => first_encodable(
            v,
            vec![
                m::ApiVersionsRequest::default()
                    .with_client_software_name(s("kaos"))
                    .with_client_software_version(s("1")),
                m::ApiVersionsRequest::default(),
            ],
        ),
        ApiKey::CreateTopics => first_encodable(v, vec![create_topics()]),
        ApiKey::FindCoordinator => first_encodable(
            v,
            vec![m::FindCoordinatorRequest::default().with_key(s("g"))],
        ),
        ApiKey::JoinGroup => first_encodable(
            v,
            vec![join_group().with_rebalance_timeout_ms(100), join_group()],
        ),
        ApiKey::SyncGroup => first_encodable(v, vec![sync_group()]),
        ApiKey::Heartbeat => first_encodable(
            v,
            vec![m::HeartbeatRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_member_id(s("m"))],
        ),
        ApiKey::LeaveGroup => first_encodable(
            v,
            vec![
                m::LeaveGroupRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_member_id(s("m")),
                // v3+: a list of members (KIP-345).
                m::LeaveGroupRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_members(vec![m::leave_group_request::MemberIdentity::default()
                        .with_member_id(s("m"))
                        .with_group_instance_id(Some(s("i")))]),
            ],
        ),
        ApiKey::OffsetCommit => first_encodable(
            v,
            vec![offset_commit().with_member_id(s("m")), offset_commit()],
        ),
        ApiKey::OffsetFetch => first_encodable(v, offset_fetch()),
        ApiKey::InitProducerId => first_encodable(
            v,
            vec![m::InitProducerIdRequest::default().with_transaction_timeout_ms(100)],
        ),
        ApiKey::DescribeGroups => first_encodable(
            v,
            vec![m::DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g"))])],
        ),
        ApiKey::ListGroups => first_encodable(
            v,
            vec![
                m::ListGroupsRequest::default()
                    .with_states_filter(vec![s("Stable")])
                    .with_types_filter(vec![s("classic")]),
                m::ListGroupsRequest::default().with_states_filter(vec![s("Stable")]),
                m::ListGroupsRequest::default(),
            ],
        ),
        ApiKey::OffsetForLeaderEpoch => first_encodable(v, vec![offset_for_leader_epoch()]),
        ApiKey::AlterPartition => first_encodable(v, alter_partition()),
        ApiKey::BrokerRegistration => first_encodable(v, broker_registration()),
        ApiKey::BrokerHeartbeat => first_encodable(
            v,
            vec![
                m::BrokerHeartbeatRequest::default()
                    .with_offline_log_dirs(vec![uuid::Uuid::from_u128(7)]),
                m::BrokerHeartbeatRequest::default(),
            ],
        ),
        ApiKey::DeleteTopics => first_encodable(
            v,
            vec![
                m::DeleteTopicsRequest::default()
                    .with_topics(vec![m::delete_topics_request::DeleteTopicState::default()
                        .with_name(Some(topic()))]),
                m::DeleteTopicsRequest::default().with_topic_names(vec![topic()]),
            ],
        ),
        ApiKey::CreatePartitions => first_encodable(
            v,
            vec![m::CreatePartitionsRequest::default().with_topics(vec![
                m::create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(topic())
                    .with_count(2)
                    .with_assignments(Some(vec![
                        m::create_partitions_request::CreatePartitionsAssignment::default()
                            .with_broker_ids(vec![BrokerId(1)]),
                    ])),
            ])],
        ),
        ApiKey::DescribeConfigs => first_encodable(
            v,
            vec![m::DescribeConfigsRequest::default().with_resources(vec![
                m::describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("hostile"))
                    .with_configuration_keys(Some(vec![s("retention.ms")])),
            ])],
        ),
        ApiKey::DescribeCluster => first_encodable(
            v,
            vec![
                m::DescribeClusterRequest::default().with_endpoint_type(1),
                m::DescribeClusterRequest::default(),
            ],
        ),
        ApiKey::AddPartitionsToTxn => first_encodable(v, vec![add_partitions_to_txn()]),
        ApiKey::AddOffsetsToTxn => first_encodable(
            v,
            vec![m::AddOffsetsToTxnRequest::default()
                .with_transactional_id(m::TransactionalId(s("t")))
                .with_group_id(GroupId(s("g")))],
        ),
        ApiKey::EndTxn => first_encodable(
            v,
            vec![m::EndTxnRequest::default().with_transactional_id(m::TransactionalId(s("t")))],
        ),
        ApiKey::WriteTxnMarkers => first_encodable(v, vec![write_txn_markers()]),
        ApiKey::TxnOffsetCommit => first_encodable(
            v,
            vec![
                txn_offset_commit().with_member_id(s("m")),
                txn_offset_commit(),
            ],
        ),
        ApiKey::AlterConfigs => first_encodable(v, vec![alter_configs()]),
        ApiKey::IncrementalAlterConfigs => first_encodable(v, vec![incremental_alter_configs()]),
        ApiKey::DeleteRecords => first_encodable(v, vec![delete_records()]),
        ApiKey::CreateAcls => first_encodable(
            v,
            vec![m::CreateAclsRequest::default().with_creations(vec![
                m::create_acls_request::AclCreation::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t"))
                    .with_resource_pattern_type(3)
                    .with_principal(s("User:u"))
                    .with_host(s("*"))
                    .with_operation(3)
                    .with_permission_type(3),
            ])],
        ),
        ApiKey::DescribeAcls => first_encodable(
            v,
            vec![m::DescribeAclsRequest::default()
                .with_resource_type_filter(1)
                .with_resource_name_filter(Some(s("t")))
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1)],
        ),
        ApiKey::DeleteAcls => first_encodable(
            v,
            vec![m::DeleteAclsRequest::default().with_filters(vec![
                m::delete_acls_request::DeleteAclsFilter::default()
                    .with_resource_type_filter(1)
                    .with_pattern_type_filter(1)
                    .with_operation(1)
                    .with_permission_type(1),
            ])],
        ),
        ApiKey::DescribeUserScramCredentials => first_encodable(
            v,
            vec![
                m::DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                    m::describe_user_scram_credentials_request::UserName::default()
                        .with_name(s("u")),
                ])),
            ],
        ),
        ApiKey::AlterUserScramCredentials => first_encodable(
            v,
            vec![m::AlterUserScramCredentialsRequest::default()
                .with_deletions(vec![
                    m::alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                        .with_name(s("u"))
                        .with_mechanism(1),
                ])
                .with_upsertions(vec![
                    m::alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                        .with_name(s("v"))
                        .with_mechanism(1)
                        .with_iterations(4096)
                        .with_salt(Bytes::from_static(b"salt"))
                        .with_salted_password(Bytes::from_static(b"pw")),
                ])],
        ),
        ApiKey::DeleteGroups => first_encodable(
            v,
            vec![m::DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))])],
        ),
        ApiKey::OffsetDelete => first_encodable(
            v,
            vec![m::OffsetDeleteRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_topics(vec![
                    m::offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(topic())
                        .with_partitions(vec![
                            m::offset_delete_request::OffsetDeleteRequestPartition::default(),
                        ]),
                ])],
        ),
        ApiKey::DescribeLogDirs => first_encodable(
            v,
            vec![
                m::DescribeLogDirsRequest::default().with_topics(Some(vec![
                    m::describe_log_dirs_request::DescribableLogDirTopic::default()
                        .with_topic(m::TopicName(s("t")))
                        .with_partitions(vec![0]),
                ])),
                m::DescribeLogDirsRequest::default(),
            ],
        ),
        _ => None,
    }
}

fn alter_configs() -> m::AlterConfigsRequest {
    use m::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    m::AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(s("t"))
        .with_configs(vec![AlterableConfig::default()
            .with_name(s("retention.ms"))
            .with_value(Some(s("1000")))])])
}

fn incremental_alter_configs() -> m::IncrementalAlterConfigsRequest {
    use m::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    m::IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("t"))
            .with_configs(vec![AlterableConfig::default()
                .with_name(s("retention.ms"))
                .with_config_operation(0)
                .with_value(Some(s("1000")))]),
    ])
}

fn delete_records() -> m::DeleteRecordsRequest {
    use m::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
    m::DeleteRecordsRequest::default()
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(m::TopicName(s("t")))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(1)])])
        .with_timeout_ms(100)
}

fn write_txn_markers() -> m::WriteTxnMarkersRequest {
    use m::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
    m::WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_topics(vec![WritableTxnMarkerTopic::default()
            .with_name(m::TopicName(s("t")))
            .with_partition_indexes(vec![0])])])
}

fn add_partitions_to_txn() -> m::AddPartitionsToTxnRequest {
    use m::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    m::AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(m::TransactionalId(s("t")))
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(m::TopicName(s("t")))
            .with_partitions(vec![0])])
}

fn txn_offset_commit() -> m::TxnOffsetCommitRequest {
    use m::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    m::TxnOffsetCommitRequest::default()
        .with_transactional_id(m::TransactionalId(s("t")))
        .with_group_id(GroupId(s("g")))
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(m::TopicName(s("t")))
            .with_partitions(vec![
                TxnOffsetCommitRequestPartition::default().with_committed_metadata(Some(s("x")))
            ])])
}

fn produce() -> m::ProduceRequest {
    let batch = broker::wire::batch::build_batch(0, 1, &[b"v"]);
    m::ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(100)
        .with_topic_data(vec![m::produce_request::TopicProduceData::default()
            .with_name(topic())
            .with_partition_data(vec![
                m::produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(batch))),
            ])])
}

fn fetch(forgotten: bool) -> m::FetchRequest {
    let request = m::FetchRequest::default()
        .with_max_wait_ms(0)
        .with_replica_id(BrokerId(-1))
        .with_max_bytes(1000)
        .with_topics(vec![m::fetch_request::FetchTopic::default()
            .with_topic(topic())
            .with_partitions(vec![m::fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_partition_max_bytes(1000)])]);
    if forgotten {
        request.with_forgotten_topics_data(vec![m::fetch_request::ForgottenTopic::default()
            .with_topic(topic())
            .with_partitions(vec![0])])
    } else {
        request
    }
}

fn list_offsets() -> m::ListOffsetsRequest {
    m::ListOffsetsRequest::default().with_topics(vec![
        m::list_offsets_request::ListOffsetsTopic::default()
            .with_name(topic())
            .with_partitions(vec![
                m::list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1),
            ]),
    ])
}

fn metadata() -> m::MetadataRequest {
    m::MetadataRequest::default().with_topics(Some(vec![
        m::metadata_request::MetadataRequestTopic::default().with_name(Some(topic())),
    ]))
}

fn create_topics() -> m::CreateTopicsRequest {
    m::CreateTopicsRequest::default()
        .with_timeout_ms(100)
        .with_validate_only(true)
        .with_topics(vec![m::create_topics_request::CreatableTopic::default()
            .with_name(topic())
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![
                m::create_topics_request::CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(vec![BrokerId(1)]),
            ])
            .with_configs(vec![
                m::create_topics_request::CreatableTopicConfig::default()
                    .with_name(s("cleanup.policy"))
                    .with_value(Some(s("delete"))),
            ])])
}

fn join_group() -> m::JoinGroupRequest {
    m::JoinGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_session_timeout_ms(100)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            m::join_group_request::JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(b"md")),
        ])
}

fn sync_group() -> m::SyncGroupRequest {
    m::SyncGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_member_id(s("m"))
        .with_assignments(vec![
            m::sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(s("m"))
                .with_assignment(Bytes::from_static(b"as")),
        ])
}

fn offset_commit() -> m::OffsetCommitRequest {
    m::OffsetCommitRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_topics(vec![
            m::offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(topic())
                .with_partitions(vec![
                    m::offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(5),
                ]),
        ])
}

fn offset_fetch() -> Vec<m::OffsetFetchRequest> {
    vec![
        m::OffsetFetchRequest::default().with_groups(vec![
            m::offset_fetch_request::OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s("g")))
                .with_topics(Some(vec![
                    m::offset_fetch_request::OffsetFetchRequestTopics::default()
                        .with_name(topic())
                        .with_partition_indexes(vec![0]),
                ])),
        ]),
        m::OffsetFetchRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_topics(Some(vec![
                m::offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(topic())
                    .with_partition_indexes(vec![0]),
            ])),
    ]
}

fn offset_for_leader_epoch() -> m::OffsetForLeaderEpochRequest {
    m::OffsetForLeaderEpochRequest::default().with_topics(vec![
        m::offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
            .with_topic(topic())
            .with_partitions(vec![
                m::offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_leader_epoch(0),
            ]),
    ])
}

fn alter_partition() -> Vec<m::AlterPartitionRequest> {
    use m::alter_partition_request::{BrokerState, PartitionData, TopicData};
    let with = |partition: PartitionData| {
        m::AlterPartitionRequest::default().with_topics(vec![TopicData::default()
            .with_topic_id(uuid::Uuid::from_u128(9))
            .with_partitions(vec![partition.with_partition_index(0)])])
    };
    vec![
        with(
            PartitionData::default()
                .with_new_isr_with_epochs(vec![BrokerState::default().with_broker_id(BrokerId(1))]),
        ),
        with(PartitionData::default().with_new_isr(vec![BrokerId(1)])),
    ]
}

fn broker_registration() -> Vec<m::BrokerRegistrationRequest> {
    use m::broker_registration_request::{Feature, Listener};
    let base = m::BrokerRegistrationRequest::default()
        .with_broker_id(BrokerId(99))
        .with_cluster_id(s("c"))
        .with_listeners(vec![Listener::default()
            .with_name(s("PLAINTEXT"))
            .with_host(s("127.0.0.1"))
            .with_port(1)])
        .with_features(vec![Feature::default()
            .with_name(s("metadata.version"))
            .with_min_supported_version(1)
            .with_max_supported_version(1)]);
    vec![
        base.clone().with_log_dirs(vec![uuid::Uuid::from_u128(3)]),
        base,
    ]
}

/// Request header + body: a frame without its length prefix.
pub fn frame(api: ApiKey, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(s("hostile")));
    let mut bytes = BytesMut::new();
    header
        .encode(&mut bytes, api.request_header_version(version))
        .expect("encode header");
    bytes.extend_from_slice(body);
    bytes.to_vec()
}

/// The varint of count 0x7FFFFFFF in a compact array or string (`n + 1`).
const COMPACT_HUGE: [u8; 5] = [0x80, 0x80, 0x80, 0x80, 0x08];
const HUGE: [u8; 4] = [0x7f, 0xff, 0xff, 0xff];

/// Every body obtained from `body` by replacing one possible count or length with 0x7FFFFFFF:
/// each 4-byte 0 or 1 (an i32 array count), each 2-byte 0 or 1 (an i16 string length, as
/// 0x7FFF), and each byte 1 or 2 (a compact count of 0 or 1 elements).
pub fn hostile_counts(body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for at in 0..body.len() {
        if at + 4 <= body.len() && matches!(body[at..at + 4], [0, 0, 0, 0] | [0, 0, 0, 1]) {
            let mut hostile = body.to_vec();
            hostile[at..at + 4].copy_from_slice(&HUGE);
            out.push(hostile);
        }
        if at + 2 <= body.len() && matches!(body[at..at + 2], [0, 0] | [0, 1]) {
            let mut hostile = body.to_vec();
            hostile[at..at + 2].copy_from_slice(&[0x7f, 0xff]);
            out.push(hostile);
        }
        if matches!(body[at], 1 | 2) {
            let mut hostile = body[..at].to_vec();
            hostile.extend_from_slice(&COMPACT_HUGE);
            hostile.extend_from_slice(&body[at + 1..]);
            out.push(hostile);
        }
    }
    out
}

/// Decodes a request body of `api` `version` with the broker's codec, as its handlers do.
pub fn decode_body(api: ApiKey, version: i16, body: Bytes) -> anyhow::Result<()> {
    fn decode<R: Decodable>(mut body: Bytes, version: i16) -> anyhow::Result<()> {
        R::decode(&mut body, version).map(drop)
    }
    match api {
        ApiKey::Produce => decode::<m::ProduceRequest>(body, version),
        ApiKey::Fetch => decode::<m::FetchRequest>(body, version),
        ApiKey::ListOffsets => decode::<m::ListOffsetsRequest>(body, version),
        ApiKey::Metadata => decode::<m::MetadataRequest>(body, version),
        ApiKey::ApiVersions => decode::<m::ApiVersionsRequest>(body, version),
        ApiKey::CreateTopics => decode::<m::CreateTopicsRequest>(body, version),
        ApiKey::FindCoordinator => decode::<m::FindCoordinatorRequest>(body, version),
        ApiKey::JoinGroup => decode::<m::JoinGroupRequest>(body, version),
        ApiKey::SyncGroup => decode::<m::SyncGroupRequest>(body, version),
        ApiKey::Heartbeat => decode::<m::HeartbeatRequest>(body, version),
        ApiKey::LeaveGroup => decode::<m::LeaveGroupRequest>(body, version),
        ApiKey::OffsetCommit => decode::<m::OffsetCommitRequest>(body, version),
        ApiKey::OffsetFetch => decode::<m::OffsetFetchRequest>(body, version),
        ApiKey::InitProducerId => decode::<m::InitProducerIdRequest>(body, version),
        ApiKey::DescribeGroups => decode::<m::DescribeGroupsRequest>(body, version),
        ApiKey::ListGroups => decode::<m::ListGroupsRequest>(body, version),
        ApiKey::OffsetForLeaderEpoch => decode::<m::OffsetForLeaderEpochRequest>(body, version),
        ApiKey::AlterPartition => decode::<m::AlterPartitionRequest>(body, version),
        ApiKey::BrokerRegistration => decode::<m::BrokerRegistrationRequest>(body, version),
        ApiKey::BrokerHeartbeat => decode::<m::BrokerHeartbeatRequest>(body, version),
        ApiKey::DeleteTopics => decode::<m::DeleteTopicsRequest>(body, version),
        ApiKey::CreatePartitions => decode::<m::CreatePartitionsRequest>(body, version),
        ApiKey::DescribeConfigs => decode::<m::DescribeConfigsRequest>(body, version),
        ApiKey::DescribeCluster => decode::<m::DescribeClusterRequest>(body, version),
        ApiKey::AddPartitionsToTxn => decode::<m::AddPartitionsToTxnRequest>(body, version),
        ApiKey::AddOffsetsToTxn => decode::<m::AddOffsetsToTxnRequest>(body, version),
        ApiKey::EndTxn => decode::<m::EndTxnRequest>(body, version),
        ApiKey::WriteTxnMarkers => decode::<m::WriteTxnMarkersRequest>(body, version),
        ApiKey::TxnOffsetCommit => decode::<m::TxnOffsetCommitRequest>(body, version),
        ApiKey::AlterConfigs => decode::<m::AlterConfigsRequest>(body, version),
        ApiKey::IncrementalAlterConfigs => {
            decode::<m::IncrementalAlterConfigsRequest>(body, version)
        }
        ApiKey::DeleteRecords => decode::<m::DeleteRecordsRequest>(body, version),
        ApiKey::CreateAcls => decode::<m::CreateAclsRequest>(body, version),
        ApiKey::DescribeAcls => decode::<m::DescribeAclsRequest>(body, version),
        ApiKey::DeleteAcls => decode::<m::DeleteAclsRequest>(body, version),
        ApiKey::DescribeLogDirs => decode::<m::DescribeLogDirsRequest>(body, version),
        ApiKey::DeleteGroups => decode::<m::DeleteGroupsRequest>(body, version),
        ApiKey::DescribeUserScramCredentials => {
            decode::<m::DescribeUserScramCredentialsRequest>(body, version)
        }
        ApiKey::AlterUserScramCredentials => {
            decode::<m::AlterUserScramCredentialsRequest>(body, version)
        }
        ApiKey::OffsetDelete => decode::<m::OffsetDeleteRequest>(body, version),
        other => anyhow::bail!("no decoder for {other:?} in this test"),
    }
}
