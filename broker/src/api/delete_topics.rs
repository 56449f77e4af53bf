//! DeleteTopics on a single node: each named topic (by name, or v6+ by topic id) is deleted with
//! its data ([`Broker::delete_topic`]: the topic id is retired, a later CreateTopics of the name
//! makes a new topic); an unknown one gets UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID by id),
//! as from Kafka; an internal one (`__consumer_offsets`) INVALID_REQUEST. In a cluster the API
//! is not served yet (not advertised).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::state::{Broker, DeleteTopicError};

pub fn handle(
    broker: &Arc<Broker>,
    request: &DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    // v0–5 name topics in `topic_names`, v6 in `topics` (by name or by id).
    let named: Vec<(Option<String>, Uuid)> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.as_str().to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.as_str().to_string()), Uuid::nil()))
            .collect()
    };
    let responses = named
        .into_iter()
        .map(|(name, id)| delete_one(broker, name, id))
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

fn delete_one(broker: &Broker, name: Option<String>, id: Uuid) -> DeletableTopicResult {
    let by_id = name.is_none();
    let name = name.or_else(|| broker.topic_by_id(id).map(|t| t.name.clone()));
    let result = DeletableTopicResult::default()
        .with_name(name.clone().map(|n| TopicName(StrBytes::from_string(n))))
        .with_topic_id(id);
    let fail = |code: ResponseError, message: &str| {
        result
            .clone()
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(message.to_string())))
    };
    let Some(name) = name else {
        return fail(ResponseError::UnknownTopicId, "no topic has this id");
    };
    if crate::api::produce::is_internal_topic(&name) {
        return fail(ResponseError::InvalidRequest, "an internal topic cannot be deleted");
    }
    match broker.delete_topic(&name) {
        Ok(retired) => result.with_topic_id(retired),
        Err(DeleteTopicError::Unknown) if by_id => {
            fail(ResponseError::UnknownTopicId, "no topic has this id")
        }
        Err(DeleteTopicError::Unknown) => fail(
            ResponseError::UnknownTopicOrPartition,
            "This server does not host this topic-partition.",
        ),
        Err(e @ DeleteTopicError::State(_)) => {
            tracing::error!(topic = %name, error = %e, "delete topic failed");
            fail(ResponseError::KafkaStorageError, &e.to_string())
        }
    }
}
