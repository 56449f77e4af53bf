//! Test support for replication: a controller and brokers as real processes on 127.0.0.1 with
//! free ports (port 0 + the ready line), tempdirs, and a Drop guard that SIGKILLs every PID it
//! started. Every wait is bounded in attempts and time.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
use nix::sys::signal::Signal;

use crate::common::{Proc, RawClient};

/// A controller and brokers 1..=n.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    /// Per-broker config files (else `config_path`).
    pub broker_configs: BTreeMap<i32, PathBuf>,
    /// Logs of broker processes that were killed, for diagnostics.
    pub old_logs: BTreeMap<i32, Vec<String>>,
    pub controller: Option<Proc>,
    pub controller_address: SocketAddr,
    pub brokers: BTreeMap<i32, Option<Proc>>,
}

impl Cluster {
    /// Starts a controller and `count` brokers sharing `config_toml`; waits until all registered.
    pub fn start(count: i32, config_toml: &str) -> Cluster {
        Self::start_with(count, config_toml, &[])
    }

    /// Like [`Cluster::start`], with extra TOML lines for some brokers.
    pub fn start_with(count: i32, config_toml: &str, extra: &[(i32, &str)]) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("cluster.toml");
        std::fs::write(&config_path, config_toml).expect("write config");
        let mut broker_configs = BTreeMap::new();
        for (id, lines) in extra {
            let path = dir.path().join(format!("broker-{id}.toml"));
            std::fs::write(&path, format!("{config_toml}{lines}")).expect("write config");
            broker_configs.insert(*id, path);
        }
        let controller = Self::spawn_controller(dir.path(), &config_path, "127.0.0.1:0");
        let controller_address = controller.address;
        let mut cluster = Cluster {
            dir,
            config_path,
            broker_configs,
            old_logs: BTreeMap::new(),
            controller: Some(controller),
            controller_address,
            brokers: BTreeMap::new(),
        };
        for id in 1..=count {
            cluster.start_broker(id);
        }
        cluster.wait_brokers_live(count as usize);
        cluster
    }

    fn spawn_controller(dir: &Path, config: &Path, listen: &str) -> Proc {
        Proc::spawn(
            &[
                "controller".into(),
                "--listen".into(),
                listen.into(),
                "--data-dir".into(),
                dir.join("controller").display().to_string(),
                "--config".into(),
                config.display().to_string(),
            ],
            "kaos-controller ready",
        )
    }

    pub fn data_dir(&self, id: i32) -> PathBuf {
        self.dir.path().join(format!("broker-{id}"))
    }

    pub fn start_broker(&mut self, id: i32) {
        let proc = Proc::spawn(
            &[
                "--node-id".into(),
                id.to_string(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--data-dir".into(),
                self.data_dir(id).display().to_string(),
                "--controller".into(),
                self.controller_address.to_string(),
                "--config".into(),
                self.broker_configs
                    .get(&id)
                    .unwrap_or(&self.config_path)
                    .display()
                    .to_string(),
            ],
            "kaos-broker ready",
        );
        self.brokers.insert(id, Some(proc));
    }

    pub fn broker(&self, id: i32) -> &Proc {
        self.brokers
            .get(&id)
            .and_then(|b| b.as_ref())
            .unwrap_or_else(|| panic!("broker {id} is not running"))
    }

    pub fn address(&self, id: i32) -> SocketAddr {
        self.broker(id).address
    }

    pub fn bootstrap(&self) -> String {
        self.brokers
            .values()
            .flatten()
            .map(|b| b.address.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn kill_broker(&mut self, id: i32) {
        if let Some(proc) = self.brokers.get_mut(&id).and_then(|b| b.take()) {
            self.old_logs.entry(id).or_default().push(proc.log_text());
            proc.sigkill();
        }
    }

    /// SIGSTOP, returning once every thread of the broker is stopped.
    pub fn pause_broker(&self, id: i32) {
        self.broker(id).pause();
    }

    pub fn resume_broker(&self, id: i32) {
        self.broker(id).signal(Signal::SIGCONT);
    }

    pub fn kill_controller(&mut self) {
        if let Some(proc) = self.controller.take() {
            proc.sigkill();
        }
    }

    /// Restarts the controller on the same address and data dir.
    pub fn restart_controller(&mut self) {
        let listen = self.controller_address.to_string();
        let mut last = None;
        for _ in 0..50 {
            let attempt = std::panic::catch_unwind(|| {
                Self::spawn_controller(self.dir.path(), &self.config_path, &listen)
            });
            match attempt {
                Ok(proc) => {
                    self.controller = Some(proc);
                    return;
                }
                Err(e) => last = Some(e),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        std::panic::resume_unwind(last.expect("an attempt"));
    }

    /// Metadata v12 (all topics) from the controller.
    pub fn controller_metadata(&self) -> MetadataResponse {
        metadata(self.controller_address)
    }

    /// (leader, leader epoch, replicas, ISR) of a partition, as the controller sees it.
    pub fn partition_state(
        &self,
        topic: &str,
        partition: i32,
    ) -> Option<(i32, i32, Vec<i32>, Vec<i32>)> {
        let response = self.controller_metadata();
        let t = response
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))?;
        let p = t
            .partitions
            .iter()
            .find(|p| p.partition_index == partition)?;
        Some((
            p.leader_id.0,
            p.leader_epoch,
            p.replica_nodes.iter().map(|b| b.0).collect(),
            p.isr_nodes.iter().map(|b| b.0).collect(),
        ))
    }

    pub fn wait_brokers_live(&self, count: usize) {
        wait_until("all brokers registered", 600, || {
            (self.controller_metadata().brokers.len() >= count).then_some(())
        });
    }

    /// Waits until the controller's state of the partition satisfies `condition`.
    pub fn wait_partition(
        &self,
        what: &str,
        topic: &str,
        partition: i32,
        condition: impl Fn(i32, i32, &[i32], &[i32]) -> bool,
    ) -> (i32, i32, Vec<i32>, Vec<i32>) {
        wait_until(what, 1200, || {
            let (leader, epoch, replicas, isr) = self.partition_state(topic, partition)?;
            condition(leader, epoch, &replicas, &isr).then_some((leader, epoch, replicas, isr))
        })
    }

    /// Waits until `leader` itself applied an ISR of the partition that satisfies `condition`
    /// (its last "ISR changed" log line): the controller commits a change before the leader
    /// hears the answer, so the controller's ISR can run ahead of the one the leader acts on.
    pub fn wait_leader_isr(
        &self,
        what: &str,
        leader: i32,
        topic: &str,
        partition: i32,
        condition: impl Fn(&[i32]) -> bool,
    ) -> Vec<i32> {
        let place = format!("topic={topic} partition={partition} ");
        wait_until(what, 1200, || {
            let log = self.broker(leader).log_text();
            let line = log
                .lines()
                .filter(|l| l.contains("ISR changed") && l.contains(&place))
                .last()?;
            let to = line.split(" to=[").nth(1)?.split(']').next()?;
            let isr: Vec<i32> = to
                .split(',')
                .map(|n| n.trim().parse().expect("an ISR member in the log"))
                .collect();
            condition(&isr).then_some(isr)
        })
    }

    /// Creates `topic` with one partition on `replicas` brokers and waits until it has a leader
    /// with every replica in the ISR and the leader serves the topic.
    pub fn create_in_sync(&self, topic: &str, replicas: i16) -> InSync {
        self.create_in_sync_via(1, topic, 1, replicas)
    }

    /// Like [`Cluster::create_in_sync`], with `partitions` partitions, created through broker
    /// `via`; what it returns and waits for is partition 0's.
    pub fn create_in_sync_via(
        &self,
        via: i32,
        topic: &str,
        partitions: i32,
        replicas: i16,
    ) -> InSync {
        assert_eq!(
            create_topic(self.address(via), topic, partitions, replicas),
            0
        );
        let what = format!("leader, ISR of {replicas}");
        let (leader, epoch, replicas, _) = self.wait_partition(&what, topic, 0, |l, _, _, isr| {
            l >= 0 && isr.len() == replicas as usize
        });
        self.wait_topic_on(leader, topic);
        InSync {
            leader,
            epoch,
            replicas,
        }
    }

    /// Produces each of `ids` with acks=-1 to `broker`, partition 0, one at a time; each must
    /// land at the next offset from `first_offset`.
    pub fn produce_ids(
        &self,
        broker: i32,
        topic: &str,
        ids: std::ops::Range<u64>,
        first_offset: i64,
    ) {
        for (k, id) in ids.enumerate() {
            assert_eq!(
                produce_id(self.address(broker), topic, 0, id, -1, 10_000),
                (0, first_offset + k as i64),
                "message {id}"
            );
        }
    }

    /// Waits until broker `id` answers Metadata showing `topic` with the controller's current
    /// leader and epoch for every partition (so that it acts on them).
    pub fn wait_topic_on(&self, id: i32, topic: &str) {
        let address = self.address(id);
        let leaders = |response: &MetadataResponse| -> Option<Vec<(i32, i32, i32)>> {
            let t = response
                .topics
                .iter()
                .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))?;
            let mut found: Vec<(i32, i32, i32)> = t
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.leader_id.0, p.leader_epoch))
                .collect();
            found.sort_unstable();
            (t.error_code == 0 && !found.is_empty() && found.iter().all(|p| p.1 >= 0))
                .then_some(found)
        };
        wait_until("the broker knows the topic's current leaders", 600, || {
            let on_broker = leaders(&metadata(address))?;
            let on_controller = leaders(&self.controller_metadata())?;
            (on_broker == on_controller).then_some(())
        });
    }
}

