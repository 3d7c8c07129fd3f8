//! The Job controller (batch/v1): runs pods until `completions` of them succeed (each index once
//! for an Indexed Job), at most `parallelism` at a time, retrying failures with exponential
//! back-off until `backoffLimit`; enforces `activeDeadlineSeconds` and `suspend`, and deletes
//! finished Jobs after `ttlSecondsAfterFinished`.

mod failure_policy;
mod plan;
mod pod;
mod status;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;
use skiff_api::batch::{job_outcome, DEFAULT_BACKOFF_LIMIT, DEFAULT_PARALLELISM};
use skiff_api::k8s_openapi::api::batch::v1::{Job, PodFailurePolicy};
use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::k8s_openapi::jiff::Timestamp;
use skiff_api::resources;

use self::plan::{plan, Finish, JobView, PodState, PodView};
use self::status::{finished_at, next_status};
use crate::error::ApiError;
use crate::registry::{object, Registry, Subresource};
use crate::runtime::events::{EventRecorder, EventType};
use crate::runtime::informer::{object_key, revision_of, Informer};
use crate::runtime::ownership::controller_of;
use crate::runtime::runner::{Action, Reconciler};
use crate::runtime::slow_start;

pub use self::pod::{job_labels, COMPLETION_INDEX, COMPLETION_INDEX_ENV};

/// Runs each Job's pods to completion: creates, retries and stops them, and writes its status.
pub struct JobController {
    pub registry: Registry,
    pub jobs: Arc<Informer<Job>>,
    pub pods: Arc<Informer<Pod>>,
    pub events: EventRecorder,
    /// Pods this controller deleted (by uid) while they ran: stopped, not failed.
    pub stopped: Mutex<HashSet<String>>,
}

/// The Job key that should react to a change of `pod`.
pub fn owner_key(pod: &Pod) -> Option<String> {
    let owner = controller_of(&pod.metadata)?;
    (owner.kind == "Job").then(|| object_key(pod.metadata.namespace.as_deref(), &owner.name))
}

#[async_trait]
impl Reconciler for JobController {
    fn name(&self) -> &'static str {
        "job-controller"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let Some(job) = self.jobs.get(key) else {
            return Ok(Action::await_change());
        };
        if job.metadata.deletion_timestamp.is_some() {
            return Ok(Action::await_change());
        }
        let now = skiff_api::time::now().0;
        if job_outcome(&job).is_some() {
            return self.expire(&job, now).await;
        }
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let spec = job.spec.clone().unwrap_or_default();
        let mut pods = self.pods.controlled_by(&uid);
        let views: Vec<PodView> = {
            let mut stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
            stopped.retain(|uid| pods.iter().any(|p| p.metadata.uid.as_ref() == Some(uid)));
            // Pods this controller stopped and that are still going are neither work nor failures.
            pods.retain(|p| {
                p.metadata.deletion_timestamp.is_none()
                    || pod_state(p) != PodState::Active
                    || !p.metadata.uid.as_ref().is_some_and(|u| stopped.contains(u))
            });
            let policy = spec.pod_failure_policy.as_ref();
            pods.iter().map(|p| view_of(p, &stopped, policy)).collect()
        };
        let suspend = spec.suspend.unwrap_or(false);
        let start_time = job
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0)
            .filter(|_| !suspend)
            .or((!suspend).then_some(now));
        let view = JobView {
            completions: spec.completions,
            parallelism: spec.parallelism.unwrap_or(DEFAULT_PARALLELISM),
            indexed: spec.completion_mode.as_deref() == Some("Indexed"),
            backoff_limit: spec.backoff_limit.unwrap_or(DEFAULT_BACKOFF_LIMIT),
            restarts_count: spec
                .template
                .spec
                .as_ref()
                .and_then(|s| s.restart_policy.as_deref())
                == Some("OnFailure"),
            active_deadline_seconds: spec.active_deadline_seconds,
            suspend,
            start_time,
            recorded_failed: job.status.as_ref().and_then(|s| s.failed).unwrap_or(0),
        };
        let planned = plan(&view, &views, now);
        let mut last_revision = self.delete_pods(&job, &pods, &planned.delete).await?;
        last_revision = last_revision.max(self.create_pods(&job, &planned.create).await?);
        if last_revision > 0 {
            self.pods.wait_for(last_revision).await;
        }
        match &planned.finish {
            Some(Finish::Complete) => self.events.record(
                job.as_ref(),
                EventType::Normal,
                "Completed",
                "Job completed".into(),
            ),
            Some(Finish::Failed { reason, message }) => {
                self.events
                    .record(job.as_ref(), EventType::Warning, reason, message.clone())
            }
            None => {}
        }
        let ready = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && super::pods::is_ready(p))
            .count() as i32;
        let status = next_status(&job, &planned, start_time, ready, suspend, now);
        if job.status.as_ref() != Some(&status) {
            let mut updated = job.as_ref().clone();
            updated.status = Some(status);
            let written = self
                .registry
                .update_typed(&updated, Subresource::Status)
                .await?;
            self.jobs.wait_for(revision_of(&written)).await;
        }
        Ok(match planned.requeue_after {
            Some(after) => Action::requeue(after),
            // A finished Job with a TTL is looked at again when its status change arrives.
            None => Action::await_change(),
        })
    }
}

