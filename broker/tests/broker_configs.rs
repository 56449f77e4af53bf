//! Dynamic broker configs on the wire (issue 17; librdkafka's 0081 AlterConfigs,
//! IncrementalAlterConfigs and DescribeConfigs of BROKER resources): a per-broker config set on
//! resource `<id>` and cluster-wide defaults on resource `""` are stored, described with Kafka's
//! sources (DYNAMIC_BROKER_CONFIG 2, DYNAMIC_DEFAULT_BROKER_CONFIG 3, STATIC_BROKER_CONFIG 4) and
//! kept across a restart; a read-only config, a per-broker one at the cluster level, a bad value,
//! a bad or foreign broker id get INVALID_REQUEST as from Kafka, and `validate_only` stores
//! nothing. In a cluster the controller keeps them and every broker describes them.

mod cluster;
mod common;

use std::net::SocketAddr;

use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource as IncrementalResource, AlterableConfig as IncrementalConfig,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, DescribeConfigsRequest,
    DescribeConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

const BROKER: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const DYNAMIC_BROKER: i8 = 2;
const DYNAMIC_DEFAULT: i8 = 3;
const STATIC: i8 = 4;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// AlterConfigs v1 of one broker resource: (error code, message).
fn alter(
    address: SocketAddr,
    name: &str,
    configs: &[(&str, &str)],
    validate_only: bool,
) -> (i16, String) {
    let resource = AlterConfigsResource::default()
        .with_resource_type(BROKER)
        .with_resource_name(s(name))
        .with_configs(
            configs
                .iter()
                .map(|(n, v)| {
                    AlterableConfig::default()
                        .with_name(s(n))
                        .with_value(Some(s(v)))
                })
                .collect(),
        );
    let request = AlterConfigsRequest::default()
        .with_resources(vec![resource])
        .with_validate_only(validate_only);
    let response: AlterConfigsResponse =
        RawClient::connect(address).call(ApiKey::AlterConfigs, 1, &request);
    let r = &response.responses[0];
    (
        r.error_code,
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// IncrementalAlterConfigs v1 of one broker resource: its error code.
fn alter_incrementally(address: SocketAddr, name: &str, ops: &[(&str, i8, &str)]) -> i16 {
    let resource = IncrementalResource::default()
        .with_resource_type(BROKER)
        .with_resource_name(s(name))
        .with_configs(
            ops.iter()
                .map(|(n, op, v)| {
                    IncrementalConfig::default()
                        .with_name(s(n))
                        .with_config_operation(*op)
                        .with_value(Some(s(v)))
                })
                .collect(),
        );
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![resource]);
    let response: IncrementalAlterConfigsResponse =
        RawClient::connect(address).call(ApiKey::IncrementalAlterConfigs, 1, &request);
    response.responses[0].error_code
}

fn describe(address: SocketAddr, name: &str) -> DescribeConfigsResult {
    let resource = DescribeConfigsResource::default()
        .with_resource_type(BROKER)
        .with_resource_name(s(name))
        .with_configuration_keys(None);
    let request = DescribeConfigsRequest::default().with_resources(vec![resource]);
    let response: DescribeConfigsResponse =
        RawClient::connect(address).call(ApiKey::DescribeConfigs, 4, &request);
    response.results.into_iter().next().expect("one result")
}

/// (value, source, read-only) of config `name` in a description.
fn row(result: &DescribeConfigsResult, name: &str) -> Option<(String, i8, bool)> {
    result
        .configs
        .iter()
        .find(|c| c.name.as_str() == name)
        .map(|c| {
            let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
            (value, c.config_source, c.read_only)
        })
}

fn dynamic(value: &str, source: i8) -> Option<(String, i8, bool)> {
    Some((value.to_string(), source, false))
}

#[test]
fn broker_configs_are_validated_stored_described_and_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let broker = BrokerProcess::start(&data, "\"num.partitions\" = 3\n");
    let address: SocketAddr = broker.bootstrap().parse().expect("address");

    // 0081's: a per-broker SASL setting on this broker's id.
    let relogin = "sasl.kerberos.min.time.before.relogin";
    assert_eq!(alter(address, "1", &[(relogin, "58000")], false).0, 0);
    // Cluster-wide defaults, incrementally (0081's helper: SET and APPEND).
    let ops = [
        ("background.threads", SET, "9"),
        ("log.cleanup.policy", APPEND, "compact"),
    ];
    assert_eq!(alter_incrementally(address, "", &ops), 0);

    let own = describe(address, "1");
    assert_eq!(own.error_code, 0, "{own:?}");
    assert_eq!(row(&own, relogin), dynamic("58000", DYNAMIC_BROKER));
    assert_eq!(
        row(&own, "background.threads"),
        dynamic("9", DYNAMIC_DEFAULT)
    );
    assert_eq!(
        row(&own, "num.partitions"),
        Some(("3".to_string(), STATIC, true))
    );
    let defaults = describe(address, "");
    let names: Vec<&str> = defaults.configs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["background.threads", "log.cleanup.policy"]);
    assert_eq!(
        row(&defaults, "log.cleanup.policy"),
        dynamic("compact", DYNAMIC_DEFAULT)
    );

    // Refused as Kafka refuses them, nothing stored.
    let invalid = ResponseError::InvalidRequest.code();
    let read_only = alter(address, "1", &[("num.partitions", "5")], false);
    assert_eq!(read_only.0, invalid);
    assert!(
        read_only
            .1
            .contains("Cannot update these configs dynamically"),
        "{read_only:?}"
    );
    let cluster_level = alter(address, "", &[(relogin, "1")], false);
    assert_eq!(cluster_level.0, invalid);
    assert!(
        cluster_level.1.contains("broker id must be specified"),
        "{cluster_level:?}"
    );
    assert_eq!(
        alter_incrementally(address, "1", &[("background.threads", SET, "many")]),
        invalid
    );
    assert_eq!(
        alter_incrementally(address, "1", &[("background.threads", APPEND, "1")]),
        invalid
    );
    assert_eq!(
        alter(address, "7", &[("background.threads", "2")], false).0,
        invalid
    );
    assert_eq!(
        alter(address, "broker", &[("background.threads", "2")], false).0,
        invalid
    );
    assert_eq!(
        alter(address, "1", &[("background.threads", "2")], true).0,
        0
    );
    assert_eq!(
        row(&describe(address, "1"), relogin),
        dynamic("58000", DYNAMIC_BROKER)
    );
    assert_eq!(
        describe(address, "1")
            .configs
            .iter()
            .filter(|c| c.config_source == DYNAMIC_BROKER)
            .count(),
        1
    );

    // Durable: a restarted broker describes the same.
    assert_eq!(broker.terminate(), Some(0));
    let broker = BrokerProcess::start(&data, "\"num.partitions\" = 3\n");
    let address: SocketAddr = broker.bootstrap().parse().expect("address");
    let own = describe(address, "1");
    assert_eq!(row(&own, relogin), dynamic("58000", DYNAMIC_BROKER));
    assert_eq!(
        row(&own, "background.threads"),
        dynamic("9", DYNAMIC_DEFAULT)
    );

    // DELETE returns a config to the level below; AlterConfigs replaces a level's whole set.
    assert_eq!(
        alter_incrementally(address, "", &[("background.threads", DELETE, "")]),
        0
    );
    assert_eq!(row(&describe(address, "1"), "background.threads"), None);
    assert_eq!(
        alter(address, "1", &[("background.threads", "4")], false).0,
        0
    );
    let own = describe(address, "1");
    assert_eq!(row(&own, relogin), None);
    assert_eq!(
        row(&own, "background.threads"),
        dynamic("4", DYNAMIC_BROKER)
    );
    assert!(!broker.log_text().contains("panicked"));
}

