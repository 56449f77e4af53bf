//! AlterConfigs (a resource's whole set of configs replaced: those not named return to the
//! broker's) and IncrementalAlterConfigs (SET, DELETE, APPEND, SUBTRACT per config) of topic and
//! broker resources, honouring `validate_only`. A topic's are validated as CreateTopics validates
//! them (INVALID_CONFIG with Kafka's words) and stored durably by the [`ConfigStore`]: a single
//! broker itself (then applied to every partition of the topic, [`Broker::set_topic_configs`]), or
//! in a cluster the controller (brokers forward these requests to it; every replica applies the
//! configs from its next image). A topic the cluster does not have gets
//! UNKNOWN_TOPIC_OR_PARTITION. A broker resource (`""` or a broker id) holds dynamic broker
//! configs ([`crate::broker_config`]): refused with INVALID_REQUEST as Kafka refuses them (a
//! read-only config, a per-broker one at the cluster level, a bad value, another broker's id);
//! any other resource type INVALID_REQUEST.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource as IncrementalResource;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker_config::{self, AllBrokerConfigs, BrokerConfigStore, BrokerConfigs};
use crate::controller::Controller;
use crate::state::{AlterConfigsError, Broker};
use crate::topic_config::{self, AlterOp, ConfigError, TopicConfigs};

/// Where topics' configs (and the dynamic broker configs) are kept.
pub trait ConfigStore: BrokerConfigStore {
    /// The id of the broker answering (`None`: the controller, which takes any broker's).
    fn own_node_id(&self) -> Option<i32>;
    /// The configs of topic `name`; `None` when the topic does not exist.
    fn current(&self, name: &str) -> Option<TopicConfigs>;
    /// Replaces them durably.
    fn store(&self, name: &str, configs: TopicConfigs) -> Result<(), (ResponseError, String)>;
}

impl BrokerConfigStore for Broker {
    fn broker_configs(&self) -> AllBrokerConfigs {
        self.broker_configs.broker_configs()
    }

    fn store_broker_configs(&self, level: &str, configs: BrokerConfigs) -> Result<(), String> {
        self.broker_configs.store_broker_configs(level, configs)
    }
}

impl ConfigStore for Broker {
    fn own_node_id(&self) -> Option<i32> {
        Some(self.node_id())
    }

    fn current(&self, name: &str) -> Option<TopicConfigs> {
        self.topic(name).map(|t| t.configs.clone())
    }

    fn store(&self, name: &str, configs: TopicConfigs) -> Result<(), (ResponseError, String)> {
        self.set_topic_configs(name, configs).map_err(|e| match e {
            AlterConfigsError::Unknown(_) => {
                (ResponseError::UnknownTopicOrPartition, e.to_string())
            }
            AlterConfigsError::State(e) => {
                tracing::error!(topic = name, error = %e, "cannot store the topic configs");
                (ResponseError::KafkaStorageError, e.to_string())
            }
        })
    }
}

impl ConfigStore for Controller {
    fn own_node_id(&self) -> Option<i32> {
        None
    }

    fn current(&self, name: &str) -> Option<TopicConfigs> {
        self.topic_configs(name)
    }

    fn store(&self, name: &str, configs: TopicConfigs) -> Result<(), (ResponseError, String)> {
        self.set_topic_configs(name, configs).map_err(|refusal| {
            let code = ResponseError::try_from_code(refusal.code)
                .unwrap_or(ResponseError::UnknownServerError);
            (code, refusal.message)
        })
    }
}

/// One IncrementalAlterConfigs operation: config name, operation, value.
type Op<'a> = (&'a str, AlterOp, Option<&'a str>);

/// Kafka's `ConfigResource.Type` codes.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// One resource's outcome: (error code, message).
type Outcome = (i16, Option<String>);

/// The response of an AlterConfigs or IncrementalAlterConfigs request (alike, but distinct
/// types): each resource of `$request` with its [`Outcome`], `$outcome(resource)`.
macro_rules! answer_resources {
    ($request:expr, $response:ty, $resource_response:ty, $outcome:expr) => {{
        let outcome = $outcome;
        let responses = $request
            .resources
            .iter()
            .map(|resource| {
                let (code, message): Outcome = outcome(resource);
                <$resource_response>::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name.clone())
                    .with_error_code(code)
                    .with_error_message(message.map(StrBytes::from_string))
            })
            .collect();
        <$response>::default().with_responses(responses)
    }};
}

pub fn handle(store: &dyn ConfigStore, request: &AlterConfigsRequest) -> AlterConfigsResponse {
    use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
    answer_resources!(
        request,
        AlterConfigsResponse,
        AlterConfigsResourceResponse,
        |resource: &AlterConfigsResource| {
            let pairs = || {
                resource
                    .configs
                    .iter()
                    .map(|c| (c.name.as_str(), c.value.as_ref().map(|v| v.as_str())))
            };
            alter(
                store,
                resource.resource_type,
                resource.resource_name.as_str(),
                request.validate_only,
                Change {
                    topic: |_: &TopicConfigs| topic_config::stored(pairs()),
                    broker: |_: &BrokerConfigs, per_broker| {
                        broker_config::replaced(pairs(), per_broker)
                    },
                },
            )
        }
    )
}

