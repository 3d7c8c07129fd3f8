//! Pod garbage collection (Kubernetes' PodGC): pods bound to a node that no longer exists are
//! deleted, as no agent is left to stop them or to confirm a graceful deletion: at once when the
//! node's deletion was seen, after a quarantine when the node was never seen at all (it may be
//! about to register, or the cache may be young), as Kubernetes does.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use skiff_api::k8s_openapi::api::core::v1::{Node, Pod};
use skiff_api::resources;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::registry::{DeleteOptions, Registry};
use crate::runtime::informer::Informer;

/// How often orphaned pods are looked for even when no node was deleted.
const SWEEP_INTERVAL: Duration = Duration::from_secs(20);
/// How long a node that was never seen deleted must stay absent before its pods go
/// (Kubernetes' PodGC quarantine).
const QUARANTINE: Duration = Duration::from_secs(40);

pub struct PodGarbageCollector {
    pub registry: Registry,
    pub nodes: Arc<Informer<Node>>,
    pub pods: Arc<Informer<Pod>>,
}

impl PodGarbageCollector {
    /// Runs until `shutdown` is cancelled.
    pub fn spawn(self, shutdown: CancellationToken) {
        tokio::spawn(async move {
            let mut nodes = self.nodes.subscribe();
            self.nodes.synced().await;
            self.pods.synced().await;
            let mut tick = tokio::time::interval(SWEEP_INTERVAL);
            let mut absent = Absent::default();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                    change = nodes.recv() => match change {
                        Ok(change) if change.new.is_some() => continue,
                        Ok(change) => {
                            if let Some(name) = change.old.and_then(|n| n.metadata.name.clone()) {
                                absent.deleted.insert(name);
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                    },
                }
                self.sweep(&mut absent).await;
            }
        });
    }

    async fn sweep(&self, absent: &mut Absent) {
        let known: HashSet<String> = self
            .nodes
            .list(|_| true)
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        absent.deleted.retain(|n| !known.contains(n));
        absent.since.retain(|n, _| !known.contains(n));
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
            if !absent.long_enough(&node, Instant::now()) {
                continue;
            }
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
            uid: pod.metadata.uid.clone(),
            ..Default::default()
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

/// Nodes that pods are bound to but that do not exist.
#[derive(Default)]
struct Absent {
    /// Seen deleted: their pods go at once.
    deleted: HashSet<String>,
    /// Never seen: when they were first found missing.
    since: HashMap<String, Instant>,
}

impl Absent {
    /// Whether pods on `node` may be collected now.
    fn long_enough(&mut self, node: &str, now: Instant) -> bool {
        if self.deleted.contains(node) {
            return true;
        }
        let since = *self.since.entry(node.to_string()).or_insert(now);
        now.duration_since(since) >= QUARANTINE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn deleted_nodes_go_at_once_unknown_ones_after_the_quarantine() {
        let mut absent = Absent::default();
        absent.deleted.insert("gone".into());
        assert!(absent.long_enough("gone", Instant::now()));
        assert!(!absent.long_enough("never-seen", Instant::now()));
        tokio::time::advance(QUARANTINE / 2).await;
        assert!(!absent.long_enough("never-seen", Instant::now()));
        assert!(
            !absent.long_enough("seen-later", Instant::now()),
            "each node has its own quarantine"
        );
        tokio::time::advance(QUARANTINE / 2 - Duration::from_millis(1)).await;
        assert!(!absent.long_enough("never-seen", Instant::now()));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(absent.long_enough("never-seen", Instant::now()));
        assert!(!absent.long_enough("seen-later", Instant::now()));
        tokio::time::advance(QUARANTINE / 2).await;
        assert!(absent.long_enough("seen-later", Instant::now()));
    }
}
