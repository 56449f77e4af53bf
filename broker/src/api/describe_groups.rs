//! DescribeGroups: state, protocol and members of groups this broker coordinates (an unknown
//! group is `Dead`, as in Kafka).

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
            let described = DescribedGroup::default().with_group_id(group_id.clone());
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
                    described.with_group_state(StrBytes::from_static_str("Dead"))
                }
                Err(code) => described.with_error_code(code),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
