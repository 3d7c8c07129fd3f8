//! The pods a Job creates: its template with the Job's labels, owner reference and, for an
//! Indexed Job, the completion index (annotation, label and `JOB_COMPLETION_INDEX`).

use std::collections::BTreeMap;

use skiff_api::k8s_openapi::api::batch::v1::Job;
use skiff_api::k8s_openapi::api::core::v1::{EnvVar, Pod};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_api::ownership::controller_ref;

/// The annotation (and label) carrying an Indexed Job pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The environment variable a container reads its completion index from.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// The labels Kubernetes puts on every pod of a Job, old and new spellings.
pub fn job_labels(job: &Job) -> BTreeMap<String, String> {
    let name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    BTreeMap::from([
        ("batch.kubernetes.io/controller-uid".into(), uid.clone()),
        ("batch.kubernetes.io/job-name".into(), name.clone()),
        ("controller-uid".into(), uid),
        ("job-name".into(), name),
    ])
}

/// A new pod of `job`, for completion `index` when the Job is Indexed.
pub fn pod_for(job: &Job, index: Option<i32>) -> Pod {
    let name = job.metadata.name.as_deref().unwrap_or("job");
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let template_meta = template.metadata.unwrap_or_default();
    let mut labels = template_meta.labels.unwrap_or_default();
    labels.extend(job_labels(job));
    let mut annotations = template_meta.annotations.unwrap_or_default();
    let mut spec = template.spec.unwrap_or_default();
    if let Some(index) = index {
        labels.insert(COMPLETION_INDEX.into(), index.to_string());
        annotations.insert(COMPLETION_INDEX.into(), index.to_string());
        for container in &mut spec.containers {
            let env = container.env.get_or_insert_with(Vec::new);
            env.retain(|e| e.name != COMPLETION_INDEX_ENV);
            env.insert(
                0,
                EnvVar {
                    name: COMPLETION_INDEX_ENV.into(),
                    value: Some(index.to_string()),
                    value_from: None,
                },
            );
        }
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(match index {
                Some(i) => format!("{name}-{i}-"),
                None => format!("{name}-"),
            }),
            namespace: job.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![controller_ref(job)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// The completion index of a Job's pod, from its annotation.
pub fn index_of(pod: &Pod) -> Option<i32> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(COMPLETION_INDEX)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::k8s_openapi::api::batch::v1::JobSpec;
    use skiff_api::k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};

    #[test]
    fn indexed_pods_carry_their_index_everywhere() {
        let job = Job {
            metadata: ObjectMeta {
                name: Some("work".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(JobSpec {
                template: PodTemplateSpec {
                    metadata: None,
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "c".into(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        };
        let pod = pod_for(&job, Some(2));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("work-2-"));
        assert_eq!(index_of(&pod), Some(2));
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels["job-name"], "work");
        assert_eq!(labels["batch.kubernetes.io/controller-uid"], "u1");
        assert_eq!(labels[COMPLETION_INDEX], "2");
        let env = &pod.spec.as_ref().expect("spec").containers[0].env;
        assert_eq!(
            env.as_ref().expect("env")[0].value.as_deref(),
            Some("2"),
            "{env:?}"
        );
        let owner = &pod.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("Job", Some(true)));
        let plain = pod_for(&job, None);
        assert_eq!(plain.metadata.generate_name.as_deref(), Some("work-"));
        assert_eq!(index_of(&plain), None);
        assert!(plain.spec.expect("spec").containers[0].env.is_none());
    }
}
