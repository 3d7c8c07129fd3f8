//! The pods a DaemonSet runs: its template pinned to one node by node affinity (added to the
//! template's own required terms), with the tolerations that keep it there.

use skiff_api::k8s_openapi::api::apps::v1::DaemonSet;
use skiff_api::k8s_openapi::api::core::v1::{
    NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, Toleration,
};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_api::ownership::controller_ref;

use super::REVISION_LABEL;

/// The node a DaemonSet pod belongs to: where it is bound, or where its affinity pins it (the
/// last `metadata.name In` field of the first required term, where [`pinned`] puts it).
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
        .first()?
        .match_fields
        .iter()
        .flatten()
        .rfind(|f| f.key == NODE_NAME_FIELD && f.operator == "In")
        .and_then(|f| f.values.as_ref()?.first().cloned())
}

/// The node field a daemon pod's affinity pins.
const NODE_NAME_FIELD: &str = "metadata.name";

/// Tolerations every DaemonSet pod gets, as Kubernetes adds them, so it stays on unreachable,
/// not-ready, cordoned and pressured nodes.
fn default_tolerations() -> Vec<Toleration> {
    [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
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

/// `pod` pinned to `node`, as Kubernetes pins daemon pods: every term of its required node
/// affinity also requires `metadata.name In [node]` (the terms stay ORed, each ANDed with the
/// pin); a pod without required terms gets a single term with the pin.
pub fn pinned(mut pod: Pod, node: &str) -> Pod {
    let pin = NodeSelectorRequirement {
        key: NODE_NAME_FIELD.into(),
        operator: "In".into(),
        values: Some(vec![node.to_string()]),
    };
    let spec = pod.spec.get_or_insert_with(Default::default);
    let required = spec
        .affinity
        .get_or_insert_with(Default::default)
        .node_affinity
        .get_or_insert_with(Default::default)
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(|| NodeSelector {
            node_selector_terms: vec![NodeSelectorTerm::default()],
        });
    for term in &mut required.node_selector_terms {
        term.match_fields
            .get_or_insert_with(Vec::new)
            .push(pin.clone());
    }
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
            Some(6)
        );
    }

    fn daemonset(affinity: serde_json::Value) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "default", "uid": "u1"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}},
                    "spec": {"affinity": affinity,
                        "containers": [{"name": "c", "image": "i"}]}}}
        }))
        .expect("ds")
    }

    #[test]
    fn pinning_keeps_the_templates_required_terms_and_ands_each_with_the_node() {
        let pin = json!({"key": "metadata.name", "operator": "In", "values": ["n7"]});
        let zone = |z: &str| json!({"key": "zone", "operator": "In", "values": [z]});
        let cases = [
            (
                "no affinity: one term with the pin",
                json!(null),
                json!([{"matchFields": [pin]}]),
            ),
            (
                "only preferred terms: one term with the pin",
                json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 1, "preference": {"matchExpressions": [zone("a")]}}]}}),
                json!([{"matchFields": [pin]}]),
            ),
            (
                "one term keeps its expressions",
                json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [zone("a")]}]}}}),
                json!([{"matchExpressions": [zone("a")], "matchFields": [pin]}]),
            ),
            (
                "ORed terms each get the pin",
                json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [zone("a")]},
                        {"matchExpressions": [zone("b")]}]}}}),
                json!([
                    {"matchExpressions": [zone("a")], "matchFields": [pin]},
                    {"matchExpressions": [zone("b")], "matchFields": [pin]}]),
            ),
            (
                "a term's own fields stay, the pin comes last",
                json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [
                        {"key": "metadata.name", "operator": "NotIn", "values": ["n9"]}]}]}}}),
                json!([{"matchFields": [
                    {"key": "metadata.name", "operator": "NotIn", "values": ["n9"]}, pin]}]),
            ),
            (
                "a term naming nodes keeps them, and the pin still names the node",
                json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [
                        {"key": "metadata.name", "operator": "In", "values": ["n8", "n7"]}]}]}}}),
                json!([{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": ["n8", "n7"]}, pin]}]),
            ),
        ];
        for (case, affinity, want) in cases {
            let pod = pod_for(&daemonset(affinity.clone()), "n7", "r1");
            let got = serde_json::to_value(&pod).expect("json")["spec"]["affinity"].clone();
            assert_eq!(
                got["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                    ["nodeSelectorTerms"],
                want,
                "{case}"
            );
            assert_eq!(
                got["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"],
                affinity["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"],
                "{case}: preferred terms are kept"
            );
            assert_eq!(target_node(&pod).as_deref(), Some("n7"), "{case}");
        }
    }
}
