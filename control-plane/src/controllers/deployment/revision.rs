//! Rollout history (no I/O): which ReplicaSet runs the Deployment's template, the revision
//! numbers and change-causes it carries, and which old ReplicaSets `revisionHistoryLimit` drops.

use std::collections::BTreeMap;
use std::sync::Arc;

use skiff_api::k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use skiff_api::k8s_openapi::api::core::v1::PodTemplateSpec;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::TEMPLATE_HASH_LABEL;

/// The rollout revision of a Deployment or ReplicaSet (as `kubectl rollout history` shows).
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// Why a revision was made; copied from the Deployment to its new ReplicaSet.
pub const CHANGE_CAUSE_ANNOTATION: &str = "kubernetes.io/change-cause";
/// `revisionHistoryLimit` when unset.
const DEFAULT_HISTORY_LIMIT: i32 = 10;

/// The revision recorded on `meta` (0 when none).
pub fn revision(meta: &ObjectMeta) -> i64 {
    annotation(meta, REVISION_ANNOTATION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// `template` without the `pod-template-hash` label the controller adds to a ReplicaSet's copy.
pub fn without_hash_label(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut template = template.clone();
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(TEMPLATE_HASH_LABEL);
        if labels.is_empty() {
            template.metadata.as_mut().expect("metadata").labels = None;
        }
    }
    template
}

/// Whether `rs` runs `template` (the Deployment's): it carries the template's hash, or its
/// template equals it apart from the hash label (as Kubernetes matches a rolled-back template).
pub fn runs_template(rs: &ReplicaSet, template: &PodTemplateSpec, hash: &str) -> bool {
    let labelled = rs
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(TEMPLATE_HASH_LABEL))
        .is_some_and(|h| h == hash);
    labelled
        || rs
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| without_hash_label(t) == *template)
}

/// The revision the new ReplicaSet should carry: its own if it is already the newest,
/// otherwise one past the newest old one (a reused old ReplicaSet becomes a new revision).
pub fn new_revision(new_rs: Option<&ReplicaSet>, old: &[Arc<ReplicaSet>]) -> i64 {
    let newest_old = old
        .iter()
        .map(|rs| revision(&rs.metadata))
        .max()
        .unwrap_or(0);
    let own = new_rs.map(|rs| revision(&rs.metadata)).unwrap_or(0);
    if own > newest_old {
        own
    } else {
        newest_old + 1
    }
}

/// The annotations the new ReplicaSet should carry for `revision`, or `None` when it already
/// does: the revision and the Deployment's change-cause (if any).
pub fn new_rs_annotations(
    deployment: &Deployment,
    current: &ObjectMeta,
    revision: i64,
) -> Option<BTreeMap<String, String>> {
    let mut annotations = current.annotations.clone().unwrap_or_default();
    annotations.insert(REVISION_ANNOTATION.into(), revision.to_string());
    match annotation(&deployment.metadata, CHANGE_CAUSE_ANNOTATION) {
        Some(cause) => annotations.insert(CHANGE_CAUSE_ANNOTATION.into(), cause.to_string()),
        None => annotations.remove(CHANGE_CAUSE_ANNOTATION),
    };
    (current.annotations.as_ref() != Some(&annotations)).then_some(annotations)
}

