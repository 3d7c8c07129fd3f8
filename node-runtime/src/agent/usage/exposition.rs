//! The node's usage in Prometheus text under the names stock dashboards know: cAdvisor's
//! (`/metrics/cadvisor`), the kubelet's resource metrics that metrics-server scrapes
//! (`/metrics/resource`), and the agent process's own basics (`/metrics`).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::sample::{ContainerSample, Sample};

/// The media type of the text this module writes (OpenMetrics 1.0, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A series' value: a counter's seconds or a gauge's bytes.
#[derive(Debug, Clone, Copy)]
enum Value {
    Seconds(f64),
    Bytes(u64),
}

type Labels = Vec<(&'static str, String)>;

/// One metric family with its series, written at once.
#[derive(Debug)]
struct Family {
    /// The name without the `_total` the encoder adds to counters.
    name: &'static str,
    help: &'static str,
    series: Vec<(Labels, Value)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str) -> Self {
        Family {
            name,
            help,
            series: Vec::new(),
        }
    }
}

/// The families of one answer, as a collector the registry encodes.
#[derive(Debug)]
struct Families(Vec<Family>);

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in self.0.iter().filter(|f| !f.series.is_empty()) {
            let metric_type = match family.series[0].1 {
                Value::Seconds(_) => MetricType::Counter,
                Value::Bytes(_) => MetricType::Gauge,
            };
            let mut descriptor =
                encoder.encode_descriptor(family.name, family.help, None, metric_type)?;
            for (labels, value) in &family.series {
                let metric = descriptor.encode_family(labels)?;
                match *value {
                    Value::Seconds(s) => ConstCounter::new(s).encode(metric)?,
                    Value::Bytes(b) => ConstGauge::new(b as i64).encode(metric)?,
                }
            }
        }
        Ok(())
    }
}

fn encode(families: Vec<Family>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Families(families)));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .expect("writing to a String cannot fail");
    text
}

fn seconds(nanos: u64) -> Value {
    Value::Seconds(nanos as f64 / 1e9)
}

fn container_labels(c: &ContainerSample) -> Labels {
    vec![
        ("container", c.container.clone()),
        ("namespace", c.pod.namespace.clone()),
        ("pod", c.pod.name.clone()),
    ]
}

/// cAdvisor's per-container series and the machine's memory.
pub fn cadvisor(sample: &Sample) -> String {
    let mut cpu = Family::new(
        "container_cpu_usage_seconds",
        "Cumulative cpu time consumed in seconds.",
    );
    let mut working_set = Family::new(
        "container_memory_working_set_bytes",
        "Current working set in bytes.",
    );
    let mut rss = Family::new("container_memory_rss", "Size of RSS in bytes.");
    let mut usage = Family::new(
        "container_memory_usage_bytes",
        "Current memory usage in bytes, including all memory regardless of when it was accessed.",
    );
    for c in &sample.containers {
        let labels = container_labels(c);
        cpu.series
            .push((labels.clone(), seconds(c.stats.cpu_usage_nanos)));
        working_set.series.push((
            labels.clone(),
            Value::Bytes(c.stats.memory_working_set_bytes),
        ));
        rss.series
            .push((labels.clone(), Value::Bytes(c.stats.memory_rss_bytes)));
        usage
            .series
            .push((labels, Value::Bytes(c.stats.memory_bytes)));
    }
    let mut machine = Family::new(
        "machine_memory_bytes",
        "Amount of memory installed on the machine.",
    );
    if let Some(m) = sample.machine {
        machine.series.push((vec![], Value::Bytes(m.total_bytes)));
    }
    encode(vec![cpu, working_set, rss, usage, machine])
}

