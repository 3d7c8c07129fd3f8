//! The garbage collector's side of `Orphan` and `Foreground` deletes: an owner marked for
//! deletion with the `orphan` finalizer has its references removed from its dependents; one
//! with `foregroundDeletion` has its dependents deleted first. Either way the collector then
//! removes the finalizer, and the registry removes the owner with its last finalizer.

use std::sync::Arc;

use serde_json::json;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_api::resources::{self, ResourceKind};

use super::gc::GarbageCollector;
use crate::error::ApiError;
use crate::registry::finalizers::{Propagation, FOREGROUND, ORPHAN};
use crate::registry::{typed, unguarded, DeleteOptions, Subresource};

/// A dependent of an owner being deleted, as found in the collector's caches.
struct Dependent {
    kind: &'static ResourceKind,
    namespace: Option<String>,
    name: String,
    deleting: bool,
}

impl GarbageCollector {
    /// Resolves the `orphan` and `foregroundDeletion` finalizers of every owner kind.
    pub(super) async fn propagate(&self) {
        self.propagate_for(self.deployments.list(|_| true)).await;
        self.propagate_for(self.replicasets.list(|_| true)).await;
        self.propagate_for(self.daemonsets.list(|_| true)).await;
        self.propagate_for(self.statefulsets.list(|_| true)).await;
        self.propagate_for(self.jobs.list(|_| true)).await;
        self.propagate_for(self.cronjobs.list(|_| true)).await;
    }

    async fn propagate_for<K: typed::Object>(&self, owners: Vec<Arc<K>>) {
        let kind = resources::of::<K>();
        for owner in owners {
            let meta = owner.metadata();
            if meta.deletion_timestamp.is_none() {
                continue;
            }
            let finalizers = meta.finalizers.clone().unwrap_or_default();
            for finalizer in [ORPHAN, FOREGROUND] {
                if !finalizers.iter().any(|f| f == finalizer) {
                    continue;
                }
                if let Err(err) = self.resolve(kind, meta, finalizer).await {
                    if !matches!(err, ApiError::NotFound { .. }) {
                        let name = meta.name.as_deref().unwrap_or_default();
                        tracing::warn!(kind = kind.kind, name, finalizer, %err, "cannot finalize");
                    }
                }
            }
        }
    }

    /// One step of `finalizer` on `owner`; the finalizer goes once nothing is left to do.
    async fn resolve(
        &self,
        kind: &ResourceKind,
        owner: &ObjectMeta,
        finalizer: &str,
    ) -> Result<(), ApiError> {
        let uid = owner.uid.as_deref().unwrap_or_default();
        let dependents = self.dependents_of(uid);
        if finalizer == ORPHAN {
            let unlink =
                json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": uid}]}});
            for d in &dependents {
                self.registry
                    .strategic_patch(
                        d.kind,
                        d.namespace.as_deref(),
                        &d.name,
                        &unlink,
                        Subresource::Main,
                        &unguarded,
                    )
                    .await?;
            }
        } else if !dependents.is_empty() {
            for d in dependents.iter().filter(|d| !d.deleting) {
                // Dependents that own things themselves wait for theirs too.
                let propagation = if is_owner_kind(d.kind) {
                    Propagation::Foreground
                } else {
                    Propagation::Background
                };
                let options = DeleteOptions {
                    propagation,
                    ..Default::default()
                };
                self.registry
                    .delete(d.kind, d.namespace.as_deref(), &d.name, &options)
                    .await?;
            }
            return Ok(());
        }
        let done = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [finalizer]}});
        let name = owner.name.as_deref().unwrap_or_default();
        self.registry
            .strategic_patch(
                kind,
                owner.namespace.as_deref(),
                name,
                &done,
                Subresource::Main,
                &unguarded,
            )
            .await
            .map(drop)
    }

    /// Every cached object with an owner reference to `uid`.
    fn dependents_of(&self, uid: &str) -> Vec<Dependent> {
        let mut found = Vec::new();
        collect(&mut found, self.replicasets.list(|_| true), uid);
        collect(&mut found, self.controller_revisions.list(|_| true), uid);
        collect(&mut found, self.jobs.list(|_| true), uid);
        collect(&mut found, self.pods.list(|_| true), uid);
        collect(&mut found, self.claims.list(|_| true), uid);
        found
    }
}

fn collect<K: typed::Object>(found: &mut Vec<Dependent>, objects: Vec<Arc<K>>, uid: &str) {
    let kind = resources::of::<K>();
    for obj in objects {
        let meta = obj.metadata();
        let owned = meta.owner_references.iter().flatten().any(|r| r.uid == uid);
        if owned {
            found.push(Dependent {
                kind,
                namespace: meta.namespace.clone(),
                name: meta.name.clone().unwrap_or_default(),
                deleting: meta.deletion_timestamp.is_some(),
            });
        }
    }
}

/// Whether the collector resolves finalizers of `kind` (so a dependent of it can be deleted
/// in the foreground too).
fn is_owner_kind(kind: &ResourceKind) -> bool {
    matches!(kind.kind, "ReplicaSet" | "Job")
}
