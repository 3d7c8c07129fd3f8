//! The node authorizer (Kubernetes' `Node` authorization mode) for node identities
//! (`system:node:NAME` in group `system:nodes`): a node reads what a kubelet reads, writes
//! only its own Node and Lease and the status of the pods bound to it, and reads only the
//! Secrets, ConfigMaps and PersistentVolumeClaims those pods use, and the TLS Secrets that
//! Ingresses name (every agent may serve every Ingress of class `skiff`, as an ingress
//! controller does; Kubernetes gives its controller that read), and creates tokens only for
//! its pods' ServiceAccounts. Its answer is final for
//! resource requests, so a node credential never gains more through RBAC's `system:node`
//! binding (which serves the join-token identities).

use std::sync::Arc;

use skiff_api::k8s_openapi::api::core::v1::{Container, Pod, PodSpec};

use super::attributes::{Attributes, ResourceAttributes};
use crate::identity::{UserInfo, NODES_GROUP};

/// Node identities are `system:node:<node name>`.
const NODE_USER_PREFIX: &str = "system:node:";
/// Where node heartbeat Leases live.
const LEASE_NAMESPACE: &str = "kube-node-lease";

/// The pods the authorizer consults (the API server's pod cache).
pub trait PodSource {
    /// The pods whose `spec.nodeName` is `node`.
    fn pods_on(&self, node: &str) -> Vec<Arc<Pod>>;
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>>;
    /// Whether an Ingress in `namespace` names Secret `name` in its `spec.tls` (the agents'
    /// ingress proxy serves its certificate).
    fn ingress_tls_secret(&self, _namespace: &str, _name: &str) -> bool {
        false
    }
}

/// The node a user is the identity of, if it is one.
pub fn node_name(user: &UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_USER_PREFIX)?;
    (user.in_group(NODES_GROUP) && !name.is_empty()).then_some(name)
}

/// What the node authorizer says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeDecision {
    Allow,
    Deny,
    /// Not a resource request: discovery and the like go to RBAC.
    NoOpinion,
}

/// Decides a node's request.
pub fn decide(pods: &impl PodSource, node: &str, attrs: &Attributes) -> NodeDecision {
    let Some(r) = attrs.resource() else {
        return NodeDecision::NoOpinion;
    };
    if allowed(pods, node, &attrs.verb, r) {
        NodeDecision::Allow
    } else {
        NodeDecision::Deny
    }
}

fn allowed(pods: &impl PodSource, node: &str, verb: &str, r: &ResourceAttributes) -> bool {
    let read = matches!(verb, "get" | "list" | "watch");
    let write = matches!(verb, "update" | "patch" | "delete");
    let sub = r.subresource.as_str();
    match (r.api_group.as_str(), r.resource.as_str()) {
        // Create is allowed; the request's object must name the node (checked at admission).
        ("", "nodes") => match sub {
            "" => read || verb == "create" || (write && r.name == node),
            "status" => (read || write) && r.name == node,
            _ => false,
        },
        ("coordination.k8s.io", "leases") => {
            r.namespace == LEASE_NAMESPACE
                && sub.is_empty()
                && (verb == "create" || ((read || write) && r.name == node))
        }
        ("", "pods") => match sub {
            "" => read || (verb == "delete" && bound_here(pods, node, r)),
            "status" => (read || write) && bound_here(pods, node, r),
            _ => false,
        },
        ("", "events") | ("events.k8s.io", "events") => {
            matches!(verb, "create" | "update" | "patch")
        }
        ("", "secrets") if read && sub.is_empty() && !r.name.is_empty() => {
            used_here(pods, node, "secrets", &r.namespace, &r.name)
                || pods.ingress_tls_secret(&r.namespace, &r.name)
        }
        ("", kind @ ("secrets" | "configmaps" | "persistentvolumeclaims")) => {
            read && sub.is_empty() && used_here(pods, node, kind, &r.namespace, &r.name)
        }
        ("", "services" | "endpoints" | "persistentvolumes")
        | ("discovery.k8s.io", "endpointslices")
        | ("node.k8s.io", "runtimeclasses")
        | ("storage.k8s.io", "storageclasses")
        | ("networking.k8s.io", "ingressclasses") => read && sub.is_empty(),
        // The agent's ingress proxy reports the addresses it serves an Ingress on.
        ("networking.k8s.io", "ingresses") => {
            (read && sub.is_empty()) || (write && sub == "status")
        }
        // Tokens for the ServiceAccounts of its pods (TokenRequest admission checks that the
        // token is bound to one of them).
        ("", "serviceaccounts") => {
            verb == "create"
                && sub == "token"
                && used_here(pods, node, "serviceaccounts", &r.namespace, &r.name)
        }
        ("authorization.k8s.io", "selfsubjectaccessreviews" | "selfsubjectrulesreviews")
        | ("authentication.k8s.io", "selfsubjectreviews") => verb == "create",
        // Its listener's webhook authentication and authorization (Kubernetes' system:node
        // role grants them too).
        ("authorization.k8s.io", "subjectaccessreviews")
        | ("authentication.k8s.io", "tokenreviews") => verb == "create" && sub.is_empty(),
        // Renewing its own client certificate (Kubernetes' system:node role and the
        // selfnodeclient permission the approver checks).
        ("certificates.k8s.io", "certificatesigningrequests") => match sub {
            "" => read || verb == "create",
            "selfnodeclient" => verb == "create",
            _ => false,
        },
        _ => false,
    }
}

