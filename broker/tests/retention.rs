//! Retention and per-topic configs (issue 17): DeleteRecords moves the log start offset (reads
//! below it get OFFSET_OUT_OF_RANGE, ListOffsets earliest follows it, it survives a SIGKILL, a
//! follower takes it from its leader and keeps it as the next leader); `retention.bytes` and
//! `retention.ms` delete whole old segments and `segment.ms` rolls them; per-topic configs set
//! by CreateTopics, IncrementalAlterConfigs and AlterConfigs are stored durably, applied, and
//! described with their source; librdkafka's admin client and consumer see the same.

mod cluster;
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    alter_configs_request, incremental_alter_configs_request, AlterConfigsRequest,
    AlterConfigsResponse, ApiKey, CreateTopicsRequest, CreateTopicsResponse, DeleteRecordsRequest,
    DeleteRecordsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

/// Retention passes every 100 ms.
const CONFIG: &str = "\"log.retention.check.interval.ms\" = 100\n";

const OUT_OF_RANGE: i16 = 1;
/// DescribeConfigs' config sources.
const DYNAMIC_TOPIC: i8 = 1;
const BROKER: i8 = 4;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// CreateTopics v7 of one topic with `configs`: its error code.
fn create_with(address: SocketAddr, name: &str, partitions: i32, configs: &[(&str, &str)]) -> i16 {
    create_replicated(address, name, (partitions, -1), configs)
}

/// [`create_with`] with (partitions, replication factor).
fn create_replicated(
    address: SocketAddr,
    name: &str,
    (partitions, replication_factor): (i32, i16),
    configs: &[(&str, &str)],
) -> i16 {
    let topic = CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(replication_factor)
        .with_configs(
            configs
                .iter()
                .map(|(n, v)| {
                    CreatableTopicConfig::default()
                        .with_name(text(n))
                        .with_value(Some(text(v)))
                })
                .collect(),
        );
    let request = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(10_000);
    let mut client = RawClient::connect(address);
    let response: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &request);
    response.topics[0].error_code
}

/// DeleteRecords v2 of one partition: (error code, low watermark).
fn delete_records(address: SocketAddr, topic: &str, partition: i32, offset: i64) -> (i16, i64) {
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(partition)
                .with_offset(offset)])]);
    let mut client = RawClient::connect(address);
    let response: DeleteRecordsResponse = client.call(ApiKey::DeleteRecords, 2, &request);
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}

/// IncrementalAlterConfigs v1 of topic `name`: (error code, message).
fn alter_incrementally(
    address: SocketAddr,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, String) {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let configs = ops
        .iter()
        .map(|(n, op, v)| {
            AlterableConfig::default()
                .with_name(text(n))
                .with_config_operation(*op)
                .with_value(v.map(text))
        })
        .collect();
    let request = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(text(name))
            .with_configs(configs)]);
    let mut client = RawClient::connect(address);
    let response: IncrementalAlterConfigsResponse =
        client.call(ApiKey::IncrementalAlterConfigs, 1, &request);
    let r = &response.responses[0];
    (
        r.error_code,
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// AlterConfigs v1 of topic `name` (its whole set of configs): the error code.
fn alter(address: SocketAddr, name: &str, configs: &[(&str, &str)]) -> i16 {
    use alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let request =
        AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(text(name))
            .with_configs(
                configs
                    .iter()
                    .map(|(n, v)| {
                        AlterableConfig::default()
                            .with_name(text(n))
                            .with_value(Some(text(v)))
                    })
                    .collect(),
            )]);
    let mut client = RawClient::connect(address);
    let response: AlterConfigsResponse = client.call(ApiKey::AlterConfigs, 1, &request);
    response.responses[0].error_code
}

