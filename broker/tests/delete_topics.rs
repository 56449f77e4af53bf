//! DeleteTopics on a single node (issue 17): the topic's data is removed and its id retired (a
//! new CreateTopics of the name starts empty under a new id); unknown names and ids, and the
//! internal offsets topic, get Kafka's error codes; a deletion a crash cut short (a `-delete` dir
//! left behind) is finished at the next start; librdkafka's admin client deletes too. In a
//! cluster, a DeleteTopics sent to any broker reaches the controller and every replica's data is
//! removed; the name can then be created again with a new id on every replica.

mod cluster;
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse};

/// DeleteTopics v`version` of `names` (v6: by name, or by id where the name is empty).
fn delete(
    address: SocketAddr,
    version: i16,
    names: &[&str],
    ids: &[uuid::Uuid],
) -> Vec<DeletableTopicResult> {
    let request = if version >= 6 {
        let by_name = names
            .iter()
            .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))));
        let by_id = ids
            .iter()
            .map(|id| DeleteTopicState::default().with_topic_id(*id));
        DeleteTopicsRequest::default().with_topics(by_name.chain(by_id).collect())
    } else {
        DeleteTopicsRequest::default()
            .with_topic_names(names.iter().map(|n| topic_name(n)).collect())
    }
    .with_timeout_ms(10_000);
    let response: DeleteTopicsResponse = call(address, ApiKey::DeleteTopics, version, &request);
    response.responses
}

/// The topic id Metadata v12 gives `name` (no auto-create), or its error code.
fn topic_id(address: SocketAddr, name: &str) -> Result<uuid::Uuid, i16> {
    let topic = topic_metadata(address, name);
    if topic.error_code != 0 {
        return Err(topic.error_code);
    }
    Ok(topic.topic_id)
}