fn bound_here(pods: &impl PodSource, node: &str, r: &ResourceAttributes) -> bool {
    pods.pod(&r.namespace, &r.name)
        .is_some_and(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
}

/// Whether a pod bound to `node` in `namespace` uses the object `kind`/`name`.
fn used_here(pods: &impl PodSource, node: &str, kind: &str, namespace: &str, name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    pods.pods_on(node).iter().any(|pod| {
        pod.metadata.namespace.as_deref() == Some(namespace)
            && pod
                .spec
                .as_ref()
                .is_some_and(|spec| references(spec, kind).any(|n| n == name))
    })
}

/// The names of the objects of `kind` a pod spec uses (volumes, projections, env, pull secrets).
fn references<'a>(spec: &'a PodSpec, kind: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let volumes = spec.volumes.iter().flatten().flat_map(move |v| {
        let direct = match kind {
            "secrets" => v.secret.as_ref().and_then(|s| s.secret_name.as_deref()),
            "configmaps" => v.config_map.as_ref().map(|c| c.name.as_str()),
            "persistentvolumeclaims" => v
                .persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.as_str()),
            _ => None,
        };
        let projected = v
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
            .filter_map(move |s| match kind {
                "secrets" => s.secret.as_ref().map(|s| s.name.as_str()),
                "configmaps" => s.config_map.as_ref().map(|c| c.name.as_str()),
                _ => None,
            });
        direct.into_iter().chain(projected)
    });
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .flat_map(move |c| container_references(c, kind));
    let pull_secrets = spec
        .image_pull_secrets
        .iter()
        .flatten()
        .filter(move |_| kind == "secrets")
        .map(|s| s.name.as_str());
    let account = spec
        .service_account_name
        .as_deref()
        .filter(move |_| kind == "serviceaccounts");
    volumes.chain(containers).chain(pull_secrets).chain(account)
}

