//! The binder's decisions as pure functions (Kubernetes' PV controller): what to do next for
//! one claim given the volumes, its class and the nodes; what phase one volume is in given
//! its claim. Binding is two writes (the volume's `claimRef`, then the claim's `volumeName`),
//! and every decision starts from what the objects say, so a binder that died between them
//! (a leader failover) or lost a race (409) finishes the same binding, never a second one.

use skiff_api::k8s_openapi::api::core::v1::{
    ObjectReference, PersistentVolume, PersistentVolumeClaim,
};
use skiff_api::k8s_openapi::api::storage::v1::StorageClass;
use skiff_api::storage::{
    claim_class, claim_request_bytes, claim_volume_name, volume_capacity_bytes, volume_class,
    waits_for_first_consumer, LOCAL_PATH_PROVISIONER, SELECTED_NODE_ANNOTATION,
};

use crate::scheduler::{selector_matches, NodeInfo};

/// A node as the provisioner sees it.
#[derive(Debug, Clone)]
pub struct StorageNode {
    pub info: NodeInfo,
    /// Where its agent keeps local-path volumes, if it said.
    pub root: Option<String>,
}

/// The next step for one claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimStep {
    /// Bound both ways: make the statuses say so.
    Bound { volume: String },
    /// Write the claim into this Available volume's `claimRef` (first write).
    ClaimVolume { volume: String },
    /// The volume already names the claim: set the claim's `volumeName` (second write).
    SetVolumeName { volume: String },
    /// Create a local-path volume for the claim on this node.
    Provision { node: String, root: String },
    /// Nothing to do until something changes; Pending, with the reason for an event.
    Wait {
        reason: &'static str,
        message: String,
    },
    /// The claim's volume is gone.
    Lost { volume: String },
}

/// What the binder knows about a claim's class.
pub enum ClassLookup<'a> {
    /// The claim names no class (`""`).
    None,
    Found(&'a StorageClass),
    /// The named class does not exist (deleted after the claim was admitted).
    Missing,
}

/// Decides the next step for `claim`.
pub fn claim_step(
    claim: &PersistentVolumeClaim,
    volumes: &[&PersistentVolume],
    class: ClassLookup<'_>,
    nodes: &[StorageNode],
) -> ClaimStep {
    if let Some(name) = claim_volume_name(claim) {
        return match volumes
            .iter()
            .find(|v| v.metadata.name.as_deref() == Some(name))
        {
            None => ClaimStep::Lost {
                volume: name.to_string(),
            },
            Some(volume) => match volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
                Some(reference) if refers_to(reference, claim) => ClaimStep::Bound {
                    volume: name.to_string(),
                },
                Some(_) => ClaimStep::Wait {
                    reason: "FailedBinding",
                    message: format!("volume {name:?} already bound to a different claim"),
                },
                None if fits(volume, claim) => ClaimStep::ClaimVolume {
                    volume: name.to_string(),
                },
                None => ClaimStep::Wait {
                    reason: "FailedBinding",
                    message: format!(
                        "volume {name:?} does not match the claim (class, access modes or size)"
                    ),
                },
            },
        };
    }
    // A volume naming this claim wins over any other (a half-done binding, a provisioned volume).
    if let Some(volume) = volumes.iter().find(|v| {
        v.spec
            .as_ref()
            .and_then(|s| s.claim_ref.as_ref())
            .is_some_and(|r| refers_to(r, claim))
    }) {
        return ClaimStep::SetVolumeName {
            volume: volume.metadata.name.clone().unwrap_or_default(),
        };
    }
    let selected = claim
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SELECTED_NODE_ANNOTATION))
        .filter(|n| !n.is_empty());
    let class = match class {
        ClassLookup::Missing => {
            return ClaimStep::Wait {
                reason: "ProvisioningFailed",
                message: format!(
                    "storageclass.storage.k8s.io {:?} not found",
                    claim_class(claim)
                ),
            }
        }
        ClassLookup::None => None,
        ClassLookup::Found(class) => Some(class),
    };
    let wait_for_consumer = class.is_some_and(waits_for_first_consumer);
    if wait_for_consumer && selected.is_none() {
        return ClaimStep::Wait {
            reason: "WaitForFirstConsumer",
            message: "waiting for first consumer to be created before binding".into(),
        };
    }
    let on_node = selected.and_then(|name| nodes.iter().find(|n| &n.info.name == name));
    if let Some(volume) = best_fit(claim, volumes, on_node.filter(|_| wait_for_consumer)) {
        return ClaimStep::ClaimVolume { volume };
    }
    let Some(class) = class else {
        return ClaimStep::Wait {
            reason: "FailedBinding",
            message: "no persistent volumes available for this claim and no storage class is set"
                .into(),
        };
    };
    if class.provisioner != LOCAL_PATH_PROVISIONER {
        return ClaimStep::Wait {
            reason: "ExternalProvisioning",
            message: format!(
                "waiting for a volume to be created by the external provisioner {:?}",
                class.provisioner
            ),
        };
    }
    let node = match selected {
        Some(name) => nodes.iter().find(|n| &n.info.name == name),
        // Immediate binding: any ready node that has a local-path root, the first by name.
        None => nodes
            .iter()
            .filter(|n| n.info.ready && n.root.is_some())
            .min_by(|a, b| a.info.name.cmp(&b.info.name)),
    };
    match node {
        Some(StorageNode {
            info,
            root: Some(root),
        }) => ClaimStep::Provision {
            node: info.name.clone(),
            root: root.clone(),
        },
        Some(node) => ClaimStep::Wait {
            reason: "ProvisioningFailed",
            message: format!("node {:?} has no local-path storage root", node.info.name),
        },
        None => ClaimStep::Wait {
            reason: "ProvisioningFailed",
            message: match selected {
                Some(name) => format!("selected node {name:?} not found"),
                None => "no ready node with a local-path storage root".into(),
            },
        },
    }
}

