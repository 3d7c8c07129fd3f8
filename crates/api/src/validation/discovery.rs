//! EndpointSlices: an address type Kubernetes knows and bounded endpoint lists.

use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::meta::{self, NameRule};
use super::{Errors, FieldErrorReason};

/// Endpoints one slice may hold, and addresses one endpoint may have (Kubernetes' limits).
const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;

pub fn validate_endpoint_slice(slice: &EndpointSlice, errors: &mut Errors) {
    meta::validate_object_meta(&slice.metadata, true, NameRule::Subdomain, errors);
    if !["IPv4", "IPv6", "FQDN"].contains(&slice.address_type.as_str()) {
        errors.push(
            "addressType",
            FieldErrorReason::NotSupported,
            format!(
                "{:?}: supported values: \"IPv4\", \"IPv6\", \"FQDN\"",
                slice.address_type
            ),
        );
    }
    if slice.endpoints.len() > MAX_ENDPOINTS {
        errors.push(
            "endpoints",
            FieldErrorReason::TooLong,
            format!("must have at most {MAX_ENDPOINTS} items"),
        );
    }
    for (i, endpoint) in slice.endpoints.iter().enumerate() {
        if endpoint.addresses.is_empty() || endpoint.addresses.len() > MAX_ADDRESSES {
            errors.invalid(
                format!("endpoints[{i}].addresses"),
                endpoint.addresses.len(),
                format!("must have between 1 and {MAX_ADDRESSES} addresses"),
            );
        }
    }
}
