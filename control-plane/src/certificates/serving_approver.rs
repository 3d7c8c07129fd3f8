//! The node-serving approver. Kubernetes leaves `kubernetes.io/kubelet-serving` requests to a
//! person (or a third-party approver); Skiff, like k3s, approves a node's own serving
//! certificate itself when all of these hold:
//! - the request is a node's (CN `system:node:NAME`, O exactly `system:nodes`) with serving
//!   usages (`server auth`, optionally `digital signature`, `key encipherment`);
//! - its requestor is that same node (user `system:node:NAME` in group `system:nodes`): a
//!   node never gets a certificate in another's name;
//! - it asks for at least one DNS name or IP address, no e-mail address or URI, and every
//!   name it asks for is one of the Node's `status.addresses` (its `InternalIP`, `Hostname`).
//!
//! Anything else waits for `skiff certificate approve|deny`.

use serde_json::Value;
use skiff_api::certificates::{
    check_serving_request, parse_request, KUBELET_SERVING, NODES_GROUP, NODE_USER_PREFIX,
};
use skiff_api::k8s_openapi::api::certificates::v1::CertificateSigningRequest;

/// A serving request this approver may approve: the node it is for, and the names it asks
/// for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingRequest {
    pub node: String,
    pub names: Vec<String>,
}

/// The node `csr` asks a serving certificate for, if the request is well-formed and its
/// requestor is that node; `None` for anything else.
pub fn recognize(csr: &CertificateSigningRequest) -> Option<ServingRequest> {
    let spec = &csr.spec;
    if spec.signer_name != KUBELET_SERVING {
        return None;
    }
    let request = parse_request(&spec.request.0).ok()?;
    check_serving_request(&request, spec.usages.as_deref().unwrap_or_default()).ok()?;
    let requestor = spec.username.as_deref()?;
    let in_nodes = spec.groups.iter().flatten().any(|g| g == NODES_GROUP);
    if requestor != request.common_name || !in_nodes {
        return None;
    }
    Some(ServingRequest {
        node: requestor.strip_prefix(NODE_USER_PREFIX)?.to_string(),
        names: request.dns_and_ips,
    })
}

/// Whether every name `request` asks for is one of `node`'s (a Node object's) addresses.
pub fn fits(request: &ServingRequest, node: &Value) -> bool {
    let addresses: Vec<&str> = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("address").and_then(Value::as_str))
        .collect();
    request
        .names
        .iter()
        .all(|name| addresses.contains(&name.as_str()))
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use rcgen::{CertificateParams, DnType, KeyPair};
    use serde_json::json;

    use super::*;

    const USAGES: &[&str] = &["digital signature", "key encipherment", "server auth"];

    fn csr(cn: &str, sans: &[&str], usages: &[&str], requestor: &str) -> CertificateSigningRequest {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, NODES_GROUP);
        let pem = params
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem");
        serde_json::from_value(json!({
            "metadata": {"name": "c"},
            "spec": {
                "request": base64::engine::general_purpose::STANDARD.encode(pem),
                "signerName": KUBELET_SERVING, "usages": usages,
                "username": requestor, "groups": [NODES_GROUP],
            }
        }))
        .expect("csr")
    }

    #[test]
    fn a_node_gets_a_serving_certificate_for_its_own_addresses_only() {
        let node = json!({"status": {"addresses": [
            {"type": "InternalIP", "address": "10.0.0.5"},
            {"type": "Hostname", "address": "n1"}
        ]}});
        let own = csr(
            "system:node:n1",
            &["10.0.0.5", "n1"],
            USAGES,
            "system:node:n1",
        );
        let own = recognize(&own).expect("recognized");
        assert_eq!(own.node, "n1");
        assert!(fits(&own, &node));

        let foreign_ip = csr("system:node:n1", &["10.0.0.6"], USAGES, "system:node:n1");
        assert!(!fits(&recognize(&foreign_ip).expect("recognized"), &node));

        let for_another = csr("system:node:n2", &["10.0.0.5"], USAGES, "system:node:n1");
        assert_eq!(
            recognize(&for_another),
            None,
            "only the node itself may ask"
        );
        let no_names = csr("system:node:n1", &[], USAGES, "system:node:n1");
        assert_eq!(recognize(&no_names), None);
        let client = csr(
            "system:node:n1",
            &["n1"],
            &["digital signature", "client auth"],
            "system:node:n1",
        );
        assert_eq!(recognize(&client), None);
    }
}
