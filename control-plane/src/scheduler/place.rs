//! Placement: a pure function from a cluster snapshot and a pod to a node (filter, then score).

use std::collections::BTreeMap;
use std::fmt;

use skiff_api::k8s_openapi::api::core::v1::{Pod, Taint, Toleration};

use super::snapshot::{pod_requests, ClusterSnapshot, NodeInfo, Resources};

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

/// Picks the feasible node with the most free resources after placing the pod.
pub fn place(snapshot: &ClusterSnapshot, pod: &Pod) -> Result<Placement, Unschedulable> {
    let requests = pod_requests(pod);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut best: Option<(u64, &NodeInfo)> = None;
    for node in &snapshot.nodes {
        if let Err(reason) = feasible(node, pod, &requests) {
            *reasons.entry(reason).or_default() += 1;
            continue;
        }
        let score = least_allocated(node, &requests);
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, node));
        }
    }
    match best {
        Some((_, node)) => Ok(Placement {
            node: node.name.clone(),
        }),
        None => Err(Unschedulable {
            total_nodes: snapshot.nodes.len(),
            reasons,
        }),
    }
}

/// The filters; the error is the reason text Kubernetes uses.
fn feasible(node: &NodeInfo, pod: &Pod, requests: &Resources) -> Result<(), String> {
    let spec = pod.spec.clone().unwrap_or_default();
    let tolerations = spec.tolerations.unwrap_or_default();
    if !node.ready {
        return Err("node(s) were not ready".into());
    }
    if node.unschedulable && !tolerates_unschedulable(&tolerations) {
        return Err("node(s) were unschedulable".into());
    }
    if let Some(taint) = node
        .taints
        .iter()
        .filter(|t| matches!(t.effect.as_str(), "NoSchedule" | "NoExecute"))
        .find(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
    {
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
    if let Some(selector) = spec.node_selector {
        if !selector.iter().all(|(k, v)| node.labels.get(k) == Some(v)) {
            return Err("node(s) didn't match Pod's node affinity/selector".into());
        }
    }
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

fn tolerates_unschedulable(tolerations: &[Toleration]) -> bool {
    let taint = Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    tolerations.iter().any(|t| tolerates(t, &taint))
}

/// Kubernetes' toleration matching: empty key with Exists matches everything.
fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => key.is_empty() || key == taint.key,
        _ => {
            key == taint.key
                && toleration.value.as_deref().unwrap_or_default()
                    == taint.value.as_deref().unwrap_or_default()
        }
    }
}

/// 0..=100: the mean free share of cpu and memory after placing the pod.
fn least_allocated(node: &NodeInfo, requests: &Resources) -> u64 {
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
    (share(node.allocatable.cpu_millis, used_cpu, cpu)
        + share(node.allocatable.memory_bytes, used_memory, memory))
        / 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GI: u64 = 1024 * 1024 * 1024;

    fn node(name: &str, cpu: u64, mem_gi: u64) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            allocatable: Resources {
                cpu_millis: cpu,
                memory_bytes: mem_gi * GI,
                pods: 110,
            },
            ready: true,
            ..Default::default()
        }
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).expect("pod")
    }

    fn requesting(cpu: &str, memory: &str) -> Pod {
        pod(json!({"containers": [{"name": "c", "image": "file:/x.wasm",
            "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}))
    }

    #[test]
    fn table() {
        let busy = NodeInfo {
            requested: Resources {
                cpu_millis: 1500,
                memory_bytes: GI,
                pods: 3,
            },
            ..node("busy", 2000, 4)
        };
        let cordoned = NodeInfo {
            unschedulable: true,
            ..node("cordoned", 8000, 16)
        };
        let not_ready = NodeInfo {
            ready: false,
            ..node("down", 8000, 16)
        };
        let tainted = NodeInfo {
            taints: vec![Taint {
                key: "dedicated".into(),
                value: Some("gpu".into()),
                effect: "NoSchedule".into(),
                ..Default::default()
            }],
            ..node("tainted", 8000, 16)
        };
        let labelled = NodeInfo {
            labels: BTreeMap::from([("disk".to_string(), "ssd".to_string())]),
            ..node("ssd", 1000, 2)
        };
        type Case<'a> = (&'a str, Vec<NodeInfo>, Pod, Result<&'a str, &'a str>);
        let cases: Vec<Case> = vec![
            ("least allocated wins", vec![busy.clone(), node("idle", 2000, 4)], requesting("100m", "64Mi"), Ok("idle")),
            ("insufficient cpu", vec![busy.clone()], requesting("1", "64Mi"), Err("0/1 nodes are available: 1 Insufficient cpu.")),
            ("insufficient memory", vec![node("small", 4000, 1)], requesting("1", "2Gi"), Err("0/1 nodes are available: 1 Insufficient memory.")),
            ("cordoned and not ready are skipped", vec![cordoned.clone(), not_ready.clone(), node("ok", 100, 1)], requesting("50m", "1Mi"), Ok("ok")),
            ("reasons are counted", vec![cordoned, not_ready, busy], requesting("1", "1Mi"),
                Err("0/3 nodes are available: 1 Insufficient cpu, 1 node(s) were not ready, 1 node(s) were unschedulable.")),
            ("taint not tolerated", vec![tainted.clone()], requesting("1", "1Mi"),
                Err("0/1 nodes are available: 1 node(s) had untolerated taint {dedicated=gpu}.")),
            ("taint tolerated", vec![tainted],
                pod(json!({"containers": [{"name": "c", "image": "i"}], "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]})),
                Ok("tainted")),
            ("node selector", vec![node("plain", 8000, 16), labelled],
                pod(json!({"containers": [{"name": "c", "image": "i"}], "nodeSelector": {"disk": "ssd"}})), Ok("ssd")),
            ("no nodes", vec![], requesting("1", "1Mi"), Err("0/0 nodes are available: no nodes registered.")),
        ];
        for (name, nodes, pod, expected) in cases {
            let snapshot = ClusterSnapshot { nodes };
            let got = place(&snapshot, &pod)
                .map(|p| p.node)
                .map_err(|u| u.to_string());
            let expected = expected.map(str::to_string).map_err(str::to_string);
            assert_eq!(got, expected, "case {name}");
        }
    }

    #[test]
    fn request_less_pods_spread_over_equal_nodes() {
        let mut snapshot = ClusterSnapshot {
            nodes: vec![node("a", 4000, 8), node("b", 4000, 8)],
        };
        let p = pod(json!({"containers": [{"name": "c", "image": "i"}]}));
        let mut counts = BTreeMap::new();
        for _ in 0..10 {
            let placed = place(&snapshot, &p).expect("fits").node;
            snapshot.assume(&placed, &p);
            *counts.entry(placed).or_insert(0) += 1;
        }
        assert_eq!(counts.values().copied().collect::<Vec<_>>(), vec![5, 5]);
    }
}
