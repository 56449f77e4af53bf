//! A broker's cluster tasks (only with `--controller`): register with the controller, heartbeat,
//! pull the metadata image and apply it (creating replicas, changing roles, starting and stopping
//! followers); the ISR check on leaders (AlterPartition); forwarding CreateTopics.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_request::{PartitionData, TopicData};
use kafka_protocol::messages::broker_registration_request::Listener;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    AlterPartitionRequest, AlterPartitionResponse, ApiKey, BrokerHeartbeatRequest,
    BrokerHeartbeatResponse, BrokerId, BrokerRegistrationRequest, BrokerRegistrationResponse,
    CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse, MetadataRequest,
    MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::cluster::METADATA_TOPIC;
use crate::cluster::{
    self, refused, BrokerAddress, ClusterImage, PartitionView, RoleChange, TopicView,
};
use crate::limits;
use crate::partition::Role;
use crate::server::client::{PeerConnection, PeerError};
use crate::server::fetcher;
use crate::state::Broker;

const METADATA_VERSION: i16 = 12;
const REGISTRATION_VERSION: i16 = 0;
const HEARTBEAT_VERSION: i16 = 0;
const ALTER_PARTITION_VERSION: i16 = 2;
const CREATE_TOPICS_VERSION: i16 = 7;
const METADATA_WATCH_VERSION: i16 = 12;

fn backoff() -> Duration {
    Duration::from_millis(limits::RETRY_BACKOFF_MS)
}

/// The broker's link to the controller for the APIs: forwards through this module.
#[derive(Debug)]
struct Link(std::sync::Weak<Broker>);

impl cluster::ControllerLink for Link {
    fn create_topics(&self, request: CreateTopicsRequest) -> cluster::CreateTopicsFuture {
        match self.0.upgrade() {
            Some(broker) => Box::pin(forward_create_topics(&broker, request)),
            None => Box::pin(std::future::ready(refused(&request, "broker stopped"))),
        }
    }

    fn alter_configs(
        &self,
        request: kafka_protocol::messages::AlterConfigsRequest,
    ) -> cluster::Forwarded<kafka_protocol::messages::AlterConfigsResponse> {
        forward_to_controller(&self.0, ApiKey::AlterConfigs, 1, request)
    }

    fn incremental_alter_configs(
        &self,
        request: kafka_protocol::messages::IncrementalAlterConfigsRequest,
    ) -> cluster::Forwarded<kafka_protocol::messages::IncrementalAlterConfigsResponse> {
        forward_to_controller(&self.0, ApiKey::IncrementalAlterConfigs, 1, request)
    }

    fn delete_topics(
        &self,
        request: kafka_protocol::messages::DeleteTopicsRequest,
        version: i16,
    ) -> cluster::Forwarded<kafka_protocol::messages::DeleteTopicsResponse> {
        forward_to_controller(&self.0, ApiKey::DeleteTopics, version, request)
    }

    fn create_partitions(
        &self,
        request: kafka_protocol::messages::CreatePartitionsRequest,
    ) -> cluster::Forwarded<kafka_protocol::messages::CreatePartitionsResponse> {
        forward_to_controller(&self.0, ApiKey::CreatePartitions, 3, request)
    }

    fn create_acls(
        &self,
        request: kafka_protocol::messages::CreateAclsRequest,
    ) -> cluster::Forwarded<kafka_protocol::messages::CreateAclsResponse> {
        forward_to_controller(&self.0, ApiKey::CreateAcls, 3, request)
    }

    fn describe_acls(
        &self,
        request: kafka_protocol::messages::DescribeAclsRequest,
    ) -> cluster::Forwarded<kafka_protocol::messages::DescribeAclsResponse> {
        forward_to_controller(&self.0, ApiKey::DescribeAcls, 3, request)
    }

    fn delete_acls(
        &self,
        request: kafka_protocol::messages::DeleteAclsRequest,
    ) -> cluster::Forwarded<kafka_protocol::messages::DeleteAclsResponse> {
        forward_to_controller(&self.0, ApiKey::DeleteAcls, 3, request)
    }