/// DescribeConfigs v4 of topic `name`: config → (value, source).
fn describe(address: SocketAddr, name: &str) -> std::collections::BTreeMap<String, (String, i8)> {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(text(name))
            .with_configuration_keys(None)]);
    let mut client = RawClient::connect(address);
    let response: DescribeConfigsResponse = client.call(ApiKey::DescribeConfigs, 4, &request);
    let result = &response.results[0];
    assert_eq!(result.error_code, 0, "{result:?}");
    result
        .configs
        .iter()
        .map(|c| {
            let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
            (c.name.to_string(), (value, c.config_source))
        })
        .collect()
}

/// DescribeLogDirs v4 (every replica): (topic, partition) → size in bytes.
fn log_dir_sizes(address: SocketAddr) -> std::collections::BTreeMap<(String, i32), i64> {
    let request = kafka_protocol::messages::DescribeLogDirsRequest::default().with_topics(None);
    let mut client = RawClient::connect(address);
    let response: kafka_protocol::messages::DescribeLogDirsResponse =
        client.call(ApiKey::DescribeLogDirs, 4, &request);
    assert_eq!(response.results.len(), 1, "one log dir");
    let dir = &response.results[0];
    assert!(dir.total_bytes > 0 && dir.usable_bytes > 0, "{dir:?}");
    dir.topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| ((t.name.to_string(), p.partition_index), p.partition_size))
        })
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .expect("clock")
}

/// Produces `count` one-record batches of 100 bytes stamped `timestamp_ms` to partition 0.
fn produce_at(client: &mut RawClient, topic: &str, timestamp_ms: i64, count: usize) {
    for _ in 0..count {
        let batch = broker::wire::batch::build_batch(0, timestamp_ms, &[&[b'r'; 100]]);
        let (error_code, _) = produce_records(client, topic, 0, batch, 1).expect("acks=1 answers");
        assert_eq!(error_code, 0);
    }
}

#[test]
fn delete_records_moves_the_log_start_offset_for_reads_and_list_offsets_and_survives_a_kill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let broker = BrokerProcess::start(&data, CONFIG);
    let address = broker.address;
    assert_eq!(
        create_with(address, "t", 1, &[("segment.bytes", "1024")]),
        0
    );
    let mut client = RawClient::connect(address);
    produce_at(&mut client, "t", now_ms(), 40);
    assert!(segment_files(&data.join("t-0")).len() > 3, "small segments");

    assert_eq!(delete_records(address, "t", 0, 25), (0, 25));
    assert_eq!(fetch_once(&mut client, "t", 0, 24, 0).0, OUT_OF_RANGE);
    let from_start = fetch_all(&mut client, "t", 0, 25);
    assert_eq!(from_start.first().map(|r| r.0), Some(25));
    assert_eq!(from_start.len(), 15);
    assert_eq!(list_offset(&mut client, "t", 0, -2), (0, 25));
    assert_eq!(list_offset(&mut client, "t", 0, -1), (0, 40));
    // The whole segments below 25 are gone; the one holding 25 stays.
    let first = segment_files(&data.join("t-0"))[0].clone();
    let base: i64 = first
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("base");
    assert!(base > 0 && base <= 25, "first segment {base}");
    // Past the HW: refused; lower: the log start never goes back.
    assert_eq!(
        delete_records(address, "t", 0, 41).0,
        ResponseError::OffsetOutOfRange.code()
    );
    assert_eq!(delete_records(address, "t", 0, 10), (0, 25));
    assert_eq!(
        delete_records(address, "nowhere", 0, 1).0,
        ResponseError::UnknownTopicOrPartition.code()
    );

    // Durable: a SIGKILL right after does not bring the deleted records back.
    broker.kill();
    let broker = BrokerProcess::start(&data, CONFIG);
    let mut client = RawClient::connect(broker.address);
    assert_eq!(list_offset(&mut client, "t", 0, -2), (0, 25));
    assert_eq!(fetch_once(&mut client, "t", 0, 24, 0).0, OUT_OF_RANGE);
    // -1 is the HW: everything goes; the log keeps its end.
    assert_eq!(delete_records(broker.address, "t", 0, -1), (0, 40));
    assert_eq!(list_offset(&mut client, "t", 0, -2), (0, 40));
    assert_eq!(produce_values(&mut client, "t", 0, &[b"after"]), (0, 40));
}

