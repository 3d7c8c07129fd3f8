//! What EndpointSlices a Service should have: its selected pods that have an address, grouped
//! by the ports their targetPorts resolve to (a named targetPort may be another number in each
//! pod), at most `MAX_ENDPOINTS` to a slice, in a stable order. Pure, for table tests.

use std::collections::BTreeMap;

use skiff_api::k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use skiff_api::k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};
use skiff_api::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::controllers::pods::is_ready;

/// Endpoints in one slice, as Kubernetes' `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS: usize = 100;

/// The content of one slice the Service should have.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceContent {
    pub ports: Vec<EndpointPort>,
    pub endpoints: Vec<Endpoint>,
}

/// The Service's pod selector: None when it has none or an empty one (Kubernetes keeps no
/// slices for either).
pub fn selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|s| !s.is_empty())
}

/// Whether the Service selects `pod` (same namespace, every selector label matches).
pub fn selects(service: &Service, pod: &Pod) -> bool {
    let Some(selector) = selector(service) else {
        return false;
    };
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    service.metadata.namespace == pod.metadata.namespace
        && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The slices of `service` for the `pods` it selects.
pub fn desired(service: &Service, pods: &[&Pod]) -> Vec<SliceContent> {
    let spec = service.spec.clone().unwrap_or_default();
    let publish_unready = spec.publish_not_ready_addresses.unwrap_or(false);
    let service_ports = spec.ports.unwrap_or_default();
    let mut sorted: Vec<&Pod> = pods.iter().copied().filter(|p| is_endpoint(p)).collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut groups: BTreeMap<Vec<PortKey>, Vec<Endpoint>> = BTreeMap::new();
    for pod in sorted {
        let ports: Vec<PortKey> = service_ports
            .iter()
            .filter_map(|sp| resolve(sp, pod))
            .collect();
        groups
            .entry(ports)
            .or_default()
            .push(endpoint(pod, publish_unready));
    }
    groups
        .into_iter()
        .flat_map(|(ports, endpoints)| {
            let ports: Vec<EndpointPort> = ports.into_iter().map(PortKey::into_port).collect();
            endpoints
                .chunks(MAX_ENDPOINTS)
                .map(|chunk| SliceContent {
                    ports: ports.clone(),
                    endpoints: chunk.to_vec(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A pod that has an address and has not finished.
fn is_endpoint(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    let has_ip = status
        .and_then(|s| s.pod_ip.as_deref())
        .is_some_and(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok());
    let finished = status
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|phase| phase == "Succeeded" || phase == "Failed");
    has_ip && !finished
}

fn endpoint(pod: &Pod, publish_unready: bool) -> Endpoint {
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let serving = publish_unready || is_ready(pod);
    Endpoint {
        addresses: vec![pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default()],
        conditions: Some(EndpointConditions {
            ready: Some(serving && !terminating),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A resolved port, ordered so that equal port sets group together.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PortKey {
    name: String,
    protocol: String,
    port: i32,
}

impl PortKey {
    fn into_port(self) -> EndpointPort {
        EndpointPort {
            name: Some(self.name),
            protocol: Some(self.protocol),
            port: Some(self.port),
            ..Default::default()
        }
    }
}

/// The port a Service port reaches on `pod`: its targetPort number, or the pod's container
/// port of that name and protocol; `None` if the pod has no such named port.
fn resolve(service_port: &ServicePort, pod: &Pod) -> Option<PortKey> {
    let protocol = service_port
        .protocol
        .clone()
        .unwrap_or_else(|| "TCP".into());
    let port = match &service_port.target_port {
        None => service_port.port,
        Some(IntOrString::Int(port)) => *port,
        Some(IntOrString::String(name)) => match name.parse::<i32>() {
            Ok(port) => port,
            Err(_) => {
                pod.spec
                    .as_ref()?
                    .containers
                    .iter()
                    .flat_map(|c| c.ports.iter().flatten())
                    .find(|p| {
                        p.name.as_deref() == Some(name.as_str())
                            && p.protocol.as_deref().unwrap_or("TCP") == protocol
                    })?
                    .container_port
            }
        },
    };
    Some(PortKey {
        name: service_port.name.clone().unwrap_or_default(),
        protocol,
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(target_port: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": target_port}]}
        }))
        .unwrap()
    }

    fn pod(name: &str, ip: Option<&str>, ready: bool, deleting: bool, named_port: i32) -> Pod {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c",
                "ports": [{"name": "web", "containerPort": named_port}]}]},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .unwrap();
        if let Some(ip) = ip {
            pod.status.as_mut().unwrap().pod_ip = Some(ip.into());
        }
        if deleting {
            pod.metadata.deletion_timestamp = Some(skiff_api::time::now());
        }
        pod
    }

    fn conditions(e: &Endpoint) -> (bool, bool, bool) {
        let c = e.conditions.clone().unwrap();
        (c.ready.unwrap(), c.serving.unwrap(), c.terminating.unwrap())
    }

    #[test]
    fn ready_unready_and_terminating_pods_and_pods_without_an_address() {
        let pods = [
            pod("a", Some("10.0.0.1"), true, false, 8080),
            pod("b", Some("10.0.0.2"), false, false, 8080),
            pod("c", Some("10.0.0.3"), true, true, 8080),
            pod("d", None, true, false, 8080),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let slices = desired(&service(json!(8080)), &refs);
        assert_eq!(slices.len(), 1);
        let slice = &slices[0];
        assert_eq!(slice.ports[0].port, Some(8080));
        assert_eq!(slice.ports[0].name.as_deref(), Some("http"));
        assert_eq!(slice.ports[0].protocol.as_deref(), Some("TCP"));
        let found: Vec<_> = slice
            .endpoints
            .iter()
            .map(|e| (e.addresses[0].as_str(), conditions(e)))
            .collect();
        assert_eq!(
            found,
            [
                ("10.0.0.1", (true, true, false)),
                ("10.0.0.2", (false, false, false)),
                ("10.0.0.3", (false, true, true)),
            ]
        );
        let a = &slice.endpoints[0];
        assert_eq!(a.node_name.as_deref(), Some("n1"));
        let target = a.target_ref.clone().unwrap();
        assert_eq!(
            (
                target.kind.as_deref(),
                target.name.as_deref(),
                target.uid.as_deref()
            ),
            (Some("Pod"), Some("a"), Some("uid-a"))
        );
    }

    #[test]
    fn named_target_ports_resolve_per_pod_and_group_slices() {
        let pods = [
            pod("a", Some("10.0.0.1"), true, false, 8080),
            pod("b", Some("10.0.0.2"), true, false, 9090),
            pod("c", Some("10.0.0.3"), true, false, 8080),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let slices = desired(&service(json!("web")), &refs);
        let found: Vec<(i32, Vec<&str>)> = slices
            .iter()
            .map(|s| {
                (
                    s.ports[0].port.unwrap(),
                    s.endpoints
                        .iter()
                        .map(|e| e.addresses[0].as_str())
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                (8080, vec!["10.0.0.1", "10.0.0.3"]),
                (9090, vec!["10.0.0.2"])
            ]
        );
        let missing = desired(&service(json!("other")), &refs);
        assert_eq!(missing.len(), 1);
        assert!(missing[0].ports.is_empty(), "no pod has that port name");
    }

    #[test]
    fn more_than_a_hundred_endpoints_split_into_slices() {
        let pods: Vec<Pod> = (0..250)
            .map(|i| {
                let ip = format!("10.0.{}.{}", i / 200, i % 200 + 1);
                pod(&format!("p{i:03}"), Some(&ip), true, false, 8080)
            })
            .collect();
        let refs: Vec<&Pod> = pods.iter().collect();
        let sizes: Vec<usize> = desired(&service(json!(8080)), &refs)
            .iter()
            .map(|s| s.endpoints.len())
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
    }

    #[test]
    fn selection_needs_the_namespace_and_every_label() {
        let svc = service(json!(80));
        let mut p = pod("a", Some("10.0.0.1"), true, false, 80);
        assert!(selects(&svc, &p));
        p.metadata.namespace = Some("other".into());
        assert!(!selects(&svc, &p));
        let mut no_selector = svc.clone();
        no_selector.spec.as_mut().unwrap().selector = None;
        assert!(!selects(
            &no_selector,
            &pod("a", Some("10.0.0.1"), true, false, 80)
        ));
        let mut empty_selector = svc.clone();
        empty_selector.spec.as_mut().unwrap().selector = Some(BTreeMap::new());
        assert!(!selects(
            &empty_selector,
            &pod("a", Some("10.0.0.1"), true, false, 80)
        ));
    }
}
