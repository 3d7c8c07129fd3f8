//! API discovery, as the Kubernetes API server serves it (`/api`, `/api/v1`, `/apis`,
//! `/apis/{group}`, `/apis/{group}/{version}`): the groups, versions and resources this server
//! serves, with their verbs, short names and subresources, made from the kinds it serves.

use serde_json::{json, Value};
use skiff_api::resources::{ResourceKind, KINDS};

use crate::registry::has_status_subresource;

/// The verbs every served resource takes.
const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The discovery document a GET of `path` answers, if `path` is a discovery path.
pub fn document(path: &str) -> Option<Value> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match segments.as_slice() {
        ["api"] => Some(json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [],
        })),
        ["api", version] => resource_list("", version),
        ["apis"] => Some(json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": groups().into_iter().map(group).collect::<Vec<_>>(),
        })),
        ["apis", name] => groups().into_iter().find(|g| g == name).map(|g| {
            let mut doc = group(g);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            doc
        }),
        ["apis", group, version] => resource_list(group, version),
        _ => None,
    }
}

/// The group of the access reviews, which are answered, not stored (so not in `KINDS`).
const AUTHORIZATION_GROUP: &str = "authorization.k8s.io";
/// The group of SelfSubjectReview and TokenReview (and TokenRequest), answered, not stored.
const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";
/// `NodeMetrics` and `PodMetrics`, served by the API server itself (as metrics-server would).
const METRICS_GROUP: &str = "metrics.k8s.io";
const METRICS_VERSION: &str = "v1beta1";

/// The named groups served, in the order their kinds are listed.
fn groups() -> Vec<&'static str> {
    let mut groups: Vec<&'static str> =
        vec![AUTHORIZATION_GROUP, AUTHENTICATION_GROUP, METRICS_GROUP];
    for kind in KINDS.iter().filter(|k| !k.group.is_empty()) {
        if !groups.contains(&kind.group) {
            groups.push(kind.group);
        }
    }
    groups
}

/// One group with its (single) version, preferred.
fn group(name: &str) -> Value {
    let version = match name {
        METRICS_GROUP => METRICS_VERSION,
        _ => KINDS
            .iter()
            .find(|k| k.group == name)
            .map_or("v1", |k| k.version),
    };
    let group_version = json!({"groupVersion": format!("{name}/{version}"), "version": version});
    json!({
        "name": name,
        "versions": [group_version.clone()],
        "preferredVersion": group_version,
    })
}

/// The `APIResourceList` of one group version; `None` if it serves nothing.
fn resource_list(group: &str, version: &str) -> Option<Value> {
    if (group, version) == (AUTHORIZATION_GROUP, "v1") {
        let review = |name: &str, kind: &str, namespaced: bool| {
            json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
                "verbs": ["create"]})
        };
        return Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "authorization.k8s.io/v1",
            "resources": [
                review("selfsubjectaccessreviews", "SelfSubjectAccessReview", false),
                review("subjectaccessreviews", "SubjectAccessReview", false),
                review("selfsubjectrulesreviews", "SelfSubjectRulesReview", false),
                review("localsubjectaccessreviews", "LocalSubjectAccessReview", true),
            ],
        }));
    }
    if (group, version) == (AUTHENTICATION_GROUP, "v1") {
        return Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "authentication.k8s.io/v1",
            "resources": [
                {"name": "selfsubjectreviews", "singularName": "", "namespaced": false,
                    "kind": "SelfSubjectReview", "verbs": ["create"]},
                {"name": "tokenreviews", "singularName": "", "namespaced": false,
                    "kind": "TokenReview", "verbs": ["create"]},
            ],
        }));
    }
    if (group, version) == (METRICS_GROUP, METRICS_VERSION) {
        let metrics = |name: &str, kind: &str, namespaced: bool| {
            json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
                "verbs": ["get", "list"]})
        };
        return Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "metrics.k8s.io/v1beta1",
            "resources": [
                metrics("nodes", "NodeMetrics", false),
                metrics("pods", "PodMetrics", true),
            ],
        }));
    }
    let kinds: Vec<&ResourceKind> = KINDS
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .collect();
    if kinds.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for kind in kinds {
        resources.push(json!({
            "name": kind.plural,
            "singularName": kind.singular,
            "namespaced": kind.namespaced,
            "kind": kind.kind,
            "verbs": VERBS,
            "shortNames": kind.short_names,
        }));
        for (sub, verbs) in subresources(kind) {
            let mut resource = json!({
                "name": format!("{}/{sub}", kind.plural),
                "singularName": "",
                "namespaced": kind.namespaced,
                "kind": subresource_kind(kind, sub),
                "verbs": verbs,
            });
            if sub == "scale" {
                resource["group"] = json!("autoscaling");
                resource["version"] = json!("v1");
            }
            resources.push(resource);
        }
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": kind_group_version(group, version),
        "resources": resources,
    }))
}

