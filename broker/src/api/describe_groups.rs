//! DescribeGroups: state, protocol and members of groups this broker coordinates (an unknown
//! group is `Dead`, as in Kafka), with the group's authorized operations when asked (v3+).

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::state::Broker;

fn s(text: String) -> StrBytes {
    StrBytes::from_string(text)
}

pub fn handle(
    broker: &Arc<Broker>,
    request: &DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .iter()
        .map(|group_id| {
            // v3+: every operation on the group when asked (no authorizer, as Kafka without
            // one), for a group described without error.
            let authorized = crate::acl::authorized::if_asked(
                version >= 3 && request.include_authorized_operations,
                crate::acl::authorized::GROUP,
            );
            let described = DescribedGroup::default()
                .with_group_id(group_id.clone())
                .with_authorized_operations(authorized);
            // A routing error is never UNKNOWN_MEMBER_ID, the "no such group" of `with_group`.
            let found = broker
                .groups
                .with_routed_group(broker, group_id.as_str(), |g| {
                    (
                        g.state.name(),
                        g.protocol_type.clone().unwrap_or_default(),
                        g.protocol_name.clone().unwrap_or_default(),
                        g.describe_members(),
                    )
                });
            match found {
                Ok((state, protocol_type, protocol, members)) => described
                    .with_group_state(StrBytes::from_static_str(state))
                    .with_protocol_type(s(protocol_type))
                    .with_protocol_data(s(protocol))
                    .with_members(
                        members
                            .into_iter()
                            .map(
                                |(member_id, instance, client_id, host, metadata, assignment)| {
                                    let member = DescribedGroupMember::default()
                                        .with_member_id(s(member_id))
                                        .with_client_id(s(client_id))
                                        .with_client_host(s(host))
                                        .with_member_metadata(metadata)
                                        .with_member_assignment(assignment);
                                    if version >= 4 {
                                        member.with_group_instance_id(instance.map(s))
                                    } else {
                                        member
                                    }
                                },
                            )
                            .collect(),
                    ),
                Err(code)
                    if code == kafka_protocol::error::ResponseError::UnknownMemberId.code() =>
                {
                    // No group state: a group known only by its committed offsets (a simple
                    // consumer's) is Empty, as Kafka describes it; one with none is Dead.
                    let offsets_only = broker
                        .groups
                        .route(broker, group_id.as_str())
                        .and_then(|(index, epoch)| {
                            broker.groups.committed(index, epoch, group_id.as_str())
                        })
                        .is_ok_and(|offsets| !offsets.is_empty());
                    let state = if offsets_only { "Empty" } else { "Dead" };
                    described.with_group_state(StrBytes::from_static_str(state))
                }
                Err(code) => described
                    .with_error_code(code)
                    .with_authorized_operations(crate::acl::authorized::OMITTED),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
