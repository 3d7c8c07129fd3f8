//! The node-serving approver. Kubernetes leaves `kubernetes.io/kubelet-serving` requests to a
//! person (or a third-party approver); Skiff, like k3s, approves a node's own serving
//! certificate itself when all of these hold:
//! - the request is a node's (CN `system:node:NAME`, O exactly `system:nodes`) with serving
//!   usages (`server auth`, optionally `digital signature`, `key encipherment`);
//! - its requestor is that same node (user `system:node:NAME` in group `system:nodes`): a
//!   node never gets a certificate in another's name;
//! - it asks for at least one DNS name or IP address, no e-mail address or URI, and every
//!   name it asks for is one of the Node's `status.addresses` of type `InternalIP` or
//!   `Hostname`;
//! - no name is one another holds: none of the `kubernetes.default.svc` names, no unspecified
//!   address, no address an API server advertises (its lease) and no address or host name of
//!   another Node. A node writes its own `status.addresses`, so without this it could list an
//!   API server's address and get a certificate the cluster's clients trust for it. Loopback
//!   addresses and `localhost` stay allowed: a certificate for them deceives only clients on
//!   the node's own machine, which the node (running as root) controls already.
//!
//! Anything else waits for `skiff certificate approve|deny`.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use serde_json::Value;
use skiff_api::certificates::{
    check_serving_request, parse_request, KUBELET_SERVING, NODES_GROUP, NODE_USER_PREFIX,
};
use skiff_api::k8s_openapi::api::certificates::v1::CertificateSigningRequest;

/// A serving request this approver may approve: the node it is for, and the names it asks
/// for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingRequest {
    /// The node's name.
    pub node: String,
    /// The DNS names and IP addresses (as text) it asks for.
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

/// The names the API's own serving certificates hold for pods, which no node may have.
const API_SERVICE_NAMES: [&str; 4] = [
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// The address types a node's serving certificate may name.
const SERVING_ADDRESS_TYPES: [&str; 2] = ["InternalIP", "Hostname"];

/// Whether every name `request` asks for is one of `node`'s (a Node object's) `InternalIP` or
/// `Hostname` addresses, and none is reserved or in `taken` (what API servers and other
/// nodes hold).
pub fn fits(request: &ServingRequest, node: &Value, taken: &BTreeSet<String>) -> bool {
    let addresses: Vec<&str> = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|a| {
            a.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| SERVING_ADDRESS_TYPES.contains(&t))
        })
        .filter_map(|a| a.get("address").and_then(Value::as_str))
        .collect();
    request
        .names
        .iter()
        .all(|name| addresses.contains(&name.as_str()) && !reserved(name) && !taken.contains(name))
}

/// Names no node certificate may hold, whoever else holds them: the API's Service names and
/// unspecified addresses.
fn reserved(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    API_SERVICE_NAMES.contains(&name.as_str())
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified())
}

/// What `taken` holds from one object: a Node's addresses (every type), or an API server
/// lease's advertised IP; loopback addresses are left out (see the module's comment).
pub fn held_names(object: &Value) -> Vec<String> {
    let mut names: Vec<String> = object
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("address").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let advertised = object
        .pointer(&format!(
            "/metadata/annotations/{}",
            crate::apiserver_lease::ADDRESS_ANNOTATION.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .and_then(|a| a.parse::<SocketAddr>().ok());
    names.extend(advertised.map(|a| a.ip().to_string()));
    names.retain(|n| !n.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()));
    names
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
        let none = BTreeSet::new();
        assert!(fits(&own, &node, &none));

        let foreign_ip = csr("system:node:n1", &["10.0.0.6"], USAGES, "system:node:n1");
        assert!(!fits(
            &recognize(&foreign_ip).expect("recognized"),
            &node,
            &none
        ));

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

    /// A node writes its own addresses: listing what an API server or another node holds, or
    /// the API's Service names, gets it no certificate for them.
    #[test]
    fn names_another_holds_or_the_api_s_own_are_never_approved() {
        let node = json!({"status": {"addresses": [
            {"type": "InternalIP", "address": "10.0.0.1"},
            {"type": "InternalIP", "address": "10.0.0.5"},
            {"type": "InternalIP", "address": "0.0.0.0"},
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "ExternalIP", "address": "192.0.2.9"},
            {"type": "Hostname", "address": "kubernetes.default.svc"},
            {"type": "Hostname", "address": "n1"}
        ]}});
        let server_lease = json!({"metadata": {"annotations": {
            "skiff.dev/advertise-address": "10.0.0.1:6443"}}});
        let other_node = json!({"status": {"addresses": [
            {"type": "InternalIP", "address": "10.0.0.7"},
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": "n2"}
        ]}});
        let taken: BTreeSet<String> = [server_lease, other_node]
            .iter()
            .flat_map(held_names)
            .collect();
        assert_eq!(
            taken,
            ["10.0.0.1", "10.0.0.7", "n2"].map(String::from).into(),
            "loopback stays out"
        );
        let asks = |names: &[&str]| {
            let request = csr("system:node:n1", names, USAGES, "system:node:n1");
            fits(&recognize(&request).expect("recognized"), &node, &taken)
        };
        assert!(asks(&["10.0.0.5", "n1", "127.0.0.1"]));
        assert!(!asks(&["10.0.0.1"]), "an API server's address");
        assert!(!asks(&["kubernetes.default.svc"]), "the API's Service name");
        assert!(!asks(&["0.0.0.0"]), "an unspecified address");
        assert!(!asks(&["192.0.2.9"]), "an ExternalIP");
        let node_with_others = json!({"status": {"addresses": [
            {"type": "InternalIP", "address": "10.0.0.7"},
            {"type": "Hostname", "address": "n2"}
        ]}});
        let request = csr(
            "system:node:n1",
            &["10.0.0.7", "n2"],
            USAGES,
            "system:node:n1",
        );
        assert!(
            !fits(
                &recognize(&request).expect("recognized"),
                &node_with_others,
                &taken
            ),
            "another node's address and host name"
        );
    }
}
