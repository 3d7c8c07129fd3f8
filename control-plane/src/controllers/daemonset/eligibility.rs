//! Which nodes should run a DaemonSet's pod, judged as Kubernetes does on the pod as admission
//! will make it: with its RuntimeClass's node selector and tolerations merged in.

use std::sync::Arc;

use skiff_api::k8s_openapi::api::core::v1::{Node, Pod};
use skiff_api::k8s_openapi::api::node::v1::RuntimeClass;
use skiff_api::runtime_class::{merge_scheduling, SchedulingError};

use super::pod::pinned;

/// Why no node can run a DaemonSet's pods (reported as `FailedCreate`, as Kubernetes does).
#[derive(Debug, thiserror::Error)]
pub enum Unrunnable {
    /// The template names a RuntimeClass that does not exist.
    #[error("RuntimeClass {0:?} not found")]
    RuntimeClassNotFound(String),
    /// The class's node selector contradicts the template's.
    #[error("RuntimeClass {class:?} does not fit the pod template: {source}")]
    RuntimeClass {
        class: String,
        #[source]
        source: SchedulingError,
    },
    /// The template did not survive the JSON round trip of the merge.
    #[error("converting the pod template to merge RuntimeClass {class:?}: {source}")]
    Json {
        class: String,
        #[source]
        source: serde_json::Error,
    },
}

/// `pod` as RuntimeClass admission will make it: with the scheduling of the class it names
/// (looked up by `class_of`) merged in; a pod that names none is returned as it is.
pub fn admitted(
    pod: Pod,
    class_of: impl Fn(&str) -> Option<Arc<RuntimeClass>>,
) -> Result<Pod, Unrunnable> {
    let Some(name) = pod
        .spec
        .as_ref()
        .and_then(|s| s.runtime_class_name.clone())
        .filter(|c| !c.is_empty())
    else {
        return Ok(pod);
    };
    let class = class_of(&name).ok_or_else(|| Unrunnable::RuntimeClassNotFound(name.clone()))?;
    let json = |source| Unrunnable::Json {
        class: name.clone(),
        source,
    };
    let pod = serde_json::to_value(&pod).map_err(json)?;
    let merged = merge_scheduling(&pod, &class).map_err(|source| Unrunnable::RuntimeClass {
        class: name.clone(),
        source,
    })?;
    serde_json::from_value(merged).map_err(json)
}

