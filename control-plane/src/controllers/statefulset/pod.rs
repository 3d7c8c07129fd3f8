//! The pods and claims a StatefulSet makes: pod `NAME-i` of a revision's template, with its
//! stable identity (labels, hostname, subdomain) and a volume per claim template naming the
//! claim `TEMPLATE-NAME-i`.

use std::collections::BTreeMap;

use skiff_api::k8s_openapi::api::apps::v1::StatefulSet;
use skiff_api::k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use skiff_api::ownership::controller_ref;

/// The label naming the pod, for a per-pod Service.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label carrying the pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// The label naming the ControllerRevision a pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// `NAME-i`.
pub fn pod_name(sts: &StatefulSet, ordinal: usize) -> String {
    format!(
        "{}-{ordinal}",
        sts.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The ordinal of a pod named `NAME-i` of the set `NAME`.
pub fn ordinal_of(set_name: &str, pod: &Pod) -> Option<usize> {
    let name = pod.metadata.name.as_deref()?;
    let digits = name.strip_prefix(set_name)?.strip_prefix('-')?;
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    digits.parse().ok()
}

/// The ControllerRevision name a pod was made from.
pub fn revision_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()?
        .get(REVISION_LABEL)
        .map(String::as_str)
}

/// `TEMPLATE-NAME-i`: the claim pod `i` gets from a claim template.
pub fn claim_name(template: &str, sts: &StatefulSet, ordinal: usize) -> String {
    format!("{template}-{}", pod_name(sts, ordinal))
}

/// Whether claims go with the set (`whenDeleted`) or with a scale-down (`whenScaled`).
fn deletes_claims(sts: &StatefulSet, when_scaled: bool) -> bool {
    let policy = sts
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    let value = policy.and_then(|p| {
        if when_scaled {
            p.when_scaled.as_deref()
        } else {
            p.when_deleted.as_deref()
        }
    });
    value == Some("Delete")
}

/// `whenScaled: Delete`: a scale-down takes the removed pods' claims along.
pub fn deletes_claims_on_scale_down(sts: &StatefulSet) -> bool {
    deletes_claims(sts, true)
}

/// The claims pod `ordinal` needs, one per claim template: the template's labels and spec
/// and, under `whenDeleted: Delete`, an owner reference (not a controlling one) to the set, so
/// that the garbage collector removes them with it. Under `Retain` they outlive the set.
pub fn claims_for(sts: &StatefulSet, ordinal: usize) -> Vec<PersistentVolumeClaim> {
    let owner = deletes_claims(sts, false).then(|| OwnerReference {
        controller: None,
        block_owner_deletion: None,
        ..controller_ref(sts)
    });
    let mut labels = sts
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    labels.insert(POD_NAME_LABEL.into(), pod_name(sts, ordinal));
    sts.spec
        .iter()
        .flat_map(|s| s.volume_claim_templates.iter().flatten())
        .map(|template| {
            let name = template.metadata.name.clone().unwrap_or_default();
            let mut claim_labels = template.metadata.labels.clone().unwrap_or_default();
            for (k, v) in &labels {
                claim_labels.entry(k.clone()).or_insert_with(|| v.clone());
            }
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(&name, sts, ordinal)),
                    namespace: sts.metadata.namespace.clone(),
                    labels: Some(claim_labels),
                    annotations: template.metadata.annotations.clone(),
                    owner_references: owner.clone().map(|o| vec![o]),
                    ..Default::default()
                },
                spec: template.spec.clone(),
                status: None,
            }
        })
        .collect()
}

