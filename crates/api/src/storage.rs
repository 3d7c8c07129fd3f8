//! Persistent storage facts shared by the server, the scheduler and the agent: the default
//! StorageClass Skiff ships (k3s's `local-path`), the annotations that tie claims, nodes and
//! provisioned volumes together, and reading sizes and modes off PVs and PVCs.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;

use crate::quantity;

/// The StorageClass every cluster has, and the default one.
pub const LOCAL_PATH_CLASS: &str = "local-path";
/// The provisioner of [`LOCAL_PATH_CLASS`]: a directory on the node.
pub const LOCAL_PATH_PROVISIONER: &str = "skiff.dev/local-path";
/// The annotation marking the default StorageClass (Kubernetes' DefaultStorageClass admission).
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
/// The node a WaitForFirstConsumer claim is provisioned on, set by the scheduler.
pub const SELECTED_NODE_ANNOTATION: &str = "volume.kubernetes.io/selected-node";
/// The node annotation an agent reports: the directory its local-path volumes live under.
pub const LOCAL_PATH_ROOT_ANNOTATION: &str = "skiff.dev/local-path-root";
/// The annotation a provisioner puts on the PVs it made (Kubernetes' `pv.kubernetes.io/provisioned-by`).
pub const PROVISIONED_BY_ANNOTATION: &str = "pv.kubernetes.io/provisioned-by";
/// The node label local volumes' node affinity matches.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// Whether `class` carries the default-class annotation.
pub fn is_default_class(class: &StorageClass) -> bool {
    class
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// Whether `class` provisions only once a pod uses the claim.
pub fn waits_for_first_consumer(class: &StorageClass) -> bool {
    class.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer")
}

/// The class's reclaim policy (`Delete` unless it says otherwise, as Kubernetes defaults it).
pub fn class_reclaim_policy(class: &StorageClass) -> &str {
    class.reclaim_policy.as_deref().unwrap_or("Delete")
}

/// Bytes a claim asks for (`spec.resources.requests.storage`); 0 when unset or unparsable.
pub fn claim_request_bytes(claim: &PersistentVolumeClaim) -> u64 {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| quantity::parse_bytes(&q.0).ok())
        .unwrap_or(0)
}

/// Bytes a volume offers (`spec.capacity.storage`); 0 when unset or unparsable.
pub fn volume_capacity_bytes(volume: &PersistentVolume) -> u64 {
    volume
        .spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| quantity::parse_bytes(&q.0).ok())
        .unwrap_or(0)
}

/// The class a claim names; `""` (no class) when it names none.
pub fn claim_class(claim: &PersistentVolumeClaim) -> &str {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or_default()
}

/// The class a volume belongs to; `""` when none.
pub fn volume_class(volume: &PersistentVolume) -> &str {
    volume
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or_default()
}

/// The volume a claim is bound to (`spec.volumeName`), if any.
pub fn claim_volume_name(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .filter(|v| !v.is_empty())
}

/// The path of a volume's directory on its node: `spec.local.path` or `spec.hostPath.path`.
pub fn volume_path(volume: &PersistentVolume) -> Option<&str> {
    let spec = volume.spec.as_ref()?;
    spec.local
        .as_ref()
        .map(|l| l.path.as_str())
        .or_else(|| spec.host_path.as_ref().map(|h| h.path.as_str()))
}

/// The directory name a local-path volume gets under its node's root: `<pv>_<ns>_<pvc>`
/// (k3s's layout, so an operator can tell whose data a directory holds).
pub fn local_path_dir_name(volume: &str, namespace: &str, claim: &str) -> String {
    format!("{volume}_{namespace}_{claim}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_and_names_read_off_claims_and_volumes() {
        let claim: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "data"},
            "spec": {"resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "fast"}
        }))
        .expect("claim");
        assert_eq!(claim_request_bytes(&claim), 1 << 30);
        assert_eq!(claim_class(&claim), "fast");
        assert_eq!(claim_volume_name(&claim), None);
        let volume: PersistentVolume = serde_json::from_value(json!({
            "metadata": {"name": "pv1"},
            "spec": {"capacity": {"storage": "2Gi"}, "hostPath": {"path": "/srv/pv1"}}
        }))
        .expect("volume");
        assert_eq!(volume_capacity_bytes(&volume), 2 << 30);
        assert_eq!(volume_class(&volume), "");
        assert_eq!(volume_path(&volume), Some("/srv/pv1"));
        assert_eq!(local_path_dir_name("pvc-1", "ns", "data"), "pvc-1_ns_data");
    }

    #[test]
    fn class_modes_and_defaults() {
        let class: StorageClass = serde_json::from_value(json!({
            "metadata": {"name": "local-path",
                "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
            "provisioner": LOCAL_PATH_PROVISIONER,
            "volumeBindingMode": "WaitForFirstConsumer"
        }))
        .expect("class");
        assert!(is_default_class(&class));
        assert!(waits_for_first_consumer(&class));
        assert_eq!(class_reclaim_policy(&class), "Delete");
    }
}
