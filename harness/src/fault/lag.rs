//! What `nemesis.trigger_follower_lag_min` measures, over the Kafka protocol only (the harness
//! never links the broker): the partition's leader and replicas from Metadata, then each
//! replica's log end offset from ListOffsets latest with Kafka's debugging replica id (-2), which
//! any replica answers from its own log (`KafkaApis.handleListOffsetRequest`: not only the
//! leader, and the log end offset rather than the HW, since the request is not a client's). A
//! follower's lag is the leader's log end offset minus its own.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::limits::{LAG_PROBE_RESPONSE_BYTES_MAX, LAG_PROBE_TIMEOUT_MS};

/// Kafka's `ListOffsetsRequest.DEBUGGING_REPLICA_ID`.
const DEBUGGING_REPLICA_ID: i32 = -2;
/// ListOffsets latest.
const LATEST_TIMESTAMP: i64 = -1;
const METADATA_VERSION: i16 = 9;
const LIST_OFFSETS_VERSION: i16 = 4;

/// The most lagging follower of a partition at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FollowerLag {
    pub partition: i32,
    /// Node ids, as Metadata names them.
    pub leader: i32,
    pub follower: i32,
    pub leader_log_end_offset: i64,
    pub follower_log_end_offset: i64,
    /// `leader_log_end_offset - follower_log_end_offset`.
    pub lag: i64,
}

/// The largest lag among the followers that answered, from `(follower, log end offset)` pairs;
/// None without any.
pub fn most_lagging(
    partition: i32,
    leader: i32,
    leader_log_end_offset: i64,
    followers: &[(i32, i64)],
) -> Option<FollowerLag> {
    followers
        .iter()
        .map(|&(follower, end)| FollowerLag {
            partition,
            leader,
            follower,
            leader_log_end_offset,
            follower_log_end_offset: end,
            lag: leader_log_end_offset - end,
        })
        .max_by_key(|l| (l.lag, -l.follower))
}

/// The most lagging follower of `topic`'s `partition` now, asked of the cluster at `bootstrap`
/// (`host:port[,host:port…]`). A follower that does not answer (down, paused) is left out; an
/// error when the partition has no leader, the leader does not answer, or no follower does.
pub async fn measure(bootstrap: &str, topic: &str, partition: i32) -> Result<FollowerLag, String> {
    let metadata = metadata(bootstrap, topic).await?;
    let t = metadata
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))
        .ok_or_else(|| format!("topic {topic} is not in the metadata"))?;
    let p = t
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| format!("partition {partition} of {topic} is not in the metadata"))?;
    let leader = p.leader_id.0;
    if leader < 0 {
        return Err(format!(
            "partition {partition} of {topic} has no leader now"
        ));
    }
    let address = |id: i32| {
        metadata
            .brokers
            .iter()
            .find(|b| b.node_id.0 == id)
            .map(|b| format!("{}:{}", b.host.as_str(), b.port))
            .ok_or_else(|| format!("metadata names node {id} but not its address"))
    };
    let leader_end = log_end_offset(&address(leader)?, topic, partition)
        .await
        .map_err(|e| format!("the leader, node {leader}: {e}"))?;
    let mut followers = Vec::new();
    for id in p.replica_nodes.iter().map(|r| r.0).filter(|&r| r != leader) {
        if let Ok(end) = log_end_offset(&address(id)?, topic, partition).await {
            followers.push((id, end));
        }
    }
    most_lagging(partition, leader, leader_end, &followers)
        .ok_or_else(|| format!("no follower of partition {partition} of {topic} answered"))
}

async fn metadata(bootstrap: &str, topic: &str) -> Result<MetadataResponse, String> {
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(topic_name(topic))),
    ]));
    let mut last = format!("no bootstrap address in {bootstrap:?}");
    for address in bootstrap
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        match call(address, ApiKey::Metadata, METADATA_VERSION, &request).await {
            Ok(response) => return Ok(response),
            Err(e) => last = format!("metadata from {address}: {e}"),
        }
    }
    Err(last)
}

/// The log end offset of the replica at `address`.
async fn log_end_offset(address: &str, topic: &str, partition: i32) -> Result<i64, String> {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(DEBUGGING_REPLICA_ID))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_current_leader_epoch(-1)
                .with_timestamp(LATEST_TIMESTAMP)])]);
    let response: ListOffsetsResponse =
        call(address, ApiKey::ListOffsets, LIST_OFFSETS_VERSION, &request).await?;
    let answer = response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or("an empty ListOffsets answer")?;
    match answer.error_code {
        0 => Ok(answer.offset),
        code => Err(format!("ListOffsets answered error {code}")),
    }
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// One request on a connection of its own, within `LAG_PROBE_TIMEOUT_MS`.
async fn call<Req: Encodable, Resp: Decodable>(
    address: &str,
    api: ApiKey,
    version: i16,
    request: &Req,
) -> Result<Resp, String> {
    let timeout = Duration::from_millis(LAG_PROBE_TIMEOUT_MS);
    tokio::time::timeout(timeout, exchange(address, api, version, request))
        .await
        .map_err(|_| format!("no answer from {address} within {LAG_PROBE_TIMEOUT_MS} ms"))?
}

async fn exchange<Req: Encodable, Resp: Decodable>(
    address: &str,
    api: ApiKey,
    version: i16,
    request: &Req,
) -> Result<Resp, String> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("kaos-nemesis")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, api.request_header_version(version))
        .and_then(|()| request.encode(&mut body, version))
        .map_err(|e| format!("encoding the request: {e:#}"))?;
    let mut frame = BytesMut::with_capacity(body.len() + 4);
    frame.put_i32(body.len() as i32);
    frame.put_slice(&body);
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("connecting to {address}: {e}"))?;
    let io = |e: std::io::Error| format!("{address}: {e}");
    stream.write_all(&frame).await.map_err(io)?;
    let length = stream.read_i32().await.map_err(io)?;
    let length = usize::try_from(length)
        .ok()
        .filter(|&l| l <= LAG_PROBE_RESPONSE_BYTES_MAX)
        .ok_or_else(|| format!("{address}: bad response length {length}"))?;
    let mut data = vec![0u8; length];
    stream.read_exact(&mut data).await.map_err(io)?;
    let mut data = Bytes::from(data);
    let header = ResponseHeader::decode(&mut data, api.response_header_version(version))
        .map_err(|e| format!("{address}: decoding the response header: {e:#}"))?;
    if header.correlation_id != 1 {
        return Err(format!(
            "{address}: correlation id {}",
            header.correlation_id
        ));
    }
    Resp::decode(&mut data, version).map_err(|e| format!("{address}: decoding the response: {e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_lagging_follower_is_the_one_furthest_behind_the_leader() {
        let lag = most_lagging(0, 1, 500, &[(2, 480), (3, 120)]).expect("two followers");
        assert_eq!((lag.follower, lag.lag), (3, 380));
        assert_eq!(lag.follower_log_end_offset, 120);
        assert_eq!(most_lagging(0, 1, 500, &[]), None);
        // A follower ahead of the leader (it holds a tail the leader lacks) lags negatively.
        let ahead = most_lagging(2, 1, 10, &[(2, 14)]).expect("one follower");
        assert_eq!((ahead.partition, ahead.lag), (2, -4));
    }
}