/// The kubelet's `/metrics/resource`: containers', pods' and the node's CPU and working set.
pub fn resource(sample: &Sample) -> String {
    let mut container_cpu = Family::new(
        "container_cpu_usage_seconds",
        "Cumulative cpu time consumed by the container in core-seconds",
    );
    let mut container_memory = Family::new(
        "container_memory_working_set_bytes",
        "Current working set of the container in bytes",
    );
    let mut pod_cpu = Family::new(
        "pod_cpu_usage_seconds",
        "Cumulative cpu time consumed by the pod in core-seconds",
    );
    let mut pod_memory = Family::new(
        "pod_memory_working_set_bytes",
        "Current working set of the pod in bytes",
    );
    let mut pods: Vec<(Labels, u64, u64)> = Vec::new();
    for c in &sample.containers {
        let labels = container_labels(c);
        container_cpu
            .series
            .push((labels.clone(), seconds(c.stats.cpu_usage_nanos)));
        container_memory
            .series
            .push((labels, Value::Bytes(c.stats.memory_working_set_bytes)));
        let pod_labels = vec![
            ("namespace", c.pod.namespace.clone()),
            ("pod", c.pod.name.clone()),
        ];
        match pods.iter_mut().find(|(l, _, _)| *l == pod_labels) {
            Some((_, cpu, memory)) => {
                *cpu += c.stats.cpu_usage_nanos;
                *memory += c.stats.memory_working_set_bytes;
            }
            None => pods.push((
                pod_labels,
                c.stats.cpu_usage_nanos,
                c.stats.memory_working_set_bytes,
            )),
        }
    }
    for (labels, cpu, memory) in pods {
        pod_cpu.series.push((labels.clone(), seconds(cpu)));
        pod_memory.series.push((labels, Value::Bytes(memory)));
    }
    let mut node_cpu = Family::new(
        "node_cpu_usage_seconds",
        "Cumulative cpu time consumed by the node in core-seconds",
    );
    let mut node_memory = Family::new(
        "node_memory_working_set_bytes",
        "Current working set of the node in bytes",
    );
    if let Some(m) = sample.machine {
        node_cpu.series.push((vec![], seconds(m.cpu_nanos)));
        node_memory
            .series
            .push((vec![], Value::Bytes(m.working_set_bytes)));
    }
    encode(vec![
        container_cpu,
        container_memory,
        pod_cpu,
        pod_memory,
        node_cpu,
        node_memory,
    ])
}

/// The agent process's own CPU and memory, as every Prometheus client exports them.
pub fn process(sample: &Sample) -> String {
    let mut cpu = Family::new(
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds.",
    );
    let mut resident = Family::new(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
    );
    if let Some(p) = sample.process {
        cpu.series.push((vec![], seconds(p.cpu_nanos)));
        resident
            .series
            .push((vec![], Value::Bytes(p.resident_bytes)));
    }
    encode(vec![cpu, resident])
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use jiff::Timestamp;
    use skiff_api::stats::PodReference;

    use super::super::host::{MachineUsage, ProcessUsage};
    use super::*;
    use crate::runtime::ContainerStats;

    fn sample() -> Sample {
        let container = |name: &str, cpu: u64, memory: u64| ContainerSample {
            pod: PodReference {
                name: "web".into(),
                namespace: "shop".into(),
                uid: "u1".into(),
            },
            container: name.into(),
            id: format!("id-{name}"),
            stats: ContainerStats {
                cpu_usage_nanos: cpu,
                memory_bytes: memory + 1,
                memory_working_set_bytes: memory,
                memory_rss_bytes: memory - 1,
            },
        };
        Sample {
            time: Timestamp::UNIX_EPOCH,
            instant: Instant::now(),
            containers: vec![
                container("app", 1_500_000_000, 65536),
                container("log", 500_000_000, 4096),
            ],
            machine: Some(MachineUsage {
                cpu_nanos: 90_000_000_000,
                working_set_bytes: 1 << 30,
                total_bytes: 4 << 30,
            }),
            process: Some(ProcessUsage {
                cpu_nanos: 250_000_000,
                resident_bytes: 1 << 20,
            }),
        }
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn cadvisor_names_and_labels() {
        let text = cadvisor(&sample());
        let lines = lines(&text);
        for expected in [
            "# TYPE container_cpu_usage_seconds counter",
            "container_cpu_usage_seconds_total{container=\"app\",namespace=\"shop\",pod=\"web\"} 1.5",
            "# TYPE container_memory_working_set_bytes gauge",
            "container_memory_working_set_bytes{container=\"app\",namespace=\"shop\",pod=\"web\"} 65536",
            "container_memory_rss{container=\"log\",namespace=\"shop\",pod=\"web\"} 4095",
            "container_memory_usage_bytes{container=\"log\",namespace=\"shop\",pod=\"web\"} 4097",
            "machine_memory_bytes 4294967296",
            "# EOF",
        ] {
            assert!(lines.contains(&expected), "{expected:?} missing from\n{text}");
        }
    }

    #[test]
    fn resource_metrics_sum_pods_and_report_the_node() {
        let text = resource(&sample());
        let lines = lines(&text);
        for expected in [
            "container_cpu_usage_seconds_total{container=\"log\",namespace=\"shop\",pod=\"web\"} 0.5",
            "pod_cpu_usage_seconds_total{namespace=\"shop\",pod=\"web\"} 2.0",
            "pod_memory_working_set_bytes{namespace=\"shop\",pod=\"web\"} 69632",
            "node_cpu_usage_seconds_total 90.0",
            "node_memory_working_set_bytes 1073741824",
        ] {
            assert!(lines.contains(&expected), "{expected:?} missing from\n{text}");
        }
    }

    #[test]
    fn an_empty_node_writes_no_empty_families() {
        let mut empty = sample();
        empty.containers.clear();
        empty.machine = None;
        assert_eq!(cadvisor(&empty), "# EOF\n");
        let text = process(&sample());
        assert!(
            text.contains("process_resident_memory_bytes 1048576"),
            "{text}"
        );
    }
}
