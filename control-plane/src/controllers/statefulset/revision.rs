//! A StatefulSet's revisions as Kubernetes keeps them: one ControllerRevision per template,
//! named `NAME-HASH`, holding the template (as the patch Kubernetes stores), numbered in order.
//! Pods carry the revision's name in `controller-revision-hash`, and the set's status names its
//! current and update revisions, so a pod below the partition is made again from the template
//! it had, even by a new leader.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;
use skiff_api::hash::pod_template_hash;
use skiff_api::k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use skiff_api::k8s_openapi::api::core::v1::PodTemplateSpec;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_api::k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use skiff_api::ownership::controller_ref;

/// The label with the template hash of a revision.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

fn template_of_set(sts: &StatefulSet) -> PodTemplateSpec {
    sts.spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default()
}

/// The name of the revision of the set's current template.
pub fn update_revision_name(sts: &StatefulSet) -> String {
    format!(
        "{}-{}",
        sts.metadata.name.as_deref().unwrap_or_default(),
        pod_template_hash(&template_of_set(sts))
    )
}

/// The revision of the set's current template, numbered `number`.
pub fn new_revision(sts: &StatefulSet, number: i64) -> ControllerRevision {
    let template = template_of_set(sts);
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(HASH_LABEL.into(), pod_template_hash(&template));
    let mut patch = serde_json::to_value(&template).unwrap_or_default();
    if let Some(map) = patch.as_object_mut() {
        map.insert("$patch".into(), json!("replace"));
    }
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(update_revision_name(sts)),
            namespace: sts.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![controller_ref(sts)]),
            ..Default::default()
        },
        data: Some(RawExtension(json!({"spec": {"template": patch}}))),
        revision: number,
    }
}

/// The pod template a revision holds.
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision.data.as_ref()?.0.pointer("/spec/template")?.clone();
    if let Some(map) = template.as_object_mut() {
        map.remove("$patch");
    }
    serde_json::from_value::<PodTemplateSpec>(template).ok()
}

/// The next revision number after `revisions`.
pub fn next_number(revisions: &[Arc<ControllerRevision>]) -> i64 {
    revisions.iter().map(|r| r.revision).max().unwrap_or(0) + 1
}

/// Revisions beyond the `limit` newest unused ones, oldest first: those named in `live`
/// (the current and update revisions and any a pod was made from) always stay.
pub fn surplus(
    revisions: &[Arc<ControllerRevision>],
    live: &HashSet<String>,
    limit: usize,
) -> Vec<Arc<ControllerRevision>> {
    let mut unused: Vec<Arc<ControllerRevision>> = revisions
        .iter()
        .filter(|r| !live.contains(r.metadata.name.as_deref().unwrap_or_default()))
        .cloned()
        .collect();
    unused.sort_by_key(|r| r.revision);
    let excess = unused.len().saturating_sub(limit);
    unused.truncate(excess);
    unused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts(image: &str) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "prod", "uid": "u1"},
            "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "c", "image": image}]}}}
        }))
        .expect("sts")
    }

    #[test]
    fn a_revision_holds_its_template() {
        let set = sts("file:/a.wasm");
        let revision = new_revision(&set, 3);
        assert_eq!(revision.metadata.name, Some(update_revision_name(&set)));
        assert!(update_revision_name(&set).starts_with("db-"));
        assert_ne!(
            update_revision_name(&set),
            update_revision_name(&sts("file:/b.wasm"))
        );
        assert_eq!(revision.revision, 3);
        let data = &revision.data.as_ref().expect("data").0;
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        let back = template_of(&revision).expect("template");
        assert_eq!(back, template_of_set(&set));
    }

    #[test]
    fn history_keeps_live_and_the_newest_unused() {
        let numbered = |n: i64| {
            let mut r = new_revision(&sts(&format!("file:/{n}.wasm")), n);
            r.metadata.name = Some(format!("r{n}"));
            Arc::new(r)
        };
        let all: Vec<_> = (1..=5).map(numbered).collect();
        let live: HashSet<String> = ["r1".to_string(), "r5".into()].into();
        let names = |limit| -> Vec<String> {
            surplus(&all, &live, limit)
                .iter()
                .map(|r| r.metadata.name.clone().unwrap_or_default())
                .collect()
        };
        assert_eq!(names(1), ["r2", "r3"]);
        assert_eq!(names(0), ["r2", "r3", "r4"]);
        assert!(names(3).is_empty());
    }
}
