//! Test support for consumer groups: raw FindCoordinator / OffsetFetch, and group consumers as
//! separate processes (kcat -G, Python confluent-kafka) with their output in files, SIGKILLed by
//! PID on drop.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, FindCoordinatorResponse, OffsetFetchRequest,
    OffsetFetchResponse,
};
use kafka_protocol::protocol::StrBytes;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::common::{topic_name, RawClient};

/// FindCoordinator v2 (key type group): (error code, coordinator node id).
pub fn find_coordinator(address: SocketAddr, group: &str) -> (i16, i32) {
    let mut client = RawClient::connect(address);
    let request = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_string()))
        .with_key_type(0);
    let response: FindCoordinatorResponse = client.call(ApiKey::FindCoordinator, 2, &request);
    (response.error_code, response.node_id.0)
}

/// OffsetFetch v7 for `partitions` of `topic`: Ok(committed offset per partition, -1 = none)
/// or Err(group-level error code).
pub fn offset_fetch(
    address: SocketAddr,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Result<BTreeMap<i32, i64>, i16> {
    let mut client = RawClient::connect(address);
    let request = OffsetFetchRequest::default()
        .with_group_id(kafka_protocol::messages::GroupId(StrBytes::from_string(
            group.to_string(),
        )))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partition_indexes(partitions.to_vec())]));
    let response: OffsetFetchResponse = client.call(ApiKey::OffsetFetch, 7, &request);
    if response.error_code != 0 {
        return Err(response.error_code);
    }
    let mut out = BTreeMap::new();
    for t in &response.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                return Err(p.error_code);
            }
            out.insert(p.partition_index, p.committed_offset);
        }
    }
    Ok(out)
}

/// One consumer process whose stdout and stderr go to files.
pub struct ConsumerProcess {
    child: Child,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl ConsumerProcess {
    pub fn spawn(command: &mut Command, dir: &Path, name: &str) -> ConsumerProcess {
        let stdout_path = dir.join(format!("{name}.out"));
        let stderr_path = dir.join(format!("{name}.err"));
        let child = command
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e} (CI installs kcat and python3 confluent-kafka; this test is not skipped)"));
        ConsumerProcess {
            child,
            stdout_path,
            stderr_path,
        }
    }

    /// kcat -G: a balanced consumer (librdkafka subscribe), auto commit every 200 ms, printing
    /// `partition offset value` unbuffered.
    pub fn kcat(
        bootstrap: &str,
        group: &str,
        topic: &str,
        dir: &Path,
        name: &str,
    ) -> ConsumerProcess {
        Self::spawn(
            Command::new("kcat").args([
                "-b",
                bootstrap,
                "-G",
                group,
                "-u",
                "-f",
                "%p %o %s\\n",
                "-X",
                "session.timeout.ms=3000",
                "-X",
                "heartbeat.interval.ms=300",
                "-X",
                "auto.commit.interval.ms=200",
                "-X",
                "auto.offset.reset=earliest",
                "-X",
                &format!("client.id={name}"),
                topic,
            ]),
            dir,
            name,
        )
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// (partition, offset, value) of every complete output line.
    pub fn reads(&self) -> Vec<(i32, i64, String)> {
        let text = self.stdout();
        let complete = match text.rfind('\n') {
            Some(end) => &text[..end],
            None => "",
        };
        complete
            .lines()
            .filter_map(|line| {
                let mut parts = line.splitn(3, ' ');
                let partition = parts.next()?.parse().ok()?;
                let offset = parts.next()?.parse().ok()?;
                Some((partition, offset, parts.next().unwrap_or("").to_string()))
            })
            .collect()
    }

    /// kcat's latest assignment, from its "% Group … rebalanced …: assigned: t [0], t [1]" lines.
    pub fn kcat_assignment(&self) -> Option<BTreeSet<i32>> {
        let text = self.stderr();
        let line = text.lines().rev().find(|l| l.contains("rebalanced"))?;
        let Some(list) = line.split("assigned:").nth(1) else {
            return Some(BTreeSet::new());
        };
        Some(
            list.split(',')
                .filter_map(|entry| {
                    let inside = entry.split('[').nth(1)?.split(']').next()?;
                    inside.trim().parse().ok()
                })
                .collect(),
        )
    }

    pub fn sigkill(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }

    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for ConsumerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.sigkill();
        }
    }
}

/// OffsetCommit v8 of one offset outside any generation (a simple consumer's commit, generation
/// -1, no member): its error code.
pub fn simple_commit(
    address: SocketAddr,
    group: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> i16 {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
    let mut client = RawClient::connect(address);
    let request = OffsetCommitRequest::default()
        .with_group_id(kafka_protocol::messages::GroupId(StrBytes::from_string(
            group.to_string(),
        )))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)])]);
    let response: OffsetCommitResponse = client.call(ApiKey::OffsetCommit, 8, &request);
    response.topics[0].partitions[0].error_code
}