pub fn handle_incremental(
    store: &dyn ConfigStore,
    request: &IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
    answer_resources!(
        request,
        IncrementalAlterConfigsResponse,
        AlterConfigsResourceResponse,
        |resource: &IncrementalResource| {
            let ops = || -> Result<Vec<Op<'_>>, ConfigError> {
                let mut ops = Vec::with_capacity(resource.configs.len());
                for c in &resource.configs {
                    let op =
                        AlterOp::of(c.config_operation).ok_or_else(|| ConfigError::Invalid {
                            name: c.name.to_string(),
                            value: c.config_operation.to_string(),
                            reason: "unknown config operation".to_string(),
                        })?;
                    ops.push((c.name.as_str(), op, c.value.as_ref().map(|v| v.as_str())));
                }
                Ok(ops)
            };
            alter(
                store,
                resource.resource_type,
                resource.resource_name.as_str(),
                request.validate_only,
                Change {
                    topic: |current: &TopicConfigs| {
                        topic_config::alter_incrementally(current, ops()?)
                    },
                    broker: |current: &BrokerConfigs, per_broker| {
                        let ops = ops().map_err(|e| e.to_string())?;
                        broker_config::altered(current, ops, per_broker)
                    },
                },
            )
        }
    )
}

/// What a request makes of a resource's current configs: a topic's (refused with
/// INVALID_CONFIG), or a broker level's (`per_broker`: resource `<id>`; refused with
/// INVALID_REQUEST).
struct Change<T, B> {
    topic: T,
    broker: B,
}

/// Changes resource `name`'s configs to what `change` makes of its current ones.
fn alter<T, B>(
    store: &dyn ConfigStore,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    change: Change<T, B>,
) -> Outcome
where
    T: FnOnce(&TopicConfigs) -> Result<TopicConfigs, ConfigError>,
    B: FnOnce(&BrokerConfigs, bool) -> Result<BrokerConfigs, String>,
{
    let refuse = |code: ResponseError, message: String| (code.code(), Some(message));
    match resource_type {
        RESOURCE_TOPIC => {}
        RESOURCE_BROKER => return alter_broker(store, name, validate_only, change.broker),
        other => {
            return refuse(
                ResponseError::InvalidRequest,
                format!("Unsupported resource type {other}"),
            )
        }
    }
    let Some(current) = store.current(name) else {
        return refuse(
            ResponseError::UnknownTopicOrPartition,
            format!("Topic '{name}' does not exist"),
        );
    };
    let configs = match (change.topic)(&current) {
        Ok(configs) => configs,
        Err(e) => return refuse(ResponseError::InvalidConfig, e.to_string()),
    };
    if validate_only {
        return (0, None);
    }
    match store.store(name, configs) {
        Ok(()) => (0, None),
        Err((code, message)) => refuse(code, message),
    }
}

/// Changes the dynamic broker configs of level `name` (`""` or a broker id): every refusal is
/// INVALID_REQUEST, as Kafka answers it; a broker takes only its own id.
fn alter_broker(
    store: &dyn ConfigStore,
    name: &str,
    validate_only: bool,
    change: impl FnOnce(&BrokerConfigs, bool) -> Result<BrokerConfigs, String>,
) -> Outcome {
    let invalid = |message: String| (ResponseError::InvalidRequest.code(), Some(message));
    let per_broker = match broker_config::resource_level(name) {
        Ok(per_broker) => per_broker,
        Err(message) => return invalid(message),
    };
    if let Some(own) = store.own_node_id().filter(|_| per_broker) {
        if name != own.to_string() {
            return invalid(format!(
                "Unexpected broker id, expected {own} or empty string, but received {name}"
            ));
        }
    }
    let current = store.broker_configs().remove(name).unwrap_or_default();
    let configs = match change(&current, per_broker) {
        Ok(configs) => configs,
        Err(message) => return invalid(message),
    };
    if validate_only {
        return (0, None);
    }
    match store.store_broker_configs(name, configs) {
        Ok(()) => (0, None),
        Err(message) => (ResponseError::KafkaStorageError.code(), Some(message)),
    }
}

/// A forwarded request's answer, or `refused` with why there is none.
pub async fn answer_of<R>(
    forwarded: Option<crate::cluster::Forwarded<R>>,
    refused: impl FnOnce(String) -> R,
) -> R {
    match forwarded {
        Some(answer) => answer.await.unwrap_or_else(refused),
        None => refused("no controller".to_string()),
    }
}

/// Every resource of `request` refused with REQUEST_TIMED_OUT (the controller could not be asked).
pub fn refused(request: &AlterConfigsRequest, message: String) -> AlterConfigsResponse {
    use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
    answer_resources!(
        request,
        AlterConfigsResponse,
        AlterConfigsResourceResponse,
        |_: &AlterConfigsResource| timed_out(&message)
    )
}

/// [`refused`] for IncrementalAlterConfigs.
pub fn refused_incremental(
    request: &IncrementalAlterConfigsRequest,
    message: String,
) -> IncrementalAlterConfigsResponse {
    use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
    answer_resources!(
        request,
        IncrementalAlterConfigsResponse,
        AlterConfigsResourceResponse,
        |_: &IncrementalResource| timed_out(&message)
    )
}

/// The outcome of a resource whose request the controller could not be asked about.
fn timed_out(message: &str) -> Outcome {
    (
        ResponseError::RequestTimedOut.code(),
        Some(message.to_string()),
    )
}