fn kind_group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// The subresources a kind serves and their verbs, as the request handlers route them.
fn subresources(kind: &ResourceKind) -> Vec<(&'static str, &'static [&'static str])> {
    let mut subs: Vec<(&'static str, &'static [&'static str])> = Vec::new();
    if has_status_subresource(kind) {
        subs.push(("status", &["get", "patch", "update"]));
    }
    match kind.kind {
        "Pod" => {
            subs.push(("binding", &["create"]));
            subs.push(("eviction", &["create"]));
            subs.push(("exec", &["create", "get"]));
            subs.push(("log", &["get"]));
            subs.push(("portforward", &["create", "get"]));
        }
        "ServiceAccount" => subs.push(("token", &["create"])),
        "CertificateSigningRequest" => subs.push(("approval", &["get", "patch", "update"])),
        "Node" => subs.push(("proxy", &["create", "delete", "get", "patch", "update"])),
        "Deployment" | "ReplicaSet" | "StatefulSet" => {
            subs.push(("scale", &["get", "patch", "update"]))
        }
        _ => {}
    }
    subs
}

/// The kind a subresource speaks: `Binding`, `Eviction`, else the resource's own.
fn subresource_kind(kind: &ResourceKind, sub: &str) -> &'static str {
    match sub {
        "binding" => "Binding",
        "eviction" => "Eviction",
        "token" => "TokenRequest",
        "exec" => "PodExecOptions",
        "portforward" => "PodPortForwardOptions",
        "proxy" => "NodeProxyOptions",
        "scale" => "Scale",
        "log" => "Pod",
        _ => kind.kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_and_group_documents() {
        assert_eq!(document("/api").expect("api")["versions"], json!(["v1"]));
        let core = document("/api/v1").expect("core");
        let names: Vec<&str> = core["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        for name in [
            "pods",
            "pods/status",
            "pods/log",
            "pods/eviction",
            "pods/exec",
            "pods/portforward",
            "nodes/proxy",
            "configmaps",
        ] {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        let groups = document("/apis/").expect("groups");
        let apps = groups["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .find(|g| g["name"] == "apps")
            .expect("apps");
        assert_eq!(apps["preferredVersion"]["groupVersion"], "apps/v1");
        let apps_v1 = document("/apis/apps/v1").expect("apps/v1");
        assert_eq!(apps_v1["groupVersion"], "apps/v1");
        let deployments = apps_v1["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .find(|r| r["name"] == "deployments")
            .expect("deployments");
        assert_eq!(deployments["shortNames"], json!(["deploy"]));
        assert_eq!(deployments["namespaced"], true);
        assert_eq!(document("/apis/apps").expect("group")["kind"], "APIGroup");
        assert!(document("/apis/nothing/v1").is_none());
        let reviews = document("/apis/authorization.k8s.io/v1").expect("authorization");
        assert_eq!(reviews["resources"][0]["name"], "selfsubjectaccessreviews");
        let metrics = groups["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .find(|g| g["name"] == "metrics.k8s.io")
            .expect("metrics.k8s.io");
        assert_eq!(
            metrics["preferredVersion"]["groupVersion"],
            "metrics.k8s.io/v1beta1"
        );
        let metrics = document("/apis/metrics.k8s.io/v1beta1").expect("metrics");
        assert_eq!(metrics["resources"][1]["kind"], "PodMetrics");
        let rbac = document("/apis/rbac.authorization.k8s.io/v1").expect("rbac");
        assert_eq!(rbac["resources"].as_array().map(Vec::len), Some(4));
        assert!(document("/api/v1/pods").is_none());
    }
}
