//! Per-kind behaviour of the registry, as Kubernetes' registry strategies
//! (`PrepareForCreate`, `PrepareForUpdate`, `ValidateUpdate`, graceful deletion): the generic
//! write path asks the kind's strategy instead of testing which kind it holds.

mod binding;
mod certificate;
mod claim;
mod job;
mod namespace;
mod node;
mod pod;
mod quota;
mod service;
mod statefulset;

use serde_json::Value;
use skiff_api::resources::ResourceKind;

use super::ListOptions;
use crate::error::ApiError;

pub use pod::{mark_scheduled, mark_terminating};

/// What one kind adds to the generic create, update, delete and watch paths.
pub trait Strategy: Sync {
    /// Whether `status` is written only through the `/status` subresource.
    fn has_status_subresource(&self) -> bool {
        false
    }

    /// Resets what a client may not set on create (Kubernetes' `PrepareForCreate`).
    fn prepare_for_create(&self, obj: &mut Value) {
        if self.has_status_subresource() {
            if let Some(map) = obj.as_object_mut() {
                map.remove("status");
            }
        }
    }

    /// Carries what the server owns from the stored object into a main-resource update
    /// (Kubernetes' `PrepareForUpdate`).
    fn prepare_for_update(&self, _old: &Value, _new: &mut Value) {}

    /// Checks a main-resource update against the stored object (Kubernetes' `ValidateUpdate`
    /// beyond the kind's own validation: immutable fields).
    fn validate_update(
        &self,
        _kind: &ResourceKind,
        _old: &Value,
        _new: &Value,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// Carries what a `/status` write may not change from the stored object into `next`.
    fn prepare_for_status_update(&self, _old: &Value, _next: &mut Value) {}

    /// Checks a `/status` write against the stored object.
    fn validate_status_update(
        &self,
        _kind: &ResourceKind,
        _old: &Value,
        _next: &Value,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// The object an `/approval` write of `new` makes of `old`; only CertificateSigningRequests
    /// serve it.
    fn prepare_for_approval(
        &self,
        kind: &ResourceKind,
        _old: &Value,
        _new: &Value,
    ) -> Result<Value, ApiError> {
        Err(ApiError::UnknownResource(format!(
            "{}/approval",
            kind.plural
        )))
    }

    /// The RuntimeClass a new object runs with, whose scheduling it takes on at admission.
    fn runtime_class(&self, _obj: &Value) -> Option<String> {
        None
    }

    /// Refuses deleting objects that must stay.
    fn check_delete(&self, _name: &str) -> Result<(), ApiError> {
        Ok(())
    }

    /// Seconds a deletion of `obj` waits for its workload to stop; 0 deletes at once.
    fn delete_grace_period(&self, _obj: &Value, _requested: Option<i64>) -> i64 {
        0
    }

    /// The node a watch is routed by (Kubernetes' `spec.nodeName` index of pods), if any.
    fn node_index(&self, _options: &ListOptions) -> Option<String> {
        None
    }
}

/// Kinds with no behaviour of their own.
struct Plain;

impl Strategy for Plain {}

/// Kinds whose status is a subresource.
struct WithStatus;

impl Strategy for WithStatus {
    fn has_status_subresource(&self) -> bool {
        true
    }
}

/// The strategy of `kind`.
pub fn of(kind: &ResourceKind) -> &'static dyn Strategy {
    match kind.kind {
        "Pod" => &pod::PodStrategy,
        "Namespace" => &namespace::NamespaceStrategy,
        "Node" => &node::NodeStrategy,
        "Job" => &job::JobStrategy,
        "StatefulSet" => &statefulset::StatefulSetStrategy,
        "PersistentVolumeClaim" => &claim::ClaimStrategy,
        "Service" => &service::ServiceStrategy,
        "RoleBinding" | "ClusterRoleBinding" => &binding::BindingStrategy,
        "CertificateSigningRequest" => &certificate::CsrStrategy,
        "Deployment"
        | "ReplicaSet"
        | "CronJob"
        | "PersistentVolume"
        | "PodDisruptionBudget"
        | "Ingress" => &WithStatus,
        "ResourceQuota" => &quota::QuotaStrategy,
        _ => &Plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use skiff_api::resources::by_name;

    fn kind(name: &str) -> &'static ResourceKind {
        by_name(name).expect("served kind")
    }

    #[test]
    fn status_is_dropped_on_create_only_for_status_subresources() {
        let with_status = || json!({"spec": {}, "status": {"replicas": 3}});
        let mut deployment = with_status();
        of(kind("deployments")).prepare_for_create(&mut deployment);
        assert!(deployment.get("status").is_none());
        let mut node = with_status();
        of(kind("nodes")).prepare_for_create(&mut node);
        assert!(
            node.get("status").is_some(),
            "agents register nodes with a status"
        );
        let mut config = with_status();
        of(kind("configmaps")).prepare_for_create(&mut config);
        assert!(config.get("status").is_some());
    }

    #[test]
    fn only_pods_name_a_runtime_class() {
        let obj = json!({"spec": {"runtimeClassName": "wasmtime"}});
        assert_eq!(
            of(kind("pods")).runtime_class(&obj).as_deref(),
            Some("wasmtime")
        );
        assert_eq!(
            of(kind("pods")).runtime_class(&json!({"spec": {"runtimeClassName": ""}})),
            None
        );
        assert_eq!(of(kind("deployments")).runtime_class(&obj), None);
    }

    #[test]
    fn only_pods_and_namespaces_have_deletion_rules() {
        let bound = json!({"spec": {"nodeName": "n1"}});
        assert_eq!(of(kind("pods")).delete_grace_period(&bound, None), 30);
        assert_eq!(of(kind("deployments")).delete_grace_period(&bound, None), 0);
        assert!(of(kind("namespaces")).check_delete("default").is_err());
        assert!(of(kind("configmaps")).check_delete("default").is_ok());
    }
}
