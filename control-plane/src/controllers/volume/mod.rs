//! Persistent storage on the leader (Kubernetes' PV controller with k3s's local-path
//! provisioner built in): binds claims to volumes, provisions local-path volumes (at once for
//! Immediate classes, on the node the scheduler selected for WaitForFirstConsumer ones), keeps
//! both objects' phases, and reclaims volumes whose claim is gone.

mod binder;
mod provision;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use skiff_api::k8s_openapi::api::core::v1::{
    Node, ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimStatus,
    PersistentVolumeStatus, Pod,
};
use skiff_api::k8s_openapi::api::storage::v1::StorageClass;
use skiff_api::resources;
use skiff_api::storage::{claim_class, claim_volume_name, LOCAL_PATH_ROOT_ANNOTATION};

pub use self::binder::{claim_step, volume_step, ClaimStep, ClassLookup, StorageNode, VolumeStep};
use crate::error::ApiError;
use crate::registry::{typed, Registry, Subresource};
use crate::runtime::events::{EventRecorder, EventType};
use crate::runtime::informer::{key_of, object_key, revision_of, Informer};
use crate::runtime::runner::{Action, Reconciler};
use crate::scheduler::NodeInfo;

/// The claim key a volume's change concerns (the claim its `claimRef` names).
pub fn claim_key_of(volume: &PersistentVolume) -> Option<String> {
    let reference = volume.spec.as_ref()?.claim_ref.as_ref()?;
    Some(object_key(
        Some(reference.namespace.as_deref().unwrap_or("default")),
        reference.name.as_deref()?,
    ))
}

/// The volume key a claim's change concerns (its `volumeName`).
pub fn volume_key_of(claim: &PersistentVolumeClaim) -> Option<String> {
    claim_volume_name(claim).map(str::to_string)
}

/// Binds and provisions for claims (keys `namespace/name`).
pub struct ClaimBinder {
    pub registry: Registry,
    pub claims: Arc<Informer<PersistentVolumeClaim>>,
    pub volumes: Arc<Informer<PersistentVolume>>,
    pub classes: Arc<Informer<StorageClass>>,
    pub nodes: Arc<Informer<Node>>,
    pub events: EventRecorder,
    /// The last waiting message reported per claim, so a resync does not repeat its event.
    pub reported: Mutex<HashMap<String, String>>,
}

