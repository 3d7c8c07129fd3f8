//! What the node proxy serves: for each TCP port of each Service with a ClusterIP, a frontend
//! at CLUSTER_IP:PORT (and 0.0.0.0:NODEPORT for NodePort Services) whose backends are the ready
//! endpoints of the Service's EndpointSlices, each at the port its slice gives the Service
//! port's name. Pure, for table tests.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use skiff_api::k8s_openapi::api::core::v1::Service;
use skiff_api::k8s_openapi::api::discovery::v1::EndpointSlice;

/// Label naming the Service a slice belongs to.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// How a frontend picks the backend to try first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affinity {
    /// The next backend in turn.
    None,
    /// The same backend for the same client address while the backends stay the same
    /// (`sessionAffinity: ClientIP`, without its timeout).
    ClientIp,
}

/// One listening address and where its connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontend {
    /// `namespace/name:port` of the Service port, for logs.
    pub service: String,
    pub affinity: Affinity,
    /// Ready endpoints, sorted; empty: connections are refused.
    pub backends: Vec<SocketAddr>,
}

/// Everything the proxy should serve on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// ClusterIPs to hold as local addresses.
    pub cluster_ips: BTreeSet<Ipv4Addr>,
    /// Listening address → frontend.
    pub frontends: BTreeMap<SocketAddr, Frontend>,
}

/// The table for `services` and `slices` (of every namespace).
pub fn build<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    slices: impl IntoIterator<Item = &'a EndpointSlice> + Clone,
) -> Table {
    let mut table = Table::default();
    for service in services {
        let Some(spec) = service.spec.as_ref() else {
            continue;
        };
        let Some(ip) = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        else {
            continue; // headless, or not yet allocated
        };
        let namespace = service.metadata.namespace.as_deref().unwrap_or("default");
        let name = service.metadata.name.as_deref().unwrap_or_default();
        let own: Vec<&EndpointSlice> = slices
            .clone()
            .into_iter()
            .filter(|s| belongs_to(s, namespace, name))
            .collect();
        let affinity = match spec.session_affinity.as_deref() {
            Some("ClientIP") => Affinity::ClientIp,
            _ => Affinity::None,
        };
        table.cluster_ips.insert(ip);
        if node_local(service) {
            continue; // the agent serves its ports itself (cluster DNS)
        }
        for port in spec.ports.iter().flatten() {
            if port.protocol.as_deref().is_some_and(|p| p != "TCP") {
                continue;
            }
            let port_name = port.name.as_deref().unwrap_or_default();
            let frontend = Frontend {
                service: format!("{namespace}/{name}:{}", port.port),
                affinity,
                backends: ready_backends(&own, port_name),
            };
            if let Some(node_port) = port.node_port.and_then(|p| u16::try_from(p).ok()) {
                let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), node_port);
                table.frontends.insert(any, frontend.clone());
            }
            if let Ok(port) = u16::try_from(port.port) {
                table
                    .frontends
                    .insert(SocketAddr::new(IpAddr::V4(ip), port), frontend);
            }
        }
    }
    table
}

/// Whether the node agent serves the Service's ports itself (`skiff.dev/node-local`).
fn node_local(service: &Service) -> bool {
    service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(skiff_api::dns::NODE_LOCAL_ANNOTATION))
        .is_some_and(|v| v == "true")
}

fn belongs_to(slice: &EndpointSlice, namespace: &str, service: &str) -> bool {
    slice.metadata.namespace.as_deref().unwrap_or("default") == namespace
        && slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .map(String::as_str)
            == Some(service)
}

/// The ready endpoints of `slices` at the port each slice gives `port_name`.
fn ready_backends(slices: &[&EndpointSlice], port_name: &str) -> Vec<SocketAddr> {
    let mut backends = BTreeSet::new();
    for slice in slices {
        let Some(port) = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref().unwrap_or_default() == port_name)
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for endpoint in &slice.endpoints {
            // Kubernetes: an unknown readiness counts as ready.
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            if !ready {
                continue;
            }
            for address in &endpoint.addresses {
                if let Ok(ip) = address.parse::<IpAddr>() {
                    backends.insert(SocketAddr::new(ip, port));
                }
            }
        }
    }
    backends.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service(value: serde_json::Value) -> Service {
        serde_json::from_value(value).expect("service")
    }

    fn slice(
        service: &str,
        ports: serde_json::Value,
        endpoints: serde_json::Value,
    ) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": format!("{service}-x"), "namespace": "default",
                "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "ports": ports, "endpoints": endpoints,
        }))
        .expect("slice")
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ready_endpoints_at_the_port_their_slice_names() {
        let web = service(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "NodePort", "clusterIP": "10.43.0.10", "sessionAffinity": "ClientIP",
                "ports": [{"name": "http", "port": 80, "nodePort": 30080},
                          {"name": "dns", "port": 53, "protocol": "UDP"}]}}));
        let headless = service(json!({"metadata": {"name": "db", "namespace": "default"},
            "spec": {"clusterIP": "None", "ports": [{"port": 5432}]}}));
        let slices = [
            slice(
                "web",
                json!([{"name": "http", "port": 8080}]),
                json!([{"addresses": ["10.42.0.5"], "conditions": {"ready": true}},
                       {"addresses": ["10.42.0.6"], "conditions": {"ready": false}},
                       {"addresses": ["10.42.1.7"]}]),
            ),
            // Another pod names its port differently.
            slice(
                "web",
                json!([{"name": "http", "port": 9090}]),
                json!([{"addresses": ["10.42.1.8"], "conditions": {"ready": true}}]),
            ),
            slice(
                "other",
                json!([{"name": "http", "port": 1}]),
                json!([{"addresses": ["10.42.1.9"]}]),
            ),
        ];
        let table = build([&web, &headless], &slices);
        assert_eq!(
            table.cluster_ips,
            BTreeSet::from([Ipv4Addr::new(10, 43, 0, 10)])
        );
        let expected = Frontend {
            service: "default/web:80".into(),
            affinity: Affinity::ClientIp,
            backends: vec![
                addr("10.42.0.5:8080"),
                addr("10.42.1.7:8080"),
                addr("10.42.1.8:9090"),
            ],
        };
        assert_eq!(
            table.frontends,
            BTreeMap::from([
                (addr("0.0.0.0:30080"), expected.clone()),
                (addr("10.43.0.10:80"), expected),
            ])
        );
    }

    #[test]
    fn a_node_local_service_has_its_address_held_but_no_frontends() {
        let dns = service(
            json!({"metadata": {"name": "kube-dns", "namespace": "kube-system",
                "annotations": {"skiff.dev/node-local": "true"}},
            "spec": {"clusterIP": "10.43.0.10", "ports": [{"name": "dns-tcp", "port": 53}]}}),
        );
        let table = build([&dns], &[]);
        assert_eq!(
            table.cluster_ips,
            BTreeSet::from([Ipv4Addr::new(10, 43, 0, 10)])
        );
        assert!(table.frontends.is_empty());
    }

    #[test]
    fn a_service_without_slices_has_a_frontend_with_no_backends() {
        let web = service(json!({"metadata": {"name": "web"},
            "spec": {"clusterIP": "10.43.0.10", "ports": [{"port": 80}]}}));
        let table = build([&web], &[]);
        assert_eq!(table.frontends[&addr("10.43.0.10:80")].backends, vec![]);
    }
}
