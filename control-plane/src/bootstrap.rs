//! Objects every cluster has from the start.

use serde_json::json;
use skiff_api::k8s_openapi::api::core::v1::Namespace;
use skiff_api::k8s_openapi::api::node::v1::RuntimeClass;
use skiff_api::k8s_openapi::api::storage::v1::StorageClass;
use skiff_api::resources;
use skiff_api::runtime_class::{node_label, WASM_CLASS, WASM_HANDLER};
use skiff_api::storage::{DEFAULT_CLASS_ANNOTATION, LOCAL_PATH_CLASS, LOCAL_PATH_PROVISIONER};

use crate::error::ApiError;
use crate::registry::Registry;

/// Namespaces created at first start (as Kubernetes has them).
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-node-lease"];

/// Creates the system namespaces, the default RuntimeClass and the default StorageClass that
/// do not exist yet.
pub async fn ensure_system_objects(registry: &Registry) -> Result<(), ApiError> {
    let kind = resources::of::<Namespace>();
    for name in SYSTEM_NAMESPACES {
        let namespace =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        create_if_missing(registry, kind, namespace).await?;
    }
    // Wasm pods run only on nodes whose agent has the Wasm runtime.
    let wasm = json!({
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": WASM_CLASS},
        "handler": WASM_HANDLER,
        "scheduling": {"nodeSelector": {node_label(WASM_HANDLER): "true"}},
    });
    create_if_missing(registry, resources::of::<RuntimeClass>(), wasm).await?;
    // Node-local directories, provisioned where the first pod using the claim lands (k3s's class).
    let local_path = json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": LOCAL_PATH_CLASS, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": LOCAL_PATH_PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    });
    create_if_missing(registry, resources::of::<StorageClass>(), local_path).await
}

async fn create_if_missing(
    registry: &Registry,
    kind: &resources::ResourceKind,
    obj: serde_json::Value,
) -> Result<(), ApiError> {
    match registry.create(kind, None, obj).await {
        Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
        Err(err) => Err(err),
    }
}
