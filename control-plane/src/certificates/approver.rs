//! The node-client approver (Kubernetes' `csrapproving` controller): a request for
//! `kubernetes.io/kube-apiserver-client-kubelet` that names a node (CN `system:node:NAME`, O
//! `system:nodes`, no alternative names, the kubelet's usages) is approved when its requestor
//! may `create` `certificatesigningrequests/nodeclient` (a new node: the bootstrappers) or,
//! for a request naming the requestor itself, `certificatesigningrequests/selfnodeclient` (a
//! renewal). Anything else waits for a person (`skiff certificate approve|deny`).

use skiff_api::certificates::{
    is_node_client, node_client_usages, parse_request, KUBE_APISERVER_CLIENT_KUBELET,
};
use skiff_api::k8s_openapi::api::certificates::v1::CertificateSigningRequest;

use crate::authz::{Attributes, ResourceAttributes, Target};
use crate::identity::UserInfo;

/// The reason of the approver's Approved condition.
pub const AUTO_APPROVED: &str = "AutoApproved";

/// The permission checks that would approve `csr`: `(requestor, attributes)` pairs, any of
/// which allowing approves it; empty when the approver does not handle the request.
pub fn recognize(csr: &CertificateSigningRequest) -> Vec<(UserInfo, Attributes)> {
    let spec = &csr.spec;
    if spec.signer_name != KUBE_APISERVER_CLIENT_KUBELET {
        return Vec::new();
    }
    let Ok(request) = parse_request(&spec.request.0) else {
        return Vec::new();
    };
    let usages = spec.usages.clone().unwrap_or_default();
    if !is_node_client(&request) || request.has_alt_names || !node_client_usages(&usages) {
        return Vec::new();
    }
    let username = spec.username.clone().unwrap_or_default();
    let requestor = UserInfo {
        name: username.clone(),
        uid: spec.uid.clone(),
        groups: spec.groups.clone().unwrap_or_default(),
        extra: spec.extra.clone().unwrap_or_default(),
    };
    let mut subresources = vec!["nodeclient"];
    if request.common_name == username {
        subresources.push("selfnodeclient");
    }
    subresources
        .into_iter()
        .map(|sub| {
            let attrs = Attributes {
                verb: "create".into(),
                target: Target::Resource(ResourceAttributes {
                    api_group: "certificates.k8s.io".into(),
                    resource: "certificatesigningrequests".into(),
                    subresource: sub.into(),
                    ..ResourceAttributes::default()
                }),
            };
            (requestor.clone(), attrs)
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair};
    use serde_json::json;

    use super::*;
    use crate::identity::{BOOTSTRAPPERS_GROUP, NODES_GROUP};

    pub(crate) fn request_pem(cn: &str, orgs: &[&str]) -> String {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        for o in orgs {
            params.distinguished_name.push(DnType::OrganizationName, *o);
        }
        params
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem")
    }

    pub(crate) fn csr(
        cn: &str,
        orgs: &[&str],
        signer: &str,
        usages: &[&str],
        requestor: (&str, &[&str]),
    ) -> CertificateSigningRequest {
        use base64::Engine;
        let pem = request_pem(cn, orgs);
        serde_json::from_value(json!({
            "metadata": {"name": "c"},
            "spec": {
                "request": base64::engine::general_purpose::STANDARD.encode(pem),
                "signerName": signer, "usages": usages,
                "username": requestor.0, "groups": requestor.1,
            }
        }))
        .expect("csr")
    }

    /// The default bindings: bootstrappers may ask for nodeclient, nodes for selfnodeclient.
    fn approves(csr: &CertificateSigningRequest) -> bool {
        recognize(csr).iter().any(|(user, attrs)| {
            let sub = attrs.resource().map(|r| r.subresource.as_str());
            (user.in_group(BOOTSTRAPPERS_GROUP) && sub == Some("nodeclient"))
                || (user.in_group(NODES_GROUP) && sub == Some("selfnodeclient"))
        })
    }

    const KUBELET: &str = KUBE_APISERVER_CLIENT_KUBELET;
    const USAGES: &[&str] = &["digital signature", "client auth"];

    #[test]
    fn only_node_requests_from_bootstrappers_or_the_node_itself_are_approved() {
        let node = ("system:node:n1", &["system:nodes"][..]);
        let boot = ("system:bootstrap:abc", &[BOOTSTRAPPERS_GROUP][..]);
        let new_node = csr(node.0, node.1, KUBELET, USAGES, boot);
        assert!(approves(&new_node));
        let renewal = csr(node.0, node.1, KUBELET, USAGES, (node.0, &[NODES_GROUP]));
        assert!(approves(&renewal));
        let other_node = csr(
            node.0,
            node.1,
            KUBELET,
            USAGES,
            ("system:node:n2", &[NODES_GROUP]),
        );
        assert!(!approves(&other_node), "a node may not renew another's");
        let user = csr(node.0, node.1, KUBELET, USAGES, ("bob", &["devs"]));
        assert!(!approves(&user));
        let not_a_node = csr("bob", &["system:nodes"], KUBELET, USAGES, boot);
        assert!(!approves(&not_a_node));
        let masters = csr(
            node.0,
            &["system:nodes", "system:masters"],
            KUBELET,
            USAGES,
            boot,
        );
        assert!(!approves(&masters));
        let server = csr(
            node.0,
            node.1,
            KUBELET,
            &["digital signature", "server auth"],
            boot,
        );
        assert!(!approves(&server));
        let other_signer = csr(
            node.0,
            node.1,
            "kubernetes.io/kube-apiserver-client",
            USAGES,
            boot,
        );
        assert!(!approves(&other_signer));
    }
}
