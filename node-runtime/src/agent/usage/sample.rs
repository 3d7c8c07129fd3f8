//! One reading of everything the node runs, and the summary two readings make: CPU rates are
//! the change of each counter between the previous reading and the latest over the time
//! between them (as cAdvisor and metrics-server rate two scrapes); memory is the latest's.

use std::time::Instant;

use jiff::Timestamp;
use skiff_api::stats::{
    ContainerStats as ContainerSummary, CpuStats, MemoryStats, NodeStats, PodReference, PodStats,
    Summary,
};

use super::host::{MachineUsage, ProcessUsage};
use crate::runtime::{ContainerId, ContainerStats};

/// One running container's counters at a reading.
#[derive(Debug, Clone)]
pub struct ContainerSample {
    pub pod: PodReference,
    pub container: String,
    /// The runtime's id: a restarted container is a new one, its counters start anew.
    pub id: ContainerId,
    pub stats: ContainerStats,
}

/// Everything read at one moment.
#[derive(Debug, Clone)]
pub struct Sample {
    pub time: Timestamp,
    /// The same moment on the monotonic clock, which rates are computed on.
    pub instant: Instant,
    pub containers: Vec<ContainerSample>,
    pub machine: Option<MachineUsage>,
    pub process: Option<ProcessUsage>,
}

/// Nanoseconds of CPU per second between two cumulative readings, `None` if the counter went
/// back (it restarted) or no time passed.
pub fn nano_cores(before: u64, after: u64, seconds: f64) -> Option<u64> {
    if after < before || seconds <= 0.0 {
        return None;
    }
    Some(((after - before) as f64 / seconds).round() as u64)
}

/// The summary of `latest`, with CPU rates against `previous` where both read a counter.
pub fn summarize(node_name: &str, previous: Option<&Sample>, latest: &Sample) -> Summary {
    let time = latest.time.to_string();
    let window = previous.map(|p| latest.instant.duration_since(p.instant).as_secs_f64());
    let cpu = |before: Option<u64>, after: u64| CpuStats {
        time: time.clone(),
        window_seconds: before.and(window),
        usage_nano_cores: before.and_then(|b| nano_cores(b, after, window?)),
        usage_core_nano_seconds: Some(after),
    };
    let memory = |usage: u64, working_set: u64, rss: Option<u64>| MemoryStats {
        time: time.clone(),
        usage_bytes: Some(usage),
        working_set_bytes: Some(working_set),
        rss_bytes: rss,
    };
    let node = NodeStats {
        node_name: node_name.to_string(),
        cpu: latest.machine.map(|m| {
            let before = previous.and_then(|p| p.machine).map(|p| p.cpu_nanos);
            cpu(before, m.cpu_nanos)
        }),
        memory: latest
            .machine
            .map(|m| memory(m.working_set_bytes, m.working_set_bytes, None)),
    };
    let mut pods: Vec<PodStats> = Vec::new();
    for sample in &latest.containers {
        let before = previous
            .and_then(|p| p.containers.iter().find(|c| c.id == sample.id))
            .map(|c| c.stats.cpu_usage_nanos);
        let stats = &sample.stats;
        let container = ContainerSummary {
            name: sample.container.clone(),
            cpu: Some(cpu(before, stats.cpu_usage_nanos)),
            memory: Some(memory(
                stats.memory_bytes,
                stats.memory_working_set_bytes,
                Some(stats.memory_rss_bytes),
            )),
        };
        match pods.iter_mut().find(|p| p.pod_ref == sample.pod) {
            Some(pod) => pod.containers.push(container),
            None => pods.push(PodStats {
                pod_ref: sample.pod.clone(),
                containers: vec![container],
                cpu: None,
                memory: None,
            }),
        }
    }
    for pod in &mut pods {
        pod.cpu = Some(pod_cpu(&pod.containers, &time, window));
        pod.memory = Some(pod_memory(&pod.containers, &time));
    }
    Summary { node, pods }
}

/// A pod's CPU: its containers' summed; a rate only when every container has one.
fn pod_cpu(containers: &[ContainerSummary], time: &str, window: Option<f64>) -> CpuStats {
    let cpus = || containers.iter().filter_map(|c| c.cpu.as_ref());
    let rates: Option<u64> = cpus().map(|c| c.usage_nano_cores).sum();
    CpuStats {
        time: time.to_string(),
        window_seconds: rates.and(window),
        usage_nano_cores: rates,
        usage_core_nano_seconds: cpus().map(|c| c.usage_core_nano_seconds).sum(),
    }
}