#[async_trait]
impl Reconciler for ClaimBinder {
    fn name(&self) -> &'static str {
        "persistentvolume-binder"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        self.volumes.synced().await;
        self.classes.synced().await;
        self.nodes.synced().await;
        let Some(claim) = self.claims.get(key) else {
            self.reported.lock().expect("reported lock").remove(key);
            return Ok(Action::await_change());
        };
        if claim.metadata.deletion_timestamp.is_some() {
            return Ok(Action::await_change());
        }
        let volumes = self.volumes.list(|_| true);
        let volume_refs: Vec<&PersistentVolume> = volumes.iter().map(Arc::as_ref).collect();
        let class = match claim_class(&claim) {
            "" => None,
            name => Some(self.classes.get(name)),
        };
        let lookup = match &class {
            None => ClassLookup::None,
            Some(Some(class)) => ClassLookup::Found(class),
            Some(None) => ClassLookup::Missing,
        };
        let nodes: Vec<StorageNode> = self
            .nodes
            .list(|_| true)
            .iter()
            .map(|node| StorageNode {
                info: NodeInfo::of(node),
                root: node
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(LOCAL_PATH_ROOT_ANNOTATION))
                    .cloned(),
            })
            .collect();
        let step = claim_step(&claim, &volume_refs, lookup, &nodes);
        if !matches!(step, ClaimStep::Wait { .. } | ClaimStep::Lost { .. }) {
            self.reported.lock().expect("reported lock").remove(key);
        }
        match step {
            ClaimStep::Bound { volume } => {
                let Some(volume) = self.volumes.get(&volume) else {
                    return Ok(Action::await_change());
                };
                let spec = volume.spec.clone().unwrap_or_default();
                let status = PersistentVolumeClaimStatus {
                    phase: Some("Bound".into()),
                    capacity: spec.capacity,
                    access_modes: spec.access_modes,
                    ..Default::default()
                };
                self.set_claim_status(&claim, status).await?;
                Ok(Action::await_change())
            }
            ClaimStep::ClaimVolume { volume: name } => {
                let Some(volume) = self.volumes.get(&name) else {
                    return Ok(Action::await_change());
                };
                let mut volume = (*volume).clone();
                let spec = volume.spec.get_or_insert_with(Default::default);
                spec.claim_ref = Some(claim_reference(&claim));
                let written = self
                    .registry
                    .update_typed(&volume, Subresource::Main)
                    .await?;
                self.volumes.wait_for(revision_of(&written)).await;
                Ok(Action::requeue(Duration::ZERO))
            }
            ClaimStep::SetVolumeName { volume } => {
                let mut bound = (*claim).clone();
                bound.spec.get_or_insert_with(Default::default).volume_name = Some(volume.clone());
                let written = self
                    .registry
                    .update_typed(&bound, Subresource::Main)
                    .await?;
                self.claims.wait_for(revision_of(&written)).await;
                self.events.record(
                    &*claim,
                    EventType::Normal,
                    "Bound",
                    format!("bound to volume {volume:?}"),
                );
                Ok(Action::requeue(Duration::ZERO))
            }
            ClaimStep::Provision { node, root } => {
                let Some(Some(class)) = class else {
                    return Ok(Action::await_change());
                };
                let volume = provision::local_volume(&claim, &class, &node, &root);
                let name = provision::volume_name(&claim);
                match self.registry.create_typed(&volume).await {
                    Ok(created) => {
                        self.volumes.wait_for(revision_of(&created)).await;
                        self.events.record(
                            &*claim,
                            EventType::Normal,
                            "ProvisioningSucceeded",
                            format!("successfully provisioned volume {name} on node {node}"),
                        );
                    }
                    Err(ApiError::AlreadyExists { .. }) => {}
                    Err(err) => return Err(err),
                }
                Ok(Action::requeue(Duration::ZERO))
            }
            ClaimStep::Wait { reason, message } => {
                let kind = if reason == "WaitForFirstConsumer" {
                    EventType::Normal
                } else {
                    EventType::Warning
                };
                self.report_once(key, &claim, kind, reason, message);
                self.set_claim_phase(&claim, "Pending").await?;
                Ok(Action::await_change())
            }
            ClaimStep::Lost { volume } => {
                let message = format!("bound volume {volume:?} is gone");
                self.report_once(key, &claim, EventType::Warning, "ClaimLost", message);
                self.set_claim_phase(&claim, "Lost").await?;
                Ok(Action::await_change())
            }
        }
    }
}

impl ClaimBinder {
    /// Records an event about a claim that waits, unless its last one said the same.
    fn report_once(
        &self,
        key: &str,
        claim: &PersistentVolumeClaim,
        kind: EventType,
        reason: &str,
        message: String,
    ) {
        let new = self
            .reported
            .lock()
            .expect("reported lock")
            .insert(key.to_string(), message.clone())
            .is_none_or(|last| last != message);
        if new {
            self.events.record(claim, kind, reason, message);
        }
    }

    async fn set_claim_phase(
        &self,
        claim: &PersistentVolumeClaim,
        phase: &str,
    ) -> Result<(), ApiError> {
        let status = PersistentVolumeClaimStatus {
            phase: Some(phase.into()),
            ..Default::default()
        };
        self.set_claim_status(claim, status).await
    }

    async fn set_claim_status(
        &self,
        claim: &PersistentVolumeClaim,
        status: PersistentVolumeClaimStatus,
    ) -> Result<(), ApiError> {
        if claim.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut next = claim.clone();
        next.status = Some(status);
        let written = self
            .registry
            .update_typed(&next, Subresource::Status)
            .await?;
        self.claims.wait_for(revision_of(&written)).await;
        Ok(())
    }
}

/// The `claimRef` a volume bound to `claim` carries.
fn claim_reference(claim: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: claim.metadata.namespace.clone(),
        name: claim.metadata.name.clone(),
        uid: claim.metadata.uid.clone(),
        resource_version: claim.metadata.resource_version.clone(),
        ..Default::default()
    }
}

