//! The resource types Skiff serves, and how each maps to API paths and store keys.

/// One served resource type.
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceKind {
    /// API group; `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub namespaced: bool,
}

impl ResourceKind {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `PodList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    fn group_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// `/api/v1/namespaces/default/pods`; all namespaces (or cluster-scoped) when `namespace` is `None`.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{}/namespaces/{ns}/{}", self.group_path(), self.plural),
            None => format!("{}/{}", self.group_path(), self.plural),
        }
    }

    /// `/api/v1/namespaces/default/pods/web-1`.
    pub fn object_path(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}/{name}", self.collection_path(namespace))
    }

    /// Store key prefix of the collection, with a trailing slash:
    /// `/registry/core/pods/default/` or `/registry/apps/deployments/`.
    pub fn store_prefix(&self, namespace: Option<&str>) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("/registry/{group}/{}/{ns}/", self.plural),
            None => format!("/registry/{group}/{}/", self.plural),
        }
    }

    /// Store key of one object.
    pub fn store_key(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}{name}", self.store_prefix(namespace))
    }
}

const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    namespaced: bool,
) -> ResourceKind {
    ResourceKind {
        group,
        version,
        kind,
        plural,
        singular,
        short_names,
        namespaced,
    }
}

/// Every served resource type.
pub static KINDS: &[ResourceKind] = &[
    kind(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        &["ns"],
        false,
    ),
    kind("", "v1", "Pod", "pods", "pod", &["po"], true),
    kind(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "configmap",
        &["cm"],
        true,
    ),
    kind("", "v1", "Secret", "secrets", "secret", &[], true),
    kind(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        &["sa"],
        true,
    ),
    kind(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        "persistentvolume",
        &["pv"],
        false,
    ),
    kind(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        &["pvc"],
        true,
    ),
    kind("", "v1", "Service", "services", "service", &["svc"], true),
    kind(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        "endpoints",
        &["ep"],
        true,
    ),
    kind("", "v1", "Node", "nodes", "node", &["no"], false),
    kind("", "v1", "Event", "events", "event", &["ev"], true),
    kind(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        "resourcequota",
        &["quota"],
        true,
    ),
    kind(
        "",
        "v1",
        "LimitRange",
        "limitranges",
        "limitrange",
        &["limits"],
        true,
    ),
    kind(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        &["deploy"],
        true,
    ),
    kind(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        &["rs"],
        true,
    ),
    kind(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        "daemonset",
        &["ds"],
        true,
    ),
    kind(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        "statefulset",
        &["sts"],
        true,
    ),
    kind(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        &[],
        true,
    ),
    kind("batch", "v1", "Job", "jobs", "job", &[], true),
    kind(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        "cronjob",
        &["cj"],
        true,
    ),
    kind(
        "node.k8s.io",
        "v1",
        "RuntimeClass",
        "runtimeclasses",
        "runtimeclass",
        &[],
        false,
    ),
    kind(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        "storageclass",
        &["sc"],
        false,
    ),
    kind(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        &["pdb"],
        true,
    ),
    kind(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        &[],
        true,
    ),
    kind(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        "ingress",
        &["ing"],
        true,
    ),
    kind(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        "ingressclass",
        &[],
        false,
    ),
    kind(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        "lease",
        &[],
        true,
    ),
    kind(
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        "certificatesigningrequest",
        &["csr"],
        false,
    ),
    kind(RBAC_GROUP, "v1", "Role", "roles", "role", &[], true),
    kind(
        RBAC_GROUP,
        "v1",
        "ClusterRole",
        "clusterroles",
        "clusterrole",
        &[],
        false,
    ),
    kind(
        RBAC_GROUP,
        "v1",
        "RoleBinding",
        "rolebindings",
        "rolebinding",
        &[],
        true,
    ),
    kind(
        RBAC_GROUP,
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        &[],
        false,
    ),
];

/// The API group of Roles, ClusterRoles and their bindings.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// By `apiVersion` and `kind`, as in a manifest.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceKind> {
    KINDS
        .iter()
        .find(|k| k.kind == kind && k.api_version() == api_version)
}

/// By plural, singular, short name or kind, case-insensitive, as the CLI accepts them;
/// `deployments.apps` style names work too.
pub fn by_name(name: &str) -> Option<&'static ResourceKind> {
    let name = name.to_ascii_lowercase();
    let (name, group) = match name.split_once('.') {
        Some((n, g)) => (n.to_string(), Some(g.to_string())),
        None => (name, None),
    };
    KINDS.iter().find(|k| {
        group.as_deref().is_none_or(|g| g == k.group)
            && (k.plural == name
                || k.singular == name
                || k.kind.eq_ignore_ascii_case(&name)
                || k.short_names.contains(&name.as_str()))
    })
}

/// By the path segments of a REST URL.
pub fn by_path(group: &str, version: &str, plural: &str) -> Option<&'static ResourceKind> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.plural == plural)
}

/// The descriptor of a typed k8s-openapi object.
///
/// # Panics
/// If Skiff does not serve `K`: a programming error, not an input error.
pub fn of<K: k8s_openapi::Resource>() -> &'static ResourceKind {
    by_kind(K::API_VERSION, K::KIND)
        .unwrap_or_else(|| panic!("{} {} is not a served kind", K::API_VERSION, K::KIND))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Node, Pod};

    #[test]
    fn every_kind_is_served_once() {
        let mut seen = std::collections::HashSet::new();
        for kind in KINDS {
            assert!(
                seen.insert((kind.group, kind.plural)),
                "{} twice",
                kind.plural
            );
        }
    }

    #[test]
    fn paths_and_keys() {
        let pods = of::<Pod>();
        assert_eq!(
            pods.collection_path(Some("default")),
            "/api/v1/namespaces/default/pods"
        );
        assert_eq!(pods.collection_path(None), "/api/v1/pods");
        assert_eq!(pods.store_key(Some("a"), "p"), "/registry/core/pods/a/p");
        let deployments = of::<Deployment>();
        assert_eq!(
            deployments.object_path(Some("x"), "web"),
            "/apis/apps/v1/namespaces/x/deployments/web"
        );
        assert_eq!(deployments.api_version(), "apps/v1");
        let nodes = of::<Node>();
        assert_eq!(nodes.object_path(Some("ignored"), "n1"), "/api/v1/nodes/n1");
        assert_eq!(nodes.store_prefix(None), "/registry/core/nodes/");
    }

    #[test]
    fn lookups() {
        for name in ["pods", "pod", "po", "Pod", "PODS"] {
            assert_eq!(by_name(name).map(|k| k.kind), Some("Pod"), "{name}");
        }
        assert_eq!(by_name("deploy").map(|k| k.kind), Some("Deployment"));
        assert_eq!(
            by_name("deployments.apps").map(|k| k.kind),
            Some("Deployment")
        );
        assert!(by_name("widgets").is_none());
        assert_eq!(
            by_kind("apps/v1", "ReplicaSet").map(|k| k.plural),
            Some("replicasets")
        );
        assert!(by_kind("v1", "Deployment").is_none());
        assert_eq!(by_path("", "v1", "nodes").map(|k| k.kind), Some("Node"));
        assert_eq!(
            by_name("pdb").map(|k| k.api_version()),
            Some("policy/v1".to_string())
        );
    }
}
