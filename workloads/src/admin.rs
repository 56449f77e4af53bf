//! Topic creation before a run, through librdkafka's admin API (CreateTopics on the wire).

use crate::limits::METADATA_TIMEOUT_MS;
use crate::WorkloadError;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// Creates `topic`; an already existing topic is fine.
pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32, replication_factor: i32) -> Result<(), WorkloadError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(WorkloadError::kafka("creating the admin client"))?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication_factor));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_millis(METADATA_TIMEOUT_MS)));
    let results = admin.create_topics([&new], &options).await.map_err(WorkloadError::kafka(format!("creating topic {topic}")))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(WorkloadError::Kafka {
                    context: format!("creating topic {name}"),
                    source: rdkafka::error::KafkaError::AdminOp(code),
                })
            }
        }
    }
    Ok(())
}
