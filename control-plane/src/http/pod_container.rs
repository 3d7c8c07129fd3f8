//! Which container of a pod a `log` or `exec` request means: the named one (app or init),
//! else the `kubectl.kubernetes.io/default-container` annotation's, else the only app
//! container.

use serde_json::Value;

/// The annotation naming the container kubectl picks when none is given.
const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

/// Why no container could be picked.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    #[error("container {container} is not valid for pod {pod}")]
    Unknown { pod: String, container: String },
    #[error("a container name must be specified for pod {pod}, choose one of: [{}]", .choices.join(" "))]
    Ambiguous { pod: String, choices: Vec<String> },
}

/// The container `requested` names, or the one the pod's annotation or single container gives.
pub fn pick(pod: &Value, pod_name: &str, requested: Option<&str>) -> Result<String, PickError> {
    let names_at = |pointer: &str| -> Vec<&str> {
        pod.pointer(pointer)
            .and_then(Value::as_array)
            .map(|cs| cs.iter().filter_map(|c| c.get("name")?.as_str()).collect())
            .unwrap_or_default()
    };
    let names = names_at("/spec/containers");
    let init = names_at("/spec/initContainers");
    let annotated = pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(DEFAULT_CONTAINER))
        .and_then(Value::as_str)
        .filter(|name| names.contains(name));
    match requested.or(annotated) {
        Some(name) if names.contains(&name) || init.contains(&name) => Ok(name.to_string()),
        Some(name) => Err(PickError::Unknown {
            pod: pod_name.to_string(),
            container: name.to_string(),
        }),
        None if names.len() == 1 => Ok(names[0].to_string()),
        None => Err(PickError::Ambiguous {
            pod: pod_name.to_string(),
            choices: names.iter().map(|n| n.to_string()).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn picks_the_named_the_annotated_or_the_only_container() {
        let one = json!({"spec": {"containers": [{"name": "app"}]}});
        assert_eq!(pick(&one, "p", None).ok().as_deref(), Some("app"));
        let two = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert!(matches!(
            pick(&two, "p", None),
            Err(PickError::Ambiguous { .. })
        ));
        assert_eq!(pick(&two, "p", Some("b")).ok().as_deref(), Some("b"));
        assert_eq!(
            pick(&two, "p", Some("c")),
            Err(PickError::Unknown {
                pod: "p".into(),
                container: "c".into()
            })
        );
        let init =
            json!({"spec": {"initContainers": [{"name": "i"}], "containers": [{"name": "a"}]}});
        assert_eq!(pick(&init, "p", None).ok().as_deref(), Some("a"));
        assert_eq!(pick(&init, "p", Some("i")).ok().as_deref(), Some("i"));
        let annotated = json!({
            "metadata": {"annotations": {DEFAULT_CONTAINER: "b"}},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
        });
        assert_eq!(pick(&annotated, "p", None).ok().as_deref(), Some("b"));
        assert_eq!(pick(&annotated, "p", Some("a")).ok().as_deref(), Some("a"));
    }
}
