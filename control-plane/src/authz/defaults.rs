//! The default roles and bindings every cluster has (Kubernetes' bootstrap policy, cut to the
//! resources Skiff serves): `cluster-admin` for `system:masters`; the aggregated `admin`,
//! `edit` and `view` (with metrics-server's `system:aggregated-metrics-reader` in them);
//! discovery, public info and self-review for every user; `/metrics` and the health checks for
//! `system:monitoring`; `system:auth-delegator` (TokenReviews and SubjectAccessReviews, bound
//! to no one); `system:node` for nodes; `system:node-bootstrapper` and the node-client
//! approval roles for join tokens and node renewals. `reconcile` keeps them in the store.

use serde_json::{json, Value};
use skiff_api::resources::RBAC_GROUP;

use crate::identity::{AUTHENTICATED_GROUP, MASTERS_GROUP, UNAUTHENTICATED_GROUP};
use crate::identity::{BOOTSTRAPPERS_GROUP, MONITORING_GROUP, NODES_GROUP};

/// The annotation that lets the server restore a default object's rules and subjects.
pub const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";
/// Label prefix of the roles that `admin`, `edit` and `view` aggregate.
pub const AGGREGATE_TO: &str = "rbac.authorization.k8s.io/aggregate-to-";

const AUTHENTICATION: &str = "authentication.k8s.io";
const AUTHORIZATION: &str = "authorization.k8s.io";
const READ: [&str; 3] = ["get", "list", "watch"];
const WRITE: [&str; 5] = ["create", "delete", "deletecollection", "patch", "update"];

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn urls(paths: &[&str], verbs: &[&str]) -> Value {
    json!({"nonResourceURLs": paths, "verbs": verbs})
}

fn cluster_role(name: &str, labels: Value, rules: Vec<Value>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels, "annotations": {AUTOUPDATE: "true"}},
        "rules": rules,
    })
}

/// A ClusterRole whose rules are those of the roles labelled `aggregate-to-<to>`.
fn aggregated(name: &str, to: &str, labels: Value) -> Value {
    let mut role = cluster_role(name, labels, vec![]);
    role["aggregationRule"] = json!({"clusterRoleSelectors": [
        {"matchLabels": {format!("{AGGREGATE_TO}{to}"): "true"}}
    ]});
    role
}

fn aggregate_to(targets: &[&str]) -> Value {
    let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    for target in targets {
        labels[format!("{AGGREGATE_TO}{target}")] = json!("true");
    }
    labels
}

fn binding(name: &str, role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"kind": "Group", "apiGroup": RBAC_GROUP, "name": g}))
        .collect();
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {AUTOUPDATE: "true"}},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

/// A binding of `role` to one user.
fn user_binding(name: &str, role: &str, user: &str) -> Value {
    let mut bound = binding(name, role, &[]);
    bound["subjects"] = json!([{"kind": "User", "apiGroup": RBAC_GROUP, "name": user}]);
    bound
}

