//! Garbage collection: dependents whose owners are all gone are deleted (background
//! propagation, as Kubernetes' default), and so is everything in a deleted namespace. Orphan
//! and foreground propagation are in `gc_propagation`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use skiff_api::k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use skiff_api::k8s_openapi::api::batch::v1::{CronJob, Job};
use skiff_api::k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_api::resources::{self, KINDS};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::registry::{object, typed, ListOptions, Registry};
use crate::runtime::informer::Informer;

/// How often a full sweep runs even without deletions.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

pub struct GarbageCollector {
    pub registry: Registry,
    pub deployments: Arc<Informer<Deployment>>,
    pub replicasets: Arc<Informer<ReplicaSet>>,
    pub daemonsets: Arc<Informer<DaemonSet>>,
    pub statefulsets: Arc<Informer<StatefulSet>>,
    pub controller_revisions: Arc<Informer<ControllerRevision>>,
    pub jobs: Arc<Informer<Job>>,
    pub cronjobs: Arc<Informer<CronJob>>,
    pub pods: Arc<Informer<Pod>>,
    /// Claims a StatefulSet made under `whenDeleted: Delete`.
    pub claims: Arc<Informer<PersistentVolumeClaim>>,
    pub namespaces: Arc<Informer<Namespace>>,
}