/// Metadata v12 for all topics from `address`.
pub fn metadata(address: SocketAddr) -> MetadataResponse {
    let request = MetadataRequest::default().with_topics(None);
    crate::common::call(address, ApiKey::Metadata, 12, &request)
}

/// Calls `condition` every 50 ms until it returns Some, at most `attempts` times.
pub fn wait_until<T>(what: &str, attempts: usize, mut condition: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    for _ in 0..attempts {
        if let Some(value) = condition() {
            return value;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "timed out after {:?} waiting for: {what}",
        started.elapsed()
    );
}

/// A partition [`Cluster::create_in_sync`] made: its leader, leader epoch and replicas.
pub struct InSync {
    pub leader: i32,
    pub epoch: i32,
    pub replicas: Vec<i32>,
}

impl InSync {
    /// A replica that is not the leader.
    pub fn follower(&self) -> i32 {
        *self
            .replicas
            .iter()
            .find(|&&r| r != self.leader)
            .expect("a follower")
    }
}

/// A record value carrying a kaos message id.
pub fn value(id: u64) -> Vec<u8> {
    format!("kaos:{id}:payload").into_bytes()
}

/// Produce one record with a message id: (error code, base offset).
pub fn produce_id(
    address: SocketAddr,
    topic: &str,
    partition: i32,
    id: u64,
    acks: i16,
    timeout_ms: i32,
) -> (i16, i64) {
    let batch = broker::wire::batch::build_batch(0, 1_700_000_000_000, &[&value(id)]);
    crate::common::produce_on_new_connection(
        address,
        topic,
        partition,
        batch,
        acks,
        (
            timeout_ms,
            Duration::from_millis(timeout_ms as u64 + 30_000),
        ),
    )
}

/// Every message id readable from the leader at `address` (up to its HW), in offset order;
/// `None` while the broker answers with an error (not the leader yet, …).
pub fn try_read_ids(
    address: SocketAddr,
    topic: &str,
    partition: i32,
) -> Option<Vec<(i64, Option<u64>)>> {
    let mut client = RawClient::connect(address);
    let mut records = Vec::new();
    let mut offset = 0;
    for _ in 0..100_000 {
        let (error_code, high_watermark, mut data) =
            crate::common::fetch_once(&mut client, topic, partition, offset, 0);
        if error_code != 0 {
            return None;
        }
        if offset >= high_watermark {
            return Some(records);
        }
        let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut data).ok()?;
        for set in sets {
            for record in set.records {
                if record.offset >= offset {
                    let value = record.value.map(|v| v.to_vec()).unwrap_or_default();
                    records.push((record.offset, broker::dump::message_id(&value)));
                    offset = record.offset + 1;
                }
            }
        }
    }
    None
}