    fn describe_user_scram_credentials(
        &self,
        request: kafka_protocol::messages::DescribeUserScramCredentialsRequest,
    ) -> cluster::Forwarded<kafka_protocol::messages::DescribeUserScramCredentialsResponse> {
        forward_to_controller(&self.0, ApiKey::DescribeUserScramCredentials, 0, request)
    }

    fn alter_user_scram_credentials(
        &self,
        request: kafka_protocol::messages::AlterUserScramCredentialsRequest,
    ) -> cluster::Forwarded<kafka_protocol::messages::AlterUserScramCredentialsResponse> {
        forward_to_controller(&self.0, ApiKey::AlterUserScramCredentials, 0, request)
    }

    fn auto_create(&self, topics: Vec<String>) {
        if let Some(broker) = self.0.upgrade() {
            spawn_auto_create(&broker, topics);
        }
    }

    fn write_txn_markers(
        &self,
        node_id: i32,
        request: kafka_protocol::messages::WriteTxnMarkersRequest,
    ) -> cluster::MarkersFuture {
        let address = self
            .0
            .upgrade()
            .and_then(|broker| broker.cluster.broker_address(node_id));
        Box::pin(async move {
            let address = address.ok_or_else(|| format!("broker {node_id} is not known"))?;
            let address = format!("{}:{}", address.host, address.port);
            let mut conn = PeerConnection::connect(&address, "kaos-txn-coordinator")
                .await
                .map_err(|e| e.to_string())?;
            conn.request(
                kafka_protocol::messages::ApiKey::WriteTxnMarkers,
                1,
                &request,
                Duration::from_millis(limits::TXN_APPEND_TIMEOUT_MS),
            )
            .await
            .map_err(|e| e.to_string())
        })
    }
}

/// Sends `request` to the controller on a connection of its own and returns its answer; the
/// membership loop then pulls the image at once (the change is in it).
fn forward_to_controller<Req, Resp>(
    broker: &std::sync::Weak<Broker>,
    api: ApiKey,
    version: i16,
    request: Req,
) -> cluster::Forwarded<Resp>
where
    Req: kafka_protocol::protocol::Encodable + Send + Sync + 'static,
    Resp: kafka_protocol::protocol::Decodable + Send + 'static,
{
    let broker = broker.upgrade();
    Box::pin(async move {
        let broker = broker.ok_or_else(|| "broker stopped".to_string())?;
        let controller = broker
            .config
            .controller
            .ok_or_else(|| "no controller".to_string())?;
        let result = async {
            let mut conn =
                PeerConnection::connect(&controller.to_string(), "kaos-broker-forward").await?;
            conn.request::<_, Resp>(api, version, &request, Duration::ZERO)
                .await
        }
        .await;
        broker.cluster.refresh.notify_one();
        result.map_err(|e| {
            tracing::warn!(?api, error = %e, "forwarding to the controller failed");
            e.to_string()
        })
    })
}

/// Gives the broker's APIs their way to the controller (before the broker serves).
pub fn link(broker: &Arc<Broker>) {
    let link: Box<dyn cluster::ControllerLink> = Box::new(Link(Arc::downgrade(broker)));
    if broker.cluster.controller_link.set(link).is_err() {
        tracing::warn!("the controller link was already set");
    }
}

/// Starts the membership task, the metadata watch and the ISR check.
pub fn spawn(broker: &Arc<Broker>, controller: SocketAddr) {
    let membership = Arc::clone(broker);
    tokio::spawn(async move { membership_loop(membership, controller).await });
    let watch = Arc::clone(broker);
    tokio::spawn(async move { metadata_watch_loop(watch, controller).await });
    let isr = Arc::clone(broker);
    tokio::spawn(async move { isr_loop(isr, controller).await });
}

