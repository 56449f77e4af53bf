//! Admin APIs on the wire (issue 17): DescribeCluster lists the brokers (one on a single node,
//! every registered one in a cluster) and refuses the controllers' endpoint type;
//! DescribeConfigs describes a topic's configs as the broker applies them (its settings, Kafka's
//! retention defaults), this broker's settings, and answers an unknown topic, another broker's id and an
//! unknown resource type with Kafka's error codes; librdkafka's admin client reads them too.

mod cluster;
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::{
    ApiKey, DescribeClusterRequest, DescribeClusterResponse, DescribeConfigsRequest,
    DescribeConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

const CONFIG: &str = "\"segment.bytes\" = 1048576\n\"num.partitions\" = 3\n";

fn describe_cluster(
    address: SocketAddr,
    version: i16,
    endpoint_type: i8,
) -> DescribeClusterResponse {
    let mut client = RawClient::connect(address);
    let request = DescribeClusterRequest::default().with_endpoint_type(endpoint_type);
    client.call(ApiKey::DescribeCluster, version, &request)
}

/// DescribeConfigs v4 of one resource (`keys`: None = all).
fn describe_configs(
    address: SocketAddr,
    resource_type: i8,
    name: &str,
    keys: Option<&[&str]>,
) -> DescribeConfigsResult {
    let mut client = RawClient::connect(address);
    let resource = DescribeConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(StrBytes::from_string(name.to_string()))
        .with_configuration_keys(keys.map(|k| {
            k.iter()
                .map(|k| StrBytes::from_string(k.to_string()))
                .collect()
        }));
    let request = DescribeConfigsRequest::default().with_resources(vec![resource]);
    let response: DescribeConfigsResponse = client.call(ApiKey::DescribeConfigs, 4, &request);
    response.results.into_iter().next().expect("one result")
}

fn value_of(result: &DescribeConfigsResult, name: &str) -> Option<String> {
    result
        .configs
        .iter()
        .find(|c| c.name.as_str() == name)
        .and_then(|c| c.value.as_ref().map(|v| v.to_string()))
}

#[test]
fn describe_cluster_and_configs_on_a_single_broker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), CONFIG);
    let address: SocketAddr = broker.bootstrap().parse().expect("address");
    for version in 0..=2 {
        let cluster = describe_cluster(address, version, 1);
        assert_eq!(cluster.error_code, 0, "v{version}: {cluster:?}");
        let brokers: Vec<(i32, i32)> = cluster
            .brokers
            .iter()
            .map(|b| (b.broker_id.0, b.port))
            .collect();
        assert_eq!(brokers, vec![(1, i32::from(address.port()))], "v{version}");
        assert_eq!(cluster.controller_id.0, 1);
        assert!(!cluster.cluster_id.is_empty());
    }
    let controllers = describe_cluster(address, 1, 2);
    assert_eq!(
        controllers.error_code,
        ResponseError::UnsupportedEndpointType.code()
    );

    assert_eq!(
        create_topic(&mut RawClient::connect(address), "t", 2, 1, false),
        0
    );
    let topic = describe_configs(address, 2, "t", None);
    assert_eq!(topic.error_code, 0, "{topic:?}");
    assert_eq!(
        value_of(&topic, "segment.bytes").as_deref(),
        Some("1048576")
    );
    assert_eq!(
        value_of(&topic, "retention.ms").as_deref(),
        Some("604800000")
    );
    assert_eq!(
        value_of(&topic, "cleanup.policy").as_deref(),
        Some("delete")
    );
    let only = describe_configs(address, 2, "t", Some(&["segment.bytes"]));
    let names: Vec<&str> = only.configs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["segment.bytes"]);

    let own = describe_configs(address, 4, "1", None);
    assert_eq!(own.error_code, 0, "{own:?}");
    assert_eq!(value_of(&own, "num.partitions").as_deref(), Some("3"));
    // Resource "": the cluster-wide dynamic defaults only (none here), as Kafka describes it.
    let default_broker = describe_configs(address, 4, "", None);
    assert_eq!(default_broker.error_code, 0, "{default_broker:?}");
    assert!(default_broker.configs.is_empty(), "{default_broker:?}");

    let missing = describe_configs(address, 2, "nowhere", None);
    assert_eq!(
        missing.error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let other = describe_configs(address, 4, "7", None);
    assert_eq!(other.error_code, ResponseError::InvalidRequest.code());
    let group = describe_configs(address, 32, "g", None);
    assert_eq!(group.error_code, ResponseError::InvalidRequest.code());
}

#[test]
fn librdkafka_admin_reads_a_topics_configs() {
    use rdkafka::admin::{AdminOptions, ResourceSpecifier};

    let (_dir, broker) = start_broker(CONFIG);
    assert_eq!(
        create_topic(&mut RawClient::connect(broker.address), "t", 2, 1, false),
        0
    );
    let (admin, runtime) = admin_client(&broker.bootstrap());
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let results = runtime
        .block_on(admin.describe_configs(&[ResourceSpecifier::Topic("t")], &options))
        .expect("DescribeConfigs");
    let resource = results
        .into_iter()
        .next()
        .expect("one result")
        .expect("the topic's configs");
    let segment = resource.get("segment.bytes").expect("segment.bytes");
    assert_eq!(segment.value.as_deref(), Some("1048576"));
}

#[test]
fn describe_cluster_lists_every_registered_broker_of_a_cluster() {
    let config = "\"broker.heartbeat.interval.ms\" = 200\n";
    let cluster = cluster::Cluster::start(3, config);
    let expected: Vec<(i32, i32)> = (1..=3)
        .map(|id| (id, i32::from(cluster.address(id).port())))
        .collect();
    let listed = poll_until(200, Duration::from_millis(50), || {
        let response = describe_cluster(cluster.address(2), 1, 1);
        let brokers: Vec<(i32, i32)> = response
            .brokers
            .iter()
            .map(|b| (b.broker_id.0, b.port))
            .collect();
        (brokers == expected).then_some(response)
    });
    let response = listed.expect("all three brokers listed");
    assert_eq!(response.error_code, 0);
}
