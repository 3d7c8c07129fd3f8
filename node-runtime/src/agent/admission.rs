//! The kubelet's admission: a pod bound to this node (by the scheduler, or directly through
//! `spec.nodeName`) runs only if it fits what the node can allocate, counting the pods already
//! admitted: their number, and their CPU and memory requests. A pod that does not fit fails with
//! `OutOfpods`, `OutOfcpu` or `OutOfmemory`, or `OutOfmappings` when the agent's process nears
//! `vm.max_map_count` (`mappings.rs`). The admitted pods are also what the eviction
//! manager ranks, and each carries the signal that evicts it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::quantity::{format_bytes, format_cpu_millis};
use skiff_api::requests::{pod_requests, Resources};
use tokio_util::sync::CancellationToken;

use super::mappings::MappingBudget;

/// Why a pod was not admitted: the pod's `status.reason` and `status.message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: &'static str,
    pub message: String,
}

/// Whether a pod requesting `new` fits beside the pods `admitted` on a node that can allocate
/// `allocatable` (its capacity less the reserves), as the kubelet decides it.
pub fn fits(
    allocatable: &Resources,
    admitted: &[Resources],
    new: Resources,
) -> Result<(), Rejection> {
    let reject = |resource: &str, requested: String, used: String, capacity: String| Rejection {
        reason: match resource {
            "pods" => "OutOfpods",
            "cpu" => "OutOfcpu",
            _ => "OutOfmemory",
        },
        message: format!(
            "Pod was rejected: Node didn't have enough resource: {resource}, requested: \
             {requested}, used: {used}, capacity: {capacity}"
        ),
    };
    let pods: u64 = admitted.iter().map(|r| r.pods).sum();
    if pods + new.pods > allocatable.pods {
        return Err(reject(
            "pods",
            "1".into(),
            pods.to_string(),
            allocatable.pods.to_string(),
        ));
    }
    let cpu: u64 = admitted.iter().map(|r| r.cpu_millis).sum();
    if new.cpu_millis > 0 && cpu + new.cpu_millis > allocatable.cpu_millis {
        return Err(reject(
            "cpu",
            format_cpu_millis(new.cpu_millis),
            format_cpu_millis(cpu),
            format_cpu_millis(allocatable.cpu_millis),
        ));
    }
    let memory: u64 = admitted.iter().map(|r| r.memory_bytes).sum();
    if new.memory_bytes > 0 && memory + new.memory_bytes > allocatable.memory_bytes {
        return Err(reject(
            "memory",
            format_bytes(new.memory_bytes),
            format_bytes(memory),
            format_bytes(allocatable.memory_bytes),
        ));
    }
    Ok(())
}

/// A pod admitted to this node: what eviction ranks it by, and its eviction signal.
#[derive(Debug)]
pub struct AdmittedPod {
    /// What it requests (a container's limit where it sets no request).
    pub requests: Resources,
    /// `spec.priority` (0 when unset).
    pub priority: i32,
    evicted: CancellationToken,
    message: OnceLock<String>,
}

impl AdmittedPod {
    /// Tells the pod's worker to evict it, with the pod's status message.
    pub fn evict(&self, message: String) {
        let _ = self.message.set(message);
        self.evicted.cancel();
    }

    pub fn is_evicted(&self) -> bool {
        self.evicted.is_cancelled()
    }

    /// Resolves with the eviction message once the pod is to be evicted.
    pub async fn evicted(&self) -> String {
        self.evicted.cancelled().await;
        self.message.get().cloned().unwrap_or_default()
    }
}

/// The pods admitted to this node, by uid.
#[derive(Debug)]
pub struct Admission {
    allocatable: Resources,
    pods: Mutex<HashMap<String, Arc<AdmittedPod>>>,
    mappings: Option<MappingBudget>,
}

impl Admission {
    pub fn new(allocatable: Resources) -> Self {
        Admission {
            allocatable,
            pods: Mutex::default(),
            mappings: None,
        }
    }

