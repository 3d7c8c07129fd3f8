//! Jobs: the status is a subresource, and what a Job runs (its pod template, completion mode
//! and completions) cannot change once it exists, as in Kubernetes; `parallelism`, `suspend`,
//! `activeDeadlineSeconds` and the rest may.

use serde_json::Value;
use skiff_api::resources::ResourceKind;
use skiff_api::validation::{FieldError, FieldErrorReason};

use super::Strategy;
use crate::error::ApiError;
use crate::registry::object;

/// Fields of a Job's spec fixed at creation.
const IMMUTABLE: [&str; 3] = ["template", "completionMode", "completions"];

pub struct JobStrategy;

impl Strategy for JobStrategy {
    fn has_status_subresource(&self) -> bool {
        true
    }

    fn validate_update(
        &self,
        kind: &ResourceKind,
        old: &Value,
        new: &Value,
    ) -> Result<(), ApiError> {
        let causes: Vec<FieldError> = IMMUTABLE
            .iter()
            .filter(|field| old["spec"][**field] != new["spec"][**field])
            .map(|field| FieldError {
                field: format!("spec.{field}"),
                reason: FieldErrorReason::Invalid,
                message: "field is immutable".into(),
            })
            .collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use skiff_api::resources::by_name;

    #[test]
    fn what_a_job_runs_is_fixed_and_how_fast_is_not() {
        let jobs = by_name("jobs").expect("kind");
        let old = json!({"metadata": {"name": "j"}, "spec": {"completions": 3, "parallelism": 1,
            "completionMode": "Indexed", "template": {"spec": {"containers": [{"name": "a"}]}}}});
        let mut faster = old.clone();
        faster["spec"]["parallelism"] = json!(3);
        faster["spec"]["suspend"] = json!(true);
        assert!(JobStrategy.validate_update(jobs, &old, &faster).is_ok());
        let mut other = old.clone();
        other["spec"]["template"]["spec"]["containers"][0]["name"] = json!("b");
        other["spec"]["completions"] = json!(4);
        match JobStrategy.validate_update(jobs, &old, &other) {
            Err(ApiError::Invalid { causes, .. }) => {
                let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
                assert_eq!(fields, ["spec.template", "spec.completions"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
