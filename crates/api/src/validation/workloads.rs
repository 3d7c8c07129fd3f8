//! Deployments, ReplicaSets, DaemonSets and Services.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{PodTemplateSpec, Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as K8sSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::meta::{self, NameRule};
use super::pod::validate_pod_spec;
use super::{Errors, FieldErrorReason};
use crate::intstr;
use crate::selector::LabelSelector;

pub fn validate_deployment(deployment: &Deployment, errors: &mut Errors) {
    meta::validate_object_meta(&deployment.metadata, true, NameRule::Subdomain, errors);
    let Some(spec) = deployment.spec.as_ref() else {
        return errors.required("spec");
    };
    validate_replicas(spec.replicas, errors);
    validate_selected_template(&spec.selector, Some(&spec.template), errors);
    if let Some(strategy) = spec.strategy.as_ref() {
        match strategy.type_.as_deref() {
            None | Some("RollingUpdate") => {
                if let Some(rolling) = strategy.rolling_update.as_ref() {
                    validate_int_or_percent(
                        rolling.max_surge.as_ref(),
                        "spec.strategy.rollingUpdate.maxSurge",
                        errors,
                    );
                    validate_int_or_percent(
                        rolling.max_unavailable.as_ref(),
                        "spec.strategy.rollingUpdate.maxUnavailable",
                        errors,
                    );
                    if let (Some(surge), Some(unavailable)) =
                        (rolling.max_surge.as_ref(), rolling.max_unavailable.as_ref())
                    {
                        if is_zero(surge) && is_zero(unavailable) {
                            let field = "spec.strategy.rollingUpdate.maxUnavailable";
                            let message = "may not be 0 when `maxSurge` is 0";
                            match unavailable {
                                IntOrString::Int(n) => errors.invalid(field, n, message),
                                IntOrString::String(s) => errors.invalid(field, s, message),
                            }
                        }
                    }
                }
            }
            Some("Recreate") => {
                if strategy.rolling_update.is_some() {
                    errors.push(
                        "spec.strategy.rollingUpdate",
                        FieldErrorReason::Forbidden,
                        "may not be specified when strategy `type` is 'Recreate'",
                    );
                }
            }
            Some(other) => errors.push(
                "spec.strategy.type",
                FieldErrorReason::NotSupported,
                format!("{other:?}: supported values: \"Recreate\", \"RollingUpdate\""),
            ),
        }
    }
    if let Some(limit) = spec.revision_history_limit.filter(|l| *l < 0) {
        errors.invalid(
            "spec.revisionHistoryLimit",
            limit,
            "must be greater than or equal to 0",
        );
    }
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    if min_ready < 0 {
        errors.invalid(
            "spec.minReadySeconds",
            min_ready,
            "must be greater than or equal to 0",
        );
    }
    if let Some(deadline) = spec.progress_deadline_seconds {
        if deadline < 0 {
            errors.invalid(
                "spec.progressDeadlineSeconds",
                deadline,
                "must be greater than or equal to 0",
            );
        } else if deadline <= min_ready {
            errors.invalid(
                "spec.progressDeadlineSeconds",
                deadline,
                "must be greater than minReadySeconds",
            );
        }
    }
}

/// An int-or-percent of 0 or "0%".
fn is_zero(value: &IntOrString) -> bool {
    match value {
        IntOrString::Int(n) => *n == 0,
        IntOrString::String(s) => matches!(intstr::percent(s), Ok(0)),
    }
}

pub fn validate_replicaset(rs: &ReplicaSet, errors: &mut Errors) {
    meta::validate_object_meta(&rs.metadata, true, NameRule::Subdomain, errors);
    let Some(spec) = rs.spec.as_ref() else {
        return errors.required("spec");
    };
    validate_replicas(spec.replicas, errors);
    validate_selected_template(&spec.selector, spec.template.as_ref(), errors);
}

pub fn validate_daemonset(ds: &DaemonSet, errors: &mut Errors) {
    meta::validate_object_meta(&ds.metadata, true, NameRule::Subdomain, errors);
    let Some(spec) = ds.spec.as_ref() else {
        return errors.required("spec");
    };
    validate_selected_template(&spec.selector, Some(&spec.template), errors);
    if let Some(strategy) = spec.update_strategy.as_ref() {
        match strategy.type_.as_deref() {
            None | Some("RollingUpdate") => {
                if let Some(rolling) = strategy.rolling_update.as_ref() {
                    validate_int_or_percent(
                        rolling.max_unavailable.as_ref(),
                        "spec.updateStrategy.rollingUpdate.maxUnavailable",
                        errors,
                    );
                }
            }
            Some("OnDelete") => {}
            Some(other) => errors.push(
                "spec.updateStrategy.type",
                FieldErrorReason::NotSupported,
                format!("{other:?}: supported values: \"OnDelete\", \"RollingUpdate\""),
            ),
        }
    }
}

