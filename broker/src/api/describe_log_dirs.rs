//! DescribeLogDirs: this broker's one log dir (its data dir) with the size of each replica it
//! holds (the bytes of its segments, which retention bounds) and, for a follower, how far its
//! log end is behind the HW (`offset_lag`, 0 on a leader), as Kafka reports them; `topics` null
//! asks for every replica. v4's total and usable bytes are the data dir's file system's.

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::state::Broker;

pub fn handle(broker: &Broker, request: &DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let wanted = |topic: &str, index: i32| match &request.topics {
        None => true,
        Some(topics) => topics
            .iter()
            .any(|t| t.topic.as_str() == topic && t.partitions.contains(&index)),
    };
    let mut topics = Vec::new();
    for topic in broker.topics() {
        let partitions: Vec<DescribeLogDirsPartition> = topic
            .partitions
            .iter()
            .filter(|(&index, _)| wanted(&topic.name, index))
            .map(|(&index, partition)| {
                let offsets = partition.offsets();
                DescribeLogDirsPartition::default()
                    .with_partition_index(index)
                    .with_partition_size(i64::try_from(partition.size_bytes()).unwrap_or(i64::MAX))
                    .with_offset_lag((offsets.high_watermark - offsets.log_end_offset).max(0))
            })
            .collect();
        if !partitions.is_empty() {
            topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.name.clone())))
                    .with_partitions(partitions),
            );
        }
    }
    let (total, usable) = space(&broker.config.data_dir);
    let dir = broker.config.data_dir.display().to_string();
    DescribeLogDirsResponse::default().with_results(vec![DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir))
        .with_topics(topics)
        .with_total_bytes(total)
        .with_usable_bytes(usable)])
}

/// (total, available) bytes of the file system holding `dir`; -1 each when unknown.
fn space(dir: &std::path::Path) -> (i64, i64) {
    match nix::sys::statvfs::statvfs(dir) {
        Ok(stat) => {
            let block = stat.fragment_size() as i64;
            (
                (stat.blocks() as i64).saturating_mul(block),
                (stat.blocks_available() as i64).saturating_mul(block),
            )
        }
        Err(_) => (-1, -1),
    }
}
