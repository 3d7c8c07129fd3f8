//! PersistentVolumeClaims: the status is a subresource, and the spec is fixed once created
//! (Kubernetes' rule) except that the binder fills `volumeName` once and the request may grow.
//! An update that leaves out what the server filled in (the defaulted class, the bound
//! volume) keeps the stored values, so re-applying the original manifest is not a change.

use serde_json::Value;
use skiff_api::quantity;
use skiff_api::resources::ResourceKind;
use skiff_api::validation::{FieldError, FieldErrorReason};

use super::Strategy;
use crate::error::ApiError;
use crate::registry::object;

/// PersistentVolumeClaims: a status subresource and a spec fixed after create.
pub struct ClaimStrategy;

impl Strategy for ClaimStrategy {
    fn has_status_subresource(&self) -> bool {
        true
    }

    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        for field in ["storageClassName", "volumeName"] {
            let missing = new["spec"].get(field).is_none_or(Value::is_null);
            if let (true, Some(stored)) = (missing, old["spec"].get(field)) {
                if new["spec"].is_object() {
                    new["spec"][field] = stored.clone();
                }
            }
        }
    }

    fn validate_update(
        &self,
        kind: &ResourceKind,
        old: &Value,
        new: &Value,
    ) -> Result<(), ApiError> {
        let causes = immutable_changes(&old["spec"], &new["spec"]);
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(
                kind,
                object::name(new).unwrap_or_default(),
                causes,
            ))
        }
    }
}

fn immutable_changes(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut causes = Vec::new();
    let forbid = |field: &str, message: &str| FieldError {
        field: field.to_string(),
        reason: FieldErrorReason::Forbidden,
        message: message.into(),
    };
    let mut rest_old = old.clone();
    let mut rest_new = new.clone();
    for spec in [&mut rest_old, &mut rest_new] {
        if let Some(map) = spec.as_object_mut() {
            map.remove("resources");
            map.remove("volumeName");
        }
    }
    if rest_old != rest_new {
        causes.push(forbid(
            "spec",
            "spec is immutable after creation except resources.requests and volumeName",
        ));
    }
    let old_volume = old["volumeName"].as_str().unwrap_or_default();
    let new_volume = new["volumeName"].as_str().unwrap_or_default();
    if !old_volume.is_empty() && old_volume != new_volume {
        causes.push(forbid(
            "spec.volumeName",
            "a bound claim's volume cannot change",
        ));
    }
    let size = |spec: &Value| {
        spec.pointer("/resources/requests/storage")
            .and_then(Value::as_str)
            .and_then(|q| quantity::parse_bytes(q).ok())
            .unwrap_or(0)
    };
    if size(new) < size(old) {
        causes.push(forbid(
            "spec.resources.requests.storage",
            "field can not be less than previous value",
        ));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim() -> Value {
        json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "storageClassName": "local-path",
            "resources": {"requests": {"storage": "1Gi"}}}})
    }

    fn fields(old: &Value, new: &Value) -> Vec<String> {
        immutable_changes(&old["spec"], &new["spec"])
            .into_iter()
            .map(|c| c.field)
            .collect()
    }

    #[test]
    fn binding_and_growing_pass_everything_else_is_fixed() {
        let old = claim();
        let mut bound = old.clone();
        bound["spec"]["volumeName"] = json!("pvc-1");
        bound["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert!(fields(&old, &bound).is_empty());
        let mut rebound = bound.clone();
        rebound["spec"]["volumeName"] = json!("pvc-2");
        assert_eq!(fields(&bound, &rebound), ["spec.volumeName"]);
        let mut shrunk = old.clone();
        shrunk["spec"]["resources"]["requests"]["storage"] = json!("1Mi");
        shrunk["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        assert_eq!(
            fields(&old, &shrunk),
            ["spec", "spec.resources.requests.storage"]
        );
    }

    #[test]
    fn an_update_without_server_filled_fields_keeps_them() {
        let mut stored = claim();
        stored["spec"]["volumeName"] = json!("pvc-1");
        let mut reapplied = claim();
        reapplied["spec"]
            .as_object_mut()
            .expect("spec")
            .remove("storageClassName");
        ClaimStrategy.prepare_for_update(&stored, &mut reapplied);
        assert_eq!(reapplied["spec"], stored["spec"]);
    }
}
