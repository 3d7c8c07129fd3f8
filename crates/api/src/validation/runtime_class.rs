//! RuntimeClasses (`node.k8s.io/v1`) and the tolerations they add to pods.

use k8s_openapi::api::core::v1::Toleration;
use k8s_openapi::api::node::v1::RuntimeClass;

use super::meta::{self, NameRule};
use super::{Errors, FieldErrorReason};

pub fn validate_runtime_class(class: &RuntimeClass, errors: &mut Errors) {
    meta::validate_object_meta(&class.metadata, false, NameRule::Subdomain, errors);
    if class.handler.is_empty() {
        errors.required("handler");
    } else {
        meta::validate_name(&class.handler, NameRule::Label, "handler", errors);
    }
    let Some(scheduling) = class.scheduling.as_ref() else {
        return;
    };
    if let Some(selector) = scheduling.node_selector.as_ref() {
        meta::validate_labels(selector, "scheduling.nodeSelector", errors);
    }
    validate_tolerations(
        scheduling.tolerations.iter().flatten(),
        "scheduling.tolerations",
        errors,
    );
}

/// Kubernetes' toleration rules: a qualified key (or none, with `Exists`), `Equal` or `Exists`
/// (no value then), a known effect, and `tolerationSeconds` only for `NoExecute`.
pub fn validate_tolerations<'a>(
    tolerations: impl IntoIterator<Item = &'a Toleration>,
    field: &str,
    errors: &mut Errors,
) {
    for (i, toleration) in tolerations.into_iter().enumerate() {
        let at = format!("{field}[{i}]");
        let key = toleration.key.as_deref().unwrap_or_default();
        let operator = toleration.operator.as_deref().unwrap_or("Equal");
        if key.is_empty() {
            if operator != "Exists" {
                errors.invalid(
                    format!("{at}.operator"),
                    operator,
                    "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                );
            }
        } else if !meta::is_qualified_name(key) {
            errors.invalid(
                format!("{at}.key"),
                key,
                "a toleration key must be a qualified name: alphanumerics, '-', '_' or '.', at most 63, optionally prefixed by a DNS subdomain and '/'",
            );
        }
        match operator {
            "Equal" => {}
            "Exists" => {
                if let Some(value) = toleration.value.as_deref().filter(|v| !v.is_empty()) {
                    errors.invalid(
                        format!("{at}.operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    );
                }
            }
            other => errors.push(
                format!("{at}.operator"),
                FieldErrorReason::NotSupported,
                format!("{other:?}: supported values: \"Equal\", \"Exists\""),
            ),
        }
        let effect = toleration.effect.as_deref().unwrap_or_default();
        if !matches!(effect, "" | "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            errors.push(
                format!("{at}.effect"),
                FieldErrorReason::NotSupported,
                format!(
                    "{effect:?}: supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""
                ),
            );
        }
        if toleration.toleration_seconds.is_some() && effect != "NoExecute" {
            errors.invalid(
                format!("{at}.effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            );
        }
    }
}