/// Register, then heartbeat and pull metadata every heartbeat interval (or sooner when asked).
async fn membership_loop(broker: Arc<Broker>, controller: SocketAddr) {
    let incarnation_id = Uuid::new_v4();
    let interval = Duration::from_millis(broker.config.replication.broker_heartbeat_interval_ms);
    let mut fetchers: BTreeMap<(String, i32), JoinHandle<()>> = BTreeMap::new();
    let mut connection: Option<PeerConnection> = None;
    let mut registered = false;
    loop {
        let mut conn = match connection.take() {
            Some(conn) => conn,
            None => match PeerConnection::connect(&controller.to_string(), "kaos-broker").await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "controller unreachable");
                    tokio::time::sleep(backoff()).await;
                    continue;
                }
            },
        };
        let step = async {
            if !registered {
                register(&broker, &mut conn, incarnation_id).await?;
                registered = true;
            } else if !heartbeat(&broker, &mut conn).await? {
                registered = false;
                return Ok::<bool, PeerError>(false);
            }
            let requested_at = std::time::Instant::now();
            let mut image = pull_image(&mut conn).await?;
            pull_configs(&mut conn, &mut image, broker.node_id()).await?;
            // Topics the image lacks: their fetchers end before their logs close and their dirs
            // are renamed (no follower append lands in a dir that is going away).
            let strays = broker.strays(&image);
            stop_fetchers(&mut fetchers, &strays).await;
            broker.remove_strays(&strays);
            // Roles first, then the image clients see: a broker named leader in our Metadata
            // answers already leads. Fetchers find the leader's address in the new image.
            let changes = broker.apply_image(&image, requested_at);
            broker.cluster.set_image(image);
            for change in changes {
                apply_change(&broker, &mut fetchers, change);
            }
            broker
                .cluster
                .ready
                .send_if_modified(|ready| !std::mem::replace(ready, true));
            Ok(true)
        };
        match step.await {
            Ok(true) => {
                connection = Some(conn);
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = broker.cluster.refresh.notified() => {}
                }
            }
            Ok(false) => connection = Some(conn),
            Err(e) => {
                tracing::warn!(error = %e, "controller request failed");
                tokio::time::sleep(backoff()).await;
            }
        }
    }
}

/// Watches the controller's metadata version (a long-polling Fetch of `__cluster_metadata`, see
/// `api::controller::metadata_watch`) and wakes the membership loop to pull the image as soon as
/// it changes: an election reaches the brokers within a round trip, as KRaft's metadata log
/// fetch does, instead of at the next heartbeat.
async fn metadata_watch_loop(broker: Arc<Broker>, controller: SocketAddr) {
    let wait_ms = limits::METADATA_WATCH_WAIT_MS;
    let mut seen: i64 = -1;
    let mut connection: Option<PeerConnection> = None;
    loop {
        let mut conn = match connection.take() {
            Some(conn) => conn,
            None => match PeerConnection::connect(&controller.to_string(), "kaos-broker").await {
                Ok(conn) => conn,
                Err(_) => {
                    // The membership loop reports an unreachable controller.
                    tokio::time::sleep(backoff()).await;
                    continue;
                }
            },
        };
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(broker.node_id()))
            .with_max_wait_ms(i32::try_from(wait_ms).unwrap_or(i32::MAX))
            .with_min_bytes(1)
            .with_max_bytes(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(seen)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(0)])]);
        let answer: Result<FetchResponse, PeerError> = conn
            .request(
                ApiKey::Fetch,
                METADATA_WATCH_VERSION,
                &request,
                Duration::from_millis(wait_ms),
            )
            .await;
        let version = answer.ok().and_then(|response| {
            let data = response.responses.first()?.partitions.first()?;
            (data.error_code == 0).then_some(data.high_watermark)
        });
        match version {
            Some(version) => {
                if version != seen {
                    seen = version;
                    broker.cluster.refresh.notify_one();
                }
                connection = Some(conn);
            }
            None => {
                tracing::debug!("metadata watch failed; reconnecting");
                tokio::time::sleep(backoff()).await;
            }
        }
    }
}

/// Ends the fetchers of `topics`' partitions and waits until each has ended.
async fn stop_fetchers(
    fetchers: &mut BTreeMap<(String, i32), JoinHandle<()>>,
    topics: &[Arc<crate::state::Topic>],
) {
    for topic in topics {
        for &index in topic.partitions.keys() {
            if let Some(fetcher) = fetchers.remove(&(topic.name.clone(), index)) {
                fetcher.abort();
                // Cancelled at its next await: whatever append it was in has finished.
                let _ = fetcher.await;
            }
        }
    }
}

