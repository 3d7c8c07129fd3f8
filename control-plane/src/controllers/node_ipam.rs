//! Node pod CIDRs (Kubernetes' nodeipam range allocator): every Node without a `spec.podCIDR`
//! gets the lowest block of the cluster CIDR that no Node holds, written with the Node's
//! resourceVersion as precondition. One task hands out blocks, remembering those it wrote
//! until the cache shows them, so two nodes never get one block; the leader's writes are
//! fenced to its term, so a deposed leader hands out none. A full range is a warning event on
//! the node, which is tried again when a node goes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ipnet::Ipv4Net;
use serde_json::Value;
use skiff_api::k8s_openapi::api::core::v1::Node;
use skiff_api::pod_cidr::PodCidrRange;
use skiff_api::resources;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::registry::{Registry, Subresource};
use crate::runtime::events::{EventRecorder, EventType};
use crate::runtime::informer::Informer;

/// How often nodes are looked at even without a change (a write that failed is retried).
const RESYNC: Duration = Duration::from_secs(5);

pub struct NodeIpam {
    pub registry: Registry,
    pub nodes: Arc<Informer<Node>>,
    pub range: PodCidrRange,
    pub events: EventRecorder,
}

/// A node's pod CIDR, if it has one.
fn pod_cidr(node: &Node) -> Option<&str> {
    node.spec
        .as_ref()
        .and_then(|s| s.pod_cidr.as_deref())
        .filter(|c| !c.is_empty())
}

/// What this allocator knows beyond its cache.
#[derive(Default)]
struct Handed {
    /// Blocks written to nodes whose cached copy does not show them yet.
    written: HashMap<String, Ipv4Net>,
    /// Nodes told the range is full (told once until a block frees up).
    told_full: HashSet<String>,
}

impl NodeIpam {
    /// Runs until `shutdown` is cancelled.
    pub fn spawn(self, shutdown: CancellationToken) {
        tokio::spawn(async move {
            let mut changes = self.nodes.subscribe();
            self.nodes.synced().await;
            let mut tick = tokio::time::interval(RESYNC);
            let mut handed = Handed::default();
            loop {
                self.allocate(&mut handed).await;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                    change = changes.recv() => {
                        if let Err(broadcast::error::RecvError::Closed) = change {
                            return;
                        }
                    }
                }
            }
        });
    }

    /// Gives a block to every node that has none, lowest name first.
    async fn allocate(&self, handed: &mut Handed) {
        let mut nodes = self.nodes.list(|_| true);
        nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let present: HashSet<&str> = nodes
            .iter()
            .filter_map(|n| n.metadata.name.as_deref())
            .collect();
        // A block shows in the cache, or its node is gone: the cache alone counts for it now.
        handed.written.retain(|name, _| {
            present.contains(name.as_str())
                && nodes
                    .iter()
                    .any(|n| n.metadata.name.as_deref() == Some(name) && pod_cidr(n).is_none())
        });
        handed
            .told_full
            .retain(|name| present.contains(name.as_str()));
        for node in &nodes {
            let name = node.metadata.name.clone().unwrap_or_default();
            if pod_cidr(node).is_some() || handed.written.contains_key(&name) {
                continue;
            }
            let written: Vec<String> = handed.written.values().map(ToString::to_string).collect();
            let taken = nodes
                .iter()
                .filter_map(|n| pod_cidr(n))
                .chain(written.iter().map(String::as_str));
            let Some(block) = self.range.lowest_free(taken) else {
                if handed.told_full.insert(name.clone()) {
                    self.events.record(
                        node.as_ref(),
                        EventType::Warning,
                        "CIDRNotAvailable",
                        format!(
                            "Node {name} status is now: CIDRNotAvailable (no /{} block of {} is free)",
                            self.range.mask(),
                            self.range.cluster()
                        ),
                    );
                    tracing::warn!(node = %name, cluster = %self.range.cluster(), "no pod CIDR left");
                }
                continue;
            };
            match self.write(node, block).await {
                Ok(()) => {
                    tracing::info!(node = %name, %block, "pod CIDR allocated");
                    handed.told_full.remove(&name);
                    handed.written.insert(name, block);
                }
                Err(ApiError::Conflict { .. } | ApiError::NotFound { .. }) => {}
                Err(err) => tracing::warn!(node = %name, %err, "writing the pod CIDR failed"),
            }
        }
    }

    /// Sets the node's pod CIDR, if the node is still as the cache shows it.
    async fn write(&self, node: &Node, block: Ipv4Net) -> Result<(), ApiError> {
        let mut obj = serde_json::to_value(node).map_err(|e| ApiError::Internal(e.to_string()))?;
        let cidr = Value::String(block.to_string());
        obj["spec"]["podCIDR"] = cidr.clone();
        obj["spec"]["podCIDRs"] = Value::Array(vec![cidr]);
        let name = node.metadata.name.as_deref().unwrap_or_default();
        self.registry
            .update(resources::of::<Node>(), None, name, obj, Subresource::Main)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::runtime::informer::revision_of;
    use crate::runtime::Informers;

    fn node(name: &str) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {}})).expect("node")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nodes_get_distinct_blocks_and_a_deleted_node_frees_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = crate::test_registry::registry(dir.path()).await;
        let shutdown = CancellationToken::new();
        let informers = Informers::start(&registry, &shutdown);
        let ipam = NodeIpam {
            registry: registry.clone(),
            nodes: informers.nodes.clone(),
            range: PodCidrRange::new("10.9.0.0/23", 24).expect("range"),
            events: EventRecorder::new(registry.clone(), "node-ipam-controller"),
        };
        let stored = |name: &'static str| {
            let registry = registry.clone();
            async move {
                let node = registry
                    .get(resources::of::<Node>(), None, name)
                    .await
                    .expect("node");
                (
                    node["spec"]["podCIDR"].clone(),
                    node["spec"]["podCIDRs"].clone(),
                )
            }
        };
        let mut handed = Handed::default();
        for name in ["a", "b"] {
            let created = registry.create_typed(&node(name)).await.expect("node");
            informers.nodes.wait_for(revision_of(&created)).await;
        }
        ipam.allocate(&mut handed).await;
        let c = registry.create_typed(&node("c")).await.expect("node");
        informers.nodes.wait_for(revision_of(&c)).await;
        // Again at once: blocks the cache may not show yet are not handed out twice.
        ipam.allocate(&mut handed).await;
        assert_eq!(
            stored("a").await,
            (json!("10.9.0.0/24"), json!(["10.9.0.0/24"]))
        );
        assert_eq!(
            stored("b").await,
            (json!("10.9.1.0/24"), json!(["10.9.1.0/24"]))
        );
        assert_eq!(stored("c").await.0, Value::Null, "the range is full");
        assert!(handed.told_full.contains("c"));

        let deleted = registry
            .delete(resources::of::<Node>(), None, "a", &Default::default())
            .await
            .expect("delete a");
        let revision = deleted["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|rv| rv.parse().ok())
            .expect("deletion revision");
        informers.nodes.wait_for(revision).await;
        ipam.allocate(&mut handed).await;
        assert_eq!(
            stored("c").await.0,
            json!("10.9.0.0/24"),
            "a's block, freed"
        );
        shutdown.cancel();
    }
}
