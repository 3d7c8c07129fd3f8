//! Ingresses and IngressClasses (`networking.k8s.io/v1`), checked as Kubernetes checks them.

use std::net::IpAddr;

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend, IngressClass};

use super::meta::{self, NameRule};
use super::{Errors, FieldErrorReason};

const PATH_TYPES: [&str; 3] = ["Exact", "Prefix", "ImplementationSpecific"];
/// Sequences an `Exact` or `Prefix` path may not contain, and endings it may not have.
const BAD_PATH_PARTS: [&str; 5] = ["//", "/./", "/../", "%2f", "%2F"];
const BAD_PATH_ENDS: [&str; 2] = ["/..", "/."];

/// An Ingress as Kubernetes validates it: rules, paths, backends, hosts and TLS.
pub fn validate_ingress(ingress: &Ingress, errors: &mut Errors) {
    meta::validate_object_meta(&ingress.metadata, true, NameRule::Subdomain, errors);
    let Some(spec) = ingress.spec.as_ref() else {
        errors.required("spec");
        return;
    };
    if let Some(class) = spec.ingress_class_name.as_deref() {
        meta::validate_name(class, NameRule::Subdomain, "spec.ingressClassName", errors);
    }
    let rules = spec.rules.as_deref().unwrap_or_default();
    match spec.default_backend.as_ref() {
        Some(backend) => validate_backend(backend, "spec.defaultBackend", errors),
        None if rules.is_empty() => errors.invalid(
            "spec.rules",
            "[]",
            "either `defaultBackend` or `rules` must be specified",
        ),
        None => {}
    }
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("spec.rules[{i}]");
        if let Some(host) = rule.host.as_deref().filter(|h| !h.is_empty()) {
            validate_host(host, &format!("{at}.host"), errors);
        }
        let Some(http) = rule.http.as_ref() else {
            continue;
        };
        if http.paths.is_empty() {
            errors.required(format!("{at}.http.paths"));
        }
        for (j, path) in http.paths.iter().enumerate() {
            let at = format!("{at}.http.paths[{j}]");
            validate_path(path.path.as_deref(), &path.path_type, &at, errors);
            validate_backend(&path.backend, &format!("{at}.backend"), errors);
        }
    }
    for (i, tls) in spec.tls.iter().flatten().enumerate() {
        for (j, host) in tls.hosts.iter().flatten().enumerate() {
            validate_host(host, &format!("spec.tls[{i}].hosts[{j}]"), errors);
        }
        if let Some(secret) = tls.secret_name.as_deref().filter(|s| !s.is_empty()) {
            meta::validate_name(
                secret,
                NameRule::Subdomain,
                &format!("spec.tls[{i}].secretName"),
                errors,
            );
        }
    }
}

/// A DNS name, or `*.` and one: never an IP address.
fn validate_host(host: &str, field: &str, errors: &mut Errors) {
    if host.parse::<IpAddr>().is_ok() {
        errors.invalid(field, host, "must be a DNS name, not an IP address");
    } else if let Some(rest) = host.strip_prefix("*.") {
        if !meta::is_dns_subdomain(rest) {
            errors.invalid(
                field,
                host,
                "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain",
            );
        }
    } else if !meta::is_dns_subdomain(host) {
        errors.invalid(
            field,
            host,
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        );
    }
}

fn validate_path(path: Option<&str>, path_type: &str, at: &str, errors: &mut Errors) {
    let field = format!("{at}.path");
    let path = path.unwrap_or_default();
    match path_type {
        "" => errors.push(
            format!("{at}.pathType"),
            FieldErrorReason::Required,
            "pathType must be specified",
        ),
        "Exact" | "Prefix" => {
            if !path.starts_with('/') {
                errors.invalid(field, path, "must be an absolute path");
            } else if let Some(part) = BAD_PATH_PARTS.iter().find(|p| path.contains(*p)) {
                errors.invalid(field, path, format!("must not contain '{part}'"));
            } else if let Some(end) = BAD_PATH_ENDS.iter().find(|e| path.ends_with(*e)) {
                errors.invalid(field, path, format!("cannot end with '{end}'"));
            }
        }
        "ImplementationSpecific" => {
            if !path.is_empty() && !path.starts_with('/') {
                errors.invalid(field, path, "must be an absolute path");
            }
        }
        other => errors.push(
            format!("{at}.pathType"),
            FieldErrorReason::NotSupported,
            format!(
                "{other:?}: supported values: {}",
                PATH_TYPES.map(|t| format!("{t:?}")).join(", ")
            ),
        ),
    }
}

/// A Service with a port number (1-65535) or name, or a typed resource: exactly one.
fn validate_backend(backend: &IngressBackend, at: &str, errors: &mut Errors) {
    match (backend.service.as_ref(), backend.resource.as_ref()) {
        (Some(_), Some(_)) => errors.invalid(
            at,
            "service and resource",
            "cannot set both resource and service backends",
        ),
        (None, None) => errors.push(
            at,
            FieldErrorReason::Invalid,
            "resource or service backend is required",
        ),
        (None, Some(resource)) => {
            if resource.kind.is_empty() {
                errors.required(format!("{at}.resource.kind"));
            }
            if resource.name.is_empty() {
                errors.required(format!("{at}.resource.name"));
            }
        }
        (Some(service), None) => {
            let at = format!("{at}.service");
            if service.name.is_empty() {
                errors.required(format!("{at}.name"));
            } else {
                meta::validate_name(
                    &service.name,
                    NameRule::Label,
                    &format!("{at}.name"),
                    errors,
                );
            }
            let port = service.port.as_ref();
            let name = port
                .and_then(|p| p.name.as_deref())
                .filter(|n| !n.is_empty());
            let number = port.and_then(|p| p.number);
            match (name, number) {
                (Some(_), Some(_)) => errors.invalid(
                    format!("{at}.port"),
                    "name and number",
                    "cannot set both port name & port number",
                ),
                (None, None) => errors.push(
                    format!("{at}.port"),
                    FieldErrorReason::Required,
                    "port name or number is required",
                ),
                (Some(name), None) => {
                    if !is_port_name(name) {
                        errors.invalid(
                            format!("{at}.port.name"),
                            name,
                            "must be an IANA service name: at most 15 lower case alphanumerics or '-', with a letter",
                        );
                    }
                }
                (None, Some(number)) => {
                    if !(1..=65535).contains(&number) {
                        errors.invalid(
                            format!("{at}.port.number"),
                            number,
                            "must be between 1 and 65535, inclusive",
                        );
                    }
                }
            }
        }
    }
}