impl JobController {
    /// Deletes a finished Job whose `ttlSecondsAfterFinished` has passed (its pods go with it).
    async fn expire(&self, job: &Job, now: Timestamp) -> Result<Action, ApiError> {
        let ttl = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished);
        let (Some(ttl), Some(finished)) = (ttl, finished_at(job)) else {
            return Ok(Action::await_change());
        };
        let left = ttl as f64 - now.duration_since(finished).as_secs_f64();
        if left > 0.0 {
            return Ok(Action::requeue(Duration::from_secs_f64(left)));
        }
        let name = job.metadata.name.as_deref().unwrap_or_default();
        match self
            .registry
            .delete(
                resources::of::<Job>(),
                job.metadata.namespace.as_deref(),
                name,
                &Default::default(),
            )
            .await
        {
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(Action::await_change()),
            Err(err) => Err(err),
        }
    }

    /// Creates the planned pods in slow-start batches, stopping at the first error; returns the
    /// highest revision written.
    async fn create_pods(&self, job: &Arc<Job>, indexes: &[Option<i32>]) -> Result<u64, ApiError> {
        let outcome = slow_start::run(indexes.len(), |i| {
            let pod = pod::pod_for(job, indexes[i]);
            async move { self.registry.create_typed(&pod).await }
        })
        .await;
        let mut last = 0;
        for created in outcome.done {
            last = last.max(revision_of(&created));
            self.events.record(
                job.as_ref(),
                EventType::Normal,
                "SuccessfulCreate",
                format!("Created pod: {}", created.metadata.name.unwrap_or_default()),
            );
        }
        match outcome.error {
            Some(err) => {
                self.events.record(
                    job.as_ref(),
                    EventType::Warning,
                    "FailedCreate",
                    format!("Error creating: {err}"),
                );
                Err(err)
            }
            None => Ok(last),
        }
    }

    /// Deletes the pods at `victims`; returns the highest revision written.
    async fn delete_pods(
        &self,
        job: &Arc<Job>,
        pods: &[Arc<Pod>],
        victims: &[usize],
    ) -> Result<u64, ApiError> {
        let kind = resources::of::<Pod>();
        self.stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(victims.iter().filter_map(|i| pods[*i].metadata.uid.clone()));
        let deletions = victims.iter().map(|i| {
            let pod = &pods[*i];
            let name = pod.metadata.name.clone().unwrap_or_default();
            async move {
                let result = self
                    .registry
                    .delete(
                        kind,
                        pod.metadata.namespace.as_deref(),
                        &name,
                        &Default::default(),
                    )
                    .await;
                (name, result)
            }
        });
        let mut last = 0;
        for (name, result) in join_all(deletions).await {
            match result {
                Ok(obj) => {
                    last = last.max(object::revision(&obj));
                    self.events.record(
                        job.as_ref(),
                        EventType::Normal,
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    );
                }
                Err(ApiError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(last)
    }
}

fn pod_state(pod: &Pod) -> PodState {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Succeeded") => PodState::Succeeded,
        Some("Failed") => PodState::Failed,
        _ => PodState::Active,
    }
}

/// What the plan needs to know of one pod; `stopped` holds the pods this controller deleted
/// (any other pod being deleted while it runs was lost: a failure).
fn view_of(pod: &Pod, stopped: &HashSet<String>, policy: Option<&PodFailurePolicy>) -> PodView {
    let deleting = pod.metadata.deletion_timestamp.as_ref();
    let lost = deleting.is_some()
        && pod_state(pod) == PodState::Active
        && !pod
            .metadata
            .uid
            .as_ref()
            .is_some_and(|uid| stopped.contains(uid));
    if lost {
        return PodView {
            state: PodState::Failed,
            index: pod::index_of(pod),
            finished_at: deleting.map(|t| t.0),
            restarts: 0,
            verdict: None,
        };
    }
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    let finished_at = statuses
        .into_iter()
        .flatten()
        .flat_map(|c| [c.state.as_ref(), c.last_state.as_ref()])
        .flatten()
        .filter_map(|s| s.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max();
    let state = pod_state(pod);
    PodView {
        verdict: policy
            .filter(|_| state == PodState::Failed)
            .and_then(|p| failure_policy::evaluate(p, pod)),
        state,
        index: pod::index_of(pod),
        finished_at,
        restarts: statuses
            .into_iter()
            .flatten()
            .map(|c| c.restart_count)
            .sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::k8s_openapi::api::core::v1::PodStatus;
    use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pod(uid: &str, phase: &str, deleting: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                deletion_timestamp: deleting.then_some(Time(Timestamp::UNIX_EPOCH)),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_running_pod_deleted_by_someone_else_is_a_failure() {
        let stopped = HashSet::from(["mine".to_string()]);
        for (pod, expected) in [
            (pod("a", "Running", false), PodState::Active),
            (pod("b", "Succeeded", true), PodState::Succeeded),
            // Its node was lost (or it was deleted by hand): retried and counted, never a success.
            (pod("c", "Running", true), PodState::Failed),
            (pod("d", "Pending", true), PodState::Failed),
            (pod("e", "Failed", false), PodState::Failed),
        ] {
            assert_eq!(
                view_of(&pod, &stopped, None).state,
                expected,
                "{:?}",
                pod.metadata.uid
            );
        }
        let lost = view_of(&pod("c", "Running", true), &stopped, None);
        assert_eq!(lost.finished_at, Some(Timestamp::UNIX_EPOCH));
    }
}
