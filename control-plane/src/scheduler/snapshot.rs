//! The scheduler's view of the cluster: nodes with what is allocatable and already requested.

use std::collections::{BTreeMap, HashMap};

use skiff_api::k8s_openapi::api::core::v1::{Node, Pod, Taint};
use skiff_api::quantity;

/// CPU (millicores), memory (bytes) and pod count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub pods: u64,
}

impl Resources {
    pub fn add(&mut self, other: &Resources) {
        self.cpu_millis += other.cpu_millis;
        self.memory_bytes += other.memory_bytes;
        self.pods += other.pods;
    }
}

/// One node as the scheduler sees it.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub allocatable: Resources,
    /// Sum of the requests of the pods bound to this node and not finished.
    pub requested: Resources,
    pub ready: bool,
    pub unschedulable: bool,
    pub taints: Vec<Taint>,
}

/// Every node, in name order.
#[derive(Debug, Clone, Default)]
pub struct ClusterSnapshot {
    pub nodes: Vec<NodeInfo>,
}

impl ClusterSnapshot {
    /// Builds the snapshot from nodes and all pods (unbound and finished pods are ignored).
    pub fn build<'a>(
        nodes: impl IntoIterator<Item = &'a Node>,
        pods: impl IntoIterator<Item = &'a Pod>,
    ) -> Self {
        let mut requested: HashMap<&str, Resources> = HashMap::new();
        for pod in pods {
            let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
                continue;
            };
            if matches!(
                pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            ) {
                continue;
            }
            requested.entry(node).or_default().add(&pod_requests(pod));
        }
        let mut infos: Vec<NodeInfo> = nodes
            .into_iter()
            .map(|node| {
                let name = node.metadata.name.clone().unwrap_or_default();
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
                    requested: requested.get(name.as_str()).copied().unwrap_or_default(),
                    name,
                    labels: node.metadata.labels.clone().unwrap_or_default(),
                    allocatable,
                    ready,
                    unschedulable: spec.unschedulable.unwrap_or(false),
                    taints: spec.taints.unwrap_or_default(),
                }
            })
            .collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        ClusterSnapshot { nodes: infos }
    }

    /// Accounts for a pod just placed on `node`.
    pub fn assume(&mut self, node: &str, pod: &Pod) {
        if let Some(info) = self.nodes.iter_mut().find(|n| n.name == node) {
            info.requested.add(&pod_requests(pod));
        }
    }
}

/// What a pod asks for: the sum of its containers' requests (limits where no request is set), and one pod slot.
pub fn pod_requests(pod: &Pod) -> Resources {
    let mut total = Resources {
        pods: 1,
        ..Default::default()
    };
    for container in pod.spec.iter().flat_map(|s| s.containers.iter()) {
        let Some(resources) = container.resources.as_ref() else {
            continue;
        };
        let pick = |name: &str| {
            resources
                .requests
                .as_ref()
                .and_then(|r| r.get(name))
                .or_else(|| resources.limits.as_ref().and_then(|l| l.get(name)))
                .map(|q| q.0.clone())
        };
        if let Some(cpu) = pick("cpu") {
            total.cpu_millis += quantity::parse_cpu_millis(&cpu).unwrap_or(0);
        }
        if let Some(memory) = pick("memory") {
            total.memory_bytes += quantity::parse_bytes(&memory).unwrap_or(0);
        }
    }
    total
}
