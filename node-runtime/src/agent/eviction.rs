//! The eviction manager, the kubelet's for memory: it watches the node's available memory and,
//! below the hard threshold (`--eviction-hard memory.available<100Mi`), evicts one admitted pod
//! at a time, the one furthest over its memory request, before the node (and the agent on it)
//! runs out. The pod fails with reason `Evicted` and the kubelet's message.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use skiff_api::k8s_openapi::api::core::v1::NodeCondition;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use skiff_api::quantity::format_bytes;
use tokio_util::sync::CancellationToken;

use super::admission::AdmittedPod;
use super::status;
use super::worker::Context;
use crate::runtime::ContainerState;

/// Where the node's available memory is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemorySource {
    /// `MemAvailable` in /proc/meminfo.
    Host,
    /// A node of this many bytes whose only users are its pods: available is the total less
    /// what they use (tests and simulated nodes drive eviction with it).
    Total(u64),
}

/// Hard eviction on memory: act when available memory falls below `threshold` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eviction {
    pub threshold: u64,
    /// How often available memory is checked.
    pub interval: Duration,
    pub source: MemorySource,
}

impl Eviction {
    /// Evicts below `threshold` bytes of the host's available memory, checked every second (a
    /// guest can grow by gigabytes in the kubelet's 10 s).
    pub fn hard(threshold: u64) -> Self {
        Eviction {
            threshold,
            interval: Duration::from_secs(1),
            source: MemorySource::Host,
        }
    }
}

/// Whether the node is short of memory (below the eviction threshold), and since when: the
/// Node's `MemoryPressure` condition.
#[derive(Debug)]
pub struct MemoryPressure(Mutex<(bool, Time)>);

impl Default for MemoryPressure {
    fn default() -> Self {
        MemoryPressure(Mutex::new((false, status::now())))
    }
}

impl MemoryPressure {
    fn set(&self, under_pressure: bool) {
        let mut state = self.0.lock().expect("memory pressure lock");
        if state.0 != under_pressure {
            *state = (under_pressure, status::now());
        }
    }

    /// The `MemoryPressure` condition as the kubelet reports it.
    pub fn condition(&self) -> NodeCondition {
        let (under_pressure, since) = self.0.lock().expect("memory pressure lock").clone();
        let (status, reason, message) = if under_pressure {
            (
                "True",
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
            )
        } else {
            (
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            )
        };
        NodeCondition {
            type_: "MemoryPressure".into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_heartbeat_time: Some(status::now()),
            last_transition_time: Some(since),
        }
    }
}

/// One admitted pod as eviction ranks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub uid: String,
    /// Memory its running containers use, in bytes.
    pub usage: u64,
    /// Its memory request, in bytes.
    pub request: u64,
    pub priority: i32,
    /// Its container using the most memory, and how much.
    pub top: (String, u64),
}

impl Candidate {
    fn over_request(&self) -> i128 {
        i128::from(self.usage) - i128::from(self.request)
    }
}

/// The pod to evict first, in the kubelet's order: pods using more memory than they request
/// before the others, then the lower priority, then the larger use above the request.
pub fn pick(candidates: &[Candidate]) -> Option<&Candidate> {
    candidates.iter().min_by(|a, b| {
        let exceeds = |c: &Candidate| c.over_request() > 0;
        exceeds(b)
            .cmp(&exceeds(a))
            .then(a.priority.cmp(&b.priority))
            .then(b.over_request().cmp(&a.over_request()))
    })
}

/// The evicted pod's status message, as the kubelet words it.
pub fn message(threshold: u64, available: u64, victim: &Candidate) -> String {
    format!(
        "The node was low on resource: memory. Threshold quantity: {}, available: {}. \
         Container {} was using {}, request is {}, has larger consumption of memory.",
        format_bytes(threshold),
        format_bytes(available),
        victim.top.0,
        format_bytes(victim.top.1),
        format_bytes(victim.request),
    )
}

/// A field of /proc/meminfo (`MemTotal`, `MemAvailable`), in bytes.
pub fn meminfo_bytes(field: &str) -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let prefix = format!("{field}:");
    info.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Watches available memory every `eviction.interval` until `stop`, evicting as it must.
