//! Names, labels, annotations and keys.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::{Errors, FieldErrorReason};

/// Which naming rule a kind's `metadata.name` follows.
#[derive(Clone, Copy)]
pub enum NameRule {
    /// DNS-1123 subdomain: lower-case alphanumerics, `-` and `.`, at most 253.
    Subdomain,
    /// DNS-1123 label: lower-case alphanumerics and `-`, at most 63.
    Label,
    /// Any name that fits in one URL path segment (RBAC's `system:node`): not `.` or `..`,
    /// no `/` or `%`.
    PathSegment,
}

pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A name usable as one URL path segment.
pub fn is_path_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '%'])
}

/// A label value: empty, or ≤63 alphanumerics with `-_.` inside.
fn is_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// A qualified name (`app`, `example.com/tier`), as label and annotation keys are.
pub fn is_qualified_name(k: &str) -> bool {
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    prefix.is_none_or(is_dns_subdomain)
        && !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

pub fn validate_name(name: &str, rule: NameRule, field: &str, errors: &mut Errors) {
    let (ok, what) = match rule {
        NameRule::Subdomain => (
            is_dns_subdomain(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        ),
        NameRule::Label => (
            is_dns_label(name),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (at most 63)",
        ),
        NameRule::PathSegment => (
            is_path_segment(name),
            "may not be '.' or '..' and may not contain '/' or '%'",
        ),
    };
    if !ok {
        errors.invalid(field, name, what);
    }
}

pub fn validate_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    rule: NameRule,
    errors: &mut Errors,
) {
    match meta.name.as_deref() {
        Some(name) if !name.is_empty() => validate_name(name, rule, "metadata.name", errors),
        _ => {
            if meta.generate_name.as_deref().is_none_or(str::is_empty) {
                errors.push(
                    "metadata.name",
                    FieldErrorReason::Required,
                    "name or generateName is required",
                );
            }
        }
    }
    if namespaced {
        if let Some(ns) = meta.namespace.as_deref().filter(|n| !n.is_empty()) {
            validate_name(ns, NameRule::Label, "metadata.namespace", errors);
        }
    }
    validate_labels(meta.labels.iter().flatten(), "metadata.labels", errors);
    for key in meta.annotations.iter().flatten().map(|(k, _)| k) {
        if !is_qualified_name(key) {
            errors.invalid(
                format!("metadata.annotations[{key}]"),
                key,
                "name part must consist of alphanumeric characters, '-', '_' or '.'",
            );
        }
    }
}

pub fn validate_labels<'a>(
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
    field: &str,
    errors: &mut Errors,
) {
    for (key, value) in labels {
        if !is_qualified_name(key) {
            errors.invalid(
                format!("{field}[{key}]"),
                key,
                "a label key must be a qualified name: alphanumerics, '-', '_' or '.', at most 63, optionally prefixed by a DNS subdomain and '/'",
            );
        }
        if !is_label_value(value) {
            errors.invalid(
                format!("{field}[{key}]"),
                value,
                "a label value must be empty or at most 63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric",
            );
        }
    }
}

pub fn validate_config_keys<'a>(
    keys: impl IntoIterator<Item = &'a String>,
    field: &str,
    errors: &mut Errors,
) {
    for key in keys {
        let ok = !key.is_empty()
            && key.len() <= 253
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            errors.invalid(
                format!("{field}[{key}]"),
                key,
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            );
        }
    }
}

/// Kinds without typed checks: at least a valid name.
pub fn validate_generic(obj: &Value, namespaced: bool, errors: &mut Errors) {
    match serde_json::from_value::<ObjectMeta>(obj.get("metadata").cloned().unwrap_or(Value::Null))
    {
        Ok(meta) => validate_object_meta(&meta, namespaced, NameRule::Subdomain, errors),
        Err(err) => errors.invalid("metadata", "<object>", err),
    }
}
