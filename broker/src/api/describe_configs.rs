//! DescribeConfigs: a topic's configs as kaos-broker applies them ([`topic_config::applied`]: the
//! topic's own configs, source DYNAMIC_TOPIC_CONFIG, over the broker's settings); this broker's
//! (resource `<id>`): its settings under Kafka's names (STATIC_BROKER_CONFIG) under the dynamic
//! broker configs (DYNAMIC_DEFAULT_BROKER_CONFIG, then DYNAMIC_BROKER_CONFIG,
//! [`broker_config::describe`]); resource `""`: the cluster-wide dynamic defaults alone, as Kafka.
//! A topic the cluster does not have gets UNKNOWN_TOPIC_OR_PARTITION, another broker's id or
//! another resource type INVALID_REQUEST, as from Kafka.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker_config::{self, BrokerConfigStore, Described};
use crate::state::Broker;
use crate::topic_config::{self, Source, ValueType};

/// Kafka's `ConfigResource.Type` codes.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

pub fn handle(
    broker: &Arc<Broker>,
    request: &DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .iter()
        .map(|resource| describe(broker, resource, version))
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn describe(
    broker: &Broker,
    resource: &DescribeConfigsResource,
    version: i16,
) -> DescribeConfigsResult {
    let name = resource.resource_name.as_str();
    let result = DescribeConfigsResult::default()
        .with_resource_type(resource.resource_type)
        .with_resource_name(resource.resource_name.clone());
    let refuse = |code: ResponseError, message: String| {
        result
            .clone()
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(message)))
    };
    let configs: Vec<Described> = match resource.resource_type {
        RESOURCE_TOPIC => {
            if broker.partition_exists(name, 0) {
                let own = if broker.in_cluster() {
                    let image = broker.cluster.image();
                    image.topics.get(name).map(|t| t.configs.clone())
                } else {
                    broker.topic(name).map(|t| t.configs.clone())
                };
                let own = own.unwrap_or_default();
                topic_config::applied(&broker.config, &own)
                    .into_iter()
                    .map(|applied| Described {
                        name: applied.name.to_string(),
                        value: applied.value,
                        source: applied.source,
                        value_type: applied.value_type,
                        read_only: false,
                    })
                    .collect()
            } else {
                return refuse(
                    ResponseError::UnknownTopicOrPartition,
                    format!("Topic '{name}' does not exist"),
                );
            }
        }
        RESOURCE_BROKER => {
            let own = broker.node_id().to_string();
            if !name.is_empty() && name != own {
                return refuse(
                    ResponseError::InvalidRequest,
                    format!(
                        "Unexpected broker id, expected {own} or empty string, but received {name}"
                    ),
                );
            }
            let dynamic = if broker.in_cluster() {
                broker.cluster.image().broker_configs.clone()
            } else {
                broker.broker_configs.broker_configs()
            };
            broker_config::describe(
                broker_configs(broker),
                &dynamic,
                broker.node_id(),
                !name.is_empty(),
            )
        }
        other => {
            return refuse(
                ResponseError::InvalidRequest,
                format!("Unsupported resource type {other}"),
            )
        }
    };
    let wanted = |row: &Described| {
        resource
            .configuration_keys
            .as_ref()
            .is_none_or(|keys| keys.iter().any(|k| k.as_str() == row.name))
    };
    result.with_configs(
        configs
            .into_iter()
            .filter(wanted)
            .map(|row| entry(row, version))
            .collect(),
    )
}

fn entry(row: Described, version: i16) -> DescribeConfigsResourceResult {
    let entry = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(row.name))
        .with_value(Some(StrBytes::from_string(row.value)))
        .with_read_only(row.read_only)
        .with_config_source(row.source as i8);
    if version >= 3 {
        entry.with_config_type(row.value_type as i8)
    } else {
        entry
    }
}

/// DescribeConfigs on the controller: the stored configs of each topic resource (source
/// DYNAMIC_TOPIC_CONFIG) and of each broker level (`""` or a broker id: its dynamic configs), as
/// brokers pull them; an unknown topic UNKNOWN_TOPIC_OR_PARTITION, any other resource
/// INVALID_REQUEST.
pub fn handle_on_controller(
    controller: &crate::controller::Controller,
    request: &DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let name = resource.resource_name.as_str();
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let rows: Option<Vec<Described>> = match resource.resource_type {
                RESOURCE_TOPIC => controller.topic_configs(name).map(|configs| {
                    topic_config::applied_own(&configs)
                        .into_iter()
                        .map(|applied| Described {
                            name: applied.name.to_string(),
                            value: applied.value,
                            source: applied.source,
                            value_type: applied.value_type,
                            read_only: false,
                        })
                        .collect()
                }),
                RESOURCE_BROKER => broker_config::resource_level(name).ok().map(|per_broker| {
                    let source = if per_broker {
                        Source::DynamicBroker
                    } else {
                        Source::DynamicDefaultBroker
                    };
                    controller
                        .broker_configs()
                        .remove(name)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(name, value)| Described {
                            value_type: broker_config::value_type(&name),
                            name,
                            value,
                            source,
                            read_only: false,
                        })
                        .collect()
                }),
                _ => None,
            };
            let Some(rows) = rows else {
                let code = if resource.resource_type == RESOURCE_TOPIC {
                    ResponseError::UnknownTopicOrPartition
                } else {
                    ResponseError::InvalidRequest
                };
                return result.with_error_code(code.code()).with_error_message(Some(
                    StrBytes::from_string(format!("no configs of {name}")),
                ));
            };
            result.with_configs(rows.into_iter().map(|row| entry(row, version)).collect())
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// This broker's settings that Kafka's broker configs name alike: name, type, value.
fn broker_configs(broker: &Broker) -> Vec<(&'static str, ValueType, String)> {
    use ValueType::{Boolean, Int};
    let config = &broker.config;
    let r = &config.replication;
    vec![
        (
            "auto.create.topics.enable",
            Boolean,
            config.auto_create_topics_enable.to_string(),
        ),
        ("broker.id", Int, config.node_id.to_string()),
        (
            "default.replication.factor",
            Int,
            r.default_replication_factor.to_string(),
        ),
        (
            "log.segment.bytes",
            Int,
            config.log.segment_bytes.to_string(),
        ),
        (
            "message.max.bytes",
            Int,
            config.message_max_bytes.to_string(),
        ),
        (
            "min.insync.replicas",
            Int,
            r.min_insync_replicas.to_string(),
        ),
        ("num.partitions", Int, config.num_partitions.to_string()),
        (
            "unclean.leader.election.enable",
            Boolean,
            r.unclean_leader_election_enable.to_string(),
        ),
    ]
}