pub(super) fn validate_replicas(replicas: Option<i32>, errors: &mut Errors) {
    if let Some(r) = replicas.filter(|r| *r < 0) {
        errors.invalid("spec.replicas", r, "must be greater than or equal to 0");
    }
}

/// Selector present and non-empty, template labels matched by it, template restartPolicy Always.
pub(super) fn validate_selected_template(
    selector: &K8sSelector,
    template: Option<&PodTemplateSpec>,
    errors: &mut Errors,
) {
    let parsed = match LabelSelector::from_k8s(selector) {
        Ok(s) if s.is_empty() => {
            errors.push(
                "spec.selector",
                FieldErrorReason::Invalid,
                "empty selector is invalid for deployment",
            );
            None
        }
        Ok(s) => Some(s),
        Err(err) => {
            errors.invalid("spec.selector", "", err);
            None
        }
    };
    if let Some(labels) = selector.match_labels.as_ref() {
        meta::validate_labels(labels, "spec.selector.matchLabels", errors);
    }
    let Some(template) = template else {
        return errors.required("spec.template");
    };
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    meta::validate_labels(&labels, "spec.template.metadata.labels", errors);
    if let Some(selector) = parsed {
        if !selector.matches(&labels) {
            errors.invalid(
                "spec.template.metadata.labels",
                &labels,
                "`selector` does not match template `labels`",
            );
        }
    }
    match template.spec.as_ref() {
        Some(spec) => {
            validate_pod_spec(spec, "spec.template.spec", errors);
            if let Some(policy) = spec.restart_policy.as_deref().filter(|p| *p != "Always") {
                errors.push(
                    "spec.template.spec.restartPolicy",
                    FieldErrorReason::NotSupported,
                    format!("{policy:?}: supported values: \"Always\""),
                );
            }
        }
        None => errors.required("spec.template.spec"),
    }
}

pub(super) fn validate_int_or_percent(
    value: Option<&IntOrString>,
    field: &str,
    errors: &mut Errors,
) {
    match value {
        Some(IntOrString::Int(n)) if *n < 0 => {
            errors.invalid(field, n, "must be greater than or equal to 0")
        }
        Some(IntOrString::String(s)) => {
            let ok = intstr::percent(s).is_ok_and(|p| p <= 100);
            if !ok {
                errors.invalid(field, s, "a valid percent string must be a numeric string followed by an ending '%' (0-100%)");
            }
        }
        _ => {}
    }
}

pub fn validate_service(service: &Service, errors: &mut Errors) {
    meta::validate_object_meta(&service.metadata, true, NameRule::Label, errors);
    let Some(spec) = service.spec.as_ref() else {
        return;
    };
    for (i, port) in spec.ports.iter().flatten().enumerate() {
        if !(1..=65535).contains(&port.port) {
            errors.invalid(
                format!("spec.ports[{i}].port"),
                port.port,
                "must be between 1 and 65535, inclusive",
            );
        }
        if let Some(protocol) = port.protocol.as_deref() {
            if !matches!(protocol, "TCP" | "UDP" | "SCTP") {
                errors.push(
                    format!("spec.ports[{i}].protocol"),
                    FieldErrorReason::NotSupported,
                    format!("{protocol:?}: supported values: \"SCTP\", \"TCP\", \"UDP\""),
                );
            }
        }
    }
    if let Some(selector) = spec.selector.as_ref() {
        meta::validate_labels(selector, "spec.selector", errors);
    }
    validate_traffic_policies(spec, errors);
}

/// `internalTrafficPolicy` and `externalTrafficPolicy`: `Cluster` or `Local`, the external
/// one only on a Service reachable from outside (NodePort, LoadBalancer).
fn validate_traffic_policies(spec: &ServiceSpec, errors: &mut Errors) {
    let policies = [
        (
            "spec.internalTrafficPolicy",
            spec.internal_traffic_policy.as_deref(),
        ),
        (
            "spec.externalTrafficPolicy",
            spec.external_traffic_policy.as_deref(),
        ),
    ];
    for (field, policy) in policies {
        if let Some(policy) = policy.filter(|p| !matches!(*p, "Cluster" | "Local")) {
            errors.push(
                field,
                FieldErrorReason::NotSupported,
                format!("{policy:?}: supported values: \"Cluster\", \"Local\""),
            );
        }
    }
    let external = matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer"));
    if let Some(policy) = spec
        .external_traffic_policy
        .as_deref()
        .filter(|_| !external)
    {
        errors.invalid(
            "spec.externalTrafficPolicy",
            policy,
            "may only be set for externally-accessible services",
        );
    }
}