fn apply_change(
    broker: &Arc<Broker>,
    fetchers: &mut BTreeMap<(String, i32), JoinHandle<()>>,
    change: RoleChange,
) {
    let (partition, follow) = match change {
        RoleChange::Lead(partition) | RoleChange::Stop(partition) => (partition, None),
        RoleChange::Follow {
            partition,
            leader_id,
            leader_epoch,
        } => (partition, Some((leader_id, leader_epoch))),
    };
    let key = (partition.topic.clone(), partition.index);
    if let Some(old) = fetchers.remove(&key) {
        old.abort();
    }
    if let Some((leader_id, leader_epoch)) = follow {
        let broker = Arc::clone(broker);
        let handle = tokio::spawn(async move {
            fetcher::run(broker, partition, leader_id, leader_epoch).await;
        });
        fetchers.insert(key, handle);
    }
}

async fn register(
    broker: &Broker,
    conn: &mut PeerConnection,
    incarnation_id: Uuid,
) -> Result<(), PeerError> {
    let port = u16::try_from(broker.advertised_port).unwrap_or(0);
    let request = BrokerRegistrationRequest::default()
        .with_broker_id(BrokerId(broker.node_id()))
        .with_cluster_id(StrBytes::from_string(broker.cluster_id.clone()))
        .with_incarnation_id(incarnation_id)
        .with_listeners(vec![Listener::default()
            .with_name(StrBytes::from_static_str("PLAINTEXT"))
            .with_host(StrBytes::from_string(broker.advertised_host.clone()))
            .with_port(port)]);
    let response: BrokerRegistrationResponse = conn
        .request(
            ApiKey::BrokerRegistration,
            REGISTRATION_VERSION,
            &request,
            Duration::ZERO,
        )
        .await?;
    if response.error_code != 0 {
        return Err(PeerError::Protocol {
            address: conn.address().to_string(),
            api: ApiKey::BrokerRegistration,
            message: format!("registration refused with error {}", response.error_code),
        });
    }
    broker.cluster.set_broker_epoch(response.broker_epoch);
    broker.cluster.forget_imaged_topics();
    tracing::info!(
        broker_epoch = response.broker_epoch,
        "registered with the controller"
    );
    Ok(())
}

/// Returns false when the controller no longer knows this registration (re-register).
async fn heartbeat(broker: &Broker, conn: &mut PeerConnection) -> Result<bool, PeerError> {
    let request = BrokerHeartbeatRequest::default()
        .with_broker_id(BrokerId(broker.node_id()))
        .with_broker_epoch(broker.cluster.broker_epoch());
    let response: BrokerHeartbeatResponse = conn
        .request(
            ApiKey::BrokerHeartbeat,
            HEARTBEAT_VERSION,
            &request,
            Duration::ZERO,
        )
        .await?;
    if response.error_code == ResponseError::StaleBrokerEpoch.code()
        || response.error_code == ResponseError::BrokerIdNotRegistered.code()
    {
        tracing::warn!(
            error_code = response.error_code,
            "heartbeat refused: registering again"
        );
        return Ok(false);
    }
    Ok(true)
}

async fn pull_image(conn: &mut PeerConnection) -> Result<ClusterImage, PeerError> {
    let request = MetadataRequest::default().with_topics(None);
    let response: MetadataResponse = conn
        .request(ApiKey::Metadata, METADATA_VERSION, &request, Duration::ZERO)
        .await?;
    Ok(image_of(&response))
}

