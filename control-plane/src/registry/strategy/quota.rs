//! ResourceQuotas: the status is a subresource, and what a quota counts is fixed once it is
//! created: `spec.scopes` and `spec.scopeSelector` may not change (Kubernetes'
//! `ValidateResourceQuotaUpdate`), while `spec.hard` may.

use serde_json::Value;
use skiff_api::resources::ResourceKind;
use skiff_api::validation::{FieldError, FieldErrorReason};

use super::Strategy;
use crate::error::ApiError;
use crate::registry::object;

/// ResourceQuotas: a status subresource and fixed scopes.
pub struct QuotaStrategy;

impl Strategy for QuotaStrategy {
    fn has_status_subresource(&self) -> bool {
        true
    }

    fn validate_update(
        &self,
        kind: &ResourceKind,
        old: &Value,
        new: &Value,
    ) -> Result<(), ApiError> {
        let causes = scope_changes(old, new);
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(
                kind,
                object::name(new).unwrap_or_default(),
                causes,
            ))
        }
    }
}

/// `spec.scopes` and `spec.scopeSelector` where `new` changed them; an absent field, `null`
/// and an empty one are alike.
fn scope_changes(old: &Value, new: &Value) -> Vec<FieldError> {
    let field = |quota: &Value, name: &str| {
        quota
            .pointer(&format!("/spec/{name}"))
            .filter(|v| {
                !(v.is_null()
                    || v.as_array().is_some_and(Vec::is_empty)
                    || v.as_object().is_some_and(serde_json::Map::is_empty))
            })
            .cloned()
    };
    ["scopes", "scopeSelector"]
        .into_iter()
        .filter(|name| field(old, name) != field(new, name))
        .map(|name| FieldError {
            field: format!("spec.{name}"),
            reason: FieldErrorReason::Invalid,
            message: "field is immutable".into(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn quota(spec: Value) -> Value {
        json!({"metadata": {"name": "q"}, "spec": spec})
    }

    fn fields(old: &Value, new: &Value) -> Vec<String> {
        scope_changes(old, new)
            .into_iter()
            .map(|c| c.field)
            .collect()
    }

    #[test]
    fn scopes_and_selectors_are_fixed_hard_is_not() {
        let old = quota(json!({"hard": {"pods": "2"}, "scopes": ["Terminating"]}));
        let raised = quota(json!({"hard": {"pods": "5"}, "scopes": ["Terminating"]}));
        assert!(fields(&old, &raised).is_empty());
        let rescoped = quota(json!({"hard": {"pods": "2"}, "scopes": ["NotTerminating"],
            "scopeSelector": {"matchExpressions": [{"scopeName": "PriorityClass",
                "operator": "Exists"}]}}));
        assert_eq!(
            fields(&old, &rescoped),
            ["spec.scopes", "spec.scopeSelector"]
        );
        let unscoped = quota(json!({"hard": {"pods": "2"}}));
        assert_eq!(fields(&old, &unscoped), ["spec.scopes"]);
        let empty = quota(json!({"hard": {"pods": "2"}, "scopes": [], "scopeSelector": null}));
        assert!(fields(&unscoped, &empty).is_empty());
    }
}