/// Each node (by name) and whether `pod` (admitted, not yet pinned) may run there once pinned
/// to it: its node selector and the template's required node affinity match, and its
/// tolerations cover the node's taints. No pod, no node.
pub fn eligible(pod: Option<&Pod>, nodes: &[Arc<Node>]) -> Vec<(String, bool)> {
    nodes
        .iter()
        .map(|node| {
            let name = node.metadata.name.clone().unwrap_or_default();
            let admits =
                pod.is_some_and(|pod| crate::scheduler::admits(&pinned(pod.clone(), &name), node));
            (name, admits)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use skiff_api::k8s_openapi::api::apps::v1::DaemonSet;

    use crate::controllers::daemonset::pod::template_pod;

    const WASM_LABEL: &str = "runtime.skiff.dev/wasm";
    const WASM_TAINT: &str = "skiff.dev/wasm-only";

    fn node(name: &str, labels: serde_json::Value, taints: serde_json::Value) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": labels},
                "spec": {"taints": taints}
            }))
            .expect("node"),
        )
    }

    /// The daemon pod of a template naming `class` and selecting `selector`.
    fn daemon_pod(class: Option<&str>, selector: serde_json::Value) -> Pod {
        daemon_pod_with_affinity(class, selector, json!(null))
    }

    /// The daemon pod of a template naming `class`, selecting `selector`, with `affinity`.
    fn daemon_pod_with_affinity(
        class: Option<&str>,
        selector: serde_json::Value,
        affinity: serde_json::Value,
    ) -> Pod {
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "default", "uid": "u1"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}},
                    "spec": {"runtimeClassName": class, "nodeSelector": selector,
                        "affinity": affinity,
                        "containers": [{"name": "c", "image": "file:/a.wasm"}]}}}
        }))
        .expect("ds");
        template_pod(&ds, "r1")
    }

    /// `wasmtime` needs the Wasm label; `wasm-only` also tolerates the Wasm-only taint.
    fn class_of(name: &str) -> Option<Arc<RuntimeClass>> {
        let tolerations = match name {
            "wasmtime" => json!([]),
            "wasm-only" => json!([{"key": WASM_TAINT, "operator": "Exists"}]),
            _ => return None,
        };
        Some(Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name}, "handler": "wasm",
                "scheduling": {"nodeSelector": {WASM_LABEL: "true"}, "tolerations": tolerations}
            }))
            .expect("class"),
        ))
    }

    fn cluster() -> Vec<Arc<Node>> {
        vec![
            node("bare", json!({}), json!([])),
            node("wasm", json!({WASM_LABEL: "true"}), json!([])),
            node(
                "wasm-tainted",
                json!({WASM_LABEL: "true"}),
                json!([{"key": WASM_TAINT, "effect": "NoSchedule"}]),
            ),
            node(
                "zone-b",
                json!({"zone": "b", WASM_LABEL: "true"}),
                json!([]),
            ),
        ]
    }

    fn running(pod: Option<&Pod>, nodes: &[Arc<Node>]) -> Vec<String> {
        eligible(pod, nodes)
            .into_iter()
            .filter_map(|(node, admitted)| admitted.then_some(node))
            .collect()
    }

    #[test]
    fn nodes_run_the_pod_as_its_runtime_class_admits_it() {
        let nodes = cluster();
        let cases: [(&str, Option<&str>, serde_json::Value, &[&str]); 6] = [
            (
                "no class: every untainted node",
                None,
                json!(null),
                &["bare", "wasm", "zone-b"],
            ),
            (
                "an empty class name is no class",
                Some(""),
                json!(null),
                &["bare", "wasm", "zone-b"],
            ),
            (
                "a node without the runtime label gets no pod",
                Some("wasmtime"),
                json!(null),
                &["wasm", "zone-b"],
            ),
            (
                "the class's tolerations count",
                Some("wasm-only"),
                json!(null),
                &["wasm", "wasm-tainted", "zone-b"],
            ),
            (
                "the template's selector and the class's both apply",
                Some("wasmtime"),
                json!({"zone": "b"}),
                &["zone-b"],
            ),
            (
                "a template selecting the label itself agrees with the class",
                Some("wasmtime"),
                json!({WASM_LABEL: "true"}),
                &["wasm", "zone-b"],
            ),
        ];
        for (case, class, selector, want) in cases {
            let pod = admitted(daemon_pod(class, selector), class_of).expect(case);
            assert_eq!(running(Some(&pod), &nodes), want, "{case}");
        }
    }

    #[test]
    fn a_missing_or_conflicting_class_runs_nowhere() {
        let missing =
            admitted(daemon_pod(Some("gone"), json!(null)), class_of).expect_err("missing class");
        assert!(
            matches!(&missing, Unrunnable::RuntimeClassNotFound(c) if c == "gone"),
            "{missing:?}"
        );
        assert_eq!(missing.to_string(), r#"RuntimeClass "gone" not found"#);
        let conflict = admitted(
            daemon_pod(Some("wasmtime"), json!({WASM_LABEL: "false"})),
            class_of,
        )
        .expect_err("conflicting selector");
        assert!(
            conflict.to_string().contains(WASM_LABEL),
            "names the key: {conflict}"
        );
        assert!(running(None, &cluster()).is_empty());
        assert_eq!(eligible(None, &cluster()).len(), 4, "every node is listed");
    }

    #[test]
    fn the_templates_required_node_affinity_limits_the_nodes() {
        let nodes = cluster();
        let required = |terms: serde_json::Value| {
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": terms}}})
        };
        let cases: [(&str, Option<&str>, serde_json::Value, &[&str]); 6] = [
            (
                "a label expression",
                None,
                required(json!([{"matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["b"]}]}])),
                &["zone-b"],
            ),
            (
                "ORed terms",
                None,
                required(json!([
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["bare"]}]}])),
                &["bare", "zone-b"],
            ),
            (
                "a node name excluded by field",
                None,
                required(json!([{"matchFields": [
                    {"key": "metadata.name", "operator": "NotIn", "values": ["wasm"]}]}])),
                &["bare", "zone-b"],
            ),
            ("no terms match no node", None, required(json!([])), &[]),
            (
                "only preferred terms do not limit",
                None,
                json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 1, "preference": {"matchExpressions": [
                        {"key": "zone", "operator": "In", "values": ["b"]}]}}]}}),
                &["bare", "wasm", "zone-b"],
            ),
            (
                "the affinity and the class's selector both apply",
                Some("wasmtime"),
                required(json!([{"matchExpressions": [
                    {"key": "zone", "operator": "DoesNotExist"}]}])),
                &["wasm"],
            ),
        ];
        for (case, class, affinity, want) in cases {
            let pod = admitted(
                daemon_pod_with_affinity(class, json!(null), affinity),
                class_of,
            )
            .expect(case);
            assert_eq!(running(Some(&pod), &nodes), want, "{case}");
        }
    }
}
