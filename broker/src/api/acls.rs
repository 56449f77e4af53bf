//! CreateAcls, DescribeAcls and DeleteAcls (Kafka API keys 30, 29, 31) over an [`AclStore`]: a
//! single broker's own ([`crate::acl::AclFile`]), or in a cluster the controller's (brokers
//! forward the three requests to it, as they forward AlterConfigs). Each creation and each
//! delete filter gets its own outcome; a DescribeAcls filter with an UNKNOWN field gets
//! INVALID_REQUEST; bindings that could not be stored get KAFKA_STORAGE_ERROR (creation) or
//! UNKNOWN_SERVER_ERROR (deletion), with the reason.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::acl::{self, AclBinding, AclFilter, AclStore};
use crate::state::Broker;

impl AclStore for Broker {
    fn update_acls<T>(
        &self,
        f: impl FnOnce(&mut std::collections::BTreeSet<AclBinding>) -> T,
    ) -> Result<T, String> {
        self.acls.update_acls(f)
    }

    fn acls(&self) -> std::collections::BTreeSet<AclBinding> {
        self.acls.acls()
    }
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn text(value: &Option<StrBytes>) -> Option<String> {
    value.as_ref().map(|v| v.as_str().to_string())
}

fn describe_filter(r: &DescribeAclsRequest) -> AclFilter {
    AclFilter {
        resource_type: r.resource_type_filter,
        resource_name: text(&r.resource_name_filter),
        pattern_type: r.pattern_type_filter,
        principal: text(&r.principal_filter),
        host: text(&r.host_filter),
        operation: r.operation,
        permission_type: r.permission_type,
    }
}

fn delete_filter(f: &DeleteAclsFilter) -> AclFilter {
    AclFilter {
        resource_type: f.resource_type_filter,
        resource_name: text(&f.resource_name_filter),
        pattern_type: f.pattern_type_filter,
        principal: text(&f.principal_filter),
        host: text(&f.host_filter),
        operation: f.operation,
        permission_type: f.permission_type,
    }
}

fn creation_result(outcome: Result<(), (ResponseError, String)>) -> AclCreationResult {
    match outcome {
        Ok(()) => AclCreationResult::default(),
        Err((error, message)) => AclCreationResult::default()
            .with_error_code(error.code())
            .with_error_message(Some(s(&message))),
    }
}

/// CreateAcls: every valid binding stored, one result per creation.
pub fn create(store: &impl AclStore, request: &CreateAclsRequest) -> CreateAclsResponse {
    let bindings: Vec<AclBinding> = request
        .creations
        .iter()
        .map(|c| AclBinding {
            resource_type: c.resource_type,
            resource_name: c.resource_name.as_str().to_string(),
            pattern_type: c.resource_pattern_type,
            principal: c.principal.as_str().to_string(),
            host: c.host.as_str().to_string(),
            operation: c.operation,
            permission_type: c.permission_type,
        })
        .collect();
    let results = match store.update_acls(|acls| acl::create(acls, bindings)) {
        Ok(outcomes) => outcomes.into_iter().map(creation_result).collect(),
        Err(message) => request
            .creations
            .iter()
            .map(|_| creation_result(Err((ResponseError::KafkaStorageError, message.clone()))))
            .collect(),
    };
    CreateAclsResponse::default().with_results(results)
}

/// DescribeAcls: the bindings the filter matches, by resource pattern.
pub fn describe(store: &impl AclStore, request: &DescribeAclsRequest) -> DescribeAclsResponse {
    let matched = match acl::describe(&store.acls(), &describe_filter(request)) {
        Ok(matched) => matched,
        Err((error, message)) => {
            return DescribeAclsResponse::default()
                .with_error_code(error.code())
                .with_error_message(Some(s(&message)))
        }
    };
    let mut by_resource: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for b in matched {
        by_resource
            .entry((b.resource_type, b.resource_name.clone(), b.pattern_type))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(s(&b.principal))
                    .with_host(s(&b.host))
                    .with_operation(b.operation)
                    .with_permission_type(b.permission_type),
            );
    }
    let resources = by_resource
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(s(&name))
                .with_pattern_type(pattern_type)
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}

fn filter_result(
    outcome: Result<Vec<AclBinding>, (ResponseError, String)>,
) -> DeleteAclsFilterResult {
    match outcome {
        Ok(removed) => DeleteAclsFilterResult::default().with_matching_acls(
            removed
                .into_iter()
                .map(|b| {
                    DeleteAclsMatchingAcl::default()
                        .with_resource_type(b.resource_type)
                        .with_resource_name(s(&b.resource_name))
                        .with_pattern_type(b.pattern_type)
                        .with_principal(s(&b.principal))
                        .with_host(s(&b.host))
                        .with_operation(b.operation)
                        .with_permission_type(b.permission_type)
                })
                .collect(),
        ),
        Err((error, message)) => DeleteAclsFilterResult::default()
            .with_error_code(error.code())
            .with_error_message(Some(s(&message))),
    }
}

/// DeleteAcls: per filter, the bindings it matched and removed.
pub fn delete(store: &impl AclStore, request: &DeleteAclsRequest) -> DeleteAclsResponse {
    let filters: Vec<AclFilter> = request.filters.iter().map(delete_filter).collect();
    let results = match store.update_acls(|acls| acl::delete(acls, &filters)) {
        Ok(outcomes) => outcomes.into_iter().map(filter_result).collect(),
        Err(message) => filters
            .iter()
            .map(|_| filter_result(Err((ResponseError::UnknownServerError, message.clone()))))
            .collect(),
    };
    DeleteAclsResponse::default().with_filter_results(results)
}

/// Every creation refused with REQUEST_TIMED_OUT (the controller could not be asked).
pub fn create_refused(request: &CreateAclsRequest, message: String) -> CreateAclsResponse {
    let results = request
        .creations
        .iter()
        .map(|_| creation_result(Err((ResponseError::RequestTimedOut, message.clone()))))
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// DescribeAcls refused with REQUEST_TIMED_OUT (the controller could not be asked).
pub fn describe_refused(message: String) -> DescribeAclsResponse {
    DescribeAclsResponse::default()
        .with_error_code(ResponseError::RequestTimedOut.code())
        .with_error_message(Some(s(&message)))
}

/// Every filter refused with REQUEST_TIMED_OUT (the controller could not be asked).
pub fn delete_refused(request: &DeleteAclsRequest, message: String) -> DeleteAclsResponse {
    let results = request
        .filters
        .iter()
        .map(|_| filter_result(Err((ResponseError::RequestTimedOut, message.clone()))))
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
