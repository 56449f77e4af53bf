//! Mistakes answered with Kafka's error codes (issue 17): OffsetCommit to a topic or partition
//! that does not exist gets UNKNOWN_TOPIC_OR_PARTITION; CreateTopics with a config Kafka does not
//! know or a value it refuses gets INVALID_CONFIG with Kafka's message, also with
//! `validate_only`, which creates nothing — on a single broker and through the controller.

mod cluster;
mod common;
mod group_support;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use group_support::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

const CONFIG: &str = "\"offsets.topic.num.partitions\" = 1\n";

/// One CreateTopics v5 of topic `name` (2 partitions, replication factor -1) with `configs`.
fn create_with_configs(
    address: SocketAddr,
    name: &str,
    configs: &[(&str, Option<&str>)],
    validate_only: bool,
) -> CreatableTopicResult {
    let topic = CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(2)
        .with_replication_factor(-1)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.to_string()))
                        .with_value(v.map(|v| StrBytes::from_string(v.to_string())))
                })
                .collect(),
        );
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_validate_only(validate_only)
        .with_topics(vec![topic]);
    let mut client = RawClient::connect(address);
    let response: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 5, &request);
    response
        .topics
        .into_iter()
        .next()
        .expect("one topic result")
}

fn message(result: &CreatableTopicResult) -> String {
    result
        .error_message
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_default()
}

/// The CreateTopics cases both roles must answer alike, against `address`.
fn create_topics_validates_configs(address: SocketAddr) {
    let invalid = ResponseError::InvalidConfig.code();
    let unknown = create_with_configs(address, "a", &[("retention.forever", Some("1"))], false);
    assert_eq!(unknown.error_code, invalid, "{unknown:?}");
    assert!(message(&unknown).contains("Unknown topic config name: retention.forever"));
    let bad = create_with_configs(address, "a", &[("retention.ms", Some("soon"))], false);
    assert_eq!(bad.error_code, invalid, "{bad:?}");
    assert!(message(&bad).contains("retention.ms"), "{bad:?}");
    let null = create_with_configs(address, "a", &[("cleanup.policy", None)], false);
    assert_eq!(null.error_code, invalid, "{null:?}");
    // validate_only checks the configs too, and creates nothing when they are good.
    let bad_dry = create_with_configs(address, "a", &[("segment.bytes", Some("1"))], true);
    assert_eq!(bad_dry.error_code, invalid, "{bad_dry:?}");
    let good = [
        ("retention.ms", Some("60000")),
        ("cleanup.policy", Some("delete")),
    ];
    let dry = create_with_configs(address, "a", &good, true);
    assert_eq!(dry.error_code, 0, "{dry:?}");
    // Nothing was created by any of the above: the real creation succeeds, once.
    let created = create_with_configs(address, "a", &good, false);
    assert_eq!(created.error_code, 0, "{created:?}");
    let again = create_with_configs(address, "a", &good, false);
    assert_eq!(
        again.error_code,
        ResponseError::TopicAlreadyExists.code(),
        "{again:?}"
    );
}

#[test]
fn a_single_broker_answers_config_and_commit_mistakes_as_kafka() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), CONFIG);
    let address: SocketAddr = broker.bootstrap().parse().expect("address");
    create_topics_validates_configs(address);
    // The first FindCoordinator creates __consumer_offsets; the coordinator then loads it.
    poll_until(200, Duration::from_millis(50), || {
        (find_coordinator(address, "g").0 == 0).then_some(())
    })
    .expect("a coordinator");
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    let commit_ok = poll_until(200, Duration::from_millis(50), || {
        (simple_commit(address, "g", "a", 1, 7) == 0).then_some(())
    });
    assert!(commit_ok.is_some(), "a commit to an existing partition");
    assert_eq!(simple_commit(address, "g", "nowhere", 0, 7), unknown);
    assert_eq!(simple_commit(address, "g", "a", 2, 7), unknown);
    assert_eq!(
        offset_fetch(address, "g", "a", &[1]),
        Ok([(1, 7)].into_iter().collect())
    );
}

#[test]
fn the_controller_answers_invalid_configs_and_brokers_refuse_commits_to_unknown_topics() {
    let config = "\"offsets.topic.num.partitions\" = 1\n\"offsets.topic.replication.factor\" = 1\n\"broker.heartbeat.interval.ms\" = 200\n";
    let cluster = cluster::Cluster::start(1, config);
    let address = cluster.address(1);
    create_topics_validates_configs(address);
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    // Once the image with topic `a` has reached the broker, a commit to it succeeds.
    let coordinator = poll_until(400, Duration::from_millis(50), || {
        (find_coordinator(address, "g").0 == 0 && simple_commit(address, "g", "a", 0, 3) == 0)
            .then_some(())
    });
    assert!(coordinator.is_some(), "a commit to an existing partition");
    assert_eq!(simple_commit(address, "g", "nowhere", 0, 3), unknown);
    assert_eq!(simple_commit(address, "g", "a", 5, 3), unknown);
}
