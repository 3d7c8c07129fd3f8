//! The patch strategies of the built-in kinds Skiff serves: which lists merge by which key
//! (the `patchStrategy:"merge"` / `patchMergeKey` markers of the Kubernetes API types), which
//! lists of primitives merge as sets, and the type of each nested field on the way to them.
//! A list not named here is replaced whole, as Kubernetes replaces a list without a strategy.

/// How a patch's value of one field is merged into the object's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Not a merging list: an object field whose own fields are looked up under the child type.
    Nested,
    /// A list of objects merged element by element, matched by this key.
    MergeByKey(&'static str),
    /// A list of primitives merged as a set (`finalizers`).
    MergePrimitives,
}

/// One field of a schema type: (type, field, type of the field or its elements, strategy).
type Row = (&'static str, &'static str, &'static str, Strategy);

use Strategy::{MergeByKey, MergePrimitives, Nested};

/// Every kind Skiff serves, with the schema type of the whole object.
const KINDS: &[&str] = &[
    "Namespace",
    "Pod",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Service",
    "Endpoints",
    "Node",
    "Event",
    "ResourceQuota",
    "LimitRange",
    "Deployment",
    "ReplicaSet",
    "DaemonSet",
    "StatefulSet",
    "ControllerRevision",
    "Job",
    "CronJob",
    "RuntimeClass",
    "StorageClass",
    "PodDisruptionBudget",
    "EndpointSlice",
    "Ingress",
    "IngressClass",
    "Lease",
    "CertificateSigningRequest",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "Scale",
];

const FIELDS: &[Row] = &[
    ("ObjectMeta", "finalizers", "", MergePrimitives),
    ("ObjectMeta", "ownerReferences", "", MergeByKey("uid")),
    // Pods and the workloads that carry a pod template.
    ("Pod", "spec", "PodSpec", Nested),
    ("Pod", "status", "PodStatus", Nested),
    ("Deployment", "spec", "WorkloadSpec", Nested),
    ("Deployment", "status", "WorkloadStatus", Nested),
    ("ReplicaSet", "spec", "WorkloadSpec", Nested),
    ("ReplicaSet", "status", "WorkloadStatus", Nested),
    ("DaemonSet", "spec", "WorkloadSpec", Nested),
    ("DaemonSet", "status", "WorkloadStatus", Nested),
    ("StatefulSet", "spec", "WorkloadSpec", Nested),
    ("StatefulSet", "status", "WorkloadStatus", Nested),
    ("Job", "spec", "WorkloadSpec", Nested),
    ("Job", "status", "WorkloadStatus", Nested),
    ("CronJob", "spec", "CronJobSpec", Nested),
    ("CronJobSpec", "jobTemplate", "JobTemplateSpec", Nested),
    ("JobTemplateSpec", "metadata", "ObjectMeta", Nested),
    ("JobTemplateSpec", "spec", "WorkloadSpec", Nested),
    ("WorkloadSpec", "template", "PodTemplateSpec", Nested),
    ("WorkloadStatus", "conditions", "", MergeByKey("type")),
    ("PodTemplateSpec", "metadata", "ObjectMeta", Nested),
    ("PodTemplateSpec", "spec", "PodSpec", Nested),
    ("PodSpec", "volumes", "", MergeByKey("name")),
    ("PodSpec", "initContainers", "Container", MergeByKey("name")),
    ("PodSpec", "containers", "Container", MergeByKey("name")),
    (
        "PodSpec",
        "ephemeralContainers",
        "Container",
        MergeByKey("name"),
    ),
    ("PodSpec", "imagePullSecrets", "", MergeByKey("name")),
    ("PodSpec", "hostAliases", "", MergeByKey("ip")),
    (
        "PodSpec",
        "topologySpreadConstraints",
        "",
        MergeByKey("topologyKey"),
    ),
    ("PodSpec", "resourceClaims", "", MergeByKey("name")),
    ("PodSpec", "schedulingGates", "", MergeByKey("name")),
    ("Container", "ports", "", MergeByKey("containerPort")),
    ("Container", "env", "", MergeByKey("name")),
    ("Container", "volumeMounts", "", MergeByKey("mountPath")),
    ("Container", "volumeDevices", "", MergeByKey("devicePath")),
    ("PodStatus", "conditions", "", MergeByKey("type")),
    ("PodStatus", "podIPs", "", MergeByKey("ip")),
    ("PodStatus", "hostIPs", "", MergeByKey("ip")),
    // Services, nodes and the rest with merging lists.
    ("Service", "spec", "ServiceSpec", Nested),
    ("Service", "status", "ConditionsStatus", Nested),
    ("ServiceSpec", "ports", "", MergeByKey("port")),
    ("Node", "spec", "NodeSpec", Nested),
    ("Node", "status", "NodeStatus", Nested),
    ("NodeSpec", "podCIDRs", "", MergePrimitives),
    ("NodeStatus", "conditions", "", MergeByKey("type")),
    ("NodeStatus", "addresses", "", MergeByKey("type")),
    ("Namespace", "status", "ConditionsStatus", Nested),
    (
        "PersistentVolumeClaim",
        "status",
        "ConditionsStatus",
        Nested,
    ),
    ("PodDisruptionBudget", "status", "ConditionsStatus", Nested),
    ("ConditionsStatus", "conditions", "", MergeByKey("type")),
    ("ServiceAccount", "secrets", "", MergeByKey("name")),
];

/// The schema type of a whole object of `kind`, or `None` for a kind with no strategic merge
/// schema (Kubernetes refuses strategic merge patches of custom resources with 415).
pub fn root(kind: &str) -> Option<&'static str> {
    KINDS.iter().find(|k| **k == kind).copied()
}

/// How `field` of a value of schema type `ty` merges, and the type of its value (or of its
/// elements); `None` for a field whose lists are replaced and whose maps merge plainly.
pub fn field(ty: &str, field: &str) -> Option<(Strategy, &'static str)> {
    if field == "metadata" && root(ty).is_some() {
        return Some((Nested, "ObjectMeta"));
    }
    FIELDS
        .iter()
        .find(|(t, f, _, _)| *t == ty && *f == field)
        .map(|(_, _, child, strategy)| (*strategy, *child))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_kind_has_a_schema() {
        for kind in skiff_api::resources::KINDS {
            assert!(root(kind.kind).is_some(), "{} has no schema", kind.kind);
        }
    }

    #[test]
    fn every_nested_type_is_described() {
        for (_, f, child, strategy) in FIELDS {
            if *strategy == Nested {
                let described =
                    FIELDS.iter().any(|(t, _, _, _)| t == child) || *child == "ObjectMeta";
                assert!(described, "{f}: {child} has no fields");
            }
        }
    }
}
