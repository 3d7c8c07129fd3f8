//! The scheduler's view of the cluster: nodes with what is allocatable, the pods bound to each,
//! and what they request. Kept up to date incrementally from watch events (the scheduler
//! cache of Kubernetes), so placing a pod never re-reads the whole cluster.

use std::collections::{BTreeMap, HashMap, HashSet};

use skiff_api::host_ports::{self, HostPort};
use skiff_api::k8s_openapi::api::core::v1::{Node, Pod, PodAffinityTerm, Taint};
use skiff_api::quantity;
pub use skiff_api::requests::{pod_requests, Resources};
use skiff_api::storage::LOCAL_PATH_ROOT_ANNOTATION;

use super::volumes::ClaimState;
use crate::runtime::informer::key_of;

/// What placement needs to know of a pod already bound to a node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodInfo {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub requests: Resources,
    /// Its required pod anti-affinity terms, which also keep other pods away from it.
    pub anti_affinity: Vec<PodAffinityTerm>,
    /// The ports it holds on its node (`hostPort`).
    pub host_ports: Vec<HostPort>,
}

impl PodInfo {
    pub fn of(pod: &Pod) -> Self {
        PodInfo {
            namespace: pod
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            requests: pod_requests(pod),
            anti_affinity: pod
                .spec
                .as_ref()
                .and_then(|s| s.affinity.as_ref())
                .and_then(|a| a.pod_anti_affinity.as_ref())
                .and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .clone()
                })
                .unwrap_or_default(),
            host_ports: pod
                .spec
                .as_ref()
                .map(host_ports::of_spec)
                .unwrap_or_default(),
        }
    }
}

/// One node as the scheduler sees it.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub allocatable: Resources,
    /// Sum of the requests of `pods`.
    pub requested: Resources,
    pub ready: bool,
    pub unschedulable: bool,
    pub taints: Vec<Taint>,
    /// Whether its agent keeps local-path volumes (reports `skiff.dev/local-path-root`).
    pub local_path_root: bool,
    /// Pods bound (or assumed bound) here and not finished, by `namespace/name`.
    pub pods: HashMap<String, PodInfo>,
}

impl NodeInfo {
    /// A node's schedulable facts, without pods.
    pub fn of(node: &Node) -> Self {
        let status = node.status.as_ref();
        let allocatable = status
            .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()))
            .map(|a| Resources {
                cpu_millis: a
                    .get("cpu")
                    .and_then(|q| quantity::parse_cpu_millis(&q.0).ok())
                    .unwrap_or(0),
                memory_bytes: a
                    .get("memory")
                    .and_then(|q| quantity::parse_bytes(&q.0).ok())
                    .unwrap_or(0),
                pods: a.get("pods").and_then(|q| q.0.parse().ok()).unwrap_or(110),
            })
            .unwrap_or_default();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let spec = node.spec.clone().unwrap_or_default();
        NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            allocatable,
            ready,
            unschedulable: spec.unschedulable.unwrap_or(false),
            taints: spec.taints.unwrap_or_default(),
            local_path_root: node
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(LOCAL_PATH_ROOT_ANNOTATION)),
            ..Default::default()
        }
    }

    /// True if `other` differs in anything placement reads (not counting pods).
    fn differs(&self, other: &NodeInfo) -> bool {
        self.labels != other.labels
            || self.allocatable != other.allocatable
            || self.ready != other.ready
            || self.unschedulable != other.unschedulable
            || self.taints != other.taints
            || self.local_path_root != other.local_path_root
    }

    fn add_pod(&mut self, key: String, info: PodInfo) {
        self.requested.add(&info.requests);
        if let Some(old) = self.pods.insert(key, info) {
            self.requested.sub(&old.requests);
        }
    }

    fn remove_pod(&mut self, key: &str) {
        if let Some(old) = self.pods.remove(key) {
            self.requested.sub(&old.requests);
        }
    }
}

/// Every node, in name order, with the pods placed on it.
#[derive(Debug, Clone, Default)]
pub struct ClusterSnapshot {
    pub nodes: BTreeMap<String, NodeInfo>,
    /// Which node each placed pod is on.
    placed: HashMap<String, String>,
    /// Pods placed on nodes not (or no longer) known, kept until their node appears.
    detached: HashMap<String, HashMap<String, PodInfo>>,
    /// Placed pods that declare required anti-affinity (checked against every incoming pod).
    anti_affinity: HashSet<String>,
    /// The claims of the pod being placed, by `namespace/name` (absent: not found).
    pub claims: HashMap<String, ClaimState>,
}

