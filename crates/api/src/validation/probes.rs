//! Container probes (liveness, readiness, startup), as Kubernetes validates them.

use k8s_openapi::api::core::v1::{Container, HTTPGetAction, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Errors, FieldErrorReason};

/// Checks the probes of `container` at `field`; `is_init`: an init container that is not a
/// sidecar, which may have none.
pub fn validate_probes(container: &Container, field: &str, is_init: bool, errors: &mut Errors) {
    let probes = [
        ("startupProbe", container.startup_probe.as_ref()),
        ("livenessProbe", container.liveness_probe.as_ref()),
        ("readinessProbe", container.readiness_probe.as_ref()),
    ];
    for (name, probe) in probes {
        let Some(probe) = probe else {
            continue;
        };
        let path = format!("{field}.{name}");
        if is_init {
            errors.push(
                path,
                FieldErrorReason::Forbidden,
                "may not be set for init containers without restartPolicy=Always",
            );
            continue;
        }
        validate_probe(probe, container, &path, errors);
        if name != "readinessProbe" && probe.success_threshold.is_some_and(|n| n != 1) {
            errors.invalid(
                format!("{path}.successThreshold"),
                probe.success_threshold.unwrap_or_default(),
                "must be 1",
            );
        }
        match probe.termination_grace_period_seconds {
            Some(_) if name == "readinessProbe" => errors.invalid(
                format!("{path}.terminationGracePeriodSeconds"),
                probe.termination_grace_period_seconds.unwrap_or_default(),
                "must not be set for readinessProbes",
            ),
            Some(grace) if grace < 1 => errors.invalid(
                format!("{path}.terminationGracePeriodSeconds"),
                grace,
                "must be greater than 0",
            ),
            _ => {}
        }
    }
}

fn validate_probe(probe: &Probe, container: &Container, path: &str, errors: &mut Errors) {
    let handlers = [
        probe.http_get.is_some(),
        probe.tcp_socket.is_some(),
        probe.exec.is_some(),
        probe.grpc.is_some(),
    ];
    match handlers.iter().filter(|h| **h).count() {
        0 => errors.push(
            path,
            FieldErrorReason::Required,
            "must specify a handler type (httpGet, tcpSocket, exec or grpc)",
        ),
        1 => {}
        _ => errors.push(
            path,
            FieldErrorReason::Forbidden,
            "may not specify more than 1 handler type",
        ),
    }
    let counts = [
        ("initialDelaySeconds", probe.initial_delay_seconds, 0),
        ("timeoutSeconds", probe.timeout_seconds, 1),
        ("periodSeconds", probe.period_seconds, 1),
        ("successThreshold", probe.success_threshold, 1),
        ("failureThreshold", probe.failure_threshold, 1),
    ];
    for (name, value, min) in counts {
        if let Some(value) = value.filter(|v| *v < min) {
            errors.invalid(
                format!("{path}.{name}"),
                value,
                format!("must be greater than or equal to {min}"),
            );
        }
    }
    if let Some(http) = &probe.http_get {
        validate_http_get(http, container, &format!("{path}.httpGet"), errors);
    }
    if let Some(tcp) = &probe.tcp_socket {
        let port_path = format!("{path}.tcpSocket.port");
        validate_port(&tcp.port, container, &port_path, errors);
    }
    if let Some(exec) = &probe.exec {
        if exec.command.as_ref().is_none_or(Vec::is_empty) {
            errors.required(format!("{path}.exec.command"));
        }
    }
    if probe.grpc.is_some() {
        errors.push(
            format!("{path}.grpc"),
            FieldErrorReason::NotSupported,
            "gRPC probes are not supported by Skiff yet: use httpGet, tcpSocket or exec",
        );
    }
}

/// An httpGet handler (of a probe or a lifecycle hook) at `http_path`.
pub(super) fn validate_http_get(
    http: &HTTPGetAction,
    container: &Container,
    http_path: &str,
    errors: &mut Errors,
) {
    validate_port(&http.port, container, &format!("{http_path}.port"), errors);
    if let Some(scheme) = http.scheme.as_deref() {
        if !matches!(scheme, "HTTP" | "HTTPS") {
            errors.push(
                format!("{http_path}.scheme"),
                FieldErrorReason::NotSupported,
                format!("{scheme:?}: supported values: \"HTTP\", \"HTTPS\""),
            );
        }
    }
    for (i, header) in http.http_headers.iter().flatten().enumerate() {
        if !is_header_name(&header.name) {
            errors.invalid(
                format!("{http_path}.httpHeaders[{i}].name"),
                &header.name,
                "a valid HTTP header must consist of alphanumeric characters or '-'",
            );
        }
    }
}

/// A port number in 1–65535, or the name of one of the container's ports.
pub(super) fn validate_port(
    port: &IntOrString,
    container: &Container,
    field: &str,
    errors: &mut Errors,
) {
    match port {
        IntOrString::Int(n) if !(1..=65535).contains(n) => {
            errors.invalid(field, n, "must be between 1 and 65535, inclusive")
        }
        IntOrString::Int(_) => {}
        IntOrString::String(name) if !is_port_name(name) => errors.invalid(
            field,
            name,
            "must be a port number or an IANA service name (at most 15 lowercase letters, digits \
             and '-', with at least one letter)",
        ),
        IntOrString::String(name) => {
            let declared = container
                .ports
                .iter()
                .flatten()
                .any(|p| p.name.as_deref() == Some(name.as_str()));
            if !declared {
                errors.push(
                    field,
                    FieldErrorReason::NotFound,
                    format!("{name:?}: no containerPort of this container has that name"),
                );
            }
        }
    }
}

