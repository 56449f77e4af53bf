//! The controller's state is the cluster's truth, so a change it cannot make durable is not made,
//! and a broker does not destroy data on the word of a controller that lost its state: a
//! CreateTopics whose state write fails is refused and leaves no topic (before or after a
//! controller restart); a broker restarted against a controller whose image lacks a topic keeps
//! that topic's data in a `-stray` dir (as Kafka 3.7+, KAFKA-14616) instead of deleting it, and
//! does not load it at its next start.

mod cluster;
mod common;

use common::*;
use kafka_protocol::error::ResponseError;

/// Directories in `data_dir` whose name starts with `prefix`.
fn dirs_starting(data_dir: &std::path::Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(data_dir)
        .map(|entries| {
            entries
                .filter_map(|e| Some(e.ok()?.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(prefix))
                })
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

#[test]
fn a_create_topics_the_controller_cannot_write_is_refused_and_leaves_no_topic() {
    let mut cluster = cluster::Cluster::start(1, "\"auto.create.topics.enable\" = false\n");
    // A directory where the state's tmp file goes: the write fails, even for root.
    let blocker = cluster
        .dir
        .path()
        .join("controller")
        .join("controller-state.json.tmp");
    std::fs::create_dir(&blocker).expect("block the state write");
    assert_eq!(
        cluster::create_topic(cluster.address(1), "t", 1, 1),
        ResponseError::UnknownServerError.code(),
        "a topic the controller could not store is refused"
    );
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    assert_eq!(
        topic_metadata(cluster.controller_address, "t").error_code,
        unknown
    );
    assert_eq!(topic_metadata(cluster.address(1), "t").error_code, unknown);
    assert!(
        cluster
            .controller
            .as_ref()
            .expect("controller")
            .log_contains("cannot write the controller state"),
        "the failed write is logged"
    );

    std::fs::remove_dir(&blocker).expect("unblock the state write");
    cluster.kill_controller();
    cluster.restart_controller();
    assert_eq!(
        topic_metadata(cluster.controller_address, "t").error_code,
        unknown,
        "a restarted controller has no trace of the refused topic"
    );
    cluster.wait_brokers_live(1);
    assert_eq!(cluster::create_topic(cluster.address(1), "t", 1, 1), 0);
    assert_eq!(
        topic_metadata(cluster.controller_address, "t").error_code,
        0
    );
}

#[test]
fn a_broker_keeps_a_topic_its_controller_forgot_as_a_stray_dir() {
    let mut cluster = cluster::Cluster::start(1, "\"auto.create.topics.enable\" = false\n");
    assert_eq!(cluster::create_topic(cluster.address(1), "t", 1, 1), 0);
    cluster.wait_partition("t-0 led", "t", 0, |l, _, _, _| l == 1);
    cluster.wait_topic_on(1, "t");
    cluster.produce_ids(1, "t", 0..3, 0);
    let data_dir = cluster.data_dir(1);

    // The controller loses its state while the broker is down.
    cluster.kill_broker(1);
    cluster.kill_controller();
    let state = cluster
        .dir
        .path()
        .join("controller")
        .join("controller-state.json");
    std::fs::remove_file(&state).expect("remove the controller state");
    cluster.restart_controller();
    cluster.start_broker(1);
    cluster.wait_brokers_live(1);

    let stray = cluster::wait_until("t-0 renamed to a -stray dir", 600, || {
        let found = dirs_starting(&data_dir, "t-0.");
        (found.len() == 1).then(|| found[0].clone())
    });
    let name = stray
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    assert!(name.ends_with("-stray"), "{name}");
    assert!(
        !data_dir.join("t-0").exists(),
        "t-0 is no longer a partition dir"
    );
    let held: u64 = segment_files(&stray)
        .iter()
        .map(|s| std::fs::metadata(s).map(|m| m.len()).unwrap_or(0))
        .sum();
    assert!(held > 0, "the acknowledged records are kept in {name}");
    assert_eq!(
        topic_metadata(cluster.address(1), "t").error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );

    // The next start leaves the stray dir alone, and says so.
    cluster.kill_broker(1);
    cluster.start_broker(1);
    cluster.wait_brokers_live(1);
    assert!(stray.is_dir(), "{name} is kept across restarts");
    assert!(
        cluster
            .broker(1)
            .log_contains("not loading a stray replica"),
        "the start names the stray dir"
    );
    assert_eq!(
        topic_metadata(cluster.address(1), "t").error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
}