/// The default ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    let bootstrap = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    let workloads = ["deployments", "replicasets", "statefulsets", "daemonsets"];
    let scaled = [
        "deployments/scale",
        "replicasets/scale",
        "statefulsets/scale",
    ];
    vec![
        cluster_role(
            "cluster-admin",
            bootstrap.clone(),
            vec![rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])],
        ),
        aggregated("admin", "admin", bootstrap.clone()),
        aggregated("edit", "edit", aggregate_to(&["admin"])),
        aggregated("view", "view", aggregate_to(&["edit"])),
        cluster_role(
            "system:aggregate-to-view",
            aggregate_to(&["view"]),
            vec![
                rule(
                    &[""],
                    &[
                        "pods",
                        "pods/log",
                        "pods/status",
                        "configmaps",
                        "endpoints",
                        "persistentvolumeclaims",
                        "persistentvolumeclaims/status",
                        "serviceaccounts",
                        "services",
                        "services/status",
                        "events",
                        "namespaces",
                        "namespaces/status",
                        "resourcequotas",
                        "resourcequotas/status",
                        "limitranges",
                    ],
                    &READ,
                ),
                rule(
                    &["apps"],
                    &[
                        "deployments",
                        "deployments/status",
                        "deployments/scale",
                        "replicasets",
                        "replicasets/status",
                        "replicasets/scale",
                        "statefulsets",
                        "statefulsets/status",
                        "statefulsets/scale",
                        "daemonsets",
                        "daemonsets/status",
                        "controllerrevisions",
                    ],
                    &READ,
                ),
                rule(
                    &["batch"],
                    &["jobs", "jobs/status", "cronjobs", "cronjobs/status"],
                    &READ,
                ),
                rule(
                    &["policy"],
                    &["poddisruptionbudgets", "poddisruptionbudgets/status"],
                    &READ,
                ),
                rule(
                    &["networking.k8s.io"],
                    &["ingresses", "ingresses/status"],
                    &READ,
                ),
                rule(&["discovery.k8s.io"], &["endpointslices"], &READ),
            ],
        ),
        // What metrics-server installs beside its APIService: whoever may view may read
        // `metrics.k8s.io` (`kubectl top`).
        cluster_role(
            "system:aggregated-metrics-reader",
            aggregate_to(&["view", "edit", "admin"]),
            vec![rule(&["metrics.k8s.io"], &["pods", "nodes"], &READ)],
        ),
        cluster_role(
            "system:aggregate-to-edit",
            aggregate_to(&["edit"]),
            vec![
                rule(
                    &[""],
                    &[
                        "pods",
                        "pods/exec",
                        "pods/portforward",
                        "pods/eviction",
                        "configmaps",
                        "endpoints",
                    ],
                    &WRITE,
                ),
                rule(
                    &[""],
                    &[
                        "persistentvolumeclaims",
                        "services",
                        "secrets",
                        "serviceaccounts",
                    ],
                    &WRITE,
                ),
                rule(&[""], &["secrets", "pods/exec", "pods/portforward"], &READ),
                rule(&["apps"], &workloads, &WRITE),
                rule(&["apps"], &scaled, &WRITE),
                rule(&["batch"], &["jobs", "cronjobs"], &WRITE),
                rule(&["policy"], &["poddisruptionbudgets"], &WRITE),
                rule(&["networking.k8s.io"], &["ingresses"], &WRITE),
            ],
        ),
        cluster_role(
            "system:aggregate-to-admin",
            aggregate_to(&["admin"]),
            vec![
                rule(
                    &[RBAC_GROUP],
                    &["roles", "rolebindings"],
                    &[
                        "create",
                        "delete",
                        "deletecollection",
                        "get",
                        "list",
                        "patch",
                        "update",
                        "watch",
                    ],
                ),
                rule(
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews"],
                    &["create"],
                ),
            ],
        ),
        cluster_role(
            "system:discovery",
            bootstrap.clone(),
            vec![urls(
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
                &["get"],
            )],
        ),
        cluster_role(
            "system:public-info-viewer",
            bootstrap.clone(),
            vec![urls(
                &[
                    "/healthz",
                    "/livez",
                    "/readyz",
                    "/version",
                    "/version/",
                    "/cacerts",
                ],
                &["get"],
            )],
        ),
        cluster_role(
            "system:monitoring",
            bootstrap.clone(),
            vec![urls(
                &[
                    "/healthz",
                    "/healthz/*",
                    "/livez",
                    "/livez/*",
                    "/metrics",
                    "/metrics/slis",
                    "/readyz",
                    "/readyz/*",
                ],
                &["get"],
            )],
        ),
        cluster_role(
            "system:basic-user",
            bootstrap.clone(),
            vec![
                rule(
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    &["create"],
                ),
                rule(
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                    &["create"],
                ),
            ],
        ),
        cluster_role(
            NODE_BOOTSTRAPPER,
            bootstrap.clone(),
            vec![rule(
                &[CERTIFICATES],
                &[CSRS],
                &["create", "get", "list", "watch"],
            )],
        ),
        cluster_role(
            NODE_CLIENT_APPROVAL,
            bootstrap.clone(),
            vec![rule(
                &[CERTIFICATES],
                &[&format!("{CSRS}/nodeclient")],
                &["create"],
            )],
        ),
        cluster_role(
            SELF_NODE_CLIENT_APPROVAL,
            bootstrap.clone(),
            vec![rule(
                &[CERTIFICATES],
                &[&format!("{CSRS}/selfnodeclient")],
                &["create"],
            )],
        ),
        // For servers that delegate authentication and authorization to the API.
        cluster_role(
            "system:auth-delegator",
            bootstrap.clone(),
            vec![
                rule(&[AUTHENTICATION], &["tokenreviews"], &["create"]),
                rule(&[AUTHORIZATION], &["subjectaccessreviews"], &["create"]),
            ],
        ),
        cluster_role("system:node", bootstrap.clone(), node_rules()),
        cluster_role(
            KUBELET_API_ADMIN,
            bootstrap,
            vec![
                rule(&[""], &["nodes"], &["get", "list", "watch", "proxy"]),
                rule(
                    &[""],
                    &["nodes/log", "nodes/metrics", "nodes/proxy", "nodes/stats"],
                    &["*"],
                ),
            ],
        ),
    ]
}

/// Full use of the agents' listeners (Kubernetes' `system:kubelet-api-admin`).
const KUBELET_API_ADMIN: &str = "system:kubelet-api-admin";
/// The user of the client certificate the API servers dial agents' listeners with (as
/// kube-apiserver's `--kubelet-client-certificate`, kubeadm's name).
pub const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";

