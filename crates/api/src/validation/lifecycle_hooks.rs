//! Container lifecycle hooks (`lifecycle.preStop`, `lifecycle.postStart`), as Kubernetes
//! validates them. Skiff runs preStop hooks; postStart is refused rather than ignored.

use k8s_openapi::api::core::v1::{Container, LifecycleHandler};

use super::probes::{validate_http_get, validate_port};
use super::{Errors, FieldErrorReason};

/// Kubernetes' default `terminationGracePeriodSeconds`, the bound of a sleep action.
const DEFAULT_GRACE_SECONDS: i64 = 30;

/// Checks the hooks of `container` at `field`; `is_init`: an init container that is not a
/// sidecar, which may have none; `grace`: the pod's `terminationGracePeriodSeconds`.
pub fn validate_lifecycle(
    container: &Container,
    field: &str,
    is_init: bool,
    grace: Option<i64>,
    errors: &mut Errors,
) {
    let Some(lifecycle) = container.lifecycle.as_ref() else {
        return;
    };
    let path = format!("{field}.lifecycle");
    if is_init {
        errors.push(
            path,
            FieldErrorReason::Forbidden,
            "may not be set for init containers without restartPolicy=Always",
        );
        return;
    }
    if lifecycle.post_start.is_some() {
        errors.push(
            format!("{path}.postStart"),
            FieldErrorReason::NotSupported,
            "postStart hooks are not supported by Skiff yet: only preStop",
        );
    }
    if let Some(pre_stop) = &lifecycle.pre_stop {
        let grace = grace.unwrap_or(DEFAULT_GRACE_SECONDS);
        validate_handler(
            pre_stop,
            container,
            &format!("{path}.preStop"),
            grace,
            errors,
        );
    }
}

fn validate_handler(
    handler: &LifecycleHandler,
    container: &Container,
    path: &str,
    grace: i64,
    errors: &mut Errors,
) {
    let handlers = [
        handler.exec.is_some(),
        handler.http_get.is_some(),
        handler.tcp_socket.is_some(),
        handler.sleep.is_some(),
    ];
    match handlers.iter().filter(|h| **h).count() {
        0 => errors.push(
            path,
            FieldErrorReason::Required,
            "must specify a handler type (exec, httpGet, tcpSocket or sleep)",
        ),
        1 => {}
        _ => errors.push(
            path,
            FieldErrorReason::Forbidden,
            "may not specify more than 1 handler type",
        ),
    }
    if let Some(http) = &handler.http_get {
        validate_http_get(http, container, &format!("{path}.httpGet"), errors);
    }
    if let Some(tcp) = &handler.tcp_socket {
        validate_port(
            &tcp.port,
            container,
            &format!("{path}.tcpSocket.port"),
            errors,
        );
    }
    if let Some(exec) = &handler.exec {
        if exec.command.as_ref().is_none_or(Vec::is_empty) {
            errors.required(format!("{path}.exec.command"));
        }
    }
    if let Some(sleep) = &handler.sleep {
        if !(0..=grace).contains(&sleep.seconds) {
            errors.invalid(
                format!("{path}.sleep.seconds"),
                sleep.seconds,
                format!(
                    "must be non-negative and less than terminationGracePeriodSeconds ({grace})"
                ),
            );
        }
    }
}
