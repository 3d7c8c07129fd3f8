//! The pods a DaemonSet runs: its template pinned to one node by node affinity, with the
//! tolerations that keep it there.

use skiff_api::k8s_openapi::api::apps::v1::DaemonSet;
use skiff_api::k8s_openapi::api::core::v1::{
    NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, Toleration,
};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::REVISION_LABEL;
use crate::runtime::ownership::controller_ref;

/// The node a DaemonSet pod belongs to: where it is bound, or where its affinity pins it.
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(node) = spec.node_name.clone().filter(|n| !n.is_empty()) {
        return Some(node);
    }
    spec.affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|f| f.key == "metadata.name" && f.operator == "In")
        .and_then(|f| f.values.as_ref()?.first().cloned())
}

/// Tolerations every DaemonSet pod gets, so it stays on unreachable, not-ready and cordoned nodes.
fn default_tolerations() -> Vec<Toleration> {
    [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]
    .into_iter()
    .map(|(key, effect)| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    })
    .collect()
}

/// The pod the DaemonSet runs on `node`.
pub fn pod_for(ds: &DaemonSet, node: &str, revision: &str) -> Pod {
    pinned(template_pod(ds, revision), node)
}

/// The DaemonSet's pod of `revision` before it is pinned to a node: the template with the
/// revision label, the owner reference and the default tolerations.
pub fn template_pod(ds: &DaemonSet, revision: &str) -> Pod {
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let template_meta = template.metadata.unwrap_or_default();
    let mut labels = template_meta.labels.unwrap_or_default();
    labels.insert(REVISION_LABEL.into(), revision.into());
    let mut spec = template.spec.unwrap_or_default();
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for default in default_tolerations() {
        if !tolerations.contains(&default) {
            tolerations.push(default);
        }
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", ds.metadata.name.as_deref().unwrap_or("ds"))),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: template_meta.annotations,
            owner_references: Some(vec![controller_ref(ds)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// `pod` pinned to `node`: its required node affinity becomes `metadata.name In [node]`.
pub fn pinned(mut pod: Pod, node: &str) -> Pod {
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.affinity
        .get_or_insert_with(Default::default)
        .node_affinity
        .get_or_insert_with(Default::default)
        .required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.to_string()]),
            }]),
            match_expressions: None,
        }],
    });
    pod
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_are_pinned_to_their_node() {
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "default", "uid": "u1"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}]}}}
        }))
        .expect("ds");
        let pod = pod_for(&ds, "n7", "r1");
        assert_eq!(target_node(&pod).as_deref(), Some("n7"));
        assert_eq!(
            serde_json::to_value(&pod).expect("json")["spec"]["affinity"],
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]}}})
        );
        assert_eq!(
            pod.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(REVISION_LABEL))
                .map(String::as_str),
            Some("r1")
        );
        assert_eq!(
            pod.spec
                .as_ref()
                .and_then(|s| s.tolerations.as_ref())
                .map(Vec::len),
            Some(3)
        );
    }
}
