//! The broker's view of the cluster, as the controller last described it (brokers, and per
//! partition the leader, leader epoch, replicas and ISR), and the decisions drawn from it: which
//! replicas this broker must create, lead or follow. No I/O here: `server::cluster` polls the
//! controller and runs the followers.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;

use uuid::Uuid;

use crate::partition::Partition;

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
    /// The topic's own configs (the controller's; brokers pull them with DescribeConfigs).
    pub configs: crate::topic_config::TopicConfigs,
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
    /// The dynamic broker configs of the cluster-wide level (`""`) and of this broker (the
    /// controller's; brokers pull them with DescribeConfigs).
    pub broker_configs: crate::broker_config::AllBrokerConfigs,
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
    /// The way to the controller, set by `server::cluster` before the broker serves (the server
    /// layer holds the sockets; the APIs above this module reach the controller through it).
    pub controller_link: OnceLock<Box<dyn ControllerLink>>,
    /// The topic ids the images applied since this broker last registered had: a local topic
    /// the image lacks is deleted only when one of them (the controller deleted it), else it is
    /// a stray replica and is kept (`Broker::remove_strays`).
    imaged_topics: std::sync::Mutex<std::collections::BTreeSet<Uuid>>,
}

/// The topic a broker fetches from the controller to watch for metadata changes (KRaft's name
/// for its metadata log).
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// A CreateTopics answer on its way from the controller.
pub type CreateTopicsFuture = Pin<Box<dyn Future<Output = CreateTopicsResponse> + Send>>;

/// An answer on its way from the controller to a forwarded request, or why there is none.
pub type Forwarded<R> = Pin<Box<dyn Future<Output = Result<R, String>> + Send>>;

/// A WriteTxnMarkers answer on its way from a partition leader.
pub type MarkersFuture =
    Pin<Box<dyn Future<Output = Result<WriteTxnMarkersResponse, String>> + Send>>;

/// Requests a broker forwards to the controller (KRaft-style) or sends to its peers,
/// implemented by the server layer.
pub trait ControllerLink: Send + Sync + std::fmt::Debug {
    /// Forwards `request` to the controller; its answer, or every topic refused.
    fn create_topics(&self, request: CreateTopicsRequest) -> CreateTopicsFuture;
    /// Forwards AlterConfigs to the controller, which stores topics' configs in a cluster.
    fn alter_configs(
        &self,
        request: kafka_protocol::messages::AlterConfigsRequest,
    ) -> Forwarded<kafka_protocol::messages::AlterConfigsResponse>;
    /// Forwards IncrementalAlterConfigs to the controller.
    fn incremental_alter_configs(
        &self,
        request: kafka_protocol::messages::IncrementalAlterConfigsRequest,
    ) -> Forwarded<kafka_protocol::messages::IncrementalAlterConfigsResponse>;
    /// Forwards DeleteTopics (at `version`) to the controller.
    fn delete_topics(
        &self,
        request: kafka_protocol::messages::DeleteTopicsRequest,
        version: i16,
    ) -> Forwarded<kafka_protocol::messages::DeleteTopicsResponse>;
    /// Forwards CreatePartitions to the controller.
    fn create_partitions(
        &self,
        request: kafka_protocol::messages::CreatePartitionsRequest,
    ) -> Forwarded<kafka_protocol::messages::CreatePartitionsResponse>;
    /// Forwards CreateAcls to the controller, which stores ACL bindings in a cluster.
    fn create_acls(
        &self,
        request: kafka_protocol::messages::CreateAclsRequest,
    ) -> Forwarded<kafka_protocol::messages::CreateAclsResponse>;
    /// Forwards DescribeAcls to the controller.
    fn describe_acls(
        &self,
        request: kafka_protocol::messages::DescribeAclsRequest,
    ) -> Forwarded<kafka_protocol::messages::DescribeAclsResponse>;
    /// Forwards DeleteAcls to the controller.
    fn delete_acls(
        &self,
        request: kafka_protocol::messages::DeleteAclsRequest,
    ) -> Forwarded<kafka_protocol::messages::DeleteAclsResponse>;
    /// Forwards DescribeUserScramCredentials to the controller, which stores SCRAM credentials.
    fn describe_user_scram_credentials(
        &self,
        request: kafka_protocol::messages::DescribeUserScramCredentialsRequest,
    ) -> Forwarded<kafka_protocol::messages::DescribeUserScramCredentialsResponse>;
    /// Forwards AlterUserScramCredentials to the controller.
    fn alter_user_scram_credentials(
        &self,
        request: kafka_protocol::messages::AlterUserScramCredentialsRequest,
    ) -> Forwarded<kafka_protocol::messages::AlterUserScramCredentialsResponse>;
    /// Asks the controller, in the background, to create `topics` with this broker's defaults.
    fn auto_create(&self, topics: Vec<String>);
    /// Sends WriteTxnMarkers to broker `node_id` (a transaction coordinator to a partition
    /// leader).
    fn write_txn_markers(&self, node_id: i32, request: WriteTxnMarkersRequest) -> MarkersFuture;
}

/// Every topic of `request` refused with REQUEST_TIMED_OUT and `message` (the controller could not
/// be asked).
pub fn refused(request: &CreateTopicsRequest, message: &str) -> CreateTopicsResponse {
    CreateTopicsResponse::default().with_topics(
        request
            .topics
            .iter()
            .map(|t| {
                CreatableTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(ResponseError::RequestTimedOut.code())
                    .with_error_message(Some(StrBytes::from_string(message.to_string())))
            })
            .collect(),
    )
}

impl ClusterView {
    fn imaged_topics(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<Uuid>> {
        self.imaged_topics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes the topic ids of an image being applied.
    pub fn saw_topics(&self, ids: impl IntoIterator<Item = Uuid>) {
        self.imaged_topics().extend(ids);
    }

    /// Whether an image applied since the last registration had topic `id`.
    pub fn saw_topic(&self, id: Uuid) -> bool {
        self.imaged_topics().contains(&id)
    }

    /// A new registration: the controller may have lost its state, so what earlier images had
    /// no longer tells a deleted topic from one it forgot.
    pub fn forget_imaged_topics(&self) {
        self.imaged_topics().clear();
    }

    /// Forwards CreateTopics to the controller (refused if there is no way to it).
    pub fn forward_create_topics(&self, request: CreateTopicsRequest) -> CreateTopicsFuture {
        match self.controller_link.get() {
            Some(link) => link.create_topics(request),
            None => Box::pin(std::future::ready(refused(&request, "no controller"))),
        }
    }

    /// Sends WriteTxnMarkers to broker `node_id` (an error without a way to it).
    pub fn write_txn_markers(
        &self,
        node_id: i32,
        request: WriteTxnMarkersRequest,
    ) -> MarkersFuture {
        match self.controller_link.get() {
            Some(link) => link.write_txn_markers(node_id, request),
            None => Box::pin(std::future::ready(Err("no cluster link".to_string()))),
        }
    }

    /// Asks the controller to create `topics` in the background (nothing without a controller).
    pub fn auto_create(&self, topics: Vec<String>) {
        if let Some(link) = self.controller_link.get() {
            link.auto_create(topics);
        }
    }

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
