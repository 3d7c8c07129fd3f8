//! Namespaces: their status is a subresource, and the system ones stay.

use super::Strategy;
use crate::error::ApiError;

/// Namespaces that exist from the start and may not be deleted.
const PROTECTED_NAMESPACES: &[&str] = &["default", "kube-system"];

pub struct NamespaceStrategy;

impl Strategy for NamespaceStrategy {
    fn has_status_subresource(&self) -> bool {
        true
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
