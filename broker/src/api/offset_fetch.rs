//! OffsetFetch: the committed offsets of a group (-1 where none), for the requested partitions or
//! (topics null, v2+) all of them. v8+ asks for several groups at once. With `require_stable`
//! (v7+), offsets a transaction has not committed yet answer UNSTABLE_OFFSET_COMMIT.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::group::Committed;
use crate::state::Broker;

/// One group's answer: a group-level error, or (topic → partition → committed / none).
type GroupAnswer = Result<BTreeMap<String, BTreeMap<i32, Option<Committed>>>, i16>;

fn lookup(
    broker: &Arc<Broker>,
    group_id: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> GroupAnswer {
    let (index, leader_epoch) = broker.groups.route(broker, group_id)?;
    let committed = broker.groups.committed(index, leader_epoch, group_id)?;
    let mut out: BTreeMap<String, BTreeMap<i32, Option<Committed>>> = BTreeMap::new();
    match wanted {
        None => {
            for ((topic, partition), c) in committed {
                out.entry(topic).or_default().insert(partition, Some(c));
            }
        }
        Some(topics) => {
            for (topic, partitions) in topics {
                let entry = out.entry(topic.clone()).or_default();
                for partition in partitions {
                    entry.insert(
                        partition,
                        committed.get(&(topic.clone(), partition)).cloned(),
                    );
                }
            }
        }
    }
    Ok(out)
}

fn metadata_of(c: &Option<Committed>) -> Option<StrBytes> {
    Some(StrBytes::from_string(
        c.as_ref().map(|c| c.metadata.clone()).unwrap_or_default(),
    ))
}

/// A response's topics from one group's answer (topic → partition → committed / none): each
/// partition with its committed offset and metadata (-1 and "" where none), and where
/// `$with_epoch` the leader epoch of the commit. v8+ and v0-7 responses hold distinct types
/// (`$topic`, `$partition`) with these same fields.
macro_rules! answered_topics {
    ($topics:expr, $topic:ty, $partition:ty, $with_epoch:expr) => {
        $topics
            .into_iter()
            .map(|(name, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|(index, c): (i32, Option<Committed>)| {
                        let p = <$partition>::default()
                            .with_partition_index(index)
                            .with_committed_offset(c.as_ref().map_or(-1, |c| c.offset))
                            .with_metadata(metadata_of(&c));
                        if $with_epoch {
                            p.with_committed_leader_epoch(c.as_ref().map_or(-1, |c| c.leader_epoch))
                        } else {
                            p
                        }
                    })
                    .collect();
                <$topic>::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(partitions)
            })
            .collect()
    };
}

pub fn handle(
    broker: &Arc<Broker>,
    request: &OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let mut response = if version >= 8 {
        handle_groups(broker, request)
    } else {
        handle_one_group(broker, request, version)
    };
    if request.require_stable {
        mark_unstable(broker, request, &mut response);
    }
    response
}

/// KIP-447: with `require_stable`, a partition whose transactional offset commit waits for its
/// transaction's marker answers UNSTABLE_OFFSET_COMMIT and no offset (the consumer asks again).
fn mark_unstable(
    broker: &Arc<Broker>,
    request: &OffsetFetchRequest,
    response: &mut OffsetFetchResponse,
) {
    let unstable = |group: &str, topic: &str, partition: i32| {
        broker.groups.route(broker, group).is_ok_and(|(index, _)| {
            broker
                .groups
                .has_pending_txn_offset(index, group, topic, partition)
        })
    };
    let code = ResponseError::UnstableOffsetCommit.code();
    // The v8+ and v0-7 responses hold partitions of distinct types with the same fields.
    macro_rules! mark {
        ($group:expr, $topics:expr) => {
            for topic in $topics {
                for p in &mut topic.partitions {
                    if unstable($group, topic.name.as_str(), p.partition_index) {
                        p.error_code = code;
                        p.committed_offset = -1;
                    }
                }
            }
        };
    }
    for group in &mut response.groups {
        mark!(group.group_id.as_str(), &mut group.topics);
    }
    mark!(request.group_id.as_str(), &mut response.topics);
}

/// v8+: several groups per request.
fn handle_groups(broker: &Arc<Broker>, request: &OffsetFetchRequest) -> OffsetFetchResponse {
    let groups = request
        .groups
        .iter()
        .map(|g| {
            let wanted = g.topics.as_ref().map(|topics| {
                topics
                    .iter()
                    .map(|t| (t.name.as_str().to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let answer = lookup(broker, g.group_id.as_str(), wanted);
            let (code, topics) = match answer {
                Err(code) => (code, Vec::new()),
                Ok(topics) => (
                    0,
                    answered_topics!(
                        topics,
                        OffsetFetchResponseTopics,
                        OffsetFetchResponsePartitions,
                        true
                    ),
                ),
            };
            OffsetFetchResponseGroup::default()
                .with_group_id(g.group_id.clone())
                .with_error_code(code)
                .with_topics(topics)
        })
        .collect();
    OffsetFetchResponse::default().with_groups(groups)
}

/// v0-7: one group per request.
fn handle_one_group(
    broker: &Arc<Broker>,
    request: &OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let wanted = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .map(|t| (t.name.as_str().to_string(), t.partition_indexes.clone()))
            .collect::<Vec<_>>()
    });
    match lookup(broker, request.group_id.as_str(), wanted.clone()) {
        Ok(topics) => OffsetFetchResponse::default().with_topics(answered_topics!(
            topics,
            OffsetFetchResponseTopic,
            OffsetFetchResponsePartition,
            version >= 5
        )),
        Err(code) => {
            // v2+ carries a group-level error; v0-1 only per partition.
            let topics = wanted
                .unwrap_or_default()
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name)))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|index| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(index)
                                        .with_committed_offset(-1)
                                        .with_metadata(Some(StrBytes::from_static_str("")))
                                        .with_error_code(code)
                                })
                                .collect(),
                        )
                })
                .collect();
            let response = OffsetFetchResponse::default().with_topics(topics);
            if version >= 2 {
                response.with_error_code(code)
            } else {
                response
            }
        }
    }
}