/// An IANA service name, as Kubernetes checks port names.
fn is_port_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::resources::by_name;
    use crate::validation::validate;

    fn errors(container: Value) -> Vec<String> {
        let pod = json!({"metadata": {"name": "p", "namespace": "default"},
                         "spec": {"containers": [container]}});
        match validate(by_name("pod").expect("kind"), &pod) {
            Ok(()) => vec![],
            Err(errs) => errs.iter().map(ToString::to_string).collect(),
        }
    }

    fn with(probe: &str, body: Value) -> Value {
        let mut container = json!({"name": "c", "image": "file:/a.wasm",
                                   "ports": [{"name": "http", "containerPort": 8080}]});
        container[probe] = body;
        container
    }

    #[test]
    fn kubernetes_probes_are_valid() {
        let container = json!({"name": "c", "image": "file:/a.wasm",
            "ports": [{"name": "http", "containerPort": 8080}],
            "startupProbe": {"httpGet": {"port": "http", "path": "/started"}, "failureThreshold": 30},
            "livenessProbe": {"httpGet": {"port": 8080, "scheme": "HTTPS",
                "httpHeaders": [{"name": "X-Probe", "value": "1"}]}, "terminationGracePeriodSeconds": 5},
            "readinessProbe": {"tcpSocket": {"port": "http"}, "successThreshold": 2,
                "initialDelaySeconds": 0, "periodSeconds": 1}});
        assert_eq!(errors(container), Vec::<String>::new());
    }

    #[test]
    fn bad_probes_name_the_field() {
        let probe = "spec.containers[0].livenessProbe";
        let cases = [
            (with("livenessProbe", json!({})),
             format!("{probe}: Required value: must specify a handler type (httpGet, tcpSocket, exec or grpc)")),
            (with("livenessProbe", json!({"tcpSocket": {"port": 1}, "exec": {"command": ["x"]}})),
             format!("{probe}: Forbidden: may not specify more than 1 handler type")),
            (with("livenessProbe", json!({"tcpSocket": {"port": 1}, "successThreshold": 2})),
             format!("{probe}.successThreshold: Invalid value: 2: must be 1")),
            (with("startupProbe", json!({"tcpSocket": {"port": 1}, "successThreshold": 3})),
             "spec.containers[0].startupProbe.successThreshold: Invalid value: 3: must be 1".into()),
            (with("livenessProbe", json!({"tcpSocket": {"port": 0}})),
             format!("{probe}.tcpSocket.port: Invalid value: 0: must be between 1 and 65535, inclusive")),
            (with("livenessProbe", json!({"httpGet": {"port": 70000}})),
             format!("{probe}.httpGet.port: Invalid value: 70000: must be between 1 and 65535, inclusive")),
            (with("livenessProbe", json!({"httpGet": {"port": "metrics"}})),
             format!("{probe}.httpGet.port: Not found: \"metrics\": no containerPort of this container has that name")),
            (with("livenessProbe", json!({"httpGet": {"port": "Not_A_Name"}})),
             format!("{probe}.httpGet.port: Invalid value: \"Not_A_Name\": must be a port number or an IANA service name (at most 15 lowercase letters, digits and '-', with at least one letter)")),
            (with("livenessProbe", json!({"httpGet": {"port": 80, "scheme": "FTP"}})),
             format!("{probe}.httpGet.scheme: Unsupported value: \"FTP\": supported values: \"HTTP\", \"HTTPS\"")),
            (with("livenessProbe", json!({"httpGet": {"port": 80, "httpHeaders": [{"name": "a b", "value": ""}]}})),
             format!("{probe}.httpGet.httpHeaders[0].name: Invalid value: \"a b\": a valid HTTP header must consist of alphanumeric characters or '-'")),
            (with("livenessProbe", json!({"exec": {"command": []}})),
             format!("{probe}.exec.command: Required value")),
            (with("livenessProbe", json!({"grpc": {"port": 9000}})),
             format!("{probe}.grpc: Unsupported value: gRPC probes are not supported by Skiff yet: use httpGet, tcpSocket or exec")),
            (with("livenessProbe", json!({"tcpSocket": {"port": 1}, "periodSeconds": -1})),
             format!("{probe}.periodSeconds: Invalid value: -1: must be greater than or equal to 1")),
            (with("livenessProbe", json!({"tcpSocket": {"port": 1}, "failureThreshold": 0})),
             format!("{probe}.failureThreshold: Invalid value: 0: must be greater than or equal to 1")),
            (with("livenessProbe", json!({"tcpSocket": {"port": 1}, "initialDelaySeconds": -5})),
             format!("{probe}.initialDelaySeconds: Invalid value: -5: must be greater than or equal to 0")),
            (with("readinessProbe", json!({"tcpSocket": {"port": 1}, "terminationGracePeriodSeconds": 3})),
             "spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: 3: must not be set for readinessProbes".into()),
            (with("livenessProbe", json!({"tcpSocket": {"port": 1}, "terminationGracePeriodSeconds": 0})),
             format!("{probe}.terminationGracePeriodSeconds: Invalid value: 0: must be greater than 0")),
        ];
        for (container, want) in cases {
            assert_eq!(errors(container.clone()), vec![want], "{container}");
        }
    }

    #[test]
    fn init_containers_may_not_be_probed_but_sidecars_may() {
        let probe = json!({"tcpSocket": {"port": 1}});
        let pod = json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {
            "initContainers": [
                {"name": "init", "image": "file:/a.wasm", "readinessProbe": probe},
                {"name": "side", "image": "file:/a.wasm", "restartPolicy": "Always", "readinessProbe": probe}],
            "containers": [{"name": "c", "image": "file:/a.wasm"}]}});
        let errs = validate(by_name("pod").expect("kind"), &pod).expect_err("init probe");
        let errs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            ["spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"]
        );
    }
}
