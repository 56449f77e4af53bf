//! DescribeConfigs: a topic's configs as kaos-broker applies them ([`topic_config::applied`]: the
//! topic's own configs, source DYNAMIC_TOPIC_CONFIG, over the broker's settings) and this
//! broker's own settings under Kafka's names. A topic the cluster does not have gets
//! UNKNOWN_TOPIC_OR_PARTITION, another broker's id or another resource type INVALID_REQUEST, as
//! from Kafka.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::state::Broker;
use crate::topic_config::{self, Applied, Source, ValueType};

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
    let configs = match resource.resource_type {
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
                    format!("Unexpected broker id, expected {own} or empty string, but received {name}"),
                );
            }
            broker_configs(broker)
        }
        other => {
            return refuse(
                ResponseError::InvalidRequest,
                format!("Unsupported resource type {other}"),
            )
        }
    };
    let alterable = resource.resource_type == RESOURCE_TOPIC;
    let wanted = |applied: &Applied| {
        resource
            .configuration_keys
            .as_ref()
            .is_none_or(|keys| keys.iter().any(|k| k.as_str() == applied.name))
    };
    result.with_configs(
        configs
            .into_iter()
            .filter(wanted)
            .map(|applied| entry(applied, version, alterable))
            .collect(),
    )
}

fn entry(applied: Applied, version: i16, alterable: bool) -> DescribeConfigsResourceResult {
    let entry = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(applied.name))
        .with_value(Some(StrBytes::from_string(applied.value)))
        // A topic's configs can be altered; a broker's cannot.
        .with_read_only(applied.source != Source::DynamicTopic && !alterable)
        .with_config_source(applied.source as i8);
    if version >= 3 {
        entry.with_config_type(applied.value_type as i8)
    } else {
        entry
    }
}

/// DescribeConfigs on the controller: the stored configs of each topic resource (source
/// DYNAMIC_TOPIC_CONFIG), as brokers pull them; an unknown topic UNKNOWN_TOPIC_OR_PARTITION, any
/// other resource INVALID_REQUEST.
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
            let configs = (resource.resource_type == RESOURCE_TOPIC)
                .then(|| controller.topic_configs(name))
                .flatten();
            let Some(configs) = configs else {
                let code = if resource.resource_type == RESOURCE_TOPIC {
                    ResponseError::UnknownTopicOrPartition
                } else {
                    ResponseError::InvalidRequest
                };
                return result
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(format!("no configs of {name}"))));
            };
            let entries = topic_config::applied_own(&configs)
                .into_iter()
                .map(|applied| entry(applied, version, true))
                .collect();
            result.with_configs(entries)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// This broker's settings that Kafka's broker configs name alike: name, type, value.
fn broker_configs(broker: &Broker) -> Vec<Applied> {
    use ValueType::{Boolean, Int};
    let config = &broker.config;
    let r = &config.replication;
    let rows = [
        ("auto.create.topics.enable", Boolean, config.auto_create_topics_enable.to_string()),
        ("broker.id", Int, config.node_id.to_string()),
        ("default.replication.factor", Int, r.default_replication_factor.to_string()),
        ("log.segment.bytes", Int, config.log.segment_bytes.to_string()),
        ("message.max.bytes", Int, config.message_max_bytes.to_string()),
        ("min.insync.replicas", Int, r.min_insync_replicas.to_string()),
        ("num.partitions", Int, config.num_partitions.to_string()),
        ("unclean.leader.election.enable", Boolean, r.unclean_leader_election_enable.to_string()),
    ];
    rows.into_iter()
        .map(|(name, value_type, value)| Applied {
            name,
            value,
            source: Source::Broker,
            value_type,
        })
        .collect()
}
