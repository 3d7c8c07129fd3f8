//! Pods and pod specs.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, PodSpec, ResourceRequirements};

use super::meta::{self, NameRule};
use super::{host_ports, lifecycle_hooks, probes, security_context, volumes};
use super::{Errors, FieldErrorReason};
use crate::{image, quantity};

pub fn validate_pod(pod: &Pod, errors: &mut Errors) {
    meta::validate_object_meta(&pod.metadata, true, NameRule::Subdomain, errors);
    match pod.spec.as_ref() {
        Some(spec) => validate_pod_spec(spec, "spec", errors),
        None => errors.required("spec"),
    }
}

/// Checks a pod spec found at `path` (`spec` or `spec.template.spec`).
pub fn validate_pod_spec(spec: &PodSpec, path: &str, errors: &mut Errors) {
    if spec.containers.is_empty() {
        errors.push(
            format!("{path}.containers"),
            FieldErrorReason::Required,
            "at least one container is required",
        );
    }
    let mut names = HashSet::new();
    let init = spec.init_containers.iter().flatten().enumerate();
    let init = init.map(|(i, c)| (format!("{path}.initContainers[{i}]"), c, true));
    let apps = spec.containers.iter().enumerate();
    let apps = apps.map(|(i, c)| (format!("{path}.containers[{i}]"), c, false));
    for (field, container, is_init) in init.chain(apps) {
        validate_container(container, &field, errors);
        validate_container_restart_policy(container, &field, is_init, errors);
        let sidecar = container.restart_policy.as_deref() == Some("Always");
        probes::validate_probes(container, &field, is_init && !sidecar, errors);
        let grace = spec.termination_grace_period_seconds;
        lifecycle_hooks::validate_lifecycle(container, &field, is_init && !sidecar, grace, errors);
        if !names.insert(container.name.as_str()) {
            errors.push(
                format!("{field}.name"),
                FieldErrorReason::Duplicate,
                format!("{:?}", container.name),
            );
        }
    }
    if let Some(policy) = spec.restart_policy.as_deref() {
        if !matches!(policy, "Always" | "OnFailure" | "Never") {
            errors.push(
                format!("{path}.restartPolicy"),
                FieldErrorReason::NotSupported,
                format!("{policy:?}: supported values: \"Always\", \"OnFailure\", \"Never\""),
            );
        }
    }
    if let Some(grace) = spec.termination_grace_period_seconds.filter(|g| *g < 0) {
        errors.invalid(
            format!("{path}.terminationGracePeriodSeconds"),
            grace,
            "must be greater than or equal to 0",
        );
    }
    volumes::validate(spec, path, errors);
    host_ports::validate(spec, path, errors);
    let pod_seccomp = spec.security_context.as_ref();
    if let Some(profile) = pod_seccomp.and_then(|c| c.seccomp_profile.as_ref()) {
        security_context::validate_seccomp(
            profile,
            &format!("{path}.securityContext.seccompProfile"),
            errors,
        );
    }
    validate_dns(spec, path, errors);
    if let Some(selector) = spec.node_selector.as_ref() {
        meta::validate_labels(selector, &format!("{path}.nodeSelector"), errors);
    }
    if let Some(class) = spec.runtime_class_name.as_deref() {
        meta::validate_name(
            class,
            NameRule::Subdomain,
            &format!("{path}.runtimeClassName"),
            errors,
        );
    }
}

/// `dnsPolicy` is one of Kubernetes' four; `dnsConfig` has at most 3 nameservers (IP
/// addresses; at least one with `dnsPolicy: None`), at most 32 search domains and named
/// options, as the API server checks them.
fn validate_dns(spec: &PodSpec, path: &str, errors: &mut Errors) {
    let policy = spec.dns_policy.as_deref();
    if let Some(policy) = policy.filter(|p| !crate::dns::DNS_POLICIES.contains(p)) {
        errors.push(
            format!("{path}.dnsPolicy"),
            FieldErrorReason::NotSupported,
            format!(
                "{policy:?}: supported values: \"ClusterFirst\", \"ClusterFirstWithHostNet\", \
                 \"Default\", \"None\""
            ),
        );
    }
    let config = spec.dns_config.as_ref();
    let nameservers = config
        .and_then(|c| c.nameservers.as_deref())
        .unwrap_or_default();
    if policy == Some("None") && nameservers.is_empty() {
        errors.push(
            format!("{path}.dnsConfig.nameservers"),
            FieldErrorReason::Required,
            "must provide at least one DNS nameserver when `dnsPolicy` is None",
        );
    }
    let Some(config) = config else {
        return;
    };
    if nameservers.len() > 3 {
        errors.invalid(
            format!("{path}.dnsConfig.nameservers"),
            nameservers.len(),
            "must not have more than 3 nameservers",
        );
    }
    for (i, ip) in nameservers.iter().enumerate() {
        if ip.parse::<std::net::IpAddr>().is_err() {
            errors.invalid(
                format!("{path}.dnsConfig.nameservers[{i}]"),
                ip,
                "must be a valid IP address",
            );
        }
    }
    let searches = config.searches.as_deref().unwrap_or_default();
    if searches.len() > 32 {
        errors.invalid(
            format!("{path}.dnsConfig.searches"),
            searches.len(),
            "must not have more than 32 search paths",
        );
    }
    for (i, search) in searches.iter().enumerate() {
        let domain = search.strip_suffix('.').unwrap_or(search);
        if !meta::is_dns_subdomain(domain) {
            errors.invalid(
                format!("{path}.dnsConfig.searches[{i}]"),
                search,
                "must be a DNS subdomain (lower case letters, digits, '-' and '.')",
            );
        }
    }
    for (i, option) in config.options.iter().flatten().enumerate() {
        if option.name.as_deref().unwrap_or_default().is_empty() {
            errors.required(format!("{path}.dnsConfig.options[{i}].name"));
        }
    }
}

