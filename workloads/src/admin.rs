//! Topic creation before a run, through librdkafka's admin API (CreateTopics on the wire).

use crate::limits::METADATA_TIMEOUT_MS;
use crate::WorkloadError;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// Creates `topic`; an already existing topic is fine.
pub async fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication_factor: i32,
) -> Result<(), WorkloadError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(WorkloadError::kafka("creating the admin client"))?;
    let new = NewTopic::new(
        topic,
        partitions,
        TopicReplication::Fixed(replication_factor),
    );
    let options =
        AdminOptions::new().operation_timeout(Some(Duration::from_millis(METADATA_TIMEOUT_MS)));
    let results = admin
        .create_topics([&new], &options)
        .await
        .map_err(WorkloadError::kafka(format!("creating topic {topic}")))?;
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

/// One partition's roles as the cluster reports them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRoles {
    pub partition: i32,
    /// -1 when the partition has no leader.
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// Asks the cluster (blocking, bounded by the metadata timeout) who leads and follows each
/// partition of `topic`.
pub fn partition_roles(bootstrap: &str, topic: &str) -> Result<Vec<PartitionRoles>, WorkloadError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(WorkloadError::kafka("creating a metadata client"))?;
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_millis(METADATA_TIMEOUT_MS))
        .map_err(WorkloadError::kafka(format!("metadata of topic {topic}")))?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| {
            WorkloadError::Incomplete(format!("topic {topic} is not in the metadata"))
        })?;
    Ok(t.partitions()
        .iter()
        .map(|p| PartitionRoles {
            partition: p.id(),
            leader: p.leader(),
            replicas: p.replicas().to_vec(),
            isr: p.isr().to_vec(),
        })
        .collect())
}
