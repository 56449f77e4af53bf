//! DescribeCluster (KIP-700): the cluster id, the controller id as Metadata gives it (this broker,
//! KRaft-style: it forwards what the controller does) and the brokers — this one on a single
//! node, the registered ones of the controller's image in a cluster. Only the brokers' endpoints
//! (v1+ `endpoint_type` 1): a request for the controllers' (2) gets UNSUPPORTED_ENDPOINT_TYPE, as
//! from a Kafka broker. `include_cluster_authorized_operations`: every operation on the cluster
//! ([`crate::acl::authorized`]).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use crate::state::Broker;

/// `endpoint_type`: brokers (1) or controllers (2).
const ENDPOINT_BROKERS: i8 = 1;

pub fn handle(
    broker: &Arc<Broker>,
    request: &DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    let response = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(broker.cluster_id.clone()))
        .with_cluster_authorized_operations(crate::acl::authorized::if_asked(
            request.include_cluster_authorized_operations,
            crate::acl::authorized::CLUSTER,
        ));
    let response = if version >= 1 {
        response.with_endpoint_type(request.endpoint_type)
    } else {
        response
    };
    if version >= 1 && request.endpoint_type != ENDPOINT_BROKERS {
        return response
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "only the brokers' endpoints (endpoint type 1) are described",
            )))
            .with_controller_id(BrokerId(-1));
    }
    let brokers: Vec<DescribeClusterBroker> = if broker.in_cluster() {
        broker
            .cluster
            .image()
            .brokers
            .iter()
            .map(|(&id, address)| {
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(id))
                    .with_host(StrBytes::from_string(address.host.clone()))
                    .with_port(address.port)
            })
            .collect()
    } else {
        vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(broker.node_id()))
            .with_host(StrBytes::from_string(broker.advertised_host.clone()))
            .with_port(broker.advertised_port)]
    };
    response
        .with_controller_id(BrokerId(broker.node_id()))
        .with_brokers(brokers)
}
