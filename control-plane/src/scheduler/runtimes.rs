//! Where a pod that names no RuntimeClass can run, judged from what is known of its images
//! before any pull: a `file:` image is a Wasm file, so only nodes with the Wasm runtime take
//! the pod; a registry image may turn out Wasm or Linux once pulled, so such pods prefer nodes
//! that have every runtime. A pod that names a class is placed by the class's node selector.
//! Nodes that advertise no runtime (no `runtime.skiff.dev/*` label) are taken to run any image.

use skiff_api::image::file_image_path;
use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::runtime_class::{node_label, LINUX_HANDLER, NODE_LABEL_PREFIX, WASM_HANDLER};

use super::snapshot::NodeInfo;

/// The reason a node that lacks the runtime of the pod's images is filtered out.
pub const NO_RUNTIME: &str = "node(s) had no runtime for the pod's images";

/// Every runtime a registry image may need.
const EVERY_RUNTIME: [&str; 2] = [WASM_HANDLER, LINUX_HANDLER];

/// What a class-less pod's images need of a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodRuntimes {
    /// A `file:` image: the node must have the Wasm runtime.
    needs_wasm: bool,
    /// A registry image: nodes with every runtime are preferred.
    prefers_every: bool,
}

impl PodRuntimes {
    /// The needs of `pod`'s containers and init containers; none if it names a RuntimeClass.
    pub fn of(pod: &Pod) -> Self {
        let Some(spec) = pod.spec.as_ref() else {
            return PodRuntimes::default();
        };
        if spec
            .runtime_class_name
            .as_deref()
            .is_some_and(|c| !c.is_empty())
        {
            return PodRuntimes::default();
        }
        let images = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .filter_map(|c| c.image.as_deref());
        let mut needs = PodRuntimes::default();
        for image in images {
            if file_image_path(image).is_some() {
                needs.needs_wasm = true;
            } else {
                needs.prefers_every = true;
            }
        }
        needs
    }

    /// Err([`NO_RUNTIME`]) if the node lacks the runtime the pod's `file:` images need.
    pub fn filter(&self, node: &NodeInfo) -> Result<(), &'static str> {
        if self.needs_wasm && !has_runtime(node, WASM_HANDLER) {
            return Err(NO_RUNTIME);
        }
        Ok(())
    }

    /// 1 for a node that has every runtime when the pod has registry images, else 0.
    pub fn score(&self, node: &NodeInfo) -> i64 {
        let every = EVERY_RUNTIME.iter().all(|h| has_runtime(node, h));
        i64::from(self.prefers_every && every)
    }
}

/// Whether the node has runtime `handler`; one that advertises no runtime is taken to have all.
fn has_runtime(node: &NodeInfo, handler: &str) -> bool {
    let advertises_none = !node.labels.keys().any(|k| k.starts_with(NODE_LABEL_PREFIX));
    advertises_none
        || node
            .labels
            .get(&node_label(handler))
            .is_some_and(|v| v == "true")
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use skiff_api::k8s_openapi::api::core::v1::{Node, Pod};

    use crate::scheduler::{place, ClusterSnapshot, NodeInfo, Resources};

    const GI: u64 = 1024 * 1024 * 1024;
    const REGISTRY: &str = "registry.example/app:1";
    const FILE: &str = "file:/guests/app.wasm";

    /// A ready node with these runtimes (`runtime.skiff.dev/<name>=true`), running `pods`
    /// request-less pods.
    fn node(name: &str, runtimes: &[&str], pods: u64) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            labels: runtimes
                .iter()
                .map(|r| (format!("runtime.skiff.dev/{r}"), "true".to_string()))
                .collect(),
            allocatable: Resources {
                cpu_millis: 4000,
                memory_bytes: 8 * GI,
                pods: 110,
            },
            requested: Resources {
                cpu_millis: pods * 500,
                memory_bytes: pods * GI,
                pods,
            },
            ready: true,
            ..Default::default()
        }
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).expect("pod")
    }

    fn images(app: &str, init: Option<&str>) -> serde_json::Value {
        let mut spec = json!({"containers": [{"name": "c", "image": app}]});
        if let Some(init) = init {
            spec["initContainers"] = json!([{"name": "i", "image": init}]);
        }
        spec
    }

    #[test]
    fn class_less_pods_go_where_their_images_can_run() {
        let busy_both = || node("both", &["wasm", "linux"], 3);
        let cases = [
            (
                "a registry image prefers a node with every runtime over a less loaded one",
                vec![node("wasm-only", &["wasm"], 0), busy_both()],
                images(REGISTRY, None),
                Ok("both"),
            ),
            (
                "a registry image still runs on a wasm-only cluster",
                vec![node("a", &["wasm"], 1), node("b", &["wasm"], 0)],
                images(REGISTRY, None),
                Ok("b"),
            ),
            (
                "a file: image needs the Wasm runtime",
                vec![
                    node("linux-only", &["linux"], 0),
                    node("wasm-only", &["wasm"], 3),
                ],
                images(FILE, None),
                Ok("wasm-only"),
            ),
            (
                "a file: init container needs it too",
                vec![node("linux-only", &["linux"], 0), busy_both()],
                images(REGISTRY, Some(FILE)),
                Ok("both"),
            ),
            (
                "no node with the Wasm runtime",
                vec![
                    node("l1", &["linux"], 0),
                    node("l2", &["linux"], 0),
                    node("h", &["hollow"], 0),
                ],
                images(FILE, None),
                Err("0/3 nodes are available: 3 node(s) had no runtime for the pod's images."),
            ),
            (
                "a node that advertises no runtime takes any image",
                vec![node("plain", &[], 0)],
                images(FILE, None),
                Ok("plain"),
            ),
        ];
        for (name, nodes, spec, expected) in cases {
            let got = place(&ClusterSnapshot::from_nodes(nodes), &pod(spec))
                .map(|p| p.node)
                .map_err(|u| u.to_string());
            let expected = expected.map(str::to_string).map_err(str::to_string);
            assert_eq!(got, expected, "case {name}");
        }
    }

    #[test]
    fn a_pod_naming_a_class_is_left_to_the_class_selector() {
        let mut spec = images(FILE, None);
        spec["runtimeClassName"] = json!("custom");
        let nodes = [node("linux-only", &["linux"], 0)];
        let placed = place(&ClusterSnapshot::from_nodes(nodes), &pod(spec)).expect("placed");
        assert_eq!(placed.node, "linux-only");
    }

    /// Placement reads runtime labels, so a change of them counts as a node change (which
    /// puts the unschedulable pods back in the queue).
    #[test]
    fn a_node_that_gains_the_runtime_takes_the_waiting_pod() {
        let api_node = |labels: serde_json::Value| -> Node {
            serde_json::from_value(json!({
                "metadata": {"name": "n", "labels": labels},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                    "conditions": [{"type": "Ready", "status": "True"}]}
            }))
            .expect("node")
        };
        let waiting = pod(images(FILE, None));
        let mut snapshot = ClusterSnapshot::default();
        assert!(snapshot.upsert_node(&api_node(json!({"runtime.skiff.dev/linux": "true"}))));
        assert!(place(&snapshot, &waiting).is_err());
        let both = json!({"runtime.skiff.dev/linux": "true", "runtime.skiff.dev/wasm": "true"});
        assert!(
            snapshot.upsert_node(&api_node(both.clone())),
            "a label change is a change placement reads"
        );
        assert_eq!(place(&snapshot, &waiting).expect("placed").node, "n");
        assert!(!snapshot.upsert_node(&api_node(both)), "nothing changed");
    }
}