/// Keeps volumes' phases and reclaims those whose claim is gone (keys: volume names).
/// How soon a released volume still in use is looked at again.
const IN_USE_RECHECK: Duration = Duration::from_secs(2);

/// Deletes released volumes of reclaim policy Delete, keeps Retain ones Released.
pub struct VolumeReclaimer {
    pub registry: Registry,
    pub volumes: Arc<Informer<PersistentVolume>>,
    /// A released volume is deleted only once no pod that may still run uses its claim.
    pub pods: Arc<Informer<Pod>>,
    pub events: EventRecorder,
}

#[async_trait]
impl Reconciler for VolumeReclaimer {
    fn name(&self) -> &'static str {
        "persistentvolume-reclaimer"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let Some(volume) = self.volumes.get(key) else {
            return Ok(Action::await_change());
        };
        if volume.metadata.deletion_timestamp.is_some() {
            return Ok(Action::await_change());
        }
        // The claim is read from the store, not a cache: a claim the cache has not seen yet
        // must not get its new volume released.
        let claim = match volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
            Some(reference) => {
                let claims = resources::of::<PersistentVolumeClaim>();
                let namespace = reference.namespace.as_deref().unwrap_or("default");
                let name = reference.name.as_deref().unwrap_or_default();
                match self.registry.get(claims, Some(namespace), name).await {
                    Ok(claim) => Some(typed::from_value::<PersistentVolumeClaim>(claim)?),
                    Err(ApiError::NotFound { .. }) => None,
                    Err(err) => return Err(err),
                }
            }
            None => None,
        };
        match volume_step(&volume, claim.as_ref()) {
            VolumeStep::Phase(phase) => {
                if binder::phase(&volume) != phase || volume.status.is_none() {
                    let mut next = (*volume).clone();
                    next.status = Some(PersistentVolumeStatus {
                        phase: Some(phase.into()),
                        ..Default::default()
                    });
                    let written = self
                        .registry
                        .update_typed(&next, Subresource::Status)
                        .await?;
                    self.volumes.wait_for(revision_of(&written)).await;
                }
            }
            VolumeStep::Delete => {
                if let Some(user) = self.user_of(&volume) {
                    // What Kubernetes' pvc-protection finalizer gives: the data outlives the
                    // claim while a pod still runs on it.
                    tracing::debug!(volume = key, pod = %user, "released volume still in use");
                    return Ok(Action::requeue(IN_USE_RECHECK));
                }
                match self
                    .registry
                    .delete_typed::<PersistentVolume>(None, key)
                    .await
                {
                    Ok(()) | Err(ApiError::NotFound { .. }) => {}
                    Err(err) => return Err(err),
                }
                tracing::info!(
                    volume = key,
                    "deleted a released volume (reclaim policy Delete)"
                );
            }
            VolumeStep::Unclaim => {
                let mut next = (*volume).clone();
                if let Some(spec) = next.spec.as_mut() {
                    spec.claim_ref = None;
                }
                self.registry.update_typed(&next, Subresource::Main).await?;
                self.events.record(
                    &*volume,
                    EventType::Normal,
                    "Unclaimed",
                    "its claim is bound to another volume".into(),
                );
            }
        }
        Ok(Action::await_change())
    }
}

impl VolumeReclaimer {
    /// A pod that is not finished (terminating ones included) and mounts the volume's claim.
    fn user_of(&self, volume: &PersistentVolume) -> Option<String> {
        let reference = volume.spec.as_ref()?.claim_ref.as_ref()?;
        let namespace = reference.namespace.as_deref().unwrap_or("default");
        let claim = reference.name.as_deref()?;
        let users = self.pods.list(|pod| {
            pod.metadata.namespace.as_deref() == Some(namespace)
                && !matches!(
                    pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
                && pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.volumes.as_ref())
                    .is_some_and(|volumes| {
                        volumes.iter().any(|v| {
                            v.persistent_volume_claim
                                .as_ref()
                                .is_some_and(|c| c.claim_name == claim)
                        })
                    })
        });
        users.first().map(|pod| key_of(pod.as_ref()))
    }
}

#[cfg(test)]
mod tests;
