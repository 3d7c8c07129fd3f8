//! The `/scale` subresource (autoscaling/v1 `Scale`) of Deployments, ReplicaSets and
//! StatefulSets, as `kubectl scale` and autoscalers use it: it reads and writes only
//! `spec.replicas`.

use serde_json::{json, Value};
use skiff_api::resources::ResourceKind;
use skiff_api::validation::{FieldError, FieldErrorReason};

use super::{object, Registry, Subresource};
use crate::error::ApiError;

/// How often a Scale without a `resourceVersion` is tried again after losing a race.
const UNCONDITIONAL_TRIES: u32 = 5;

/// Whether `kind` serves `/scale`.
pub fn has_scale_subresource(kind: &ResourceKind) -> bool {
    matches!(kind.kind, "Deployment" | "ReplicaSet" | "StatefulSet")
}

/// The `Scale` of a workload object.
fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": { "replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1) },
        "status": {
            "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector,
        },
    })
}

impl Registry {
    /// The object's `Scale`.
    pub async fn get_scale(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        Ok(scale_of(&self.get(kind, namespace, name).await?))
    }

    /// Sets `spec.replicas` from `scale`; a `resourceVersion` in the Scale must be the object's
    /// (else 409, as any stale update), and a Scale without one always applies. Returns the
    /// new `Scale`.
    pub async fn update_scale(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
        scale: &Value,
    ) -> Result<Value, ApiError> {
        let replicas = scale["spec"]["replicas"]
            .as_i64()
            .filter(|r| (0..=i64::from(i32::MAX)).contains(r))
            .ok_or_else(|| {
                ApiError::invalid(
                    kind,
                    name,
                    vec![FieldError {
                        field: "spec.replicas".into(),
                        reason: FieldErrorReason::Invalid,
                        message: format!(
                            "{}: must be a non-negative integer",
                            scale["spec"]["replicas"]
                        ),
                    }],
                )
            })?;
        let version = scale["metadata"]["resourceVersion"]
            .as_str()
            .filter(|v| !v.is_empty());
        let mut tries = 0;
        let through_scale = self.through("scale");
        let updated = loop {
            let mut obj = self.get(kind, namespace, name).await?;
            // The update's optimistic concurrency then compares the Scale's version, if it has one.
            if let Some(version) = version {
                object::set_meta(&mut obj, "resourceVersion", version);
            }
            obj["spec"]["replicas"] = json!(replicas);
            match through_scale
                .update(kind, namespace, name, obj, Subresource::Main)
                .await
            {
                // A Scale without a version is unconditional: a write that came between the
                // read and the update (a controller's status) is read again, as Kubernetes does.
                Err(ApiError::Conflict { .. })
                    if version.is_none() && tries < UNCONDITIONAL_TRIES =>
                {
                    tries += 1;
                }
                result => break result?,
            }
        };
        Ok(scale_of(&updated))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_names_replicas_and_the_selector() {
        let deployment = json!({"metadata": {"name": "web", "namespace": "default",
            "resourceVersion": "7"}, "spec": {"replicas": 3, "selector": {"matchLabels":
            {"app": "web"}}}, "status": {"replicas": 2}});
        let scale = scale_of(&deployment);
        assert_eq!(scale["spec"]["replicas"], 3);
        assert_eq!(
            scale["status"],
            json!({"replicas": 2, "selector": "app=web"})
        );
        assert_eq!(scale["metadata"]["resourceVersion"], "7");
    }
}