/// Like [`try_read_ids`], waiting (bounded) until the broker serves the partition.
pub fn read_ids(address: SocketAddr, topic: &str, partition: i32) -> Vec<(i64, Option<u64>)> {
    wait_until("the leader serves reads", 600, || {
        try_read_ids(address, topic, partition)
    })
}

/// What the leader at `address` serves of `topic`/`partition` ([`try_read_ids`]) once its HW
/// has passed `last_offset` (-1: at once; a bounded wait).
pub fn read_ids_past(
    address: SocketAddr,
    topic: &str,
    partition: i32,
    last_offset: i64,
) -> Vec<(i64, Option<u64>)> {
    wait_until("the leader's HW covers every ack", 1200, || {
        let ids = try_read_ids(address, topic, partition)?;
        (ids.last().map_or(-1, |(o, _)| *o) >= last_offset).then_some(ids)
    })
}

/// Every acknowledged message (`acked`: offset → id) is what the leader at `address` serves at
/// its offset.
pub fn assert_serves_acked(
    address: SocketAddr,
    topic: &str,
    partition: i32,
    acked: &BTreeMap<i64, u64>,
) {
    let last = *acked.keys().last().expect("acks");
    let served: BTreeMap<i64, Option<u64>> = read_ids_past(address, topic, partition, last)
        .into_iter()
        .collect();
    for (offset, id) in acked {
        assert_eq!(
            served.get(offset),
            Some(&Some(*id)),
            "partition {partition}: acknowledged id {id} at offset {offset}"
        );
    }
}