/// Fills the image's topics with their configs and the image's dynamic broker configs (the
/// cluster-wide level and `node_id`'s), from the controller's DescribeConfigs.
async fn pull_configs(
    conn: &mut PeerConnection,
    image: &mut ClusterImage,
    node_id: i32,
) -> Result<(), PeerError> {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
    let resource = |resource_type: i8, name: String| {
        DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name))
            .with_configuration_keys(None)
    };
    let resources = image
        .topics
        .keys()
        .map(|name| resource(2, name.clone()))
        .chain([resource(4, String::new()), resource(4, node_id.to_string())])
        .collect();
    let request = DescribeConfigsRequest::default().with_resources(resources);
    let response: DescribeConfigsResponse = conn
        .request(ApiKey::DescribeConfigs, 4, &request, Duration::ZERO)
        .await?;
    for result in response.results.iter().filter(|r| r.error_code == 0) {
        let configs: BTreeMap<String, String> = result
            .configs
            .iter()
            .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
            .collect();
        let name = result.resource_name.as_str();
        if result.resource_type == 4 {
            if !configs.is_empty() {
                image.broker_configs.insert(name.to_string(), configs);
            }
        } else if let Some(topic) = image.topics.get_mut(name) {
            topic.configs = configs;
        }
    }
    Ok(())
}

/// The image a controller's Metadata response describes.
pub fn image_of(response: &MetadataResponse) -> ClusterImage {
    let brokers = response
        .brokers
        .iter()
        .map(|b| {
            (
                b.node_id.0,
                BrokerAddress {
                    host: b.host.as_str().to_string(),
                    port: b.port,
                },
            )
        })
        .collect();
    let topics = response
        .topics
        .iter()
        .filter_map(|t| {
            let name = t.name.as_ref()?.as_str().to_string();
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.partition_index,
                        PartitionView {
                            leader_id: p.leader_id.0,
                            leader_epoch: p.leader_epoch,
                            replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                            isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                            offline_replicas: p.offline_replicas.iter().map(|b| b.0).collect(),
                        },
                    )
                })
                .collect();
            Some((
                name,
                TopicView {
                    id: t.topic_id,
                    partitions,
                    configs: Default::default(),
                },
            ))
        })
        .collect();
    ClusterImage {
        brokers,
        topics,
        broker_configs: Default::default(),
    }
}

/// Leaders: every period, shrink laggards out of the ISR and let caught-up replicas in, through
/// the controller (AlterPartition); applied only once the controller accepts.
async fn isr_loop(broker: Arc<Broker>, controller: SocketAddr) {
    let lag = Duration::from_millis(broker.config.replication.replica_lag_time_max_ms);
    let period = Duration::from_millis(
        (broker.config.replication.replica_lag_time_max_ms / 4)
            .clamp(10, limits::ISR_CHECK_PERIOD_MS_MAX),
    );
    let mut connection: Option<PeerConnection> = None;
    loop {
        tokio::time::sleep(period).await;
        for partition in broker.partitions() {
            if partition.role() != Role::Leader {
                continue;
            }
            let Some((leader_epoch, new_isr)) = partition.wanted_isr(lag) else {
                continue;
            };
            let request = AlterPartitionRequest::default()
                .with_broker_id(BrokerId(broker.node_id()))
                .with_broker_epoch(broker.cluster.broker_epoch())
                .with_topics(vec![TopicData::default()
                    .with_topic_id(partition.topic_id)
                    .with_partitions(vec![PartitionData::default()
                        .with_partition_index(partition.index)
                        .with_leader_epoch(leader_epoch)
                        .with_new_isr(new_isr.iter().copied().map(BrokerId).collect())])]);
            let mut conn = match connection.take() {
                Some(conn) => conn,
                None => match PeerConnection::connect(&controller.to_string(), "kaos-broker-isr")
                    .await
                {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "controller unreachable for AlterPartition");
                        partition.isr_change_done(leader_epoch, None);
                        continue;
                    }
                },
            };
            let answer: Result<AlterPartitionResponse, PeerError> = conn
                .request(
                    ApiKey::AlterPartition,
                    ALTER_PARTITION_VERSION,
                    &request,
                    Duration::ZERO,
                )
                .await;
            match answer {
                Ok(response) => {
                    connection = Some(conn);
                    let result = response
                        .topics
                        .first()
                        .and_then(|t| t.partitions.first())
                        .map(|p| {
                            (
                                p.error_code,
                                p.isr.iter().map(|b| b.0).collect::<Vec<i32>>(),
                            )
                        });
                    match result {
                        Some((0, isr)) => partition.isr_change_done(leader_epoch, Some(isr)),
                        Some((code, _)) => {
                            tracing::warn!(topic = %partition.topic, partition = partition.index, error_code = code, wanted = ?new_isr, "AlterPartition refused");
                            partition.isr_change_done(leader_epoch, None);
                            broker.cluster.refresh.notify_one();
                        }
                        None => partition.isr_change_done(leader_epoch, None),
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "AlterPartition failed");
                    partition.isr_change_done(leader_epoch, None);
                }
            }
        }
    }
}

