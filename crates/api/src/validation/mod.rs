//! Validation with field paths, as Kubernetes reports it
//! (`spec.template.spec.containers[0].image: Required value`).

mod batch;
mod certificates;
mod discovery;
mod endpoints;
mod host_ports;
mod lifecycle_hooks;
mod meta;
mod networking;
mod node;
mod pod;
mod policy;
mod probes;
mod rbac;
mod runtime_class;
mod security_context;
mod statefulset;
mod storage;
mod volumes;
mod workloads;

use std::fmt;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, LimitRange, Namespace, Node, PersistentVolume, PersistentVolumeClaim,
    Pod, ResourceQuota, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::resources::ResourceKind;
use crate::token_secret;

pub use volumes::check_relative;

/// Why a field is wrong (Kubernetes' `field.ErrorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorReason {
    Required,
    Invalid,
    NotSupported,
    Duplicate,
    NotFound,
    TooLong,
    Forbidden,
}

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path such as `spec.template.spec.containers[0].image`.
    pub field: String,
    pub reason: FieldErrorReason,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.reason {
            FieldErrorReason::Required => "Required value",
            FieldErrorReason::Invalid => "Invalid value",
            FieldErrorReason::NotSupported => "Unsupported value",
            FieldErrorReason::Duplicate => "Duplicate value",
            FieldErrorReason::NotFound => "Not found",
            FieldErrorReason::TooLong => "Too long",
            FieldErrorReason::Forbidden => "Forbidden",
        };
        if self.message.is_empty() {
            write!(f, "{}: {kind}", self.field)
        } else {
            write!(f, "{}: {kind}: {}", self.field, self.message)
        }
    }
}

/// Collects errors under a growing path.
#[derive(Default)]
pub(crate) struct Errors(Vec<FieldError>);

impl Errors {
    pub fn push(
        &mut self,
        field: impl Into<String>,
        reason: FieldErrorReason,
        message: impl Into<String>,
    ) {
        self.0.push(FieldError {
            field: field.into(),
            reason,
            message: message.into(),
        });
    }

    pub fn required(&mut self, field: impl Into<String>) {
        self.push(field, FieldErrorReason::Required, "");
    }

    pub fn invalid(
        &mut self,
        field: impl Into<String>,
        value: impl fmt::Debug,
        message: impl fmt::Display,
    ) {
        self.push(
            field,
            FieldErrorReason::Invalid,
            format!("{value:?}: {message}"),
        );
    }
}