#[test]
fn in_a_cluster_the_controller_keeps_the_broker_configs() {
    let mut cluster = cluster::Cluster::start(2, "");
    assert_eq!(
        alter(
            cluster.address(1),
            "",
            &[("background.threads", "7")],
            false
        )
        .0,
        0
    );
    assert_eq!(
        alter(cluster.address(2), "2", &[("num.io.threads", "3")], false).0,
        0
    );
    // Each broker describes them once its image has them; broker 1 not broker 2's own.
    let seen = |id: i32, name: &str, config: &str| {
        let address = cluster.address(id);
        let name = name.to_string();
        let config = config.to_string();
        move || row(&describe(address, &name), &config)
    };
    let two = cluster::wait_until("broker 2 describes its config", 200, || {
        seen(2, "2", "num.io.threads")()
    });
    assert_eq!(two, ("3".to_string(), DYNAMIC_BROKER, false));
    let default = cluster::wait_until("broker 1 describes the default", 200, || {
        seen(1, "1", "background.threads")()
    });
    assert_eq!(default, ("7".to_string(), DYNAMIC_DEFAULT, false));
    assert_eq!(
        row(&describe(cluster.address(1), "1"), "num.io.threads"),
        None
    );
    // The controller's state keeps them.
    cluster.kill_controller();
    cluster.restart_controller();
    let after = cluster::wait_until("the controller answers", 200, || {
        let (code, _) = alter(cluster.address(1), "1", &[("num.io.threads", "5")], false);
        (code == 0).then_some(())
    });
    assert_eq!(after, ());
    let both = cluster::wait_until("broker 2 still has both", 200, || {
        let own = describe(cluster.address(2), "2");
        let io = row(&own, "num.io.threads")?;
        let threads = row(&own, "background.threads")?;
        Some((io.0, threads.0))
    });
    assert_eq!(both, ("3".to_string(), "7".to_string()));
}
