//! What pods ask for and nodes offer: cpu, memory and pod slots, summed as the scheduler and
//! `skiff get nodes` count them.

use k8s_openapi::api::core::v1::Pod;

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
