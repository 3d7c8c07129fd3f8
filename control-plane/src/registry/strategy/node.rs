//! Nodes: the status is a subresource, but an agent registers its node with one; a pod CIDR,
//! once given, stays (Kubernetes' node validation).

use serde_json::Value;
use skiff_api::resources::ResourceKind;
use skiff_api::validation::{FieldError, FieldErrorReason};

use super::Strategy;
use crate::error::ApiError;
use crate::registry::object;

pub struct NodeStrategy;

/// A node's `spec.podCIDR` or `spec.podCIDRs`, None while unset or empty.
fn cidr<'a>(node: &'a Value, field: &str) -> Option<&'a Value> {
    node["spec"].get(field).filter(|v| {
        !v.is_null() && v.as_str() != Some("") && v.as_array().is_none_or(|a| !a.is_empty())
    })
}

impl Strategy for NodeStrategy {
    fn has_status_subresource(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, _obj: &mut Value) {}

    fn validate_update(
        &self,
        kind: &ResourceKind,
        old: &Value,
        new: &Value,
    ) -> Result<(), ApiError> {
        let errors: Vec<FieldError> = ["podCIDR", "podCIDRs"]
            .into_iter()
            .filter(|field| cidr(old, field).is_some_and(|before| cidr(new, field) != Some(before)))
            .map(|field| FieldError {
                field: format!("spec.{field}"),
                reason: FieldErrorReason::Forbidden,
                message: format!(
                    "node updates may only change {field} from unset to a valid CIDR, not from {}",
                    cidr(old, field).map(Value::to_string).unwrap_or_default()
                ),
            })
            .collect();
        if errors.is_empty() {
            return Ok(());
        }
        Err(ApiError::invalid(
            kind,
            object::name(new).unwrap_or_default(),
            errors,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use skiff_api::resources::by_name;

    #[test]
    fn a_pod_cidr_is_set_once() {
        let nodes = by_name("nodes").expect("kind");
        let node = |spec: Value| json!({"metadata": {"name": "n1"}, "spec": spec});
        let unset = node(json!({}));
        let given = node(json!({"podCIDR": "10.42.1.0/24", "podCIDRs": ["10.42.1.0/24"]}));
        assert!(NodeStrategy.validate_update(nodes, &unset, &given).is_ok());
        assert!(NodeStrategy.validate_update(nodes, &given, &given).is_ok());
        let moved = node(json!({"podCIDR": "10.42.2.0/24", "podCIDRs": ["10.42.1.0/24"]}));
        let err = NodeStrategy
            .validate_update(nodes, &given, &moved)
            .expect_err("a changed podCIDR");
        let ApiError::Invalid { causes, .. } = err else {
            panic!("not a 422: {err:?}");
        };
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["spec.podCIDR"]);
        assert!(NodeStrategy.validate_update(nodes, &given, &unset).is_err());
    }
}
