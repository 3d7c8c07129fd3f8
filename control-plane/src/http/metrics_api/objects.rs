//! `NodeMetrics` and `PodMetrics` from the agents' summaries, as metrics-server writes them:
//! CPU as the rate over the agent's window (nanocores), memory as the working set; a node or
//! pod without a rate yet (its first reading) is left out, as metrics-server leaves it out.

use serde_json::{json, Value};
use skiff_api::stats::{
    cpu_quantity, memory_quantity, CpuStats, MemoryStats, NodeStats, PodStats,
    METRICS_GROUP_VERSION,
};

/// `{cpu, memory}` and the time and window of the CPU rate, if there is a rate.
fn usage(cpu: Option<&CpuStats>, memory: Option<&MemoryStats>) -> Option<(Value, String, String)> {
    let cpu = cpu?;
    let rate = cpu.usage_nano_cores?;
    let window = cpu.window_seconds?;
    let memory = memory.and_then(|m| m.working_set_bytes).unwrap_or(0);
    Some((
        json!({"cpu": cpu_quantity(rate), "memory": memory_quantity(memory)}),
        cpu.time.clone(),
        format!("{window:.3}s"),
    ))
}

fn metadata(object: &Value, now: &str) -> Value {
    let meta = &object["metadata"];
    let mut metadata = json!({"name": meta["name"], "creationTimestamp": now});
    for field in ["namespace", "labels"] {
        if !meta[field].is_null() {
            metadata[field] = meta[field].clone();
        }
    }
    metadata
}

/// The `NodeMetrics` of `node` (a Node object) from its agent's node stats.
pub fn node_metrics(node: &Value, stats: &NodeStats, now: &str) -> Option<Value> {
    let (usage, timestamp, window) = usage(stats.cpu.as_ref(), stats.memory.as_ref())?;
    Some(json!({
        "kind": "NodeMetrics",
        "apiVersion": METRICS_GROUP_VERSION,
        "metadata": metadata(node, now),
        "timestamp": timestamp,
        "window": window,
        "usage": usage,
    }))
}

/// The `PodMetrics` of `pod` (a Pod object) from its agent's pod stats: every container must
/// have a rate.
pub fn pod_metrics(pod: &Value, stats: &PodStats, now: &str) -> Option<Value> {
    let (_, timestamp, window) = usage(stats.cpu.as_ref(), stats.memory.as_ref())?;
    let containers = stats
        .containers
        .iter()
        .map(|c| {
            let (usage, _, _) = usage(c.cpu.as_ref(), c.memory.as_ref())?;
            Some(json!({"name": c.name, "usage": usage}))
        })
        .collect::<Option<Vec<Value>>>()?;
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": METRICS_GROUP_VERSION,
        "metadata": metadata(pod, now),
        "timestamp": timestamp,
        "window": window,
        "containers": containers,
    }))
}

/// A `NodeMetricsList` or `PodMetricsList` of `items`.
pub fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({
        "kind": format!("{kind}List"),
        "apiVersion": METRICS_GROUP_VERSION,
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use skiff_api::stats::{ContainerStats, PodReference};

    use super::*;

    fn cpu(rate: Option<u64>) -> Option<CpuStats> {
        Some(CpuStats {
            time: "2026-12-01T00:00:10Z".into(),
            window_seconds: rate.map(|_| 10.0),
            usage_nano_cores: rate,
            usage_core_nano_seconds: Some(1),
        })
    }

    fn memory(bytes: u64) -> Option<MemoryStats> {
        Some(MemoryStats {
            time: "2026-12-01T00:00:10Z".into(),
            usage_bytes: Some(bytes * 2),
            working_set_bytes: Some(bytes),
            rss_bytes: None,
        })
    }

    #[test]
    fn pod_metrics_carry_each_containers_rate_and_working_set() {
        let pod = json!({"metadata": {"name": "web", "namespace": "shop",
            "labels": {"app": "web"}, "uid": "u1"}});
        let container = |name: &str, rate: Option<u64>| ContainerStats {
            name: name.into(),
            cpu: cpu(rate),
            memory: memory(65536),
        };
        let mut stats = PodStats {
            pod_ref: PodReference::default(),
            containers: vec![
                container("app", Some(250_000_000)),
                container("log", Some(0)),
            ],
            cpu: cpu(Some(250_000_000)),
            memory: memory(131072),
        };
        let metrics = pod_metrics(&pod, &stats, "now").expect("metrics");
        assert_eq!(
            metrics,
            json!({
                "kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"},
                    "creationTimestamp": "now"},
                "timestamp": "2026-12-01T00:00:10Z", "window": "10.000s",
                "containers": [
                    {"name": "app", "usage": {"cpu": "250000000n", "memory": "64Ki"}},
                    {"name": "log", "usage": {"cpu": "0", "memory": "64Ki"}},
                ],
            })
        );
        stats.containers[1].cpu = cpu(None);
        assert_eq!(
            pod_metrics(&pod, &stats, "now"),
            None,
            "a container without a rate"
        );
    }

    #[test]
    fn node_metrics_need_a_rate() {
        let node = json!({"metadata": {"name": "n1"}});
        let mut stats = NodeStats {
            node_name: "n1".into(),
            cpu: cpu(Some(1_500_000_000)),
            memory: memory(1 << 30),
        };
        let metrics = node_metrics(&node, &stats, "now").expect("metrics");
        assert_eq!(
            metrics["usage"],
            json!({"cpu": "1500000000n", "memory": "1048576Ki"})
        );
        assert!(metrics["metadata"].get("namespace").is_none());
        stats.cpu = cpu(None);
        assert_eq!(node_metrics(&node, &stats, "now"), None);
        assert_eq!(list("NodeMetrics", vec![])["kind"], "NodeMetricsList");
    }
}