/// Graceful shutdown in a cluster: tell the controller (heartbeat with `want_shut_down`, KRaft's
/// controlled shutdown) so that it moves leadership away now rather than after the session
/// timeout; then stop leading locally. Best effort, bounded in time.
pub async fn controlled_shutdown(broker: &Broker) {
    let Some(controller) = broker.config.controller else {
        return;
    };
    broker
        .cluster
        .stopping
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let asking = async {
        let mut conn =
            PeerConnection::connect(&controller.to_string(), "kaos-broker-shutdown").await?;
        let request = BrokerHeartbeatRequest::default()
            .with_broker_id(BrokerId(broker.node_id()))
            .with_broker_epoch(broker.cluster.broker_epoch())
            .with_want_shut_down(true);
        conn.request::<_, BrokerHeartbeatResponse>(
            ApiKey::BrokerHeartbeat,
            HEARTBEAT_VERSION,
            &request,
            Duration::ZERO,
        )
        .await
    };
    match tokio::time::timeout(
        Duration::from_millis(limits::CONTROLLED_SHUTDOWN_MS),
        asking,
    )
    .await
    {
        Ok(Ok(response)) if response.error_code == 0 => {
            tracing::info!("controlled shutdown acknowledged by the controller")
        }
        Ok(Ok(response)) => tracing::warn!(
            error_code = response.error_code,
            "controlled shutdown refused"
        ),
        Ok(Err(e)) => tracing::warn!(error = %e, "controlled shutdown failed"),
        Err(_) => tracing::warn!("controlled shutdown timed out"),
    }
    for partition in broker.partitions() {
        let (_, _, epoch) = partition.leadership();
        partition.become_follower(-1, epoch, partition.replicas(), partition.isr());
    }
}

/// Forwards a CreateTopics request to the controller (KRaft-style forwarding).
fn forward_create_topics(
    broker: &Arc<Broker>,
    request: CreateTopicsRequest,
) -> impl std::future::Future<Output = CreateTopicsResponse> + Send + 'static {
    let broker = Arc::clone(broker);
    async move {
        let Some(controller) = broker.config.controller else {
            return refused(&request, "no controller");
        };
        let wait =
            Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0).min(60_000));
        let result = async {
            let mut conn =
                PeerConnection::connect(&controller.to_string(), "kaos-broker-forward").await?;
            conn.request::<_, CreateTopicsResponse>(
                ApiKey::CreateTopics,
                CREATE_TOPICS_VERSION,
                &request,
                wait,
            )
            .await
        }
        .await;
        broker.cluster.refresh.notify_one();
        match result {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!(error = %e, "forwarding CreateTopics failed");
                refused(&request, &e.to_string())
            }
        }
    }
}

/// Auto-create on Metadata: asks the controller to create `topics` with this broker's
/// `num.partitions` and `default.replication.factor` (in the background).
fn spawn_auto_create(broker: &Arc<Broker>, topics: Vec<String>) {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(
            topics
                .into_iter()
                .map(|name| {
                    CreatableTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name)))
                        .with_num_partitions(broker.config.num_partitions)
                        .with_replication_factor(
                            broker.config.replication.default_replication_factor,
                        )
                })
                .collect(),
        );
    let forwarding = forward_create_topics(broker, request);
    tokio::spawn(async move {
        let response = forwarding.await;
        for topic in response.topics {
            if topic.error_code != 0 && topic.error_code != ResponseError::TopicAlreadyExists.code()
            {
                tracing::warn!(topic = %topic.name.as_str(), error_code = topic.error_code, "auto-create failed");
            }
        }
    });
}
