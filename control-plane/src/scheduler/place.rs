//! Placement: a pure function from a cluster snapshot and a pod to a node (filter, then score).

use std::collections::BTreeMap;
use std::fmt;

use skiff_api::host_ports::{self, HostPort};
use skiff_api::k8s_openapi::api::core::v1::{Pod, Toleration};

use super::pod_affinity::InterPod;
use super::runtimes::PodRuntimes;
use super::snapshot::{pod_requests, ClusterSnapshot, NodeInfo, Resources};
use super::spread::Spread;
use super::volumes::PodVolumes;
use super::{node_affinity, node_ports, taints};

/// The chosen node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub node: String,
}

/// Why no node fits: how many nodes failed each filter, as Kubernetes reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unschedulable {
    pub total_nodes: usize,
    pub reasons: BTreeMap<String, usize>,
}

impl fmt::Display for Unschedulable {
    /// `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) were unschedulable.`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0/{} nodes are available", self.total_nodes)?;
        if self.total_nodes == 0 {
            return write!(f, ": no nodes registered.");
        }
        let parts: Vec<String> = self
            .reasons
            .iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        write!(f, ": {}.", parts.join(", "))
    }
}

/// Requests assumed for scoring when a pod sets none (Kubernetes' non-zero defaults),
/// so that request-less pods still spread.
const DEFAULT_CPU_MILLIS: u64 = 100;
const DEFAULT_MEMORY_BYTES: u64 = 200 * 1024 * 1024;

/// Score weights, as Kubernetes' default profile weighs its plugins.
const WEIGHT_RESOURCES: i64 = 1;
const WEIGHT_NODE_AFFINITY: i64 = 2;
const WEIGHT_INTER_POD: i64 = 2;
const WEIGHT_SPREAD: i64 = 2;
const WEIGHT_TAINTS: i64 = 3;
/// Above resources and any one preference: registry pods go where either image kind runs.
const WEIGHT_RUNTIMES: i64 = 3;

/// Filters every node, scores the feasible ones, and picks the best (the first by name on ties).
pub fn place(snapshot: &ClusterSnapshot, pod: &Pod) -> Result<Placement, Unschedulable> {
    let requests = pod_requests(pod);
    let ports = pod
        .spec
        .as_ref()
        .map(host_ports::of_spec)
        .unwrap_or_default();
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let volumes = PodVolumes::new(snapshot, pod).map_err(|reason| Unschedulable {
        total_nodes: snapshot.nodes.len(),
        reasons: BTreeMap::from([(reason, snapshot.nodes.len())]),
    })?;
    let inter_pod = InterPod::new(snapshot, pod);
    let spread = Spread::new(snapshot, pod);
    let runtimes = PodRuntimes::of(pod);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut feasible: Vec<(&NodeInfo, [i64; 6])> = Vec::new();
    for node in snapshot.nodes.values() {
        let verdict = filter(node, pod, &requests, &ports, &tolerations)
            .and_then(|()| runtimes.filter(node).map_err(String::from))
            .and_then(|()| inter_pod.filter(node).map_err(String::from))
            .and_then(|()| spread.filter(node).map_err(String::from))
            .and_then(|()| volumes.filter(node).map_err(String::from));
        if let Err(reason) = verdict {
            *reasons.entry(reason).or_default() += 1;
            continue;
        }
        let raw = [
            least_allocated(node, &requests),
            node_affinity::preferred_score(pod, node),
            inter_pod.score(node),
            -spread.crowding(node),
            -taints::untolerated_preferences(&node.taints, &tolerations),
            runtimes.score(node),
        ];
        feasible.push((node, raw));
    }
    if feasible.is_empty() {
        return Err(Unschedulable {
            total_nodes: snapshot.nodes.len(),
            reasons,
        });
    }
    let weights = [
        WEIGHT_RESOURCES,
        WEIGHT_NODE_AFFINITY,
        WEIGHT_INTER_POD,
        WEIGHT_SPREAD,
        WEIGHT_TAINTS,
        WEIGHT_RUNTIMES,
    ];
    let ranges: Vec<(i64, i64)> = (0..weights.len())
        .map(|i| {
            let values = feasible.iter().map(|(_, raw)| raw[i]);
            (values.clone().min().unwrap_or(0), values.max().unwrap_or(0))
        })
        .collect();
    // The resource score is already 0..=100; the others are scaled to 0..=100 over the feasible nodes.
    let total = |raw: &[i64; 6]| -> i64 {
        let mut sum = raw[0] * weights[0];
        for i in 1..weights.len() {
            let (lo, hi) = ranges[i];
            if hi > lo {
                sum += (raw[i] - lo) * 100 / (hi - lo) * weights[i];
            }
        }
        sum
    };
    let mut best = &feasible[0];
    let mut best_score = total(&best.1);
    for candidate in &feasible[1..] {
        let score = total(&candidate.1);
        if score > best_score {
            best = candidate;
            best_score = score;
        }
    }
    Ok(Placement {
        node: best.0.name.clone(),
    })
}

/// The per-node filters; the error is the reason text Kubernetes uses.
fn filter(
    node: &NodeInfo,
    pod: &Pod,
    requests: &Resources,
    ports: &[HostPort],
    tolerations: &[Toleration],
) -> Result<(), String> {
    if !node.ready {
        return Err("node(s) were not ready".into());
    }
    if node.unschedulable && !taints::tolerates_unschedulable(tolerations) {
        return Err("node(s) were unschedulable".into());
    }
    if let Some(taint) = taints::untolerated(&node.taints, tolerations) {
        let value = taint
            .value
            .as_deref()
            .map(|v| format!("={v}"))
            .unwrap_or_default();
        return Err(format!(
            "node(s) had untolerated taint {{{}{value}}}",
            taint.key
        ));
    }
    if !node_affinity::required_matches(pod, node) {
        return Err("node(s) didn't match Pod's node affinity/selector".into());
    }
    node_ports::fits(ports, node)?;
    let free = |alloc: u64, used: u64| alloc.saturating_sub(used);
    if requests.pods > free(node.allocatable.pods, node.requested.pods) {
        return Err("Too many pods".into());
    }
    if requests.cpu_millis > free(node.allocatable.cpu_millis, node.requested.cpu_millis) {
        return Err("Insufficient cpu".into());
    }
    if requests.memory_bytes > free(node.allocatable.memory_bytes, node.requested.memory_bytes) {
        return Err("Insufficient memory".into());
    }
    Ok(())
}

/// 0..=100: the mean free share of cpu and memory after placing the pod.
fn least_allocated(node: &NodeInfo, requests: &Resources) -> i64 {
    let share = |alloc: u64, used: u64, req: u64| {
        if alloc == 0 {
            return 0;
        }
        alloc.saturating_sub(used + req) * 100 / alloc
    };
    let cpu = requests.cpu_millis.max(DEFAULT_CPU_MILLIS);
    let memory = requests.memory_bytes.max(DEFAULT_MEMORY_BYTES);
    // Scoring charges every placed pod at least the defaults, like Kubernetes' non-zero requests.
    let used_cpu = node
        .requested
        .cpu_millis
        .max(node.requested.pods * DEFAULT_CPU_MILLIS);
    let used_memory = node
        .requested
        .memory_bytes
        .max(node.requested.pods * DEFAULT_MEMORY_BYTES);
    let mean = (share(node.allocatable.cpu_millis, used_cpu, cpu)
        + share(node.allocatable.memory_bytes, used_memory, memory))
        / 2;
    mean as i64
}

#[cfg(test)]
#[path = "place_tests.rs"]
mod tests;
