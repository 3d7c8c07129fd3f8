//! Objects every cluster has from the start.

use serde_json::json;
use skiff_api::ingress::{
    DEFAULT_CLASS_ANNOTATION as DEFAULT_INGRESS_CLASS, SKIFF_CLASS, SKIFF_CONTROLLER,
};
use skiff_api::k8s_openapi::api::core::v1::{Namespace, Service};
use skiff_api::k8s_openapi::api::networking::v1::IngressClass;
use skiff_api::k8s_openapi::api::node::v1::RuntimeClass;
use skiff_api::k8s_openapi::api::storage::v1::StorageClass;
use skiff_api::runtime_class::{node_label, LINUX_CLASS, LINUX_HANDLER, WASM_CLASS, WASM_HANDLER};
use skiff_api::storage::{DEFAULT_CLASS_ANNOTATION, LOCAL_PATH_CLASS, LOCAL_PATH_PROVISIONER};
use skiff_api::{dns, resources};

use crate::error::ApiError;
use crate::registry::Registry;

/// Namespaces created at first start (as Kubernetes has them).
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-node-lease"];

/// Creates the system namespaces, the default RuntimeClasses, StorageClass and IngressClass that
/// do not exist yet.
pub async fn ensure_system_objects(registry: &Registry) -> Result<(), ApiError> {
    let kind = resources::of::<Namespace>();
    for name in SYSTEM_NAMESPACES {
        let namespace =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        create_if_missing(registry, kind, namespace).await?;
    }
    // Wasm pods run only on nodes whose agent has the Wasm runtime, Linux pods only on nodes
    // with the Linux runtime.
    for (class, handler) in [(WASM_CLASS, WASM_HANDLER), (LINUX_CLASS, LINUX_HANDLER)] {
        let runtime_class = json!({
            "apiVersion": "node.k8s.io/v1",
            "kind": "RuntimeClass",
            "metadata": {"name": class},
            "handler": handler,
            "scheduling": {"nodeSelector": {node_label(handler): "true"}},
        });
        create_if_missing(registry, resources::of::<RuntimeClass>(), runtime_class).await?;
    }
    // Node-local directories, provisioned where the first pod using the claim lands (k3s's class).
    let local_path = json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": LOCAL_PATH_CLASS, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": LOCAL_PATH_PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    });
    create_if_missing(registry, resources::of::<StorageClass>(), local_path).await?;
    // Served by every agent's node proxy; Ingresses naming no class get it.
    let ingress = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": SKIFF_CLASS, "annotations": {DEFAULT_INGRESS_CLASS: "true"}},
        "spec": {"controller": SKIFF_CONTROLLER},
    });
    create_if_missing(registry, resources::of::<IngressClass>(), ingress).await?;
    ensure_kubernetes_service(registry).await?;
    crate::authz::reconcile::ensure(registry).await?;
    ensure_dns_service(registry).await
}

/// The `kube-dns` Service in `kube-system` on the cluster DNS address (as k3s and kubeadm
/// clusters have it): it selects no pods, the node agents answer on its address themselves.
async fn ensure_dns_service(registry: &Registry) -> Result<(), ApiError> {
    let Some(address) = registry.service_ranges().cluster_dns else {
        return Ok(());
    };
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": dns::DNS_SERVICE, "namespace": dns::DNS_NAMESPACE,
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"},
            "annotations": {dns::NODE_LOCAL_ANNOTATION: "true"}},
        "spec": {"type": "ClusterIP", "clusterIP": address.to_string(),
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                      {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]},
    });
    match create_if_missing(registry, resources::of::<Service>(), service).await {
        // The address went to another Service (created before it was reserved).
        Err(err @ ApiError::Invalid { .. }) => {
            tracing::warn!(%err, "not creating the kube-dns Service");
            Ok(())
        }
        other => other,
    }
}

/// The `kubernetes` Service in `default` on the first address of the service range, as every
/// Kubernetes cluster has; it selects no pods (its endpoints would be the API servers).
async fn ensure_kubernetes_service(registry: &Registry) -> Result<(), ApiError> {
    let address = registry.service_ranges().cluster_ips.first().to_string();
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": address,
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
    });
    match create_if_missing(registry, resources::of::<Service>(), service).await {
        // The address went to another Service (a range changed between starts): no default one.
        Err(err @ ApiError::Invalid { .. }) => {
            tracing::warn!(%err, "not creating the kubernetes Service");
            Ok(())
        }
        other => other,
    }
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