#[test]
fn retention_bytes_set_by_incremental_alter_configs_bounds_the_log_and_is_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let broker = BrokerProcess::start(&data, CONFIG);
    let address = broker.address;
    assert_eq!(
        create_with(address, "t", 1, &[("segment.bytes", "1024")]),
        0
    );
    let set = 0i8;
    // validate_only checks and changes nothing; a bad value or an unknown topic is refused.
    assert_eq!(
        alter_incrementally(
            address,
            "t",
            &[("retention.bytes", set, Some("2048"))],
            true
        )
        .0,
        0
    );
    assert_eq!(
        describe(address, "t")["retention.bytes"],
        ("-1".to_string(), BROKER)
    );
    let (code, message) = alter_incrementally(
        address,
        "t",
        &[("retention.bytes", set, Some("lots"))],
        false,
    );
    assert_eq!(code, ResponseError::InvalidConfig.code());
    assert!(message.contains("retention.bytes"), "{message}");
    assert_eq!(
        alter_incrementally(
            address,
            "nowhere",
            &[("retention.bytes", set, Some("1"))],
            false
        )
        .0,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        alter_incrementally(
            address,
            "t",
            &[("retention.bytes", set, Some("2048"))],
            false
        )
        .0,
        0
    );

    let mut client = RawClient::connect(address);
    produce_at(&mut client, "t", now_ms(), 100);
    let partition_dir = data.join("t-0");
    let start = poll_until(200, Duration::from_millis(50), || {
        let (code, start) = list_offset(&mut client, "t", 0, -2);
        (code == 0 && start > 0 && log_bytes(&partition_dir) < 2048 + 1024).then_some(start)
    })
    .expect("size retention deleted the oldest segments");
    assert!(
        log_bytes(&partition_dir) >= 2048,
        "retention keeps at least retention.bytes"
    );
    let sizes = log_dir_sizes(address);
    assert_eq!(
        sizes[&("t".to_string(), 0)],
        log_bytes(&partition_dir) as i64
    );
    assert_eq!(list_offset(&mut client, "t", 0, -1), (0, 100));
    assert_eq!(
        fetch_all(&mut client, "t", 0, start).len() as i64,
        100 - start
    );

    let described = describe(address, "t");
    assert_eq!(
        described["retention.bytes"],
        ("2048".to_string(), DYNAMIC_TOPIC)
    );
    assert_eq!(
        described["segment.bytes"],
        ("1024".to_string(), DYNAMIC_TOPIC)
    );
    assert_eq!(described["retention.ms"], ("604800000".to_string(), BROKER));

    // Stored: a restart keeps them.
    assert_eq!(broker.terminate(), Some(0));
    let broker = BrokerProcess::start(&data, CONFIG);
    let address = broker.address;
    assert_eq!(
        describe(address, "t")["retention.bytes"],
        ("2048".to_string(), DYNAMIC_TOPIC)
    );
    // AlterConfigs replaces the whole set: what it does not name returns to the broker's.
    assert_eq!(alter(address, "t", &[("retention.ms", "3600000")]), 0);
    let described = describe(address, "t");
    assert_eq!(
        described["retention.ms"],
        ("3600000".to_string(), DYNAMIC_TOPIC)
    );
    assert_eq!(described["retention.bytes"], ("-1".to_string(), BROKER));
    assert_eq!(described["segment.bytes"].1, BROKER);
}

