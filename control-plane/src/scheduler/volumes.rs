//! Volume binding in placement (Kubernetes' VolumeBinding plugin, for local volumes): a pod's
//! claims must exist; a bound claim's volume may pin the pod to the nodes of its node
//! affinity; an unbound claim of a WaitForFirstConsumer class lets the pod choose the node
//! (the scheduler then selects it on the claim), while an unbound Immediate claim waits for
//! the binder.

use skiff_api::k8s_openapi::api::core::v1::{
    NodeSelector, PersistentVolume, PersistentVolumeClaim, Pod,
};
use skiff_api::k8s_openapi::api::storage::v1::StorageClass;
use skiff_api::storage::{
    claim_class, claim_volume_name, waits_for_first_consumer, LOCAL_PATH_PROVISIONER,
    SELECTED_NODE_ANNOTATION,
};

use super::node_affinity::selector_matches;
use super::snapshot::{ClusterSnapshot, NodeInfo};
use crate::runtime::informer::object_key;

/// What placement needs to know of one claim (key `namespace/name`).
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimState {
    /// Bound to a volume reachable from the nodes its node affinity selects (all: `None`).
    Bound { affinity: Option<NodeSelector> },
    /// Unbound, of a WaitForFirstConsumer class: bound once the pod's node is chosen (one
    /// with a local-path root when the local-path provisioner makes its volume).
    WaitForConsumer {
        selected_node: Option<String>,
        local_path: bool,
    },
    /// Unbound, waiting for the binder (Immediate binding, or its volume not yet seen).
    Unbound,
    /// Being deleted.
    Deleting,
}

/// Why a node cannot reach a claim's volume.
const CONFLICT: &str = "node(s) had volume node affinity conflict";
/// Why a node cannot hold a local-path volume.
const NO_LOCAL_PATH: &str = "node(s) did not have a local-path storage root";

/// The names of the claims a pod's volumes use.
pub fn claim_names(pod: &Pod) -> impl Iterator<Item = &str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.as_str())
}

/// The state of one claim from the objects (`None` volume: not seen).
pub fn claim_state(
    claim: &PersistentVolumeClaim,
    volume: Option<&PersistentVolume>,
    class: Option<&StorageClass>,
) -> ClaimState {
    if claim.metadata.deletion_timestamp.is_some() {
        return ClaimState::Deleting;
    }
    if claim_volume_name(claim).is_some() {
        return match volume {
            Some(volume) => ClaimState::Bound {
                affinity: volume
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_affinity.as_ref())
                    .and_then(|a| a.required.clone()),
            },
            None => ClaimState::Unbound,
        };
    }
    match class {
        Some(class) if !claim_class(claim).is_empty() && waits_for_first_consumer(class) => {
            ClaimState::WaitForConsumer {
                local_path: class.provisioner == LOCAL_PATH_PROVISIONER,
                selected_node: claim
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(SELECTED_NODE_ANNOTATION))
                    .filter(|n| !n.is_empty())
                    .cloned(),
            }
        }
        _ => ClaimState::Unbound,
    }
}

/// Where one claim lets the pod go.
enum Reach<'a> {
    /// The nodes its volume's node affinity selects.
    Selector(&'a NodeSelector),
    /// Only this node (selected for a volume not yet provisioned).
    Node(&'a str),
    /// A node with a local-path root (where the provisioner can make the volume).
    LocalPath,
}

/// The constraints a pod's claims put on its node.
pub struct PodVolumes<'a> {
    reaches: Vec<Reach<'a>>,
}

impl<'a> PodVolumes<'a> {
    /// The pod's claims as `snapshot` has them; an error names the claim that keeps the pod
    /// off every node. A node selected for a claim that is gone from the cluster no longer
    /// binds the pod (Kubernetes then reschedules and selects anew).
    pub fn new(snapshot: &'a ClusterSnapshot, pod: &Pod) -> Result<Self, String> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let mut reaches = Vec::new();
        for name in claim_names(pod) {
            match snapshot.claims.get(&object_key(Some(namespace), name)) {
                None => return Err(format!("persistentvolumeclaim {name:?} not found")),
                Some(ClaimState::Deleting) => {
                    return Err(format!("persistentvolumeclaim {name:?} is being deleted"))
                }
                Some(ClaimState::Unbound) => {
                    return Err("pod has unbound immediate PersistentVolumeClaims".into())
                }
                Some(ClaimState::Bound { affinity }) => {
                    reaches.extend(affinity.as_ref().map(Reach::Selector));
                }
                Some(ClaimState::WaitForConsumer {
                    selected_node,
                    local_path,
                }) => {
                    reaches.extend(
                        selected_node
                            .as_deref()
                            .filter(|n| snapshot.nodes.contains_key(*n))
                            .map(Reach::Node),
                    );
                    if *local_path {
                        reaches.push(Reach::LocalPath);
                    }
                }
            }
        }
        Ok(PodVolumes { reaches })
    }

    /// Whether every claim's volume can be reached from `node`.
    pub fn filter(&self, node: &NodeInfo) -> Result<(), &'static str> {
        for reach in &self.reaches {
            match reach {
                Reach::Selector(selector) if !selector_matches(selector, node) => {
                    return Err(CONFLICT)
                }
                Reach::Node(name) if *name != node.name => return Err(CONFLICT),
                Reach::LocalPath if !node.local_path_root => return Err(NO_LOCAL_PATH),
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claim_states_from_the_objects() {
        let claim = |extra: serde_json::Value| -> PersistentVolumeClaim {
            let mut claim = json!({"metadata": {"name": "data"},
                "spec": {"storageClassName": "local-path"}});
            for (k, v) in extra.as_object().into_iter().flatten() {
                for (field, value) in v.as_object().into_iter().flatten() {
                    claim[k][field] = value.clone();
                }
            }
            serde_json::from_value(claim).expect("claim")
        };
        let wffc: StorageClass = serde_json::from_value(json!({"metadata": {"name": "local-path"},
            "provisioner": "skiff.dev/local-path", "volumeBindingMode": "WaitForFirstConsumer"}))
        .expect("class");
        let immediate: StorageClass = serde_json::from_value(json!({"metadata": {"name": "x"},
            "provisioner": "skiff.dev/local-path"}))
        .expect("class");
        let pinned: PersistentVolume = serde_json::from_value(json!({"metadata": {"name": "pv"},
            "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": []}}}}))
        .expect("volume");
        let bound = claim(json!({"spec": {"volumeName": "pv"}}));
        assert_eq!(
            claim_state(&bound, Some(&pinned), Some(&wffc)),
            ClaimState::Bound {
                affinity: Some(NodeSelector::default())
            }
        );
        assert_eq!(
            claim_state(&bound, None, Some(&wffc)),
            ClaimState::Unbound,
            "its volume not seen yet"
        );
        assert_eq!(
            claim_state(&claim(json!({})), None, Some(&wffc)),
            ClaimState::WaitForConsumer {
                selected_node: None,
                local_path: true
            }
        );
        let selected = claim(json!({"metadata": {"annotations":
            {"volume.kubernetes.io/selected-node": "n1"}}}));
        assert_eq!(
            claim_state(&selected, None, Some(&wffc)),
            ClaimState::WaitForConsumer {
                selected_node: Some("n1".into()),
                local_path: true
            }
        );
        assert_eq!(
            claim_state(&claim(json!({})), None, Some(&immediate)),
            ClaimState::Unbound
        );
        let deleting = claim(json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}));
        assert_eq!(claim_state(&deleting, None, None), ClaimState::Deleting);
    }
}