/// Old ReplicaSets to delete: scaled to zero with no pods left, beyond the newest
/// `revisionHistoryLimit` of them by revision.
pub fn history_to_delete(deployment: &Deployment, old: &[Arc<ReplicaSet>]) -> Vec<Arc<ReplicaSet>> {
    let limit = deployment
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(DEFAULT_HISTORY_LIMIT)
        .max(0) as usize;
    let mut idle: Vec<_> = old
        .iter()
        .filter(|rs| {
            rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) == 0
                && rs.status.as_ref().map(|s| s.replicas).unwrap_or(0) == 0
        })
        .cloned()
        .collect();
    idle.sort_by_key(|rs| revision(&rs.metadata));
    idle.truncate(idle.len().saturating_sub(limit));
    idle
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rs(name: &str, revision: i64, replicas: i32, image: &str) -> Arc<ReplicaSet> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {TEMPLATE_HASH_LABEL: name},
                    "annotations": {REVISION_ANNOTATION: revision.to_string()}},
                "spec": {"replicas": replicas, "selector": {}, "template": {
                    "metadata": {"labels": {"app": "web", TEMPLATE_HASH_LABEL: name}},
                    "spec": {"containers": [{"name": "c", "image": image}]}}},
                "status": {"replicas": replicas}
            }))
            .expect("rs"),
        )
    }

    fn deployment(limit: Option<i32>, cause: Option<&str>) -> Deployment {
        let mut d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"selector": {}, "template": {}, "revisionHistoryLimit": limit}
        }))
        .expect("deployment");
        if let Some(cause) = cause {
            d.metadata.annotations = Some(BTreeMap::from([(
                CHANGE_CAUSE_ANNOTATION.into(),
                cause.into(),
            )]));
        }
        d
    }

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": image}]}
        }))
        .expect("template")
    }

    #[test]
    fn revision_numbers() {
        let old = [rs("a", 1, 0, "v1"), rs("b", 3, 0, "v2")];
        type Case<'a> = (&'a str, Option<Arc<ReplicaSet>>, &'a [Arc<ReplicaSet>], i64);
        let cases: [Case; 5] = [
            ("first rollout", None, &[], 1),
            ("a new template after two", None, &old, 4),
            (
                "the newest keeps its number",
                Some(rs("c", 4, 1, "v3")),
                &old,
                4,
            ),
            (
                "a reused old one moves to the top",
                Some(rs("a", 1, 0, "v1")),
                &old[1..],
                4,
            ),
            ("an unannotated new one", Some(rs("c", 0, 1, "v3")), &[], 1),
        ];
        for (case, new_rs, old, want) in cases {
            assert_eq!(new_revision(new_rs.as_deref(), old), want, "{case}");
        }
    }

    #[test]
    fn a_template_equal_to_an_old_replicasets_is_found_without_its_hash() {
        let old = rs("a", 1, 0, "v1");
        assert!(runs_template(&old, &template("v1"), "other-hash"));
        assert!(!runs_template(&old, &template("v2"), "other-hash"));
        assert!(runs_template(&old, &template("v2"), "a"), "hash label wins");
    }

    #[test]
    fn annotations_carry_the_revision_and_change_cause() {
        let current = rs("a", 1, 0, "v1");
        let d = deployment(None, Some("image v1"));
        let annotations = new_rs_annotations(&d, &current.metadata, 4).expect("changed");
        assert_eq!(annotations[REVISION_ANNOTATION], "4");
        assert_eq!(annotations[CHANGE_CAUSE_ANNOTATION], "image v1");
        let mut meta = current.metadata.clone();
        meta.annotations = Some(annotations);
        assert_eq!(new_rs_annotations(&d, &meta, 4), None, "already current");
        let cleared = new_rs_annotations(&deployment(None, None), &meta, 4).expect("changed");
        assert!(!cleared.contains_key(CHANGE_CAUSE_ANNOTATION));
    }

    #[test]
    fn history_keeps_the_newest_idle_replicasets() {
        let old = [
            rs("r3", 3, 0, "v3"),
            rs("r1", 1, 0, "v1"),
            rs("r4", 4, 2, "v4"),
            rs("r2", 2, 0, "v2"),
        ];
        let names = |limit: Option<i32>| -> Vec<String> {
            history_to_delete(&deployment(limit, None), &old)
                .iter()
                .filter_map(|rs| rs.metadata.name.clone())
                .collect()
        };
        assert_eq!(names(None), Vec::<String>::new(), "default limit 10");
        assert_eq!(names(Some(2)), ["r1"]);
        assert_eq!(names(Some(1)), ["r1", "r2"]);
        assert_eq!(
            names(Some(0)),
            ["r1", "r2", "r3"],
            "never one with replicas"
        );
    }
}