#[test]
fn time_retention_deletes_segments_whose_records_are_older_than_retention_ms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let broker = BrokerProcess::start(&data, CONFIG);
    let address = broker.address;
    let configs = [("segment.bytes", "1024"), ("retention.ms", "3600000")];
    assert_eq!(create_with(address, "t", 1, &configs), 0);
    let mut client = RawClient::connect(address);
    produce_at(&mut client, "t", now_ms() - 2 * 3_600_000, 30);
    produce_at(&mut client, "t", now_ms(), 30);
    let start = poll_until(200, Duration::from_millis(50), || {
        let (code, start) = list_offset(&mut client, "t", 0, -2);
        (code == 0 && start > 0).then_some(start)
    })
    .expect("time retention deleted the old segments");
    assert!(
        start <= 30,
        "only segments wholly older than retention.ms go: {start}"
    );
    // Retention goes on passing; the recent records stay.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(list_offset(&mut client, "t", 0, -2).1, start);
    assert_eq!(
        fetch_all(&mut client, "t", 0, start).len() as i64,
        60 - start
    );

    // segment.ms: an append to a segment older than it rolls a new one.
    assert_eq!(create_with(address, "r", 1, &[("segment.ms", "50")]), 0);
    for _ in 0..3 {
        produce_at(&mut client, "r", now_ms(), 1);
        std::thread::sleep(Duration::from_millis(120));
    }
    assert_eq!(segment_files(&data.join("r-0")).len(), 3);
}

#[test]
fn a_follower_takes_its_leaders_log_start_offset_and_keeps_it_as_the_next_leader() {
    // The records carry 2023 timestamps: no time retention here, DeleteRecords alone.
    let config =
        format!("{CONFIG}\"broker.heartbeat.interval.ms\" = 200\n\"log.retention.ms\" = -1\n");
    let mut cluster = cluster::Cluster::start(3, &config);
    cluster.wait_brokers_live(3);
    let partition = cluster.create_in_sync("t", 3);
    cluster.produce_ids(partition.leader, "t", 0..20, 0);
    assert_eq!(
        delete_records(cluster.address(partition.leader), "t", 0, 12),
        (0, 12)
    );
    let follower = partition.follower();
    let not_leader = delete_records(cluster.address(follower), "t", 0, 14).0;
    assert_eq!(not_leader, ResponseError::NotLeaderOrFollower.code());
    // Every follower takes it from its next fetch and checkpoints it.
    for &replica in partition
        .replicas
        .iter()
        .filter(|&&r| r != partition.leader)
    {
        let checkpoint = cluster
            .data_dir(replica)
            .join("log-start-offset-checkpoint");
        cluster::wait_until("the follower's log start offset", 600, || {
            let text = std::fs::read_to_string(&checkpoint).ok()?;
            text.lines().any(|line| line == "t 0 12").then_some(())
        });
    }
    cluster.kill_broker(partition.leader);
    let (leader, ..) = cluster.wait_partition("a new leader", "t", 0, |l, _, _, _| {
        l >= 0 && l != partition.leader
    });
    cluster.wait_topic_on(leader, "t");
    let mut client = RawClient::connect(cluster.address(leader));
    let earliest = cluster::wait_until("the new leader answers", 600, || {
        let (code, offset) = list_offset(&mut client, "t", 0, -2);
        (code == 0).then_some(offset)
    });
    assert_eq!(earliest, 12);
    assert_eq!(fetch_once(&mut client, "t", 0, 11, 0).0, OUT_OF_RANGE);
}

