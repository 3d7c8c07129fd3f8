//! `ports[].hostPort` and `hostIP`, as the API server checks them: a hostPort (0: none) is a
//! port number, a hostIP an IP address, no two app-container ports of a pod ask for the same
//! (hostIP, protocol, hostPort), and with `hostNetwork: true` a hostPort is its containerPort
//! (defaulting sets it so).

use std::collections::HashSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::PodSpec;

use super::{Errors, FieldErrorReason};

/// Checks the host ports of every container of `spec` (found at `path`).
pub fn validate(spec: &PodSpec, path: &str, errors: &mut Errors) {
    let host_network = spec.host_network.unwrap_or(false);
    let init = spec.init_containers.iter().flatten().enumerate();
    let init = init.map(|(i, c)| (format!("{path}.initContainers[{i}]"), c, false));
    let apps = spec.containers.iter().enumerate();
    let apps = apps.map(|(i, c)| (format!("{path}.containers[{i}]"), c, true));
    let mut taken = HashSet::new();
    for (field, container, is_app) in init.chain(apps) {
        for (i, port) in container.ports.iter().flatten().enumerate() {
            let field = format!("{field}.ports[{i}]");
            let host_port = port.host_port.unwrap_or(0);
            if !(0..=65535).contains(&host_port) {
                errors.invalid(
                    format!("{field}.hostPort"),
                    host_port,
                    "must be between 1 and 65535, inclusive",
                );
            }
            let host_ip = port.host_ip.as_deref().filter(|ip| !ip.is_empty());
            if let Some(ip) = host_ip.filter(|ip| ip.parse::<IpAddr>().is_err()) {
                errors.invalid(format!("{field}.hostIP"), ip, "must be a valid IP address");
            }
            if host_network && host_port != 0 && host_port != port.container_port {
                errors.invalid(
                    format!("{field}.hostPort"),
                    host_port,
                    "must match `containerPort` when `hostNetwork` is true",
                );
            }
            if !is_app || host_port == 0 {
                continue;
            }
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let key = format!("{}/{protocol}/{host_port}", host_ip.unwrap_or_default());
            if !taken.insert(key.clone()) {
                errors.push(
                    format!("{field}.hostPort"),
                    FieldErrorReason::Duplicate,
                    format!("{key:?}"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn errors(spec: Value) -> Vec<String> {
        let spec: PodSpec = serde_json::from_value(spec).unwrap();
        let mut errors = Errors::default();
        validate(&spec, "spec", &mut errors);
        errors.0.iter().map(ToString::to_string).collect()
    }

    fn one_container(ports: Value) -> Value {
        json!({"containers": [{"name": "c", "image": "file:/a.wasm", "ports": ports}]})
    }

    #[test]
    fn good_host_ports_pass() {
        let spec = one_container(json!([
            {"containerPort": 8080, "hostPort": 80},
            {"containerPort": 8080, "hostPort": 80, "protocol": "UDP"},
            {"containerPort": 8081, "hostPort": 80, "hostIP": "10.0.0.1"},
            {"containerPort": 8082, "hostPort": 0},
            {"containerPort": 8083},
        ]));
        assert_eq!(errors(spec), Vec::<String>::new());
    }

    #[test]
    fn bad_host_ports_name_the_field() {
        let cases = [
            (
                json!([{"containerPort": 80, "hostPort": 70000}]),
                "spec.containers[0].ports[0].hostPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            ),
            (
                json!([{"containerPort": 80, "hostPort": -1}]),
                "spec.containers[0].ports[0].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive",
            ),
            (
                json!([{"containerPort": 80, "hostPort": 80, "hostIP": "node-1"}]),
                "spec.containers[0].ports[0].hostIP: Invalid value: \"node-1\": must be a valid IP address",
            ),
            (
                json!([{"containerPort": 80, "hostPort": 8080},
                       {"containerPort": 81, "hostPort": 8080, "protocol": "TCP"}]),
                "spec.containers[0].ports[1].hostPort: Duplicate value: \"/TCP/8080\"",
            ),
        ];
        for (ports, expected) in cases {
            assert_eq!(errors(one_container(ports)), [expected]);
        }
    }

    #[test]
    fn a_pod_is_refused_at_the_field() {
        let ports = json!([{"containerPort": 80, "hostPort": 8080},
                           {"containerPort": 81, "hostPort": 8080}]);
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default"}, "spec": one_container(ports)});
        let kind = crate::resources::by_name("pods").expect("kind");
        let refused: Vec<String> = super::super::validate(kind, &pod)
            .expect_err("a duplicate")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            refused,
            ["spec.containers[0].ports[1].hostPort: Duplicate value: \"/TCP/8080\""]
        );
    }

    #[test]
    fn duplicates_count_across_containers() {
        let spec = json!({"containers": [
            {"name": "a", "image": "file:/a.wasm", "ports": [{"containerPort": 80, "hostPort": 80, "hostIP": "10.0.0.1"}]},
            {"name": "b", "image": "file:/a.wasm", "ports": [{"containerPort": 81, "hostPort": 80, "hostIP": "10.0.0.1"}]},
        ]});
        assert_eq!(
            errors(spec),
            ["spec.containers[1].ports[0].hostPort: Duplicate value: \"10.0.0.1/TCP/80\""]
        );
    }

    #[test]
    fn with_host_network_the_host_port_is_the_container_port() {
        let spec = |host_port: i32| {
            let mut spec = one_container(json!([{"containerPort": 80, "hostPort": host_port}]));
            spec["hostNetwork"] = json!(true);
            spec
        };
        assert_eq!(errors(spec(80)), Vec::<String>::new());
        assert_eq!(
            errors(spec(8080)),
            ["spec.containers[0].ports[0].hostPort: Invalid value: 8080: must match `containerPort` when `hostNetwork` is true"]
        );
    }
}
