//! ApiVersions: the APIs and version ranges this broker implements.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsResponse;

fn api_keys_of(apis: &[(kafka_protocol::messages::ApiKey, i16, i16)]) -> Vec<ApiVersion> {
    apis.iter()
        .map(|&(api, min, max)| {
            ApiVersion::default()
                .with_api_key(api as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect()
}

/// The ApiVersions answer listing `apis` (what [`crate::api::table::advertised`] gives for the
/// role that answers). Tagged fields stay at
/// their defaults so that none are emitted (kcat 1.7.1 rejects a v3 response that carries them).
pub fn response_for(apis: &[(kafka_protocol::messages::ApiKey, i16, i16)]) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_keys_of(apis))
}

/// UNSUPPORTED_VERSION listing `apis`, to be encoded as v0.
pub fn unsupported_version_response_for(
    apis: &[(kafka_protocol::messages::ApiKey, i16, i16)],
) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_keys_of(apis))
}
