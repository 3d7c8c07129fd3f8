//! What the node proxy serves: for each TCP and UDP port of each Service with a ClusterIP, a
//! frontend at CLUSTER_IP:PORT (and 0.0.0.0:NODEPORT for NodePort Services) whose backends are the ready
//! endpoints of the Service's EndpointSlices, each at the port its slice gives the Service
//! port's name. As kube-proxy does, `internalTrafficPolicy: Local` (for the ClusterIP) and
//! `externalTrafficPolicy: Local` (for NodePorts) keep to this node's endpoints, and when no
//! endpoint is ready the serving ones that are terminating take the traffic (KEP-1669), so a
//! Service whose pods are all going away serves until they stop. Pure, for table tests.

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

/// The transport of a Service port the proxy serves (SCTP is not served).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// Where a frontend listens.
pub type Address = (Protocol, SocketAddr);

/// One listening address and where its connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontend {
    /// `namespace/name:port` of the Service port (or what else it serves), for logs.
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
    /// Listening protocol and address → frontend.
    pub frontends: BTreeMap<Address, Frontend>,
}

/// Which endpoints a frontend may send to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrafficPolicy {
    /// Every node's.
    Cluster,
    /// Only this node's; none here: connections are refused.
    Local,
}

impl TrafficPolicy {
    fn of(value: Option<&str>) -> Self {
        match value {
            Some("Local") => TrafficPolicy::Local,
            _ => TrafficPolicy::Cluster,
        }
    }
}

