//! The NodePorts filter, as Kubernetes' scheduler plugin: a pod asking for host ports does
//! not fit a node where a pod already bound (or assumed) there holds the same (protocol,
//! hostPort) on an overlapping hostIP (an unset or unspecified one overlaps every address).

use skiff_api::host_ports::{HostPort, NO_FREE_PORTS};

use super::snapshot::NodeInfo;

/// Whether every port of `wanted` is free on `node`.
pub fn fits(wanted: &[HostPort], node: &NodeInfo) -> Result<(), &'static str> {
    if wanted.is_empty() {
        return Ok(());
    }
    let taken = node.pods.values().flat_map(|p| p.host_ports.iter());
    for used in taken {
        if wanted.iter().any(|w| w.conflicts_with(used)) {
            return Err(NO_FREE_PORTS);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use skiff_api::k8s_openapi::api::core::v1::Pod;

    use super::*;
    use crate::scheduler::snapshot::PodInfo;

    fn pod(ports: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "i", "ports": ports}]}}))
        .unwrap()
    }

    fn wanted(ports: serde_json::Value) -> Vec<HostPort> {
        PodInfo::of(&pod(ports)).host_ports
    }

    /// A node running one pod with `ports`.
    fn node_with(ports: serde_json::Value) -> NodeInfo {
        let mut node = NodeInfo::default();
        node.pods
            .insert("default/old".into(), PodInfo::of(&pod(ports)));
        node
    }

    #[test]
    fn overlapping_host_ports_do_not_fit() {
        let port = |host_ip: Option<&str>, host_port: u16, protocol: &str| {
            let mut p = json!({"containerPort": 80, "hostPort": host_port, "protocol": protocol});
            if let Some(ip) = host_ip {
                p["hostIP"] = json!(ip);
            }
            json!([p])
        };
        // (case, port held on the node, port wanted, fits)
        let cases = [
            (
                "same port, no hostIP",
                port(None, 8080, "TCP"),
                port(None, 8080, "TCP"),
                false,
            ),
            (
                "another port",
                port(None, 8080, "TCP"),
                port(None, 8081, "TCP"),
                true,
            ),
            (
                "another protocol",
                port(None, 53, "TCP"),
                port(None, 53, "UDP"),
                true,
            ),
            (
                "held on every address",
                port(None, 8080, "TCP"),
                port(Some("10.0.0.1"), 8080, "TCP"),
                false,
            ),
            (
                "wanted on every address",
                port(Some("10.0.0.1"), 8080, "TCP"),
                port(Some("0.0.0.0"), 8080, "TCP"),
                false,
            ),
            (
                "same address",
                port(Some("10.0.0.1"), 8080, "TCP"),
                port(Some("10.0.0.1"), 8080, "TCP"),
                false,
            ),
            (
                "other addresses",
                port(Some("10.0.0.1"), 8080, "TCP"),
                port(Some("10.0.0.2"), 8080, "TCP"),
                true,
            ),
            (
                "no host port wanted",
                port(None, 8080, "TCP"),
                json!([{"containerPort": 8080}]),
                true,
            ),
            (
                "container ports alone never conflict",
                json!([{"containerPort": 8080}]),
                json!([{"containerPort": 8080}]),
                true,
            ),
        ];
        for (case, held, want, fits_expected) in cases {
            let got = fits(&wanted(want), &node_with(held));
            assert_eq!(got.is_ok(), fits_expected, "case {case}: {got:?}");
        }
    }

    #[test]
    fn the_reason_is_kubernetes_own() {
        let held = json!([{"containerPort": 80, "hostPort": 80}]);
        assert_eq!(
            fits(&wanted(held.clone()), &node_with(held)),
            Err("node(s) didn't have free ports for the requested pod ports")
        );
    }
}