/// Whether a volume's `claimRef` names this claim (a reference without uid pre-binds by name).
pub fn refers_to(reference: &ObjectReference, claim: &PersistentVolumeClaim) -> bool {
    reference.name == claim.metadata.name
        && reference.namespace.as_deref().unwrap_or("default")
            == claim.metadata.namespace.as_deref().unwrap_or("default")
        && reference
            .uid
            .as_deref()
            .filter(|u| !u.is_empty())
            .is_none_or(|uid| claim.metadata.uid.as_deref() == Some(uid))
}

/// The smallest Available volume that fits, by name on ties; on `node` only when given.
fn best_fit(
    claim: &PersistentVolumeClaim,
    volumes: &[&PersistentVolume],
    node: Option<&StorageNode>,
) -> Option<String> {
    volumes
        .iter()
        .filter(|v| v.spec.as_ref().is_some_and(|s| s.claim_ref.is_none()))
        .filter(|v| v.metadata.deletion_timestamp.is_none() && phase(v) == "Available")
        .filter(|v| fits(v, claim))
        .filter(|v| {
            node.is_none_or(|node| {
                v.spec
                    .as_ref()
                    .and_then(|s| s.node_affinity.as_ref())
                    .and_then(|a| a.required.as_ref())
                    .is_none_or(|required| selector_matches(required, &node.info))
            })
        })
        .min_by_key(|v| (volume_capacity_bytes(v), v.metadata.name.clone()))
        .and_then(|v| v.metadata.name.clone())
}

/// Same class, every access mode the claim asks for, and at least the requested size.
fn fits(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let modes = |m: Option<&Vec<String>>| m.cloned().unwrap_or_default();
    let offered = modes(volume.spec.as_ref().and_then(|s| s.access_modes.as_ref()));
    let wanted = modes(claim.spec.as_ref().and_then(|s| s.access_modes.as_ref()));
    volume_class(volume) == claim_class(claim)
        && wanted.iter().all(|m| offered.contains(m))
        && volume_capacity_bytes(volume) >= claim_request_bytes(claim)
}

/// A volume's phase; a volume not yet seen by the binder counts as Available.
pub fn phase(volume: &PersistentVolume) -> &str {
    volume
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Available")
}

/// The next step for one volume, given the claim its `claimRef` names as read from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeStep {
    /// Set the phase (Available, Bound or Released) if it differs.
    Phase(&'static str),
    /// Released with reclaim policy Delete: delete the volume.
    Delete,
    /// The reference's claim is bound to another volume (a lost race): clear `claimRef`.
    Unclaim,
}

/// Decides the next step for `volume`; `claim` is the claim its `claimRef` names, if it exists.
pub fn volume_step(volume: &PersistentVolume, claim: Option<&PersistentVolumeClaim>) -> VolumeStep {
    let Some(reference) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return VolumeStep::Phase("Available");
    };
    let pre_bound = reference.uid.as_deref().is_none_or(str::is_empty);
    match claim.filter(|c| refers_to(reference, c)) {
        Some(claim) => match claim_volume_name(claim) {
            Some(name) if Some(name) == volume.metadata.name.as_deref() => {
                VolumeStep::Phase("Bound")
            }
            Some(_) if !pre_bound => VolumeStep::Unclaim,
            // The claim's half of the binding is still to be written.
            _ => VolumeStep::Phase(if phase(volume) == "Bound" {
                "Bound"
            } else {
                "Available"
            }),
        },
        // Waiting for a claim of that name to be created.
        None if pre_bound => VolumeStep::Phase("Available"),
        None => {
            let reclaim = volume
                .spec
                .as_ref()
                .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
                .unwrap_or("Retain");
            if reclaim == "Delete" {
                VolumeStep::Delete
            } else {
                VolumeStep::Phase("Released")
            }
        }
    }
}

#[cfg(test)]
#[path = "binder_tests.rs"]
mod tests;
