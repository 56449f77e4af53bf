//! DeleteTopics: each named topic (by name, or v6+ by topic id) is deleted with its data and its
//! topic id retired (a later CreateTopics of the name makes a new topic); an unknown one gets
//! UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID by id), as from Kafka; an internal one
//! (`__consumer_offsets`) INVALID_REQUEST. A single node deletes its own replicas
//! ([`Broker::delete_topic`]); in a cluster brokers forward the request to the controller, which
//! drops the topic from its state ([`Controller::delete_topic`]), and every broker deletes its
//! replicas when its next image no longer has the topic (`Broker::remove_strays`).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::controller::Controller;
use crate::state::{Broker, DeleteTopicError};

/// Who deletes topics: a single broker, or the controller of a cluster.
pub trait Topics {
    fn name_by_id(&self, id: Uuid) -> Option<String>;
    /// Deletes topic `name`; its retired id, or an error code and message.
    fn delete(&self, name: &str) -> Result<Uuid, (i16, String)>;
}

impl Topics for Broker {
    fn name_by_id(&self, id: Uuid) -> Option<String> {
        self.topic_by_id(id).map(|t| t.name.clone())
    }

    fn delete(&self, name: &str) -> Result<Uuid, (i16, String)> {
        self.delete_topic(name).map_err(|e| match e {
            DeleteTopicError::Unknown => (
                ResponseError::UnknownTopicOrPartition.code(),
                "This server does not host this topic-partition.".to_string(),
            ),
            e @ DeleteTopicError::State(_) => {
                tracing::error!(topic = %name, error = %e, "delete topic failed");
                (ResponseError::KafkaStorageError.code(), e.to_string())
            }
        })
    }
}

impl Topics for Controller {
    fn name_by_id(&self, id: Uuid) -> Option<String> {
        self.topic_name_by_id(id)
    }

    fn delete(&self, name: &str) -> Result<Uuid, (i16, String)> {
        self.delete_topic(name).map_err(|r| (r.code, r.message))
    }
}

pub fn handle(
    topics: &impl Topics,
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
        .map(|(name, id)| delete_one(topics, name, id))
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

/// Every topic of `request` refused with REQUEST_TIMED_OUT (the controller could not be asked).
pub fn refused(
    request: &DeleteTopicsRequest,
    version: i16,
    message: String,
) -> DeleteTopicsResponse {
    let named: Vec<(Option<TopicName>, Uuid)> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.clone(), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.clone()), Uuid::nil()))
            .collect()
    };
    DeleteTopicsResponse::default().with_responses(
        named
            .into_iter()
            .map(|(name, id)| {
                DeletableTopicResult::default()
                    .with_name(name)
                    .with_topic_id(id)
                    .with_error_code(ResponseError::RequestTimedOut.code())
                    .with_error_message(Some(StrBytes::from_string(message.clone())))
            })
            .collect(),
    )
}

fn delete_one(topics: &impl Topics, name: Option<String>, id: Uuid) -> DeletableTopicResult {
    let by_id = name.is_none();
    let name = name.or_else(|| topics.name_by_id(id));
    let result = DeletableTopicResult::default()
        .with_name(name.clone().map(|n| TopicName(StrBytes::from_string(n))))
        .with_topic_id(id);
    let fail = |code: i16, message: &str| {
        result
            .clone()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message.to_string())))
    };
    let Some(name) = name else {
        return fail(ResponseError::UnknownTopicId.code(), "no topic has this id");
    };
    if crate::api::produce::is_internal_topic(&name) {
        return fail(
            ResponseError::InvalidRequest.code(),
            "an internal topic cannot be deleted",
        );
    }
    match topics.delete(&name) {
        Ok(retired) => result.with_topic_id(retired),
        Err((code, _)) if by_id && code == ResponseError::UnknownTopicOrPartition.code() => {
            fail(ResponseError::UnknownTopicId.code(), "no topic has this id")
        }
        Err((code, message)) => fail(code, &message),
    }
}