/// A container's own `restartPolicy`: only `Always`, and only on an init container (a sidecar).
fn validate_container_restart_policy(
    container: &Container,
    field: &str,
    is_init: bool,
    errors: &mut Errors,
) {
    match container.restart_policy.as_deref() {
        None | Some("Always") if is_init => {}
        None => {}
        Some(_) if !is_init => errors.push(
            format!("{field}.restartPolicy"),
            FieldErrorReason::Forbidden,
            "may not be set for non-init containers",
        ),
        Some(policy) => errors.push(
            format!("{field}.restartPolicy"),
            FieldErrorReason::NotSupported,
            format!("{policy:?}: supported values: \"Always\""),
        ),
    }
}

fn validate_container(container: &Container, field: &str, errors: &mut Errors) {
    if container.name.is_empty() {
        errors.required(format!("{field}.name"));
    } else {
        meta::validate_name(
            &container.name,
            NameRule::Label,
            &format!("{field}.name"),
            errors,
        );
    }
    match container.image.as_deref() {
        Some(image) if !image.trim().is_empty() => {
            if let Err(err) = image::check_reference(image) {
                errors.invalid(format!("{field}.image"), image, err);
            }
        }
        _ => errors.required(format!("{field}.image")),
    }
    for (i, port) in container.ports.iter().flatten().enumerate() {
        let port_field = format!("{field}.ports[{i}]");
        if !(1..=65535).contains(&port.container_port) {
            errors.invalid(
                format!("{port_field}.containerPort"),
                port.container_port,
                "must be between 1 and 65535, inclusive",
            );
        }
        if let Some(protocol) = port.protocol.as_deref() {
            if !matches!(protocol, "TCP" | "UDP" | "SCTP") {
                errors.push(
                    format!("{port_field}.protocol"),
                    FieldErrorReason::NotSupported,
                    format!("{protocol:?}: supported values: \"SCTP\", \"TCP\", \"UDP\""),
                );
            }
        }
    }
    for (i, env) in container.env.iter().flatten().enumerate() {
        validate_env(env, &format!("{field}.env[{i}]"), errors);
    }
    for (i, source) in container.env_from.iter().flatten().enumerate() {
        let sources =
            usize::from(source.config_map_ref.is_some()) + usize::from(source.secret_ref.is_some());
        if sources != 1 {
            errors.invalid(
                format!("{field}.envFrom[{i}]"),
                "",
                "must specify exactly one of configMapRef or secretRef",
            );
        }
    }
    if let Some(resources) = container.resources.as_ref() {
        validate_resources(resources, &format!("{field}.resources"), errors);
    }
    if let Some(context) = container.security_context.as_ref() {
        security_context::validate_container(context, field, errors);
    }
}

fn validate_env(env: &EnvVar, field: &str, errors: &mut Errors) {
    if env.name.is_empty() {
        errors.required(format!("{field}.name"));
    } else if env.name.contains('=') {
        errors.invalid(format!("{field}.name"), &env.name, "must not contain '='");
    }
    if let Some(from) = env.value_from.as_ref() {
        let sources = [
            from.config_map_key_ref.is_some(),
            from.secret_key_ref.is_some(),
            from.field_ref.is_some(),
            from.resource_field_ref.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        if sources != 1 {
            errors.invalid(
                format!("{field}.valueFrom"),
                "",
                "must specify exactly one of configMapKeyRef, secretKeyRef, fieldRef or resourceFieldRef",
            );
        }
        if env.value.as_deref().is_some_and(|v| !v.is_empty()) {
            errors.invalid(
                format!("{field}.valueFrom"),
                "",
                "may not be specified when `value` is not empty",
            );
        }
    }
}

fn validate_resources(resources: &ResourceRequirements, field: &str, errors: &mut Errors) {
    let mut parsed = |section: &str,
                      list: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >| {
        let mut out = Vec::new();
        for (name, q) in list.into_iter().flatten() {
            let path = format!("{field}.{section}[{name}]");
            let value = match name.as_str() {
                "cpu" => quantity::parse_cpu_millis(&q.0),
                "memory" | "ephemeral-storage" => quantity::parse_bytes(&q.0),
                _ => {
                    errors.push(
                        path,
                        FieldErrorReason::NotSupported,
                        format!("{name:?}: supported resources: cpu, memory, ephemeral-storage"),
                    );
                    continue;
                }
            };
            match value {
                Ok(v) => out.push((name.clone(), v)),
                Err(err) => errors.invalid(path, &q.0, err.reason),
            }
        }
        out
    };
    let requests = parsed("requests", resources.requests.as_ref());
    let limits = parsed("limits", resources.limits.as_ref());
    for (name, request) in &requests {
        if let Some((_, limit)) = limits.iter().find(|(n, _)| n == name) {
            if request > limit {
                errors.invalid(
                    format!("{field}.requests[{name}]"),
                    request,
                    format!("must be less than or equal to {name} limit of {limit}"),
                );
            }
        }
    }
}
