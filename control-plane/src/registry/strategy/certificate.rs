//! CertificateSigningRequests, as Kubernetes' three CSR strategies: the spec is fixed once
//! created; `/approval` changes only the Approved and Denied conditions; `/status` changes the
//! rest of the status (the certificate, Failed) but not the approval, and a certificate, once
//! issued, never changes and is issued only to an approved request.

use serde_json::Value;
use skiff_api::resources::ResourceKind;
use skiff_api::validation::{FieldError, FieldErrorReason};

use super::Strategy;
use crate::error::ApiError;
use crate::registry::object;

pub struct CsrStrategy;

/// The condition types only `/approval` writes.
fn is_approval(condition: &Value) -> bool {
    matches!(condition["type"].as_str(), Some("Approved" | "Denied"))
}

fn conditions(obj: &Value) -> impl Iterator<Item = &Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn certificate(obj: &Value) -> &str {
    obj.pointer("/status/certificate")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn invalid(kind: &ResourceKind, obj: &Value, field: &str, message: &str) -> ApiError {
    ApiError::invalid(
        kind,
        object::name(obj).unwrap_or_default(),
        vec![FieldError {
            field: field.into(),
            reason: FieldErrorReason::Forbidden,
            message: message.into(),
        }],
    )
}

impl Strategy for CsrStrategy {
    fn has_status_subresource(&self) -> bool {
        true
    }

    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        new["spec"] = old.get("spec").cloned().unwrap_or(Value::Null);
    }

    fn prepare_for_status_update(&self, old: &Value, next: &mut Value) {
        let mut kept: Vec<Value> = conditions(old)
            .filter(|c| is_approval(c))
            .cloned()
            .collect();
        kept.extend(conditions(next).filter(|c| !is_approval(c)).cloned());
        if next["status"].is_object() {
            next["status"]["conditions"] = Value::Array(kept);
        }
    }

    fn validate_status_update(
        &self,
        kind: &ResourceKind,
        old: &Value,
        next: &Value,
    ) -> Result<(), ApiError> {
        let (before, after) = (certificate(old), certificate(next));
        if before == after {
            return Ok(());
        }
        if !before.is_empty() {
            return Err(invalid(
                kind,
                next,
                "status.certificate",
                "updates may not modify existing certificate content",
            ));
        }
        let approved = conditions(next).any(|c| c["type"] == "Approved");
        let failed = conditions(next).any(|c| c["type"] == "Failed");
        if !approved || failed {
            return Err(invalid(
                kind,
                next,
                "status.certificate",
                "certificate may only be set if the request is approved and not failed",
            ));
        }
        Ok(())
    }

    fn prepare_for_approval(
        &self,
        kind: &ResourceKind,
        old: &Value,
        new: &Value,
    ) -> Result<Value, ApiError> {
        let mut next = old.clone();
        let now = object::now_rfc3339();
        let mut decided: Vec<Value> = conditions(new)
            .filter(|c| is_approval(c))
            .cloned()
            .collect();
        for condition in &mut decided {
            for field in ["lastUpdateTime", "lastTransitionTime"] {
                if condition.get(field).is_none_or(Value::is_null) {
                    condition[field] = Value::String(now.clone());
                }
            }
            if condition.get("status").is_none_or(Value::is_null) {
                condition["status"] = Value::String("True".into());
            }
        }
        for held in conditions(old).filter(|c| is_approval(c)) {
            if !decided.iter().any(|c| c["type"] == held["type"]) {
                return Err(invalid(
                    kind,
                    new,
                    "status.conditions",
                    &format!(
                        "updates may not remove a condition of type {}",
                        held["type"]
                    ),
                ));
            }
        }
        decided.extend(conditions(old).filter(|c| !is_approval(c)).cloned());
        if !next["status"].is_object() {
            next["status"] = Value::Object(Default::default());
        }
        next["status"]["conditions"] = Value::Array(decided);
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use skiff_api::resources::by_name;

    use super::*;

    fn csrs() -> &'static ResourceKind {
        by_name("csr").expect("served")
    }

    #[test]
    fn approval_changes_only_the_decision_and_status_never_the_decision() {
        let old = json!({"metadata": {"name": "c"}, "spec": {"signerName": "a/b"},
            "status": {"conditions": [{"type": "Failed", "status": "True"}]}});
        let new = json!({"metadata": {"name": "c"}, "spec": {"signerName": "x/y"},
            "status": {"certificate": "Zm9v", "conditions": [{"type": "Approved", "status": "True"}]}});
        let approved = CsrStrategy
            .prepare_for_approval(csrs(), &old, &new)
            .expect("approved");
        assert_eq!(approved["spec"]["signerName"], "a/b");
        assert!(approved["status"].get("certificate").is_none());
        let types: Vec<_> = conditions(&approved).map(|c| c["type"].clone()).collect();
        assert_eq!(types, [json!("Approved"), json!("Failed")]);
        assert!(approved["status"]["conditions"][0]["lastUpdateTime"].is_string());

        let undo = json!({"status": {"conditions": []}});
        assert!(CsrStrategy
            .prepare_for_approval(csrs(), &approved, &undo)
            .is_err());

        let mut next = approved.clone();
        next["status"] =
            json!({"conditions": [{"type": "Denied", "status": "True"}], "certificate": "Zm9v"});
        CsrStrategy.prepare_for_status_update(&approved, &mut next);
        let types: Vec<_> = conditions(&next).map(|c| c["type"].clone()).collect();
        assert_eq!(
            types,
            [json!("Approved")],
            "status writes keep the approval"
        );
    }

    #[test]
    fn a_certificate_goes_only_to_an_approved_request_and_never_changes() {
        let pending = json!({"metadata": {"name": "c"}, "status": {}});
        let issued = |conds: Value| json!({"metadata": {"name": "c"}, "status": {"certificate": "Zm9v", "conditions": conds}});
        let approved = json!([{"type": "Approved", "status": "True"}]);
        assert!(CsrStrategy
            .validate_status_update(csrs(), &pending, &issued(json!([])))
            .is_err());
        assert!(CsrStrategy
            .validate_status_update(csrs(), &pending, &issued(approved.clone()))
            .is_ok());
        let mut changed = issued(approved.clone());
        changed["status"]["certificate"] = json!("YmFy");
        assert!(CsrStrategy
            .validate_status_update(csrs(), &issued(approved), &changed)
            .is_err());
    }
}
