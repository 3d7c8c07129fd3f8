//! Jobs made from a CronJob's template, by its controller on schedule and by
//! `skiff create job --from=cronjob/NAME`.

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::ownership::controller_ref;

/// The annotation with the time a scheduled Job was due (RFC 3339).
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// The annotation `kubectl create job --from` puts on a Job started by hand.
pub const INSTANTIATE: &str = "cronjob.kubernetes.io/instantiate";

/// A Job's `parallelism` (and `completions`, when neither is set) when left out.
pub const DEFAULT_PARALLELISM: i32 = 1;
/// A Job's `backoffLimit` when left out.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 6;
/// A CronJob's `concurrencyPolicy` when left out.
pub const DEFAULT_CONCURRENCY_POLICY: &str = "Allow";
/// A CronJob's `successfulJobsHistoryLimit` when left out.
pub const DEFAULT_SUCCESSFUL_JOBS_HISTORY_LIMIT: i32 = 3;
/// A CronJob's `failedJobsHistoryLimit` when left out.
pub const DEFAULT_FAILED_JOBS_HISTORY_LIMIT: i32 = 1;

/// A Job named `name` from `cronjob`'s `jobTemplate`, controlled by the CronJob, with
/// `annotations` added to the template's.
pub fn job_from_cronjob(
    cronjob: &CronJob,
    name: &str,
    annotations: impl IntoIterator<Item = (String, String)>,
) -> Job {
    let template = cronjob
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut all_annotations = meta.annotations.unwrap_or_default();
    all_annotations.extend(annotations);
    Job {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: cronjob.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: (!all_annotations.is_empty()).then_some(all_annotations),
            owner_references: Some(vec![controller_ref(cronjob)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// Whether a Job has finished, and how: `Some(true)` Complete, `Some(false)` Failed.
pub fn job_outcome(job: &Job) -> Option<bool> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .filter(|c| c.status == "True")
        .find_map(|c| match c.type_.as_str() {
            "Complete" => Some(true),
            "Failed" => Some(false),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{CronJobSpec, JobSpec, JobTemplateSpec};
    use std::collections::BTreeMap;

    #[test]
    fn a_job_from_a_cronjob_is_owned_by_it_and_keeps_its_template() {
        let cronjob = CronJob {
            metadata: ObjectMeta {
                name: Some("nightly".into()),
                namespace: Some("ops".into()),
                uid: Some("c1".into()),
                ..Default::default()
            },
            spec: Some(CronJobSpec {
                schedule: "@daily".into(),
                job_template: JobTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(BTreeMap::from([("app".into(), "report".into())])),
                        ..Default::default()
                    }),
                    spec: Some(JobSpec {
                        completions: Some(2),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        };
        let job = job_from_cronjob(
            &cronjob,
            "nightly-manual",
            [(INSTANTIATE.to_string(), "manual".to_string())],
        );
        assert_eq!(job.metadata.namespace.as_deref(), Some("ops"));
        assert_eq!(
            job.metadata.labels.as_ref().expect("labels")["app"],
            "report"
        );
        assert_eq!(
            job.metadata.annotations.as_ref().expect("notes")[INSTANTIATE],
            "manual"
        );
        let owner = &job.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("CronJob", "c1"));
        assert_eq!(job.spec.and_then(|s| s.completions), Some(2));
        assert_eq!(job_outcome(&job_from_cronjob(&cronjob, "x", [])), None);
    }
}
