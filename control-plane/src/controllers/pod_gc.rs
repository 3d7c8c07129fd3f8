//! Pod garbage collection (Kubernetes' PodGC): pods bound to a node that no longer exists are
//! deleted at once, as no agent is left to stop them or to confirm a graceful deletion.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use skiff_api::k8s_openapi::api::core::v1::{Node, Pod};
use skiff_api::resources;
use tokio::sync::{broadcast, watch};

use super::informer::Informer;
use crate::error::ApiError;
use crate::registry::{DeleteOptions, Registry};

/// How often orphaned pods are looked for even when no node was deleted.
const SWEEP_INTERVAL: Duration = Duration::from_secs(20);

pub struct PodGarbageCollector {
    pub registry: Registry,
    pub nodes: Arc<Informer<Node>>,
    pub pods: Arc<Informer<Pod>>,
}

impl PodGarbageCollector {
    /// Runs until `shutdown` flips to true.
    pub fn spawn(self, mut shutdown: watch::Receiver<bool>) {
        tokio::spawn(async move {
            let mut nodes = self.nodes.subscribe();
            self.nodes.synced().await;
            self.pods.synced().await;
            let mut tick = tokio::time::interval(SWEEP_INTERVAL);
            loop {
                tokio::select! {
                    _ = crate::shutdown::stopped(&mut shutdown) => return,
                    _ = tick.tick() => {}
                    change = nodes.recv() => match change {
                        Ok(change) if change.new.is_some() => continue,
                        Err(broadcast::error::RecvError::Closed) => return,
                        _ => {}
                    },
                }
                self.sweep().await;
            }
        });
    }

    async fn sweep(&self) {
        let known: HashSet<String> = self
            .nodes
            .list(|_| true)
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        let suspects = self.pods.list(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| !n.is_empty() && !known.contains(n))
        });
        for pod in suspects {
            let node = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            if let Err(err) = self.collect(&pod, &node).await {
                tracing::warn!(%err, node, "cannot collect a pod of a deleted node");
            }
        }
    }

    /// Deletes the pod if the registry (not a possibly stale cache) confirms its node is gone.
    async fn collect(&self, pod: &Pod, node: &str) -> Result<(), ApiError> {
        match self.registry.get(resources::of::<Node>(), None, node).await {
            Err(ApiError::NotFound { .. }) => {}
            other => return other.map(drop),
        }
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        tracing::info!(pod = name, node, "deleting a pod whose node is gone");
        let force = DeleteOptions {
            grace_period_seconds: Some(0),
        };
        match self
            .registry
            .delete(
                resources::of::<Pod>(),
                pod.metadata.namespace.as_deref(),
                name,
                &force,
            )
            .await
        {
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }
}
