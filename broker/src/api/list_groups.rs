//! ListGroups: the groups this broker coordinates (clients ask every broker), with their
//! protocol type and (v4+) state, filtered by state (v4+) and type (v5+, all of ours are
//! `classic`).

use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::state::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: &ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let wants_state = |state: &str| {
        request.states_filter.is_empty()
            || request
                .states_filter
                .iter()
                .any(|f| f.as_str().eq_ignore_ascii_case(state))
    };
    let wants_classic = request.types_filter.is_empty()
        || request
            .types_filter
            .iter()
            .any(|f| f.as_str().eq_ignore_ascii_case("classic"));
    let groups = broker
        .groups
        .list_groups()
        .into_iter()
        .filter(|(_, _, state)| wants_state(state) && wants_classic)
        .map(|(id, protocol_type, state)| {
            let listed = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(id)))
                .with_protocol_type(StrBytes::from_string(protocol_type));
            let listed = if version >= 4 {
                listed.with_group_state(StrBytes::from_static_str(state))
            } else {
                listed
            };
            if version >= 5 {
                listed.with_group_type(StrBytes::from_static_str("classic"))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