/// The table for `services` and `slices` (of every namespace) on node `node`.
pub fn build<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    slices: impl IntoIterator<Item = &'a EndpointSlice> + Clone,
    node: &str,
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
            let protocol = match port.protocol.as_deref() {
                None | Some("TCP") => Protocol::Tcp,
                Some("UDP") => Protocol::Udp,
                Some(_) => continue,
            };
            let port_name = port.name.as_deref().unwrap_or_default();
            let frontend = |policy: Option<&str>| Frontend {
                service: format!("{namespace}/{name}:{}", port.port),
                affinity,
                backends: backends(&own, port_name, node, TrafficPolicy::of(policy)),
            };
            if let Some(node_port) = port.node_port.and_then(|p| u16::try_from(p).ok()) {
                let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), node_port);
                let external = spec.external_traffic_policy.as_deref();
                table.frontends.insert((protocol, any), frontend(external));
            }
            if let Ok(port) = u16::try_from(port.port) {
                let internal = spec.internal_traffic_policy.as_deref();
                let at = SocketAddr::new(IpAddr::V4(ip), port);
                table.frontends.insert((protocol, at), frontend(internal));
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

pub(crate) fn belongs_to(slice: &EndpointSlice, namespace: &str, service: &str) -> bool {
    slice.metadata.namespace.as_deref().unwrap_or("default") == namespace
        && slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .map(String::as_str)
            == Some(service)
}

/// The endpoints of `slices` any node may use (the Cluster traffic policy), at the port each
/// slice gives `port_name`: the ready ones, or when none is ready the serving terminating ones.
pub(crate) fn ready_backends(slices: &[&EndpointSlice], port_name: &str) -> Vec<SocketAddr> {
    backends(slices, port_name, "", TrafficPolicy::Cluster)
}

/// The endpoints of `slices` that `policy` lets node `node` use, at the port each slice gives
/// `port_name`: the ready ones, or when none is ready the serving terminating ones.
fn backends(
    slices: &[&EndpointSlice],
    port_name: &str,
    node: &str,
    policy: TrafficPolicy,
) -> Vec<SocketAddr> {
    let mut ready = BTreeSet::new();
    let mut terminating = BTreeSet::new();
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
            if policy == TrafficPolicy::Local && endpoint.node_name.as_deref() != Some(node) {
                continue;
            }
            // Kubernetes: an unknown readiness counts as ready, an unknown serving as ready.
            let conditions = endpoint.conditions.as_ref();
            let is_ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let serving = conditions.and_then(|c| c.serving).unwrap_or(is_ready);
            let is_terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            let into = if is_ready {
                &mut ready
            } else if serving && is_terminating {
                &mut terminating
            } else {
                continue;
            };
            for address in &endpoint.addresses {
                if let Ok(ip) = address.parse::<IpAddr>() {
                    into.insert(SocketAddr::new(ip, port));
                }
            }
        }
    }
    if ready.is_empty() { terminating } else { ready }
        .into_iter()
        .collect()
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
                          {"name": "dns", "port": 53, "protocol": "UDP"},
                          {"name": "sctp", "port": 9, "protocol": "SCTP"}]}}));
        let headless = service(json!({"metadata": {"name": "db", "namespace": "default"},
            "spec": {"clusterIP": "None", "ports": [{"port": 5432}]}}));
        let slices = [
            slice(
                "web",
                json!([{"name": "http", "port": 8080},
                       {"name": "dns", "port": 5353, "protocol": "UDP"}]),
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
        let table = build([&web, &headless], &slices, "n1");
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
        let dns = Frontend {
            service: "default/web:53".into(),
            affinity: Affinity::ClientIp,
            backends: vec![addr("10.42.0.5:5353"), addr("10.42.1.7:5353")],
        };
        assert_eq!(
            table.frontends,
            BTreeMap::from([
                ((Protocol::Tcp, addr("0.0.0.0:30080")), expected.clone()),
                ((Protocol::Tcp, addr("10.43.0.10:80")), expected),
                ((Protocol::Udp, addr("10.43.0.10:53")), dns),
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
        let table = build([&dns], &[], "n1");
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
        let table = build([&web], &[], "n1");
        assert_eq!(
            table.frontends[&(Protocol::Tcp, addr("10.43.0.10:80"))].backends,
            vec![]
        );
    }

    fn endpoint(
        ip: &str,
        node: &str,
        ready: bool,
        serving: bool,
        terminating: bool,
    ) -> serde_json::Value {
        json!({"addresses": [ip], "nodeName": node,
            "conditions": {"ready": ready, "serving": serving, "terminating": terminating}})
    }

    fn backend_ips(table: &Table, addr: &str) -> Vec<String> {
        table.frontends[&(Protocol::Tcp, addr.parse().unwrap())]
            .backends
            .iter()
            .map(|b| b.ip().to_string())
            .collect()
    }

    #[test]
    fn local_traffic_policies_keep_to_this_nodes_endpoints() {
        let web = service(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "NodePort", "clusterIP": "10.43.0.10",
                "internalTrafficPolicy": "Local", "externalTrafficPolicy": "Cluster",
                "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}}));
        let api = service(json!({"metadata": {"name": "api", "namespace": "default"},
            "spec": {"type": "NodePort", "clusterIP": "10.43.0.11",
                "externalTrafficPolicy": "Local",
                "ports": [{"name": "http", "port": 80, "nodePort": 30081}]}}));
        let endpoints = json!([
            endpoint("10.42.0.5", "n1", true, true, false),
            endpoint("10.42.1.5", "n2", true, true, false)
        ]);
        let slices = [
            slice(
                "web",
                json!([{"name": "http", "port": 8080}]),
                endpoints.clone(),
            ),
            slice("api", json!([{"name": "http", "port": 8080}]), endpoints),
        ];
        let on_n1 = build([&web, &api], &slices, "n1");
        assert_eq!(backend_ips(&on_n1, "10.43.0.10:80"), ["10.42.0.5"]);
        assert_eq!(
            backend_ips(&on_n1, "0.0.0.0:30080"),
            ["10.42.0.5", "10.42.1.5"]
        );
        assert_eq!(
            backend_ips(&on_n1, "10.43.0.11:80"),
            ["10.42.0.5", "10.42.1.5"]
        );
        assert_eq!(backend_ips(&on_n1, "0.0.0.0:30081"), ["10.42.0.5"]);
        // A node without endpoints of its own refuses Local traffic (no backends, no listener).
        let on_n3 = build([&web, &api], &slices, "n3");
        assert_eq!(backend_ips(&on_n3, "10.43.0.10:80"), Vec::<String>::new());
        assert_eq!(backend_ips(&on_n3, "0.0.0.0:30081"), Vec::<String>::new());
        assert_eq!(backend_ips(&on_n3, "10.43.0.11:80").len(), 2);
    }

    #[test]
    fn serving_terminating_endpoints_only_when_none_is_ready() {
        let web = service(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.10", "ports": [{"name": "http", "port": 80}]}}));
        let port = json!([{"name": "http", "port": 8080}]);
        let going = endpoint("10.42.0.5", "n1", false, true, true);
        let stopped = endpoint("10.42.0.6", "n1", false, false, true);
        let unready = endpoint("10.42.0.7", "n1", false, false, false);
        let ready = endpoint("10.42.0.8", "n2", true, true, false);
        let with_ready = [slice(
            "web",
            port.clone(),
            json!([going.clone(), stopped.clone(), unready.clone(), ready]),
        )];
        let table = build([&web], &with_ready, "n1");
        assert_eq!(backend_ips(&table, "10.43.0.10:80"), ["10.42.0.8"]);
        let all_going = [slice("web", port, json!([going, stopped, unready]))];
        let table = build([&web], &all_going, "n1");
        assert_eq!(backend_ips(&table, "10.43.0.10:80"), ["10.42.0.5"]);
    }
}