/// Decodes `obj` as its typed form (type errors name their path) and validates it.
pub fn validate(kind: &ResourceKind, obj: &Value) -> Result<(), Vec<FieldError>> {
    let mut errors = Errors::default();
    match kind.kind {
        "Pod" => decode::<Pod>(obj).map(|p| pod::validate_pod(&p, &mut errors)),
        "Deployment" => {
            decode::<Deployment>(obj).map(|d| workloads::validate_deployment(&d, &mut errors))
        }
        "DaemonSet" => {
            decode::<DaemonSet>(obj).map(|d| workloads::validate_daemonset(&d, &mut errors))
        }
        "ReplicaSet" => {
            decode::<ReplicaSet>(obj).map(|r| workloads::validate_replicaset(&r, &mut errors))
        }
        "StatefulSet" => {
            decode::<StatefulSet>(obj).map(|s| statefulset::validate_statefulset(&s, &mut errors))
        }
        "Job" => decode::<Job>(obj).map(|j| batch::validate_job(&j, &mut errors)),
        "CronJob" => decode::<CronJob>(obj).map(|c| batch::validate_cronjob(&c, &mut errors)),
        "ConfigMap" => decode::<ConfigMap>(obj).map(|c| {
            meta::validate_object_meta(&c.metadata, true, meta::NameRule::Subdomain, &mut errors);
            let keys = c
                .data
                .iter()
                .flatten()
                .map(|(k, _)| k)
                .chain(c.binary_data.iter().flatten().map(|(k, _)| k));
            meta::validate_config_keys(keys, "data", &mut errors);
        }),
        "Secret" => decode::<Secret>(obj).map(|s| {
            meta::validate_object_meta(&s.metadata, true, meta::NameRule::Subdomain, &mut errors);
            let keys = s
                .data
                .iter()
                .flatten()
                .map(|(k, _)| k)
                .chain(s.string_data.iter().flatten().map(|(k, _)| k));
            meta::validate_config_keys(keys, "data", &mut errors);
            // A ServiceAccount token Secret names its account (the tokens controller fills it).
            let names_account = s
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(token_secret::ACCOUNT_NAME_ANNOTATION))
                .is_some_and(|name| !name.is_empty());
            if s.type_.as_deref() == Some(token_secret::TOKEN_SECRET_TYPE) && !names_account {
                errors.required(format!(
                    "metadata.annotations[{}]",
                    token_secret::ACCOUNT_NAME_ANNOTATION
                ));
            }
        }),
        "ServiceAccount" => decode::<ServiceAccount>(obj).map(|a| {
            meta::validate_object_meta(&a.metadata, true, meta::NameRule::Subdomain, &mut errors)
        }),
        "PodDisruptionBudget" => decode::<PodDisruptionBudget>(obj)
            .map(|p| policy::validate_pod_disruption_budget(&p, &mut errors)),
        "Service" => decode::<Service>(obj).map(|s| workloads::validate_service(&s, &mut errors)),
        "Endpoints" => {
            decode::<Endpoints>(obj).map(|e| endpoints::validate_endpoints(&e, &mut errors))
        }
        "EndpointSlice" => decode::<EndpointSlice>(obj)
            .map(|s| discovery::validate_endpoint_slice(&s, &mut errors)),
        "Ingress" => decode::<Ingress>(obj).map(|i| networking::validate_ingress(&i, &mut errors)),
        "IngressClass" => {
            decode::<IngressClass>(obj).map(|c| networking::validate_ingress_class(&c, &mut errors))
        }
        "Namespace" => decode::<Namespace>(obj).map(|n| {
            meta::validate_object_meta(&n.metadata, false, meta::NameRule::Label, &mut errors)
        }),
        "RuntimeClass" => decode::<RuntimeClass>(obj)
            .map(|c| runtime_class::validate_runtime_class(&c, &mut errors)),
        "PersistentVolume" => decode::<PersistentVolume>(obj)
            .map(|v| storage::validate_persistent_volume(&v, &mut errors)),
        "PersistentVolumeClaim" => decode::<PersistentVolumeClaim>(obj)
            .map(|c| storage::validate_persistent_volume_claim(&c, &mut errors)),
        "StorageClass" => {
            decode::<StorageClass>(obj).map(|c| storage::validate_storage_class(&c, &mut errors))
        }
        "ResourceQuota" => decode::<ResourceQuota>(obj).map(|q| {
            meta::validate_object_meta(&q.metadata, true, meta::NameRule::Subdomain, &mut errors);
            let hard = q.spec.and_then(|s| s.hard).unwrap_or_default();
            quantities(hard.iter(), "spec.hard", &mut errors);
            for e in crate::admission::quota_scope::validate(obj) {
                errors.push(e.field, FieldErrorReason::Invalid, e.message);
            }
        }),
        "LimitRange" => decode::<LimitRange>(obj).map(|r| {
            meta::validate_object_meta(&r.metadata, true, meta::NameRule::Subdomain, &mut errors);
            for (i, item) in r.spec.into_iter().flat_map(|s| s.limits).enumerate() {
                for (field, set) in [
                    ("default", &item.default),
                    ("defaultRequest", &item.default_request),
                    ("max", &item.max),
                    ("min", &item.min),
                    ("maxLimitRequestRatio", &item.max_limit_request_ratio),
                ] {
                    let path = format!("spec.limits[{i}].{field}");
                    quantities(set.iter().flatten(), &path, &mut errors);
                }
            }
        }),
        "Node" => decode::<Node>(obj).map(|n| node::validate_node(&n, &mut errors)),
        "Role" => decode::<Role>(obj).map(|r| rbac::validate_role(&r, &mut errors)),
        "ClusterRole" => {
            decode::<ClusterRole>(obj).map(|r| rbac::validate_cluster_role(&r, &mut errors))
        }
        "CertificateSigningRequest" => decode::<CertificateSigningRequest>(obj)
            .map(|c| certificates::validate_csr(&c, &mut errors)),
        "RoleBinding" => {
            decode::<RoleBinding>(obj).map(|b| rbac::validate_role_binding(&b, &mut errors))
        }
        "ClusterRoleBinding" => decode::<ClusterRoleBinding>(obj)
            .map(|b| rbac::validate_cluster_role_binding(&b, &mut errors)),
        _ => {
            meta::validate_generic(obj, kind.namespaced, &mut errors);
            Ok(())
        }
    }
    .map_err(|e| vec![e])?;
    if errors.0.is_empty() {
        Ok(())
    } else {
        Err(errors.0)
    }
}

/// Checks that each quantity of a `resource -> quantity` map at `path` parses.
fn quantities<'a>(
    set: impl Iterator<Item = (&'a String, &'a Quantity)>,
    path: &str,
    errors: &mut Errors,
) {
    for (resource, q) in set {
        if let Err(err) = crate::quantity::parse_cpu_millis(&q.0) {
            errors.invalid(format!("{path}[{resource}]"), &q.0, err);
        }
    }
}

/// Deserializes, turning a type mismatch into a field error at its path.
fn decode<T: DeserializeOwned>(obj: &Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(obj).map_err(|err| {
        let path = err.path().to_string();
        FieldError {
            field: if path == "." { "<object>".into() } else { path },
            reason: FieldErrorReason::Invalid,
            message: err.inner().to_string(),
        }
    })
}

#[cfg(test)]
mod tests;
