//! RuntimeClass admission (Kubernetes' `RuntimeClass` admission plugin): a new pod's
//! `spec.runtimeClassName` must name a RuntimeClass, and the pod takes on the class's
//! scheduling constraints, so it is only ever placed on nodes that have the runtime.

use serde_json::{Map, Value};
use skiff_api::k8s_openapi::api::node::v1::RuntimeClass;
use skiff_api::resources::{self, ResourceKind};

use super::{object, strategy, Registry};
use crate::error::ApiError;

impl Registry {
    /// Checks the RuntimeClass a new object names (pods: `spec.runtimeClassName`) and merges
    /// its scheduling into the object; objects that name none pass.
    pub(super) async fn admit_runtime_class(
        &self,
        kind: &ResourceKind,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        let Some(class_name) = strategy::of(kind).runtime_class(obj) else {
            return Ok(());
        };
        let forbidden = |message: String| ApiError::Forbidden {
            resource: crate::error::qualified(kind),
            name: object::name(obj).unwrap_or_default().to_string(),
            message,
        };
        let class = match self
            .get(resources::of::<RuntimeClass>(), None, &class_name)
            .await
        {
            Ok(class) => class,
            Err(ApiError::NotFound { .. }) => {
                return Err(forbidden(format!(
                    "pod rejected: RuntimeClass {class_name:?} not found"
                )))
            }
            Err(err) => return Err(err),
        };
        let class: RuntimeClass = serde_json::from_value(class).map_err(|e| {
            ApiError::Internal(format!(
                "stored RuntimeClass {class_name:?} is corrupt: {e}"
            ))
        })?;
        let merged = merge_scheduling(obj, &class).map_err(forbidden)?;
        *obj = merged;
        Ok(())
    }
}

/// The pod with the class's node selector merged into its own (a key both set to different
/// values is refused) and the class's tolerations it lacks appended.
fn merge_scheduling(pod: &Value, class: &RuntimeClass) -> Result<Value, String> {
    let mut pod = pod.clone();
    let Some(scheduling) = class.scheduling.as_ref() else {
        return Ok(pod);
    };
    if !pod["spec"].is_object() {
        pod["spec"] = Value::Object(Map::new());
    }
    let spec = &mut pod["spec"];
    if let Some(selector) = scheduling.node_selector.as_ref().filter(|s| !s.is_empty()) {
        if !spec["nodeSelector"].is_object() {
            spec["nodeSelector"] = Value::Object(Map::new());
        }
        let pod_selector = spec["nodeSelector"]
            .as_object_mut()
            .expect("object ensured above");
        for (key, value) in selector {
            match pod_selector.get(key).and_then(Value::as_str) {
                Some(own) if own != value => {
                    return Err(format!(
                        "conflict: runtimeClass.scheduling.nodeSelector[{key}] = {value}; pod.spec.nodeSelector[{key}] = {own}"
                    ))
                }
                _ => {
                    pod_selector.insert(key.clone(), Value::String(value.clone()));
                }
            }
        }
    }
    if let Some(tolerations) = scheduling.tolerations.as_ref().filter(|t| !t.is_empty()) {
        if !spec["tolerations"].is_array() {
            spec["tolerations"] = Value::Array(Vec::new());
        }
        let pod_tolerations = spec["tolerations"]
            .as_array_mut()
            .expect("array ensured above");
        for toleration in tolerations {
            let toleration = serde_json::to_value(toleration).map_err(|e| e.to_string())?;
            if !pod_tolerations.contains(&toleration) {
                pod_tolerations.push(toleration);
            }
        }
    }
    Ok(pod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn class(scheduling: Value) -> RuntimeClass {
        serde_json::from_value(json!({
            "metadata": {"name": "wasmtime"}, "handler": "wasm", "scheduling": scheduling
        }))
        .expect("runtime class")
    }

    #[test]
    fn node_selectors_merge_and_tolerations_append_once() {
        let wasm = class(json!({
            "nodeSelector": {"runtime.skiff.dev/wasm": "true"},
            "tolerations": [{"key": "wasm", "operator": "Exists"}]
        }));
        let pod = json!({"spec": {"nodeSelector": {"zone": "a"},
            "tolerations": [{"key": "wasm", "operator": "Exists"}]}});
        let merged = merge_scheduling(&pod, &wasm).expect("merged");
        assert_eq!(
            merged["spec"]["nodeSelector"],
            json!({"zone": "a", "runtime.skiff.dev/wasm": "true"})
        );
        assert_eq!(
            merged["spec"]["tolerations"],
            json!([{"key": "wasm", "operator": "Exists"}])
        );
        let bare = merge_scheduling(&json!({"spec": {}}), &wasm).expect("merged");
        assert_eq!(
            bare["spec"]["tolerations"],
            json!([{"key": "wasm", "operator": "Exists"}])
        );
    }

    #[test]
    fn a_conflicting_selector_names_the_key() {
        let wasm = class(json!({"nodeSelector": {"runtime.skiff.dev/wasm": "true"}}));
        let pod = json!({"spec": {"nodeSelector": {"runtime.skiff.dev/wasm": "false"}}});
        let err = merge_scheduling(&pod, &wasm).expect_err("conflict");
        assert!(
            err.contains("nodeSelector[runtime.skiff.dev/wasm]"),
            "{err}"
        );
        let same = json!({"spec": {"nodeSelector": {"runtime.skiff.dev/wasm": "true"}}});
        assert!(merge_scheduling(&same, &wasm).is_ok());
    }

    #[test]
    fn a_class_without_scheduling_changes_nothing() {
        let pod = json!({"spec": {"containers": []}});
        let plain: RuntimeClass =
            serde_json::from_value(json!({"metadata": {"name": "c"}, "handler": "h"}))
                .expect("class");
        assert_eq!(merge_scheduling(&pod, &plain).expect("merged"), pod);
    }
}
