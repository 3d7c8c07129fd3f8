//! The RuntimeClasses every cluster has, how nodes advertise the runtimes they have, and how a
//! class's scheduling constraints merge into a pod (as Kubernetes' RuntimeClass admission does).

use k8s_openapi::api::node::v1::RuntimeClass;
use serde_json::{Map, Value};

/// The RuntimeClass pods running Wasm images get by default.
pub const WASM_CLASS: &str = "wasmtime";
/// The handler (runtime name on the node) of [`WASM_CLASS`].
pub const WASM_HANDLER: &str = "wasm";
/// The RuntimeClass of Linux container images.
pub const LINUX_CLASS: &str = "linux";
/// The handler (runtime name on the node) of [`LINUX_CLASS`].
pub const LINUX_HANDLER: &str = "linux";

/// The prefix of the labels by which nodes advertise their runtimes.
pub const NODE_LABEL_PREFIX: &str = "runtime.skiff.dev/";

/// The label (`runtime.skiff.dev/<handler>=true`) of a node that has the runtime `handler`.
pub fn node_label(handler: &str) -> String {
    format!("{NODE_LABEL_PREFIX}{handler}")
}

/// Why a RuntimeClass's scheduling cannot be merged into a pod.
#[derive(Debug, thiserror::Error)]
pub enum SchedulingError {
    /// The pod and the class select different values for one node label.
    #[error("conflict: runtimeClass.scheduling.nodeSelector[{key}] = {class}; pod.spec.nodeSelector[{key}] = {pod}")]
    SelectorConflict {
        key: String,
        class: String,
        pod: String,
    },
    /// A toleration of the class could not be encoded as JSON.
    #[error("encoding a toleration of the RuntimeClass: {0}")]
    Toleration(#[from] serde_json::Error),
}

/// The pod with the class's node selector merged into its own (a key both set to different
/// values is refused) and the class's tolerations it lacks appended.
pub fn merge_scheduling(pod: &Value, class: &RuntimeClass) -> Result<Value, SchedulingError> {
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
                    return Err(SchedulingError::SelectorConflict {
                        key: key.clone(),
                        class: value.clone(),
                        pod: own.to_string(),
                    })
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
            let toleration = serde_json::to_value(toleration)?;
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
        let err = merge_scheduling(&pod, &wasm)
            .expect_err("conflict")
            .to_string();
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