#[test]
fn a_deleted_topic_loses_its_data_and_id_and_can_be_created_anew() {
    let config = "\"auto.create.topics.enable\" = false\n";
    let (_dir, broker, mut client) = start_broker_with_topic(config, "t", 2);
    let data_dir = broker.data_dir.clone();
    let address = broker.address;
    assert_eq!(
        produce_values(&mut client, "t", 0, &[b"a", b"b", b"c"]).0,
        0
    );
    let old_id = topic_id(address, "t").expect("t exists");
    assert!(data_dir.join("t-0").is_dir());

    let results = delete(address, 4, &["t", "nowhere"], &[]);
    assert_eq!(results[0].error_code, 0, "{results:?}");
    assert_eq!(
        results[1].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        topic_id(address, "t"),
        Err(ResponseError::UnknownTopicOrPartition.code())
    );
    let left: Vec<String> = std::fs::read_dir(&data_dir)
        .expect("data dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("t-"))
        .collect();
    assert!(left.is_empty(), "the topic's dirs are gone: {left:?}");
    let (code, _) = produce_values(&mut client, "t", 0, &[b"d"]);
    assert_eq!(code, ResponseError::UnknownTopicOrPartition.code());

    assert_eq!(create_topic(&mut client, "t", 1, 1, false), 0);
    let new_id = topic_id(address, "t").expect("t exists again");
    assert_ne!(new_id, old_id, "the old id is retired");
    assert_eq!(
        list_offset(&mut client, "t", 0, -1),
        (0, 0),
        "the new topic starts empty"
    );

    // v6 by id: the retired id is unknown, the current one deletes.
    let by_old = delete(address, 6, &[], &[old_id]);
    assert_eq!(by_old[0].error_code, ResponseError::UnknownTopicId.code());
    let by_new = delete(address, 6, &[], &[new_id]);
    assert_eq!(by_new[0].error_code, 0, "{by_new:?}");
    assert_eq!(
        topic_id(address, "t"),
        Err(ResponseError::UnknownTopicOrPartition.code())
    );
}

#[test]
fn the_offsets_topic_is_not_deleted_and_a_cut_deletion_finishes_at_start() {
    // The first FindCoordinator-like Metadata of the offsets topic is not needed: create it.
    let (_dir, broker, client) = start_broker_with_topic("", "kept", 1);
    let data_dir = broker.data_dir.clone();
    let address = broker.address;
    let internal = delete(address, 4, &["__consumer_offsets"], &[]);
    assert_eq!(internal[0].error_code, ResponseError::InvalidRequest.code());
    drop(client);
    assert_eq!(broker.terminate(), Some(0));

    // A partition dir renamed for deletion, as a crash right after the rename leaves it.
    let cut = data_dir.join("gone-0.0123456789abcdef0123456789abcdef-delete");
    std::fs::create_dir(&cut).expect("mkdir");
    std::fs::write(cut.join("00000000000000000000.log"), b"old data").expect("write");
    let broker = BrokerProcess::start(&data_dir, "");
    assert!(
        !cut.exists(),
        "the deleted partition's dir is removed at start"
    );
    let mut client = RawClient::connect(broker.address);
    assert_eq!(list_offset(&mut client, "kept", 0, -1), (0, 0));
}

#[test]
fn librdkafka_admin_deletes_a_topic() {
    use rdkafka::admin::AdminOptions;

    let (_dir, broker) = start_broker("");
    assert_eq!(
        create_topic(&mut RawClient::connect(broker.address), "t", 1, 1, false),
        0
    );
    let (admin, runtime) = admin_client(&broker.bootstrap());
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = runtime
        .block_on(admin.delete_topics(&["t", "nowhere"], &options))
        .expect("DeleteTopics");
    assert_eq!(results[0], Ok("t".to_string()));
    assert!(results[1].is_err(), "{results:?}");
    assert_eq!(
        topic_id(broker.address, "t"),
        Err(ResponseError::UnknownTopicOrPartition.code())
    );
}

/// The names of the dirs of `topic`'s partitions in `data_dir` (`topic-N`).
fn partition_dirs(data_dir: &std::path::Path, topic: &str) -> Vec<String> {
    let prefix = format!("{topic}-");
    let mut dirs: Vec<String> = std::fs::read_dir(data_dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

#[test]
fn in_a_cluster_a_deleted_topic_leaves_every_replica_and_comes_back_with_a_new_id() {
    let cluster = cluster::Cluster::start(3, "\"auto.create.topics.enable\" = false\n");
    let leader = cluster.create_in_sync_via(1, "t", 2, 3).leader;
    cluster.produce_ids(leader, "t", 0..3, 0);
    let old_id = topic_id(cluster.controller_address, "t").expect("t exists");
    for id in 1..=3 {
        let dirs = cluster::wait_until("both replicas on every broker", 600, || {
            let dirs = partition_dirs(&cluster.data_dir(id), "t");
            (dirs.len() == 2).then_some(dirs)
        });
        assert_eq!(dirs, ["t-0", "t-1"]);
    }

    // Through a broker that does not lead: forwarded to the controller.
    let via = if leader == 1 { 2 } else { 1 };
    let results = delete(cluster.address(via), 4, &["t", "nowhere"], &[]);
    assert_eq!(results[0].error_code, 0, "{results:?}");
    assert_eq!(
        results[1].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        topic_id(cluster.controller_address, "t"),
        Err(ResponseError::UnknownTopicOrPartition.code())
    );
    for id in 1..=3 {
        cluster::wait_until("the replicas' data removed", 600, || {
            partition_dirs(&cluster.data_dir(id), "t")
                .is_empty()
                .then_some(())
        });
        cluster::wait_until("the broker no longer serves t", 600, || {
            (topic_id(cluster.address(id), "t")
                == Err(ResponseError::UnknownTopicOrPartition.code()))
            .then_some(())
        });
    }

    // Created again: a new id, every replica empty.
    let leader = cluster.create_in_sync_via(3, "t", 1, 3).leader;
    let new_id = topic_id(cluster.controller_address, "t").expect("t exists again");
    assert_ne!(new_id, old_id, "the old id is retired");
    let mut client = RawClient::connect(cluster.address(leader));
    assert_eq!(
        list_offset(&mut client, "t", 0, -1),
        (0, 0),
        "the new topic starts empty"
    );
    cluster.produce_ids(leader, "t", 10..11, 0);
    for id in 1..=3 {
        cluster::wait_until("the new topic on every broker", 600, || {
            (topic_id(cluster.address(id), "t") == Ok(new_id)).then_some(())
        });
    }
    // v6 by id through a broker: the retired id is unknown, the current one deletes.
    let by_old = delete(cluster.address(via), 6, &[], &[old_id]);
    assert_eq!(
        by_old[0].error_code,
        ResponseError::UnknownTopicId.code(),
        "{by_old:?}"
    );
    let by_new = delete(cluster.address(via), 6, &[], &[new_id]);
    assert_eq!(by_new[0].error_code, 0, "{by_new:?}");
    for id in 1..=3 {
        cluster::wait_until("the new topic's data removed", 600, || {
            partition_dirs(&cluster.data_dir(id), "t")
                .is_empty()
                .then_some(())
        });
    }
}