/// The API group of CertificateSigningRequests.
const CERTIFICATES: &str = "certificates.k8s.io";
const CSRS: &str = "certificatesigningrequests";
/// What a join token may do: request a node certificate (Kubernetes' bootstrap role).
const NODE_BOOTSTRAPPER: &str = "system:node-bootstrapper";
/// Whose node-client requests the approver approves: new nodes (bound to the bootstrappers).
pub const NODE_CLIENT_APPROVAL: &str =
    "system:certificates.k8s.io:certificatesigningrequests:nodeclient";
/// Whose renewals of their own node certificate the approver approves (bound to the nodes).
pub const SELF_NODE_CLIENT_APPROVAL: &str =
    "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient";

/// Everything an agent does today (Kubernetes' pre-1.8 broad node role).
fn node_rules() -> Vec<Value> {
    vec![
        // Its listener checks bearer tokens and access with the API (non-mutating creates).
        rule(&[AUTHENTICATION], &["tokenreviews"], &["create"]),
        rule(&[AUTHORIZATION], &["subjectaccessreviews"], &["create"]),
        rule(
            &[""],
            &["nodes"],
            &[
                "create", "get", "list", "watch", "patch", "update", "delete",
            ],
        ),
        rule(&[""], &["nodes/status"], &["get", "patch", "update"]),
        rule(
            &["coordination.k8s.io"],
            &["leases"],
            &[
                "create", "get", "list", "watch", "patch", "update", "delete",
            ],
        ),
        rule(&[""], &["pods"], &["get", "list", "watch", "delete"]),
        rule(&[""], &["pods/status"], &["get", "patch", "update"]),
        rule(
            &["", "events.k8s.io"],
            &["events"],
            &["create", "patch", "update"],
        ),
        rule(
            &[""],
            &[
                "secrets",
                "configmaps",
                "services",
                "endpoints",
                "persistentvolumeclaims",
                "namespaces",
            ],
            &READ,
        ),
        rule(
            &[""],
            &["persistentvolumes"],
            &[
                "create", "get", "list", "watch", "patch", "update", "delete",
            ],
        ),
        // Tokens for the projected volumes of its pods (the node authorizer narrows it).
        rule(&[""], &["serviceaccounts/token"], &["create"]),
        rule(&["discovery.k8s.io"], &["endpointslices"], &READ),
        rule(&["node.k8s.io"], &["runtimeclasses"], &READ),
        rule(&["storage.k8s.io"], &["storageclasses"], &READ),
        rule(
            &["networking.k8s.io"],
            &["ingresses", "ingressclasses"],
            &READ,
        ),
        rule(
            &["networking.k8s.io"],
            &["ingresses/status"],
            &["patch", "update"],
        ),
        // The tunnel each agent keeps open to the servers.
        urls(&["/skiff/v1/nodes/*"], &["get"]),
    ]
}

/// The default ClusterRoleBindings.
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![
        binding("cluster-admin", "cluster-admin", &[MASTERS_GROUP]),
        binding(
            "system:discovery",
            "system:discovery",
            &[AUTHENTICATED_GROUP],
        ),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            &[AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP],
        ),
        binding(
            "system:monitoring",
            "system:monitoring",
            &[MONITORING_GROUP],
        ),
        binding(
            "system:basic-user",
            "system:basic-user",
            &[AUTHENTICATED_GROUP],
        ),
        // Node certificates are decided by the node authorizer; the binding serves node users
        // it has no opinion on (discovery, the tunnel's URL). A join token buys only a
        // certificate (system:node-bootstrapper below).
        binding("system:node", "system:node", &[NODES_GROUP]),
        user_binding(KUBELET_CLIENT_USER, KUBELET_API_ADMIN, KUBELET_CLIENT_USER),
        binding(
            "kubeadm:kubelet-bootstrap",
            NODE_BOOTSTRAPPER,
            &[BOOTSTRAPPERS_GROUP],
        ),
        binding(
            "kubeadm:node-autoapprove-bootstrap",
            NODE_CLIENT_APPROVAL,
            &[BOOTSTRAPPERS_GROUP],
        ),
        binding(
            "kubeadm:node-autoapprove-certificate-rotation",
            SELF_NODE_CLIENT_APPROVAL,
            &[NODES_GROUP],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use skiff_api::resources;

    use super::*;

    #[test]
    fn the_defaults_are_valid_objects() {
        for obj in cluster_roles().into_iter().chain(cluster_role_bindings()) {
            let kind = resources::by_kind(
                "rbac.authorization.k8s.io/v1",
                obj["kind"].as_str().unwrap_or_default(),
            )
            .expect("an RBAC kind");
            skiff_api::validation::validate(kind, &obj)
                .unwrap_or_else(|e| panic!("{}: {e:?}", obj["metadata"]["name"]));
        }
    }
}