/// Offset → (leader epoch, message id, crc_ok) of one partition replica.
pub type ReplicaRecords = BTreeMap<i64, (i64, Option<u64>, bool)>;

/// One replica's records and summary from `kaos-broker dump`.
#[derive(Debug, Default)]
pub struct Dump {
    /// (topic, partition) → offset → (leader epoch, id, crc_ok)
    pub records: BTreeMap<(String, i32), ReplicaRecords>,
    pub summaries: BTreeMap<(String, i32), serde_json::Value>,
    pub stderr: String,
}

pub fn dump(data_dir: &Path) -> Dump {
    let output = Command::new(env!("CARGO_BIN_EXE_kaos-broker"))
        .args(["dump", "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("run dump");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "dump failed: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let mut result = Dump {
        stderr,
        ..Dump::default()
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        let key = (
            v["topic"].as_str().expect("topic").to_string(),
            v["partition"].as_i64().expect("partition") as i32,
        );
        if v["summary"].as_bool() == Some(true) {
            result.summaries.insert(key, v);
        } else {
            result.records.entry(key).or_default().insert(
                v["offset"].as_i64().expect("offset"),
                (
                    v["leader_epoch"].as_i64().expect("epoch"),
                    v["id"].as_u64(),
                    v["crc_ok"].as_bool().expect("crc_ok"),
                ),
            );
        }
    }
    result
}

/// Creates a topic through broker `via` (forwarded to the controller): its error code.
pub fn create_topic(
    address: SocketAddr,
    name: &str,
    partitions: i32,
    replication_factor: i16,
) -> i16 {
    let mut client = RawClient::connect(address);
    crate::common::create_topic(&mut client, name, partitions, replication_factor, false)
}