/// A pod's memory: its containers' summed.
fn pod_memory(containers: &[ContainerSummary], time: &str) -> MemoryStats {
    let memories = || containers.iter().filter_map(|c| c.memory.as_ref());
    MemoryStats {
        time: time.to_string(),
        usage_bytes: memories().map(|m| m.usage_bytes).sum(),
        working_set_bytes: memories().map(|m| m.working_set_bytes).sum(),
        rss_bytes: memories().map(|m| m.rss_bytes).sum(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn container(pod: &str, name: &str, id: &str, cpu_ms: u64, memory: u64) -> ContainerSample {
        ContainerSample {
            pod: PodReference {
                name: pod.into(),
                namespace: "default".into(),
                uid: format!("{pod}-uid"),
            },
            container: name.into(),
            id: id.into(),
            stats: ContainerStats {
                cpu_usage_nanos: cpu_ms * 1_000_000,
                memory_bytes: memory + 100,
                memory_working_set_bytes: memory,
                memory_rss_bytes: memory,
            },
        }
    }

    fn sample(at: Instant, containers: Vec<ContainerSample>, machine_cpu_ms: u64) -> Sample {
        Sample {
            time: Timestamp::UNIX_EPOCH,
            instant: at,
            containers,
            machine: Some(MachineUsage {
                cpu_nanos: machine_cpu_ms * 1_000_000,
                working_set_bytes: 1 << 30,
                total_bytes: 4 << 30,
            }),
            process: None,
        }
    }

    #[test]
    fn rates_are_counter_changes_over_the_window() {
        assert_eq!(nano_cores(0, 500_000_000, 2.0), Some(250_000_000));
        assert_eq!(
            nano_cores(10, 5, 1.0),
            None,
            "a counter that went back restarted"
        );
        assert_eq!(nano_cores(0, 5, 0.0), None);
    }

    #[test]
    fn a_summary_rates_each_container_and_sums_pods() {
        let start = Instant::now();
        let before = sample(
            start,
            vec![
                container("web", "app", "c1", 1_000, 10),
                container("web", "sidecar", "c2", 0, 20),
                container("db", "main", "c3", 50, 30),
            ],
            10_000,
        );
        let after = sample(
            start + Duration::from_secs(10),
            vec![
                // 2 s of CPU in 10 s: 200m.
                container("web", "app", "c1", 3_000, 4096),
                container("web", "sidecar", "c2", 100, 1000),
                // Restarted: a new id, no rate yet.
                container("db", "main", "c4", 10, 30),
            ],
            30_000,
        );
        let summary = summarize("n1", Some(&before), &after);
        let node_cpu = summary.node.cpu.expect("node cpu");
        assert_eq!(node_cpu.usage_nano_cores, Some(2_000_000_000));
        assert_eq!(node_cpu.window_seconds, Some(10.0));
        let web = &summary.pods[0];
        assert_eq!(web.pod_ref.name, "web");
        let app_cpu = web.containers[0].cpu.as_ref().expect("cpu");
        assert_eq!(app_cpu.usage_nano_cores, Some(200_000_000));
        let pod_cpu = web.cpu.as_ref().expect("pod cpu");
        assert_eq!(pod_cpu.usage_nano_cores, Some(210_000_000));
        assert_eq!(pod_cpu.usage_core_nano_seconds, Some(3_100_000_000));
        let pod_memory = web.memory.as_ref().expect("pod memory");
        assert_eq!(pod_memory.working_set_bytes, Some(5096));
        assert_eq!(pod_memory.usage_bytes, Some(5296));
        let db = &summary.pods[1];
        assert_eq!(db.cpu.as_ref().and_then(|c| c.usage_nano_cores), None);
        assert_eq!(
            db.containers[0]
                .cpu
                .as_ref()
                .and_then(|c| c.usage_core_nano_seconds),
            Some(10_000_000)
        );
    }

    #[test]
    fn a_first_reading_has_totals_and_no_rates() {
        let only = sample(
            Instant::now(),
            vec![container("web", "app", "c1", 5, 10)],
            1,
        );
        let summary = summarize("n1", None, &only);
        assert_eq!(
            summary.node.cpu.as_ref().and_then(|c| c.usage_nano_cores),
            None
        );
        let pod = &summary.pods[0];
        assert_eq!(pod.cpu.as_ref().and_then(|c| c.usage_nano_cores), None);
        assert_eq!(
            pod.memory.as_ref().and_then(|m| m.working_set_bytes),
            Some(10)
        );
    }
}
