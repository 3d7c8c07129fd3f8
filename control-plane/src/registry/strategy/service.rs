//! Services: the status is a subresource; the ClusterIP a Service got stays its own. An
//! update that leaves `spec.clusterIP` unset keeps the address (as `kubectl apply` of the
//! original manifest does), one that names another address is refused.

use serde_json::Value;
use skiff_api::resources::ResourceKind;
use skiff_api::validation::{FieldError, FieldErrorReason};

use super::super::object;
use super::Strategy;
use crate::error::ApiError;
use crate::registry::allocation::service::cluster_ip;

pub struct ServiceStrategy;

impl Strategy for ServiceStrategy {
    fn has_status_subresource(&self) -> bool {
        true
    }

    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        if cluster_ip(new).is_some() || new.get("spec").is_none() {
            return;
        }
        for field in ["clusterIP", "clusterIPs"] {
            if let Some(value) = old.pointer(&format!("/spec/{field}")) {
                new["spec"][field] = value.clone();
            }
        }
    }

    fn validate_update(
        &self,
        kind: &ResourceKind,
        old: &Value,
        new: &Value,
    ) -> Result<(), ApiError> {
        let external = new.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName");
        match (cluster_ip(old), cluster_ip(new)) {
            (Some(before), Some(after)) if before != after && !external => Err(ApiError::invalid(
                kind,
                object::name(new).unwrap_or_default(),
                vec![FieldError {
                    field: "spec.clusterIP".into(),
                    reason: FieldErrorReason::Invalid,
                    message: format!("{after:?}: field is immutable"),
                }],
            )),
            _ => Ok(()),
        }
    }
}