impl GarbageCollector {
    /// Runs until `shutdown` is cancelled.
    pub fn spawn(self, shutdown: CancellationToken) {
        tokio::spawn(async move {
            let mut deployments = self.deployments.subscribe();
            let mut replicasets = self.replicasets.subscribe();
            let mut daemonsets = self.daemonsets.subscribe();
            let mut statefulsets = self.statefulsets.subscribe();
            let mut jobs = self.jobs.subscribe();
            let mut cronjobs = self.cronjobs.subscribe();
            let mut namespaces = self.namespaces.subscribe();
            self.namespaces.synced().await;
            self.collect_orphaned_namespaces().await;
            let mut tick = tokio::time::interval(SWEEP_INTERVAL);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                    change = deployments.recv() => if !is_deletion(change) { continue },
                    change = replicasets.recv() => if !is_deletion(change) { continue },
                    change = daemonsets.recv() => if !is_deletion(change) { continue },
                    change = statefulsets.recv() => if !is_deletion(change) { continue },
                    change = jobs.recv() => if !is_deletion(change) { continue },
                    change = cronjobs.recv() => if !is_deletion(change) { continue },
                    change = namespaces.recv() => {
                        match change {
                            Ok(c) if c.new.is_none() => {
                                if let Some(name) = c.old.as_ref().and_then(|n| n.metadata.name.clone()) {
                                    self.empty_namespace(&name).await;
                                }
                            }
                            Err(broadcast::error::RecvError::Lagged(_)) => self.collect_orphaned_namespaces().await,
                            _ => {}
                        }
                        continue;
                    }
                }
                self.sweep().await;
            }
        });
    }

    /// Deletes ReplicaSets, ControllerRevisions, Jobs, pods and claims none of whose owners
    /// exist any more.
    async fn sweep(&self) {
        self.propagate().await;
        let mut live: HashSet<String> = HashSet::new();
        live.extend(
            self.deployments
                .list(|_| true)
                .iter()
                .filter_map(|d| d.metadata.uid.clone()),
        );
        live.extend(
            self.replicasets
                .list(|_| true)
                .iter()
                .filter_map(|r| r.metadata.uid.clone()),
        );
        live.extend(
            self.daemonsets
                .list(|_| true)
                .iter()
                .filter_map(|d| d.metadata.uid.clone()),
        );
        live.extend(
            self.statefulsets
                .list(|_| true)
                .iter()
                .filter_map(|s| s.metadata.uid.clone()),
        );
        live.extend(
            self.jobs
                .list(|_| true)
                .iter()
                .filter_map(|j| j.metadata.uid.clone()),
        );
        live.extend(
            self.cronjobs
                .list(|_| true)
                .iter()
                .filter_map(|c| c.metadata.uid.clone()),
        );
        self.collect(self.replicasets.list(|_| true), &live).await;
        self.collect(self.controller_revisions.list(|_| true), &live)
            .await;
        self.collect(self.jobs.list(|_| true), &live).await;
        self.collect(self.pods.list(|_| true), &live).await;
        let owned = self.claims.list(|c| {
            c.metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| !o.is_empty())
        });
        self.collect(owned, &live).await;
    }

    async fn collect<K: typed::Object>(&self, objects: Vec<Arc<K>>, live: &HashSet<String>) {
        let suspects = objects.into_iter().filter(|obj| {
            let meta = obj.metadata();
            meta.deletion_timestamp.is_none()
                && meta.owner_references.as_ref().is_some_and(|refs| {
                    !refs.is_empty() && refs.iter().all(|r| !live.contains(&r.uid))
                })
        });
        for obj in suspects {
            let meta = obj.metadata();
            match self.all_owners_gone(meta).await {
                Ok(true) => {
                    let kind = resources::of::<K>();
                    let name = meta.name.as_deref().unwrap_or_default();
                    tracing::info!(
                        kind = kind.kind,
                        name,
                        "deleting dependent whose owners are gone"
                    );
                    if let Err(err) = self
                        .registry
                        .delete(kind, meta.namespace.as_deref(), name, &Default::default())
                        .await
                    {
                        if !matches!(err, ApiError::NotFound { .. }) {
                            tracing::warn!(kind = kind.kind, name, %err, "garbage collection failed");
                        }
                    }
                }
                Ok(false) => {}
                Err(err) => tracing::warn!(%err, "cannot check owners"),
            }
        }
    }

    /// Asks the registry (not a possibly stale cache) whether every owner is gone.
    async fn all_owners_gone(&self, meta: &ObjectMeta) -> Result<bool, ApiError> {
        for owner in meta.owner_references.iter().flatten() {
            let Some(kind) = resources::by_kind(&owner.api_version, &owner.kind) else {
                continue;
            };
            let namespace = if kind.namespaced {
                meta.namespace.as_deref()
            } else {
                None
            };
            match self.registry.get(kind, namespace, &owner.name).await {
                Ok(found) if object::uid(&found) == Some(owner.uid.as_str()) => return Ok(false),
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(true)
    }

    /// Deletes every namespaced object of a deleted namespace.
    async fn empty_namespace(&self, namespace: &str) {
        for kind in KINDS.iter().filter(|k| k.namespaced) {
            let items = match self
                .registry
                .list(kind, Some(namespace), &ListOptions::default())
                .await
            {
                Ok((items, _)) => items,
                Err(err) => {
                    tracing::warn!(namespace, kind = kind.kind, %err, "cannot list namespace contents");
                    continue;
                }
            };
            for item in items {
                let name = object::name(&item).unwrap_or_default();
                if let Err(err) = self
                    .registry
                    .delete(kind, Some(namespace), name, &Default::default())
                    .await
                {
                    if !matches!(err, ApiError::NotFound { .. }) {
                        tracing::warn!(namespace, name, %err, "cannot delete namespace content");
                    }
                }
            }
        }
    }

    /// Empties namespaces deleted while no collector watched (e.g. during a restart).
    async fn collect_orphaned_namespaces(&self) {
        let existing: HashSet<String> = self
            .namespaces
            .list(|_| true)
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        let mut orphaned = HashSet::new();
        for kind in KINDS.iter().filter(|k| k.namespaced) {
            if let Ok((items, _)) = self
                .registry
                .list(kind, None, &ListOptions::default())
                .await
            {
                orphaned.extend(
                    items
                        .iter()
                        .filter_map(object::namespace)
                        .filter(|ns| !existing.contains(*ns))
                        .map(str::to_string),
                );
            }
        }
        let namespaces = resources::of::<Namespace>();
        for namespace in orphaned {
            if let Err(ApiError::NotFound { .. }) =
                self.registry.get(namespaces, None, &namespace).await
            {
                self.empty_namespace(&namespace).await;
            }
        }
    }
}

/// Whether a change notification is a deletion or a mark for deletion (a lagged receiver
/// counts: sweep to be safe).
fn is_deletion<K: typed::Object>(
    change: Result<crate::runtime::informer::Change<K>, broadcast::error::RecvError>,
) -> bool {
    match change {
        Ok(change) => change
            .new
            .as_ref()
            .is_none_or(|new| new.metadata().deletion_timestamp.is_some()),
        Err(broadcast::error::RecvError::Lagged(_)) => true,
        Err(broadcast::error::RecvError::Closed) => false,
    }
}
