//! ACL bindings on the wire (issue 17; librdkafka's 0081 CreateAcls/DescribeAcls/DeleteAcls):
//! CreateAcls stores valid bindings and refuses an invalid one with INVALID_REQUEST and Kafka's
//! words; DescribeAcls selects by resource type, name and pattern type (MATCH: literal, wildcard
//! and prefixes), principal, host, operation and permission; DeleteAcls returns what each filter
//! matched and removes it. Bindings survive a restart: a single broker's own file, in a cluster
//! the controller's state (brokers forward the three APIs to it).

mod cluster;
mod common;

use std::net::SocketAddr;

use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    ApiKey, CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

const TOPIC: i8 = 2;
const ANY: i8 = 1;
const MATCH: i8 = 2;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const ALLOW: i8 = 3;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn creation(name: &str, pattern: i8, principal: &str, operation: i8) -> AclCreation {
    AclCreation::default()
        .with_resource_type(TOPIC)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern)
        .with_principal(s(principal))
        .with_host(s("*"))
        .with_operation(operation)
        .with_permission_type(ALLOW)
}

fn create(address: SocketAddr, version: i16, creations: Vec<AclCreation>) -> Vec<(i16, String)> {
    let request = CreateAclsRequest::default().with_creations(creations);
    let response: CreateAclsResponse = call(address, ApiKey::CreateAcls, version, &request);
    response
        .results
        .iter()
        .map(|r| {
            let message = r.error_message.as_ref().map(|m| m.to_string());
            (r.error_code, message.unwrap_or_default())
        })
        .collect()
}

/// DescribeAcls of topic bindings named `name` with `pattern` and `operation`: (error code,
/// sorted (name, pattern type, principal, operation)).
fn describe(
    address: SocketAddr,
    version: i16,
    name: &str,
    pattern: i8,
    operation: i8,
) -> (i16, Vec<(String, i8, String, i8)>) {
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(TOPIC)
        .with_resource_name_filter(Some(s(name)))
        .with_pattern_type_filter(pattern)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(operation)
        .with_permission_type(ANY);
    let response: DescribeAclsResponse = call(address, ApiKey::DescribeAcls, version, &request);
    let mut found = Vec::new();
    for resource in &response.resources {
        for acl in &resource.acls {
            assert_eq!((acl.host.as_str(), acl.permission_type), ("*", ALLOW));
            found.push((
                resource.resource_name.to_string(),
                resource.pattern_type,
                acl.principal.to_string(),
                acl.operation,
            ));
        }
    }
    found.sort();
    (response.error_code, found)
}

/// DeleteAcls with one filter (topic `name`, `pattern`, any entry): what it matched.
fn delete(address: SocketAddr, version: i16, name: &str, pattern: i8) -> Vec<(String, String)> {
    let filter = DeleteAclsFilter::default()
        .with_resource_type_filter(TOPIC)
        .with_resource_name_filter(Some(s(name)))
        .with_pattern_type_filter(pattern)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(ANY)
        .with_permission_type(ANY);
    let request = DeleteAclsRequest::default().with_filters(vec![filter]);
    let response: DeleteAclsResponse = call(address, ApiKey::DeleteAcls, version, &request);
    assert_eq!(response.filter_results.len(), 1);
    let result = &response.filter_results[0];
    assert_eq!(result.error_code, 0, "{:?}", result.error_message);
    let mut matched: Vec<(String, String)> = result
        .matching_acls
        .iter()
        .map(|m| (m.resource_name.to_string(), m.principal.to_string()))
        .collect();
    matched.sort();
    matched
}

/// 0081's bindings: topic `t_1` PREFIXED READ for test1, `t_1` and `t_2` LITERAL WRITE for test2.
fn create_0081_bindings(address: SocketAddr, version: i16) {
    let created = create(
        address,
        version,
        vec![
            creation("t_1", PREFIXED, "User:test1", READ),
            creation("t_1", LITERAL, "User:test2", WRITE),
            creation("t_2", LITERAL, "User:test2", WRITE),
            // Kafka's validation: MATCH is a filter's pattern type, not a binding's.
            creation("t_3", MATCH, "User:test1", READ),
            creation("t_3", LITERAL, "nocolon", READ),
        ],
    );
    let codes: Vec<i16> = created.iter().map(|(code, _)| *code).collect();
    let invalid = ResponseError::InvalidRequest.code();
    assert_eq!(codes, [0, 0, 0, invalid, invalid], "{created:?}");
    assert_eq!(created[3].1, "Invalid patternType 2");
    assert!(created[4].1.starts_with("Could not parse principal"));
}

fn t1(pattern: i8, principal: &str, operation: i8) -> (String, i8, String, i8) {
    ("t_1".to_string(), pattern, principal.to_string(), operation)
}

#[test]
fn acls_are_created_described_deleted_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let broker = BrokerProcess::start(&data, "");
    let address: SocketAddr = broker.bootstrap().parse().expect("address");
    create_0081_bindings(address, 1);
    // MATCH: the literal binding of the name and the prefixed one whose prefix it has.
    let both = vec![
        t1(LITERAL, "User:test2", WRITE),
        t1(PREFIXED, "User:test1", READ),
    ];
    assert_eq!(describe(address, 1, "t_1", MATCH, ANY), (0, both.clone()));
    assert_eq!(
        describe(address, 3, "t_1", LITERAL, WRITE),
        (0, vec![t1(LITERAL, "User:test2", WRITE)])
    );
    let prefixed = describe(address, 1, "t_1_longer", MATCH, READ);
    assert_eq!(prefixed.1.len(), 1, "the prefix t_1 matches: {prefixed:?}");
    let unknown = describe(address, 1, "t_1", MATCH, 0);
    assert_eq!(unknown, (ResponseError::InvalidRequest.code(), vec![]));

    // Durable: a restarted broker describes the same bindings.
    assert_eq!(broker.terminate(), Some(0));
    let broker = BrokerProcess::start(&data, "");
    let address: SocketAddr = broker.bootstrap().parse().expect("address");
    assert_eq!(describe(address, 1, "t_1", MATCH, ANY), (0, both));

    let deleted = delete(address, 1, "t_1", MATCH);
    let expected = [("t_1", "User:test1"), ("t_1", "User:test2")];
    assert_eq!(
        deleted,
        expected.map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(describe(address, 1, "t_1", MATCH, ANY), (0, vec![]));
    assert_eq!(delete(address, 3, "t_2", LITERAL).len(), 1);
    assert_eq!(describe(address, 1, "t_2", ANY, ANY), (0, vec![]));
    assert!(!broker.log_text().contains("panicked"));
}

#[test]
fn in_a_cluster_the_controller_keeps_the_acls() {
    let mut cluster = cluster::Cluster::start(2, "");
    create_0081_bindings(cluster.address(1), 1);
    // Another broker describes them (the controller answers), also after a controller restart.
    let both = vec![
        t1(LITERAL, "User:test2", WRITE),
        t1(PREFIXED, "User:test1", READ),
    ];
    assert_eq!(
        describe(cluster.address(2), 1, "t_1", MATCH, ANY),
        (0, both.clone())
    );
    cluster.kill_controller();
    cluster.restart_controller();
    let after = cluster::wait_until("the controller answers", 200, || {
        let (code, found) = describe(cluster.address(2), 3, "t_1", MATCH, ANY);
        (code == 0).then_some(found)
    });
    assert_eq!(after, both);
    assert_eq!(delete(cluster.address(2), 1, "t_1", MATCH).len(), 2);
    assert_eq!(
        describe(cluster.address(1), 1, "t_1", MATCH, ANY),
        (0, vec![])
    );
}
