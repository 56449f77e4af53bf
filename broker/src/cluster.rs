//! The broker's view of the cluster, as the controller last described it (brokers, and per
//! partition the leader, leader epoch, replicas and ISR), and the decisions drawn from it: which
//! replicas this broker must create, lead or follow. No I/O here: `server::cluster` polls the
//! controller and runs the followers.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use uuid::Uuid;

use crate::partition::Partition;
use crate::state::Broker;

/// One partition as the controller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Replicas on brokers the controller considers dead.
    pub offline_replicas: Vec<i32>,
}

/// One topic as the controller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicView {
    pub id: Uuid,
    pub partitions: BTreeMap<i32, PartitionView>,
}

/// A live broker's advertised address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    pub host: String,
    pub port: i32,
}

/// The whole image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterImage {
    pub brokers: BTreeMap<i32, BrokerAddress>,
    pub topics: BTreeMap<String, TopicView>,
}

/// The image plus this broker's registration, shared by connections and cluster tasks.
#[derive(Debug, Default)]
pub struct ClusterView {
    image: RwLock<Arc<ClusterImage>>,
    broker_epoch: RwLock<i64>,
    /// Wakes the membership task to pull the image now (after a refusal that hints at news).
    pub refresh: tokio::sync::Notify,
    /// True once registered and the first image is applied (the broker then announces itself ready).
    pub ready: tokio::sync::watch::Sender<bool>,
    /// Set by a graceful shutdown: images are no longer applied (no role comes back).
    pub stopping: std::sync::atomic::AtomicBool,
}

impl ClusterView {
    pub fn image(&self) -> Arc<ClusterImage> {
        Arc::clone(&self.image.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn set_image(&self, image: ClusterImage) {
        *self.image.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(image);
    }

    pub fn broker_epoch(&self) -> i64 {
        *self.broker_epoch.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_broker_epoch(&self, epoch: i64) {
        *self.broker_epoch.write().unwrap_or_else(|p| p.into_inner()) = epoch;
    }

    pub fn broker_address(&self, id: i32) -> Option<BrokerAddress> {
        self.image().brokers.get(&id).cloned()
    }
}

/// What applying an image asks the cluster tasks to do for one local replica.
#[derive(Debug)]
pub enum RoleChange {
    /// Lead: stop any fetcher.
    Lead(Arc<Partition>),
    /// Follow `leader_id` in `leader_epoch`: (re)start the fetcher, which truncates first.
    Follow {
        partition: Arc<Partition>,
        leader_id: i32,
        leader_epoch: i32,
    },
    /// No leader (offline) or not a replica any more: stop fetching.
    Stop(Arc<Partition>),
}

/// Applies a new image to the local replicas: creates the ones assigned here, changes roles
/// whose leader or epoch moved. Returns the changes the fetchers must follow.
/// `requested_at`: when the image was asked for (an image older than the leader's last accepted
/// ISR change does not overwrite it).
pub fn apply_image(
    broker: &Broker,
    image: &ClusterImage,
    requested_at: std::time::Instant,
) -> Vec<RoleChange> {
    if broker
        .cluster
        .stopping
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        return Vec::new();
    }
    let node_id = broker.node_id();
    let mut changes = Vec::new();
    for (name, topic) in &image.topics {
        for (&index, view) in &topic.partitions {
            let local = if view.replicas.contains(&node_id) {
                match broker.ensure_replica(name, topic.id, index) {
                    Ok(partition) => Some(partition),
                    Err(e) => {
                        tracing::error!(topic = %name, partition = index, error = %e, "cannot create replica");
                        None
                    }
                }
            } else {
                broker.partition(name, index)
            };
            let Some(partition) = local else { continue };
            if partition.topic_id != topic.id {
                tracing::warn!(topic = %name, partition = index, "local replica has another topic id; ignoring it");
                continue;
            }
            let (_, _, local_epoch) = partition.leadership();
            if view.leader_epoch < local_epoch {
                // An older image than what we already acted on: ignore (leader epochs never go
                // back, see `invariant::Invariant::LeaderEpochNonDecreasing`).
                continue;
            }
            if !view.replicas.contains(&node_id) {
                if partition.become_follower(
                    -1,
                    view.leader_epoch,
                    view.replicas.clone(),
                    view.isr.clone(),
                ) {
                    changes.push(RoleChange::Stop(partition));
                }
                continue;
            }
            if view.leader_id == node_id {
                match partition.become_leader(
                    view.leader_epoch,
                    view.replicas.clone(),
                    view.isr.clone(),
                    requested_at,
                ) {
                    Ok(true) => changes.push(RoleChange::Lead(partition)),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(topic = %name, partition = index, error = %e, "cannot become leader")
                    }
                }
            } else if view.leader_id < 0 {
                if partition.become_follower(
                    -1,
                    view.leader_epoch,
                    view.replicas.clone(),
                    view.isr.clone(),
                ) {
                    changes.push(RoleChange::Stop(partition));
                }
            } else if partition.become_follower(
                view.leader_id,
                view.leader_epoch,
                view.replicas.clone(),
                view.isr.clone(),
            ) {
                changes.push(RoleChange::Follow {
                    partition,
                    leader_id: view.leader_id,
                    leader_epoch: view.leader_epoch,
                });
            }
        }
    }
    changes
}
