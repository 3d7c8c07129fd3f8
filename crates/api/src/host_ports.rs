//! A pod's `hostPort`s as the scheduler's NodePorts plugin and the CNI portmap plugin read
//! them: the ports of its (app) containers that ask for a port on the node, each a
//! (hostIP, hostPort, protocol) triple. An unset or unspecified hostIP (`0.0.0.0`, `::`) means
//! every address of the node, so it overlaps any other hostIP of the same port and protocol.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::PodSpec;

/// Why a pod does not fit a node for its host ports (the NodePorts plugin's reason).
pub const NO_FREE_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";

/// One port a pod asks for on its node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// The node address to listen on; None: every address of the node.
    pub ip: Option<IpAddr>,
    pub port: u16,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// Where its traffic goes in the pod.
    pub container_port: u16,
}

impl HostPort {
    /// Whether both cannot be held on one node at once: same port and protocol, and one
    /// of them on every address or both on the same one.
    pub fn conflicts_with(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && match (self.ip, other.ip) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// The host ports of `spec`'s containers (init containers hold none, as in Kubernetes);
/// ports without a hostPort, or with values out of range, are left out.
pub fn of_spec(spec: &PodSpec) -> Vec<HostPort> {
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = u16::try_from(p.host_port?).ok().filter(|p| *p > 0)?;
            let container_port = u16::try_from(p.container_port).ok()?;
            let ip = p
                .host_ip
                .as_deref()
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .filter(|ip| !ip.is_unspecified());
            Some(HostPort {
                ip,
                port,
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                container_port,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(ports: serde_json::Value) -> PodSpec {
        serde_json::from_value(json!({"containers": [{"name": "c", "ports": ports}]})).unwrap()
    }

    fn port(ip: Option<&str>, port: u16, protocol: &str) -> HostPort {
        HostPort {
            ip: ip.map(|ip| ip.parse().unwrap()),
            port,
            protocol: protocol.into(),
            container_port: 80,
        }
    }

    #[test]
    fn only_ports_with_a_host_port_count_and_unspecified_ips_mean_every_address() {
        let ports = of_spec(&spec(json!([
            {"containerPort": 80},
            {"containerPort": 80, "hostPort": 8080},
            {"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "10.0.0.1"},
            {"containerPort": 81, "hostPort": 8081, "hostIP": "0.0.0.0"},
        ])));
        assert_eq!(
            ports,
            vec![
                port(None, 8080, "TCP"),
                HostPort {
                    container_port: 53,
                    ..port(Some("10.0.0.1"), 53, "UDP")
                },
                HostPort {
                    container_port: 81,
                    ..port(None, 8081, "TCP")
                },
            ]
        );
    }

    #[test]
    fn conflicts_need_the_same_port_and_protocol_and_overlapping_addresses() {
        let any = port(None, 80, "TCP");
        let one = port(Some("10.0.0.1"), 80, "TCP");
        let two = port(Some("10.0.0.2"), 80, "TCP");
        assert!(any.conflicts_with(&one) && one.conflicts_with(&any));
        assert!(any.conflicts_with(&any));
        assert!(one.conflicts_with(&one));
        assert!(!one.conflicts_with(&two));
        assert!(!any.conflicts_with(&port(None, 81, "TCP")));
        assert!(!any.conflicts_with(&port(None, 80, "UDP")));
    }
}