pub async fn run(ctx: Arc<Context>, eviction: Eviction, stop: CancellationToken) {
    let mut tick = tokio::time::interval(eviction.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let admitted = ctx.admission.admitted();
        // One pod at a time: the last one evicted is released once its containers are gone.
        if admitted.iter().any(|(_, pod)| pod.is_evicted()) {
            continue;
        }
        let candidates = usage(&ctx, &admitted).await;
        let available = match eviction.source {
            MemorySource::Host => match meminfo_bytes("MemAvailable") {
                Some(available) => available,
                None => continue,
            },
            MemorySource::Total(total) => {
                total.saturating_sub(candidates.iter().map(|c| c.usage).sum())
            }
        };
        ctx.memory_pressure.set(available < eviction.threshold);
        if available >= eviction.threshold {
            continue;
        }
        let Some(victim) = pick(&candidates) else {
            tracing::warn!(available, "the node is low on memory and no pod uses any");
            continue;
        };
        let message = message(eviction.threshold, available, victim);
        if let Some((_, pod)) = admitted.iter().find(|(uid, _)| *uid == victim.uid) {
            pod.evict(message);
        }
    }
}

/// What each admitted pod's running containers use, from the runtimes' stats.
async fn usage(ctx: &Context, admitted: &[(String, Arc<AdmittedPod>)]) -> Vec<Candidate> {
    let mut candidates = Vec::new();
    for (uid, pod) in admitted {
        let mut candidate = Candidate {
            uid: uid.clone(),
            usage: 0,
            request: pod.requests.memory_bytes,
            priority: pod.priority,
            top: (String::new(), 0),
        };
        for runtime in ctx.runtimes.iter() {
            let Ok(containers) = runtime.list_containers(Some(uid)).await else {
                continue;
            };
            for container in containers {
                if !matches!(container.state, ContainerState::Running { .. }) {
                    continue;
                }
                let Ok(stats) = runtime.container_stats(&container.id).await else {
                    continue;
                };
                candidate.usage += stats.memory_bytes;
                if stats.memory_bytes >= candidate.top.1 {
                    candidate.top = (container.name, stats.memory_bytes);
                }
            }
        }
        if candidate.usage > 0 {
            candidates.push(candidate);
        }
    }
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(uid: &str, usage_mib: u64, request_mib: u64, priority: i32) -> Candidate {
        Candidate {
            uid: uid.into(),
            usage: usage_mib << 20,
            request: request_mib << 20,
            priority,
            top: ("main".into(), usage_mib << 20),
        }
    }

    #[test]
    fn evicts_the_pod_furthest_over_its_request_first() {
        let cases: [(&[Candidate], Option<&str>); 5] = [
            (&[], None),
            // Over its request beats within it, however large the other's use.
            (
                &[
                    candidate("within", 900, 1000, 0),
                    candidate("over", 20, 10, 0),
                ],
                Some("over"),
            ),
            // Both over: the lower priority goes first.
            (
                &[candidate("low", 20, 10, -5), candidate("high", 900, 0, 10)],
                Some("low"),
            ),
            // Same priority: the one further over its request.
            (
                &[candidate("a", 300, 100, 0), candidate("b", 250, 0, 0)],
                Some("b"),
            ),
            // None over: the one closest to its request.
            (
                &[candidate("a", 50, 100, 0), candidate("b", 90, 100, 0)],
                Some("b"),
            ),
        ];
        for (candidates, want) in cases {
            assert_eq!(
                pick(candidates).map(|c| c.uid.as_str()),
                want,
                "{candidates:?}"
            );
        }
    }

    #[test]
    fn the_message_is_the_kubelets() {
        assert_eq!(
            message(100 << 20, 24 << 20, &candidate("a", 700, 0, 0)),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 24Mi. \
             Container main was using 700Mi, request is 0, has larger consumption of memory."
        );
    }

    #[test]
    fn pressure_changes_its_transition_time_only_when_it_flips() {
        let pressure = MemoryPressure::default();
        let first = pressure.condition();
        assert_eq!(first.status, "False");
        pressure.set(false);
        assert_eq!(
            pressure.condition().last_transition_time,
            first.last_transition_time
        );
        pressure.set(true);
        let condition = pressure.condition();
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_deref()),
            ("True", Some("KubeletHasInsufficientMemory"))
        );
    }

    #[test]
    fn reads_the_hosts_memory() {
        let total = meminfo_bytes("MemTotal").expect("MemTotal");
        let available = meminfo_bytes("MemAvailable").expect("MemAvailable");
        assert!(
            available > 0 && available <= total,
            "{available} of {total}"
        );
        assert_eq!(meminfo_bytes("NoSuchField"), None);
    }
}