/// Pod `ordinal` of the set, made from `template` (the template of ControllerRevision
/// `revision`).
pub fn pod_for(
    sts: &StatefulSet,
    template: &PodTemplateSpec,
    revision: &str,
    ordinal: usize,
) -> Pod {
    let name = pod_name(sts, ordinal);
    let template_meta = template.metadata.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = template_meta.labels.unwrap_or_default();
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(REVISION_LABEL.into(), revision.into());
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.hostname = Some(name.clone());
    spec.subdomain = sts.spec.as_ref().and_then(|s| s.service_name.clone());
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    for template in sts
        .spec
        .iter()
        .flat_map(|s| s.volume_claim_templates.iter().flatten())
    {
        let volume = template.metadata.name.clone().unwrap_or_default();
        // A pod volume of the same name wins, as in Kubernetes.
        if volumes.iter().any(|v| v.name == volume) {
            continue;
        }
        volumes.push(Volume {
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(&volume, sts, ordinal),
                read_only: None,
            }),
            name: volume,
            ..Default::default()
        });
    }
    if volumes.is_empty() {
        spec.volumes = None;
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: sts.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: template_meta.annotations,
            owner_references: Some(vec![controller_ref(sts)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sts(retention: serde_json::Value) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "prod", "uid": "u1"},
            "spec": {"serviceName": "db-svc", "selector": {"matchLabels": {"app": "db"}},
                "persistentVolumeClaimRetentionPolicy": retention,
                "template": {"metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}],
                        "volumes": [{"name": "scratch", "emptyDir": {}}]}},
                "volumeClaimTemplates": [
                    {"metadata": {"name": "data", "labels": {"tier": "disk"}},
                     "spec": {"accessModes": ["ReadWriteOnce"]}},
                    {"metadata": {"name": "scratch"}}]}
        }))
        .expect("sts")
    }

    #[test]
    fn pods_get_a_stable_identity_and_their_claims() {
        let set = sts(json!({"whenDeleted": "Retain", "whenScaled": "Retain"}));
        let template = set.spec.as_ref().expect("spec").template.clone();
        let pod = pod_for(&set, &template, "db-abc", 2);
        let value = serde_json::to_value(&pod).expect("json");
        assert_eq!(value["metadata"]["name"], "db-2");
        assert_eq!(
            value["metadata"]["labels"],
            json!({"app": "db", POD_NAME_LABEL: "db-2", POD_INDEX_LABEL: "2",
                REVISION_LABEL: "db-abc"})
        );
        assert_eq!(
            value["metadata"]["ownerReferences"][0]["kind"],
            "StatefulSet"
        );
        assert_eq!(value["spec"]["hostname"], "db-2");
        assert_eq!(value["spec"]["subdomain"], "db-svc");
        assert_eq!(
            value["spec"]["volumes"],
            json!([{"name": "scratch", "emptyDir": {}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-2"}}]),
            "the pod's own volume of a template's name wins"
        );
        assert_eq!(ordinal_of("db", &pod), Some(2));
    }

    #[test]
    fn claims_are_owned_only_when_they_go_with_the_set() {
        let kept = claims_for(&sts(json!({"whenDeleted": "Retain"})), 1);
        let names: Vec<_> = kept.iter().map(|c| c.metadata.name.clone()).collect();
        assert_eq!(
            names,
            [Some("data-db-1".to_string()), Some("scratch-db-1".into())]
        );
        assert!(kept[0].metadata.owner_references.is_none());
        let labels = kept[0].metadata.labels.clone().expect("labels");
        assert_eq!(labels.get("tier").map(String::as_str), Some("disk"));
        assert_eq!(labels.get("app").map(String::as_str), Some("db"));
        let owned = claims_for(&sts(json!({"whenDeleted": "Delete"})), 1);
        let owner = &owned[0].metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!((owner.uid.as_str(), owner.controller), ("u1", None));
        assert!(deletes_claims_on_scale_down(&sts(
            json!({"whenScaled": "Delete"})
        )));
        assert!(!deletes_claims_on_scale_down(&sts(json!({}))));
    }

    #[test]
    fn ordinals_come_from_names() {
        let named = |name: &str| Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let cases = [
            ("db-0", Some(0)),
            ("db-12", Some(12)),
            ("db-012", None),
            ("db-", None),
            ("db-x", None),
            ("dbx-1", None),
            ("db-web-1", None),
        ];
        for (name, want) in cases {
            assert_eq!(ordinal_of("db", &named(name)), want, "{name}");
        }
    }
}
