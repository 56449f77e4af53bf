//! DeleteTopics on a single node (issue 17): the topic's data is removed and its id retired (a
//! new CreateTopics of the name starts empty under a new id); unknown names and ids, and the
//! internal offsets topic, get Kafka's error codes; a deletion a crash cut short (a `-delete` dir
//! left behind) is finished at the next start; librdkafka's admin client deletes too.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse};

/// DeleteTopics v`version` of `names` (v6: by name, or by id where the name is empty).
fn delete(address: SocketAddr, version: i16, names: &[&str], ids: &[uuid::Uuid]) -> Vec<DeletableTopicResult> {
    let request = if version >= 6 {
        let by_name = names
            .iter()
            .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))));
        let by_id = ids.iter().map(|id| DeleteTopicState::default().with_topic_id(*id));
        DeleteTopicsRequest::default().with_topics(by_name.chain(by_id).collect())
    } else {
        DeleteTopicsRequest::default().with_topic_names(names.iter().map(|n| topic_name(n)).collect())
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
    let (_dir, broker) = start_broker("\"auto.create.topics.enable\" = false\n");
    let data_dir = broker.data_dir.clone();
    let address = broker.address;
    let mut client = RawClient::connect(address);
    assert_eq!(create_topic(&mut client, "t", 2, 1, false), 0);
    assert_eq!(produce_values(&mut client, "t", 0, &[b"a", b"b", b"c"]).0, 0);
    let old_id = topic_id(address, "t").expect("t exists");
    assert!(data_dir.join("t-0").is_dir());

    let results = delete(address, 4, &["t", "nowhere"], &[]);
    assert_eq!(results[0].error_code, 0, "{results:?}");
    assert_eq!(results[1].error_code, ResponseError::UnknownTopicOrPartition.code());
    assert_eq!(topic_id(address, "t"), Err(ResponseError::UnknownTopicOrPartition.code()));
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
    assert_eq!(list_offset(&mut client, "t", 0, -1), (0, 0), "the new topic starts empty");

    // v6 by id: the retired id is unknown, the current one deletes.
    let by_old = delete(address, 6, &[], &[old_id]);
    assert_eq!(by_old[0].error_code, ResponseError::UnknownTopicId.code());
    let by_new = delete(address, 6, &[], &[new_id]);
    assert_eq!(by_new[0].error_code, 0, "{by_new:?}");
    assert_eq!(topic_id(address, "t"), Err(ResponseError::UnknownTopicOrPartition.code()));
}

#[test]
fn the_offsets_topic_is_not_deleted_and_a_cut_deletion_finishes_at_start() {
    let (_dir, broker) = start_broker("");
    let data_dir = broker.data_dir.clone();
    let address = broker.address;
    // The first FindCoordinator-like Metadata of the offsets topic is not needed: create it.
    let mut client = RawClient::connect(address);
    assert_eq!(create_topic(&mut client, "kept", 1, 1, false), 0);
    let internal = delete(address, 4, &["__consumer_offsets"], &[]);
    assert_eq!(internal[0].error_code, ResponseError::InvalidRequest.code());
    drop(client);
    assert_eq!(broker.terminate(), Some(0));

    // A partition dir renamed for deletion, as a crash right after the rename leaves it.
    let cut = data_dir.join("gone-0.0123456789abcdef0123456789abcdef-delete");
    std::fs::create_dir(&cut).expect("mkdir");
    std::fs::write(cut.join("00000000000000000000.log"), b"old data").expect("write");
    let broker = BrokerProcess::start(&data_dir, "");
    assert!(!cut.exists(), "the deleted partition's dir is removed at start");
    let mut client = RawClient::connect(broker.address);
    assert_eq!(list_offset(&mut client, "kept", 0, -1), (0, 0));
}

#[test]
fn librdkafka_admin_deletes_a_topic() {
    use rdkafka::admin::AdminOptions;

    let (_dir, broker) = start_broker("");
    assert_eq!(create_topic(&mut RawClient::connect(broker.address), "t", 1, 1, false), 0);
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
