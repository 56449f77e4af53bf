//! SCRAM credentials on the wire (issue 17; librdkafka's 0081 UserScramCredentials, KIP-554):
//! AlterUserScramCredentials stores an upsertion and removes a deletion, refusing as Kafka does
//! (RESOURCE_NOT_FOUND, DUPLICATE_RESOURCE, UNACCEPTABLE_CREDENTIAL, UNSUPPORTED_SASL_MECHANISM);
//! DescribeUserScramCredentials lists a user's mechanisms and iterations (never the secrets);
//! credentials survive a restart. They are stored only: kaos-broker authenticates no one.

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

const SHA_256: i8 = 1;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// (user, error code, [(mechanism, iterations)]) per described user.
fn describe(address: SocketAddr, users: &[&str]) -> Vec<(String, i16, Vec<(i8, i32)>)> {
    let request = DescribeUserScramCredentialsRequest::default().with_users(Some(
        users
            .iter()
            .map(|u| UserName::default().with_name(s(u)))
            .collect(),
    ));
    let response: DescribeUserScramCredentialsResponse =
        RawClient::connect(address).call(ApiKey::DescribeUserScramCredentials, 0, &request);
    response
        .results
        .iter()
        .map(|r| {
            let infos = r
                .credential_infos
                .iter()
                .map(|c| (c.mechanism, c.iterations))
                .collect();
            (r.user.to_string(), r.error_code, infos)
        })
        .collect()
}

fn upsertion(user: &str, mechanism: i8, iterations: i32) -> ScramCredentialUpsertion {
    ScramCredentialUpsertion::default()
        .with_name(s(user))
        .with_mechanism(mechanism)
        .with_iterations(iterations)
        .with_salt(Bytes::from_static(b"s\0l\0"))
        .with_salted_password(Bytes::from_static(&[7; 32]))
}

fn alter(
    address: SocketAddr,
    deletions: &[(&str, i8)],
    upsertions: Vec<ScramCredentialUpsertion>,
) -> Vec<(String, i16)> {
    let request = AlterUserScramCredentialsRequest::default()
        .with_deletions(
            deletions
                .iter()
                .map(|(u, m)| {
                    ScramCredentialDeletion::default()
                        .with_name(s(u))
                        .with_mechanism(*m)
                })
                .collect(),
        )
        .with_upsertions(upsertions);
    let response: AlterUserScramCredentialsResponse =
        RawClient::connect(address).call(ApiKey::AlterUserScramCredentials, 0, &request);
    response
        .results
        .iter()
        .map(|r| (r.user.to_string(), r.error_code))
        .collect()
}

#[test]
fn scram_credentials_are_stored_described_deleted_and_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let broker = BrokerProcess::start(&data, "");
    let address: SocketAddr = broker.bootstrap().parse().expect("address");
    let not_found = ResponseError::ResourceNotFound.code();
    assert_eq!(
        describe(address, &["alice"]),
        vec![("alice".into(), not_found, vec![])]
    );

    assert_eq!(
        alter(address, &[], vec![upsertion("alice", SHA_256, 10_000)]),
        vec![("alice".into(), 0)]
    );
    let refused = alter(
        address,
        &[("carol", SHA_256)],
        vec![
            upsertion("bob", SHA_256, 100),
            upsertion("dave", 0, 10_000),
            upsertion("", SHA_256, 10_000),
            upsertion("carol", SHA_256, 10_000),
        ],
    );
    let duplicate = ResponseError::DuplicateResource.code();
    let unacceptable = ResponseError::UnacceptableCredential.code();
    let mechanism = ResponseError::UnsupportedSaslMechanism.code();
    assert_eq!(
        refused,
        vec![
            ("carol".into(), duplicate),
            ("bob".into(), unacceptable),
            ("dave".into(), mechanism),
            ("".into(), unacceptable),
            ("carol".into(), duplicate),
        ]
    );
    let twice = describe(address, &["alice", "alice"]);
    assert_eq!(twice, vec![("alice".into(), duplicate, vec![])]);

    // Durable: a restarted broker describes the same.
    assert_eq!(broker.terminate(), Some(0));
    let broker = BrokerProcess::start(&data, "");
    let address: SocketAddr = broker.bootstrap().parse().expect("address");
    assert_eq!(
        describe(address, &["alice", "bob"]),
        vec![
            ("alice".into(), 0, vec![(SHA_256, 10_000)]),
            ("bob".into(), not_found, vec![]),
        ]
    );
    assert_eq!(describe(address, &[]).len(), 1, "all users: only alice");

    assert_eq!(
        alter(address, &[("alice", SHA_256)], vec![]),
        vec![("alice".into(), 0)]
    );
    assert_eq!(
        alter(address, &[("alice", SHA_256)], vec![]),
        vec![("alice".into(), not_found)]
    );
    assert_eq!(
        describe(address, &["alice"]),
        vec![("alice".into(), not_found, vec![])]
    );
    assert!(!broker.log_text().contains("panicked"));
}
