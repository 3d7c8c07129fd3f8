//! Objects every cluster has from the start.

use serde_json::json;
use skiff_api::k8s_openapi::api::core::v1::Namespace;
use skiff_api::resources;

use crate::error::ApiError;
use crate::registry::Registry;

/// Namespaces created at first start (as Kubernetes has them).
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-node-lease"];

/// Creates the system namespaces that do not exist yet.
pub async fn ensure_system_objects(registry: &Registry) -> Result<(), ApiError> {
    let kind = resources::of::<Namespace>();
    for name in SYSTEM_NAMESPACES {
        let namespace =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        match registry.create(kind, None, namespace).await {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