fn container_references<'a>(c: &'a Container, kind: &'a str) -> impl Iterator<Item = &'a str> {
    let env = c
        .env
        .iter()
        .flatten()
        .filter_map(|e| e.value_from.as_ref())
        .filter_map(move |from| match kind {
            "secrets" => from.secret_key_ref.as_ref().map(|s| s.name.as_str()),
            "configmaps" => from.config_map_key_ref.as_ref().map(|c| c.name.as_str()),
            _ => None,
        });
    let env_from = c.env_from.iter().flatten().filter_map(move |e| match kind {
        "secrets" => e.secret_ref.as_ref().map(|s| s.name.as_str()),
        "configmaps" => e.config_map_ref.as_ref().map(|c| c.name.as_str()),
        _ => None,
    });
    env.chain(env_from)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::http::Method;
    use serde_json::json;

    use super::*;

    #[derive(Default)]
    struct Pods(HashMap<(String, String), Arc<Pod>>);

    impl PodSource for Pods {
        fn pods_on(&self, node: &str) -> Vec<Arc<Pod>> {
            self.0
                .values()
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
                .cloned()
                .collect()
        }
        fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
            self.0.get(&(namespace.into(), name.into())).cloned()
        }
        /// An Ingress in `a` serves HTTPS with `site-tls`.
        fn ingress_tls_secret(&self, namespace: &str, name: &str) -> bool {
            (namespace, name) == ("a", "site-tls")
        }
    }

    fn pods() -> Pods {
        let mut pods = Pods::default();
        let web: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "a"},
            "spec": {"nodeName": "n1", "serviceAccountName": "web-sa",
                "containers": [{"name": "c", "image": "i",
                "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "api-key", "key": "k"}}}],
                "envFrom": [{"configMapRef": {"name": "settings"}}]}],
                "volumes": [
                    {"name": "tls", "secret": {"secretName": "tls"}},
                    {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "p", "projected": {"sources": [{"configMap": {"name": "extra"}}]}},
                ]}
        }))
        .expect("pod");
        let db: Pod = serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "a"},
            "spec": {"nodeName": "n2", "serviceAccountName": "db-sa",
                "containers": [{"name": "c", "image": "i"}],
                "volumes": [{"name": "s", "secret": {"secretName": "db-password"}}]}
        }))
        .expect("pod");
        pods.0.insert(("a".into(), "web".into()), Arc::new(web));
        pods.0.insert(("a".into(), "db".into()), Arc::new(db));
        pods
    }

    #[test]
    fn a_node_writes_only_its_own_objects_and_reads_only_what_its_pods_use() {
        let pods = pods();
        let cases = [
            (Method::GET, "/api/v1/nodes", true),
            (Method::POST, "/api/v1/nodes", true),
            (Method::PATCH, "/api/v1/nodes/n1/status", true),
            (Method::PATCH, "/api/v1/nodes/n2/status", false),
            (Method::DELETE, "/api/v1/nodes/n2", false),
            (Method::GET, "/api/v1/nodes/n2/proxy/images", false),
            (
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
                true,
            ),
            (
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n2",
                false,
            ),
            (
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/default/leases/n1",
                false,
            ),
            (
                Method::GET,
                "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1",
                true,
            ),
            (Method::PATCH, "/api/v1/namespaces/a/pods/web/status", true),
            (Method::PATCH, "/api/v1/namespaces/a/pods/db/status", false),
            (Method::PATCH, "/api/v1/namespaces/a/pods/web", false),
            (Method::POST, "/api/v1/namespaces/a/pods", false),
            (Method::GET, "/api/v1/namespaces/a/secrets/tls", true),
            (Method::GET, "/api/v1/namespaces/a/secrets/api-key", true),
            (
                Method::GET,
                "/api/v1/namespaces/a/secrets/db-password",
                false,
            ),
            (Method::GET, "/api/v1/namespaces/b/secrets/tls", false),
            (Method::GET, "/api/v1/namespaces/a/secrets", false),
            (
                Method::GET,
                "/api/v1/namespaces/a/secrets?watch=1&fieldSelector=metadata.name%3Dtls",
                true,
            ),
            (Method::PUT, "/api/v1/namespaces/a/secrets/tls", false),
            (Method::GET, "/api/v1/namespaces/a/secrets/site-tls", true),
            (
                Method::GET,
                "/api/v1/namespaces/a/secrets?watch=1&fieldSelector=metadata.name%3Dsite-tls",
                true,
            ),
            (Method::GET, "/api/v1/namespaces/b/secrets/site-tls", false),
            (
                Method::GET,
                "/api/v1/namespaces/a/configmaps/settings",
                true,
            ),
            (Method::GET, "/api/v1/namespaces/a/configmaps/extra", true),
            (
                Method::GET,
                "/api/v1/namespaces/a/persistentvolumeclaims/data",
                true,
            ),
            (Method::GET, "/api/v1/namespaces/a/services", true),
            (Method::POST, "/api/v1/namespaces/a/events", true),
            (
                Method::POST,
                "/api/v1/namespaces/a/serviceaccounts/web-sa/token",
                true,
            ),
            (
                Method::POST,
                "/api/v1/namespaces/a/serviceaccounts/db-sa/token",
                false,
            ),
            (
                Method::POST,
                "/api/v1/namespaces/b/serviceaccounts/web-sa/token",
                false,
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/serviceaccounts/web-sa",
                false,
            ),
            (Method::GET, "/apis/apps/v1/deployments", false),
            (
                Method::POST,
                "/apis/authentication.k8s.io/v1/tokenreviews",
                true,
            ),
            (
                Method::GET,
                "/apis/authentication.k8s.io/v1/tokenreviews",
                false,
            ),
        ];
        for (method, uri, expected) in cases {
            let (path, query) = match uri.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (uri, None),
            };
            let attrs = Attributes::from_request(&method, path, query);
            let want = if expected {
                NodeDecision::Allow
            } else {
                NodeDecision::Deny
            };
            assert_eq!(decide(&pods, "n1", &attrs), want, "{method} {uri}");
        }
        let discovery = Attributes::from_request(&Method::GET, "/apis", None);
        assert_eq!(decide(&pods, "n1", &discovery), NodeDecision::NoOpinion);
    }

    #[test]
    fn only_node_users_in_the_nodes_group_are_nodes() {
        let node = UserInfo::authenticated("system:node:n1", vec![NODES_GROUP.into()]);
        assert_eq!(node_name(&node), Some("n1"));
        let pretender = UserInfo::authenticated("system:node:n1", vec![]);
        assert_eq!(node_name(&pretender), None);
        let bootstrap = UserInfo::authenticated("system:bootstrap:abc", vec![NODES_GROUP.into()]);
        assert_eq!(node_name(&bootstrap), None);
    }
}
