//! StatefulSets: the status is a subresource, and of the spec only what Kubernetes lets change
//! may change (replicas, template, update strategy, history limit, claim retention,
//! minReadySeconds, ordinals); the selector, service, claim templates and pod management
//! policy are fixed at creation.

use serde_json::Value;
use skiff_api::resources::ResourceKind;
use skiff_api::validation::{FieldError, FieldErrorReason};

use super::Strategy;
use crate::error::ApiError;
use crate::registry::object;

/// Fields of a StatefulSet's spec that may be updated.
const MUTABLE: [&str; 7] = [
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

/// StatefulSets: a status subresource and only Kubernetes' mutable spec fields changeable.
pub struct StatefulSetStrategy;

/// The spec without its mutable fields.
fn fixed(obj: &Value) -> Value {
    let mut spec = obj["spec"].clone();
    if let Some(map) = spec.as_object_mut() {
        for field in MUTABLE {
            map.remove(field);
        }
    }
    spec
}

impl Strategy for StatefulSetStrategy {
    fn has_status_subresource(&self) -> bool {
        true
    }

    fn validate_update(
        &self,
        kind: &ResourceKind,
        old: &Value,
        new: &Value,
    ) -> Result<(), ApiError> {
        if fixed(old) == fixed(new) {
            return Ok(());
        }
        let quoted: Vec<String> = MUTABLE.iter().map(|f| format!("'{f}'")).collect();
        Err(ApiError::invalid(
            kind,
            object::name(new).unwrap_or_default(),
            vec![FieldError {
                field: "spec".into(),
                reason: FieldErrorReason::Forbidden,
                message: format!(
                    "updates to statefulset spec for fields other than {} are forbidden",
                    quoted.join(", ")
                ),
            }],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use skiff_api::resources::by_name;

    #[test]
    fn only_kubernetes_mutable_fields_change() {
        let sets = by_name("statefulsets").expect("kind");
        let old = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3, "serviceName": "db",
            "podManagementPolicy": "OrderedReady", "selector": {"matchLabels": {"app": "db"}},
            "template": {"spec": {"containers": [{"name": "a"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}]}});
        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(5);
        scaled["spec"]["template"]["spec"]["containers"][0]["name"] = json!("b");
        scaled["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        assert!(StatefulSetStrategy
            .validate_update(sets, &old, &scaled)
            .is_ok());
        for (field, value) in [
            ("serviceName", json!("other")),
            ("podManagementPolicy", json!("Parallel")),
            ("volumeClaimTemplates", json!([])),
            ("selector", json!({"matchLabels": {"app": "x"}})),
        ] {
            let mut changed = old.clone();
            changed["spec"][field] = value;
            match StatefulSetStrategy.validate_update(sets, &old, &changed) {
                Err(ApiError::Invalid { causes, .. }) => {
                    assert_eq!(causes[0].field, "spec", "{field}");
                    assert!(causes[0].message.contains("are forbidden"), "{field}");
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
