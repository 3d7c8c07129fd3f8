//! The local-path provisioner's volume (k3s's `local-path-provisioner`): a directory under the
//! node's storage root, reachable only from that node, sized as the claim asks, pre-bound to
//! the claim, and reclaimed as its class says.

use std::collections::BTreeMap;

use skiff_api::k8s_openapi::api::core::v1::{
    LocalVolumeSource, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectReference,
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec, VolumeNodeAffinity,
};
use skiff_api::k8s_openapi::api::storage::v1::StorageClass;
use skiff_api::k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_api::storage::{
    class_reclaim_policy, local_path_dir_name, HOSTNAME_LABEL, LOCAL_PATH_PROVISIONER,
    PROVISIONED_BY_ANNOTATION,
};

/// The name of the volume provisioned for a claim: `pvc-<claim uid>`, as Kubernetes names
/// them; fixed by the claim, so a provisioner that retries (or a new leader) makes the same one.
pub fn volume_name(claim: &PersistentVolumeClaim) -> String {
    format!("pvc-{}", claim.metadata.uid.as_deref().unwrap_or_default())
}

/// The volume for `claim` of `class` on `node`, whose local-path root is `root`.
pub fn local_volume(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    node: &str,
    root: &str,
) -> PersistentVolume {
    let name = volume_name(claim);
    let namespace = claim
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let claim_name = claim.metadata.name.clone().unwrap_or_default();
    let spec = claim.spec.clone().unwrap_or_default();
    let path = format!(
        "{}/{}",
        root.trim_end_matches('/'),
        local_path_dir_name(&name, &namespace, &claim_name)
    );
    let request = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .cloned()
        .unwrap_or_else(|| Quantity("0".into()));
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(name),
            annotations: Some(BTreeMap::from([(
                PROVISIONED_BY_ANNOTATION.to_string(),
                LOCAL_PATH_PROVISIONER.to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(PersistentVolumeSpec {
            capacity: Some(BTreeMap::from([("storage".to_string(), request)])),
            access_modes: spec.access_modes,
            persistent_volume_reclaim_policy: Some(class_reclaim_policy(class).to_string()),
            storage_class_name: class.metadata.name.clone(),
            local: Some(LocalVolumeSource {
                path,
                fs_type: None,
            }),
            node_affinity: Some(VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: HOSTNAME_LABEL.to_string(),
                            operator: "In".into(),
                            values: Some(vec![node.to_string()]),
                        }]),
                        match_fields: None,
                    }],
                }),
            }),
            claim_ref: Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("PersistentVolumeClaim".into()),
                namespace: Some(namespace),
                name: Some(claim_name),
                uid: claim.metadata.uid.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_provisioned_volume_is_pinned_to_its_node_and_pre_bound() {
        let claim: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "shop", "uid": "u1"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "keep",
                "resources": {"requests": {"storage": "64Mi"}}}
        }))
        .expect("claim");
        let class: StorageClass = serde_json::from_value(json!({
            "metadata": {"name": "keep"}, "provisioner": LOCAL_PATH_PROVISIONER,
            "reclaimPolicy": "Retain"
        }))
        .expect("class");
        let volume =
            serde_json::to_value(local_volume(&claim, &class, "n1", "/var/skiff/storage/"))
                .expect("json");
        assert_eq!(volume["metadata"]["name"], "pvc-u1");
        let spec = &volume["spec"];
        assert_eq!(spec["local"]["path"], "/var/skiff/storage/pvc-u1_shop_data");
        assert_eq!(spec["capacity"]["storage"], "64Mi");
        assert_eq!(spec["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(spec["storageClassName"], "keep");
        assert_eq!(spec["accessModes"], json!(["ReadWriteOnce"]));
        assert_eq!(
            spec["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0],
            json!({"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]})
        );
        assert_eq!(
            spec["claimRef"],
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "namespace": "shop", "name": "data", "uid": "u1"})
        );
    }
}
