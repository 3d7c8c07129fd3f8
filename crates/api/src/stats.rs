//! Resource usage as a node reports it: the kubelet's `/stats/summary` cut to what
//! `metrics.k8s.io` and `kubectl top` need, and the quantities `metrics.k8s.io` writes. The
//! agent serves it; the API server reads it to answer `NodeMetrics` and `PodMetrics`.

use serde::{Deserialize, Serialize};

/// The API group and version of `NodeMetrics` and `PodMetrics`.
pub const METRICS_GROUP_VERSION: &str = "metrics.k8s.io/v1beta1";

/// A node's usage and that of each pod on it (the kubelet's `Summary`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub node: NodeStats,
    #[serde(default)]
    pub pods: Vec<PodStats>,
}

/// The node's own usage: the machine's CPU and memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats {
    pub node_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
}

/// Which pod a [`PodStats`] is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodReference {
    pub name: String,
    pub namespace: String,
    pub uid: String,
}

/// One pod's usage: its running containers', and their sum.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStats {
    pub pod_ref: PodReference,
    #[serde(default)]
    pub containers: Vec<ContainerStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
}

/// One container's usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStats {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
}

/// CPU used: in total, and as a rate over the sampling window that ends at `time`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuStats {
    /// When the (later) sample was taken, RFC 3339.
    pub time: String,
    /// Seconds between the two samples the rate is over (a Skiff field: the kubelet leaves
    /// the window to cAdvisor's housekeeping interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<f64>,
    /// Nanoseconds of CPU per second over the window (1e9: one core busy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_nano_cores: Option<u64>,
    /// CPU time used in total, in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_core_nano_seconds: Option<u64>,
}

/// Memory in use at `time`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    pub time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_bytes: Option<u64>,
    /// What `kubectl top` shows: memory in use less reclaimable file cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_set_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
}

/// A CPU rate as `metrics.k8s.io` writes it: nanocores (`1500000n`), `0` when idle.
pub fn cpu_quantity(nano_cores: u64) -> String {
    match nano_cores {
        0 => "0".to_string(),
        n => format!("{n}n"),
    }
}

/// Bytes as `metrics.k8s.io` writes them: in `Ki` when exact (as the kubelet's page-sized
/// counts are), else plain bytes.
pub fn memory_quantity(bytes: u64) -> String {
    if bytes > 0 && bytes.is_multiple_of(1024) {
        format!("{}Ki", bytes / 1024)
    } else {
        bytes.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantity::{parse_bytes, parse_cpu_millis};

    #[test]
    fn quantities_read_back_as_kubectl_reads_them() {
        assert_eq!(cpu_quantity(0), "0");
        assert_eq!(cpu_quantity(1_500_000), "1500000n");
        // kubectl rounds up to millicores: 1.5m shows as 2m.
        assert_eq!(parse_cpu_millis(&cpu_quantity(1_500_000)), Ok(2));
        assert_eq!(parse_cpu_millis(&cpu_quantity(250_000_000)), Ok(250));
        assert_eq!(memory_quantity(0), "0");
        assert_eq!(memory_quantity(65536), "64Ki");
        assert_eq!(memory_quantity(1000), "1000");
        assert_eq!(parse_bytes(&memory_quantity(3 << 20)), Ok(3 << 20));
    }

    #[test]
    fn summary_round_trips_in_the_kubelet_shape() {
        let json = serde_json::json!({
            "node": {"nodeName": "n1", "cpu": {"time": "2026-01-01T00:00:00Z",
                "usageNanoCores": 5, "usageCoreNanoSeconds": 9}},
            "pods": [{"podRef": {"name": "p", "namespace": "default", "uid": "u"},
                "containers": [{"name": "c", "memory": {"time": "2026-01-01T00:00:00Z",
                    "workingSetBytes": 4096}}]}],
        });
        let summary: Summary = serde_json::from_value(json.clone()).expect("summary");
        assert_eq!(
            summary.node.cpu.as_ref().and_then(|c| c.usage_nano_cores),
            Some(5)
        );
        assert_eq!(summary.pods[0].containers[0].name, "c");
        assert_eq!(serde_json::to_value(&summary).expect("json"), json);
    }
}