#[test]
fn in_a_cluster_the_controller_stores_topic_configs_and_every_replica_applies_them() {
    let config = format!("{CONFIG}\"broker.heartbeat.interval.ms\" = 200\n");
    let mut cluster = cluster::Cluster::start(3, &config);
    cluster.wait_brokers_live(3);
    assert_eq!(
        create_replicated(
            cluster.address(1),
            "t",
            (1, 3),
            &[("segment.bytes", "1024")]
        ),
        0
    );
    let (leader, ..) =
        cluster.wait_partition("ISR of 3", "t", 0, |l, _, _, isr| l >= 0 && isr.len() == 3);
    cluster.wait_topic_on(leader, "t");
    // Forwarded to the controller from any broker; every broker describes it once it has it.
    let set = 0i8;
    assert_eq!(
        alter_incrementally(
            cluster.address(2),
            "t",
            &[("retention.bytes", set, Some("2048"))],
            false
        )
        .0,
        0
    );
    for id in 1..=3 {
        cluster::wait_until("the broker has the topic's configs", 600, || {
            let described = describe(cluster.address(id), "t");
            (described["retention.bytes"] == ("2048".to_string(), DYNAMIC_TOPIC)).then_some(())
        });
    }
    let mut client = RawClient::connect(cluster.address(leader));
    produce_at(&mut client, "t", now_ms(), 100);
    // Every replica keeps about retention.bytes (its own segments below its HW deleted).
    for id in 1..=3 {
        let dir = cluster.data_dir(id).join("t-0");
        cluster::wait_until("the replica's log bounded by retention.bytes", 600, || {
            let bytes = log_bytes(&dir);
            (bytes >= 2048 && bytes < 2048 + 1024).then_some(())
        });
    }
    // Stored by the controller: a restarted controller still has them.
    cluster.kill_controller();
    cluster.restart_controller();
    cluster::wait_until("the restarted controller takes a change", 600, || {
        let ops = [("retention.ms", set, Some("60000"))];
        (alter_incrementally(cluster.address(3), "t", &ops, false).0 == 0).then_some(())
    });
    cluster::wait_until("the configs after the controller's restart", 600, || {
        let described = describe(cluster.address(1), "t");
        let kept = described["retention.bytes"] == ("2048".to_string(), DYNAMIC_TOPIC);
        (kept && described["retention.ms"] == ("60000".to_string(), DYNAMIC_TOPIC)).then_some(())
    });
}

#[test]
fn librdkafka_deletes_records_alters_configs_and_resets_its_consumer_to_the_log_start() {
    use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Message, Offset, TopicPartitionList};

    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), CONFIG);
    assert_eq!(
        create_with(broker.address, "t", 1, &[("segment.bytes", "1024")]),
        0
    );
    produce_at(&mut RawClient::connect(broker.address), "t", now_ms(), 50);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("admin client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("t", 0, Offset::Offset(20))
        .expect("offset");
    let deleted = runtime
        .block_on(admin.delete_records(&offsets, &options))
        .expect("DeleteRecords");
    let low = deleted.find_partition("t", 0).expect("t-0");
    assert_eq!((low.offset(), low.error()), (Offset::Offset(20), Ok(())));

    let change = AlterConfig::new(ResourceSpecifier::Topic("t")).set("retention.ms", "86400000");
    let altered = runtime
        .block_on(admin.alter_configs(&[change], &options))
        .expect("AlterConfigs");
    assert!(altered[0].is_ok(), "{altered:?}");
    let described = runtime
        .block_on(admin.describe_configs(&[ResourceSpecifier::Topic("t")], &options))
        .expect("DescribeConfigs");
    let resource = described
        .into_iter()
        .next()
        .expect("one")
        .expect("the topic's configs");
    let entry = resource.get("retention.ms").expect("retention.ms");
    assert_eq!(entry.value.as_deref(), Some("86400000"));
    assert_eq!(entry.source, rdkafka::admin::ConfigSource::DynamicTopic);

    // A consumer positioned below the log start: OFFSET_OUT_OF_RANGE, then auto.offset.reset.
    let first_read = |reset: &str| -> Option<i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .set("group.id", format!("g-{reset}"))
            .set("auto.offset.reset", reset)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset("t", 0, Offset::Offset(5))
            .expect("offset");
        consumer.assign(&assignment).expect("assign");
        for _ in 0..200 {
            match consumer.poll(Duration::from_millis(50)) {
                Some(Ok(message)) => return Some(message.offset()),
                Some(Err(_)) | None => {}
            }
        }
        None
    };
    assert_eq!(first_read("earliest"), Some(20));
    // `latest` skips to the end: what lay between was never read (the retention loss).
    let latest = std::thread::spawn({
        let address = broker.address;
        move || {
            std::thread::sleep(Duration::from_millis(2_000));
            produce_at(&mut RawClient::connect(address), "t", now_ms(), 1);
        }
    });
    assert_eq!(first_read("latest"), Some(50));
    latest.join().expect("producer thread");
}