impl ClusterSnapshot {
    /// A snapshot of these nodes (with whatever pods they already hold).
    pub fn from_nodes(nodes: impl IntoIterator<Item = NodeInfo>) -> Self {
        let mut snapshot = ClusterSnapshot::default();
        for node in nodes {
            for key in node.pods.keys() {
                snapshot.placed.insert(key.clone(), node.name.clone());
            }
            snapshot.nodes.insert(node.name.clone(), node);
        }
        snapshot
    }

    /// Builds the snapshot from nodes and all pods (unbound and finished pods are ignored).
    pub fn build<'a>(
        nodes: impl IntoIterator<Item = &'a Node>,
        pods: impl IntoIterator<Item = &'a Pod>,
    ) -> Self {
        let mut snapshot = ClusterSnapshot::default();
        for node in nodes {
            snapshot.upsert_node(node);
        }
        for pod in pods {
            snapshot.update_pod(pod);
        }
        snapshot
    }

    /// Adds or refreshes a node; true if something placement reads changed.
    pub fn upsert_node(&mut self, node: &Node) -> bool {
        let mut fresh = NodeInfo::of(node);
        match self.nodes.get_mut(&fresh.name) {
            Some(existing) => {
                let changed = existing.differs(&fresh);
                fresh.pods = std::mem::take(&mut existing.pods);
                fresh.requested = existing.requested;
                *existing = fresh;
                changed
            }
            None => {
                for (key, pod) in self.detached.remove(&fresh.name).unwrap_or_default() {
                    fresh.add_pod(key, pod);
                }
                self.nodes.insert(fresh.name.clone(), fresh);
                true
            }
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        if let Some(node) = self.nodes.remove(name) {
            if !node.pods.is_empty() {
                self.detached.insert(node.name, node.pods);
            }
        }
    }

    /// Records a pod as it is now: bound and running pods count on their node, others on none.
    pub fn update_pod(&mut self, pod: &Pod) {
        let key = key_of(pod);
        let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
        let finished = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        match node.filter(|n| !n.is_empty() && !finished) {
            Some(node) => self.place(key, node, PodInfo::of(pod)),
            None => self.remove_pod(&key),
        }
    }

    /// Counts `pod` on `node` before its binding is written (the binding may still fail).
    pub fn assume(&mut self, node: &str, pod: &Pod) {
        self.place(key_of(pod), node, PodInfo::of(pod));
    }

    /// The node a pod is counted on, if any.
    pub fn node_of(&self, key: &str) -> Option<&str> {
        self.placed.get(key).map(String::as_str)
    }

    pub fn remove_pod(&mut self, key: &str) {
        if let Some(node) = self.placed.remove(key) {
            self.unplace(key, &node);
        }
        self.anti_affinity.remove(key);
    }

    /// Placed pods with required anti-affinity terms, with their nodes.
    pub fn pods_with_anti_affinity(&self) -> impl Iterator<Item = (&NodeInfo, &PodInfo)> {
        self.anti_affinity.iter().filter_map(|key| {
            let node = self.nodes.get(self.placed.get(key)?)?;
            Some((node, node.pods.get(key)?))
        })
    }

    fn place(&mut self, key: String, node: &str, info: PodInfo) {
        if info.anti_affinity.is_empty() {
            self.anti_affinity.remove(&key);
        } else {
            self.anti_affinity.insert(key.clone());
        }
        if let Some(previous) = self.placed.insert(key.clone(), node.to_string()) {
            if previous != node {
                self.unplace(&key, &previous);
            }
        }
        match self.nodes.get_mut(node) {
            Some(known) => known.add_pod(key, info),
            None => {
                self.detached
                    .entry(node.to_string())
                    .or_default()
                    .insert(key, info);
            }
        }
    }

    fn unplace(&mut self, key: &str, node: &str) {
        if let Some(known) = self.nodes.get_mut(node) {
            known.remove_pod(key);
        } else if let Some(pods) = self.detached.get_mut(node) {
            pods.remove(key);
            if pods.is_empty() {
                self.detached.remove(node);
            }
        }
    }
}
