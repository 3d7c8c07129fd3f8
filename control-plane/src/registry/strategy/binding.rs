//! RoleBindings and ClusterRoleBindings: the `roleRef` is fixed once created (Kubernetes'
//! rule: to grant another role, make another binding).

use serde_json::Value;
use skiff_api::resources::ResourceKind;
use skiff_api::validation::{FieldError, FieldErrorReason};

use super::Strategy;
use crate::error::ApiError;
use crate::registry::object;

/// Bindings: an immutable `roleRef`.
pub struct BindingStrategy;

impl Strategy for BindingStrategy {
    fn validate_update(
        &self,
        kind: &ResourceKind,
        old: &Value,
        new: &Value,
    ) -> Result<(), ApiError> {
        if old.get("roleRef") == new.get("roleRef") {
            return Ok(());
        }
        Err(ApiError::invalid(
            kind,
            object::name(new).unwrap_or_default(),
            vec![FieldError {
                field: "roleRef".into(),
                reason: FieldErrorReason::Invalid,
                message: "cannot change roleRef".into(),
            }],
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use skiff_api::resources::by_name;

    use super::*;

    #[test]
    fn the_role_ref_is_fixed() {
        let kind = by_name("rolebindings").expect("kind");
        let binding = |role: &str| {
            json!({"metadata": {"name": "b"}, "subjects": [],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}})
        };
        let mut more_subjects = binding("view");
        more_subjects["subjects"] = json!([{"kind": "User", "name": "bob"}]);
        assert!(BindingStrategy
            .validate_update(kind, &binding("view"), &more_subjects)
            .is_ok());
        let changed = BindingStrategy.validate_update(kind, &binding("view"), &binding("admin"));
        assert!(
            matches!(changed, Err(ApiError::Invalid { ref causes, .. }) if causes[0].field == "roleRef"),
            "{changed:?}"
        );
    }
}
