//! What pods ask for and nodes offer: cpu, memory and pod slots, summed as the scheduler and
//! `skiff get nodes` count them.

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::quantity;

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

    pub fn sub(&mut self, other: &Resources) {
        self.cpu_millis = self.cpu_millis.saturating_sub(other.cpu_millis);
        self.memory_bytes = self.memory_bytes.saturating_sub(other.memory_bytes);
        self.pods = self.pods.saturating_sub(other.pods);
    }
}

/// What a pod asks for, as Kubernetes counts it: the larger of the biggest init container
/// (they run one at a time) and the app containers plus sidecars (they run together),
/// resource by resource; requests, or limits where no request is set; and one pod slot.
pub fn pod_requests(pod: &Pod) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources {
            pods: 1,
            ..Default::default()
        };
    };
    let mut together = Resources::default();
    let mut init_peak = Resources::default();
    for container in spec.init_containers.iter().flatten() {
        let asks = container_requests(container);
        if container.restart_policy.as_deref() == Some("Always") {
            together.add(&asks);
        } else {
            // Each init container runs beside the sidecars started before it.
            let mut with_sidecars = together;
            with_sidecars.add(&asks);
            init_peak.cpu_millis = init_peak.cpu_millis.max(with_sidecars.cpu_millis);
            init_peak.memory_bytes = init_peak.memory_bytes.max(with_sidecars.memory_bytes);
        }
    }
    for container in &spec.containers {
        together.add(&container_requests(container));
    }
    Resources {
        cpu_millis: together.cpu_millis.max(init_peak.cpu_millis),
        memory_bytes: together.memory_bytes.max(init_peak.memory_bytes),
        pods: 1,
    }
}

/// One container's cpu and memory requests (limits where no request is set).
fn container_requests(container: &Container) -> Resources {
    let mut asks = Resources::default();
    let Some(resources) = container.resources.as_ref() else {
        return asks;
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
        asks.cpu_millis = quantity::parse_cpu_millis(&cpu).unwrap_or(0);
    }
    if let Some(memory) = pick("memory") {
        asks.memory_bytes = quantity::parse_bytes(&memory).unwrap_or(0);
    }
    asks
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).expect("pod")
    }

    fn asks(name: &str, cpu: &str, memory: &str) -> serde_json::Value {
        json!({"name": name, "image": "i", "resources": {"requests": {"cpu": cpu, "memory": memory}}})
    }

    #[test]
    fn init_containers_count_at_their_peak() {
        let sidecar = {
            let mut s = asks("s", "50m", "8Mi");
            s["restartPolicy"] = json!("Always");
            s
        };
        let mi = 1024 * 1024;
        let cases = [
            (
                "apps only: the sum",
                json!({"containers": [asks("a", "100m", "16Mi"), asks("b", "200m", "16Mi")]}),
                (300, 32 * mi),
            ),
            (
                "a big init container wins per resource",
                json!({"initContainers": [asks("i", "500m", "4Mi")], "containers": [asks("a", "100m", "16Mi")]}),
                (500, 16 * mi),
            ),
            (
                "sidecars add to the apps",
                json!({"initContainers": [sidecar.clone()], "containers": [asks("a", "100m", "16Mi")]}),
                (150, 24 * mi),
            ),
            (
                "an init container after a sidecar runs beside it",
                json!({"initContainers": [sidecar, asks("i", "200m", "4Mi")], "containers": [asks("a", "100m", "16Mi")]}),
                (250, 24 * mi),
            ),
        ];
        for (name, spec, (cpu, memory)) in cases {
            assert_eq!(
                pod_requests(&pod(spec)),
                Resources {
                    cpu_millis: cpu,
                    memory_bytes: memory,
                    pods: 1
                },
                "{name}"
            );
        }
    }
}
