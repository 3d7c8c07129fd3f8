//! Namespaces: their status is a subresource, set to `Active` on create, and the system ones
//! stay.

use serde_json::{json, Value};

use super::Strategy;
use crate::error::ApiError;

/// Namespaces that exist from the start and may not be deleted.
const PROTECTED_NAMESPACES: &[&str] = &["default", "kube-system"];

pub struct NamespaceStrategy;

impl Strategy for NamespaceStrategy {
    fn has_status_subresource(&self) -> bool {
        true
    }

    /// As Kubernetes' namespace strategy: whatever status the client sent, a new namespace is
    /// `Active` (deletes are immediate here, so none is ever `Terminating`).
    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(map) = obj.as_object_mut() {
            map.insert("status".into(), json!({"phase": "Active"}));
        }
    }

    fn check_delete(&self, name: &str) -> Result<(), ApiError> {
        if PROTECTED_NAMESPACES.contains(&name) {
            return Err(ApiError::BadRequest(format!(
                "namespace \"{name}\" may not be deleted"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_namespace_is_active_whatever_status_it_was_sent_with() {
        let mut namespace = json!({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}});
        NamespaceStrategy.prepare_for_create(&mut namespace);
        assert_eq!(namespace["status"], json!({"phase": "Active"}));
    }
}