    /// Also refuses pods while the process's memory mappings near `mappings`' limit.
    pub fn with_mappings(mut self, mappings: MappingBudget) -> Self {
        self.mappings = Some(mappings);
        self
    }

    /// What pods may use on this node.
    pub fn allocatable(&self) -> Resources {
        self.allocatable
    }

    /// Admits `pod` if it fits; a pod `running` already was admitted by an earlier agent and
    /// is admitted again whatever the count.
    pub fn admit(
        &self,
        uid: &str,
        pod: &Pod,
        running: bool,
    ) -> Result<Arc<AdmittedPod>, Rejection> {
        let mut pods = self.pods.lock().expect("admission lock");
        if let Some(admitted) = pods.get(uid) {
            return Ok(admitted.clone());
        }
        let requests = pod_requests(pod);
        if !running {
            let others: Vec<Resources> = pods.values().map(|p| p.requests).collect();
            fits(&self.allocatable, &others, requests)?;
            if let Some(mappings) = &self.mappings {
                mappings.admit()?;
            }
        }
        let admitted = Arc::new(AdmittedPod {
            requests,
            priority: pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0),
            evicted: CancellationToken::new(),
            message: OnceLock::new(),
        });
        pods.insert(uid.to_string(), admitted.clone());
        Ok(admitted)
    }

    /// The pod no longer counts: it finished, failed, or is gone.
    pub fn release(&self, uid: &str) {
        self.pods.lock().expect("admission lock").remove(uid);
    }

    /// The admitted pods, by uid.
    pub fn admitted(&self) -> Vec<(String, Arc<AdmittedPod>)> {
        let pods = self.pods.lock().expect("admission lock");
        pods.iter()
            .map(|(uid, p)| (uid.clone(), p.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NODE: Resources = Resources {
        cpu_millis: 2000,
        memory_bytes: 1 << 30,
        pods: 3,
    };

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "a", "image": "x"}]},
        }))
        .expect("pod")
    }

    fn requests(cpu_millis: u64, memory_mib: u64) -> Resources {
        Resources {
            cpu_millis,
            memory_bytes: memory_mib << 20,
            pods: 1,
        }
    }

    #[test]
    fn what_fits_and_why_not() {
        let full = [requests(0, 0); 3];
        let cases: [(&[Resources], Resources, Option<&str>); 6] = [
            (&[], requests(2000, 1024), None),
            (&full[..2], requests(0, 0), None),
            (&full, requests(0, 0), Some("OutOfpods")),
            (&[requests(1500, 0)], requests(600, 0), Some("OutOfcpu")),
            (&[requests(0, 1000)], requests(0, 25), Some("OutOfmemory")),
            // A pod without requests fits wherever a pod slot is free.
            (&[requests(2000, 1024)], requests(0, 0), None),
        ];
        for (admitted, new, want) in cases {
            let got = fits(&NODE, admitted, new).err().map(|r| r.reason);
            assert_eq!(got, want, "{admitted:?} + {new:?}");
        }
        let rejection = fits(&NODE, &[requests(0, 1000)], requests(0, 25)).expect_err("memory");
        assert_eq!(
            rejection.message,
            "Pod was rejected: Node didn't have enough resource: memory, requested: 25Mi, \
             used: 1000Mi, capacity: 1Gi"
        );
    }

    #[test]
    fn admits_until_full_and_again_after_a_release() {
        let admission = Admission::new(NODE);
        for uid in ["a", "b", "c"] {
            admission.admit(uid, &pod(), false).expect("fits");
        }
        assert!(admission.admit("a", &pod(), false).is_ok(), "again");
        let rejected = admission.admit("d", &pod(), false);
        assert_eq!(rejected.expect_err("full").reason, "OutOfpods");
        admission
            .admit("e", &pod(), true)
            .expect("running pods were admitted before");
        admission.release("a");
        admission.release("e");
        admission.admit("d", &pod(), false).expect("room");
    }
}