/// An IANA service name, as Service port names are.
fn is_port_name(name: &str) -> bool {
    name.len() <= 15
        && meta::is_dns_label(name)
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.contains("--")
}

/// An IngressClass: its name and a `controller` that is a domain-prefixed path.
pub fn validate_ingress_class(class: &IngressClass, errors: &mut Errors) {
    meta::validate_object_meta(&class.metadata, false, NameRule::Subdomain, errors);
    let controller = class
        .spec
        .as_ref()
        .and_then(|s| s.controller.as_deref())
        .unwrap_or_default();
    if controller.is_empty() {
        errors.required("spec.controller");
    } else if controller.len() > 250 || !is_domain_prefixed_path(controller) {
        errors.invalid(
            "spec.controller",
            controller,
            "must be a domain-prefixed path (such as \"example.com/ingress\") of at most 250 characters",
        );
    }
}

/// `example.com/path`: a DNS subdomain, `/`, and a non-empty path.
fn is_domain_prefixed_path(text: &str) -> bool {
    text.split_once('/').is_some_and(|(domain, path)| {
        meta::is_dns_subdomain(domain)
            && !path.is_empty()
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~/%!$&'()*+,;=:@".contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn errors_of(spec: Value) -> Vec<String> {
        let ingress: Ingress = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"}, "spec": spec}))
        .unwrap();
        let mut errors = Errors::default();
        validate_ingress(&ingress, &mut errors);
        errors.0.iter().map(|e| e.field.clone()).collect()
    }

    fn rule(host: &str, path: Value) -> Value {
        json!({"rules": [{"host": host, "http": {"paths": [path]}}]})
    }

    fn to_web(path: &str, path_type: &str) -> Value {
        json!({"path": path, "pathType": path_type,
            "backend": {"service": {"name": "web", "port": {"number": 80}}}})
    }

    #[test]
    fn good_ingresses_pass() {
        assert!(errors_of(rule("a.example.com", to_web("/", "Prefix"))).is_empty());
        assert!(errors_of(rule("*.example.com", to_web("/x", "Exact"))).is_empty());
        assert!(errors_of(rule("", to_web("", "ImplementationSpecific"))).is_empty());
        let named = json!({"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"name": "http"}}}});
        assert!(errors_of(rule("a.example.com", named)).is_empty());
        let default_only = json!({"defaultBackend": {"service": {"name": "web", "port": {"number": 8080}}},
            "tls": [{"hosts": ["a.example.com"], "secretName": "a-tls"}]});
        assert!(errors_of(default_only).is_empty());
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (json!({}), "spec.rules"),
            (
                rule("a.example.com", to_web("/", "")),
                "spec.rules[0].http.paths[0].pathType",
            ),
            (
                rule("a.example.com", to_web("/", "Regex")),
                "spec.rules[0].http.paths[0].pathType",
            ),
            (
                rule("a.example.com", to_web("api", "Prefix")),
                "spec.rules[0].http.paths[0].path",
            ),
            (
                rule("a.example.com", to_web("/a//b", "Exact")),
                "spec.rules[0].http.paths[0].path",
            ),
            (
                rule("10.0.0.1", to_web("/", "Prefix")),
                "spec.rules[0].host",
            ),
            (
                rule("a.*.example.com", to_web("/", "Prefix")),
                "spec.rules[0].host",
            ),
            (
                rule("Upper.example.com", to_web("/", "Prefix")),
                "spec.rules[0].host",
            ),
            (
                rule(
                    "a.example.com",
                    json!({"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "web"}}}),
                ),
                "spec.rules[0].http.paths[0].backend.service.port",
            ),
            (
                rule(
                    "a.example.com",
                    json!({"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "web", "port": {"number": 70000}}}}),
                ),
                "spec.rules[0].http.paths[0].backend.service.port.number",
            ),
            (
                rule(
                    "a.example.com",
                    json!({"path": "/", "pathType": "Prefix", "backend": {}}),
                ),
                "spec.rules[0].http.paths[0].backend",
            ),
            (
                json!({"rules": [{"http": {"paths": []}}]}),
                "spec.rules[0].http.paths",
            ),
        ];
        for (spec, field) in cases {
            assert_eq!(errors_of(spec.clone()), [field], "{spec}");
        }
    }

    #[test]
    fn classes_need_a_domain_prefixed_controller() {
        let check = |controller: Value| {
            let class: IngressClass = serde_json::from_value(
                json!({"metadata": {"name": "c"}, "spec": {"controller": controller}}),
            )
            .unwrap();
            let mut errors = Errors::default();
            validate_ingress_class(&class, &mut errors);
            errors.0.iter().map(|e| e.field.clone()).collect::<Vec<_>>()
        };
        assert!(check(json!("skiff.dev/ingress")).is_empty());
        assert_eq!(check(json!("ingress")), ["spec.controller"]);
        assert_eq!(check(Value::Null), ["spec.controller"]);
    }
}
