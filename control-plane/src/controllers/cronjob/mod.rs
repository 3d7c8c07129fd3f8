//! The CronJob controller (batch/v1): starts a Job from the template at each scheduled time
//! (in `timeZone`, UTC when unset), honouring `concurrencyPolicy`, `startingDeadlineSeconds` and
//! `suspend`, and keeps the history limits. A Job's name comes from its scheduled minute, so a
//! run missed across a control-plane failover is created once: the second attempt gets
//! AlreadyExists.

mod plan;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use skiff_api::batch::{
    job_from_cronjob, job_outcome, DEFAULT_CONCURRENCY_POLICY, DEFAULT_FAILED_JOBS_HISTORY_LIMIT,
    DEFAULT_SUCCESSFUL_JOBS_HISTORY_LIMIT, SCHEDULED_TIMESTAMP,
};
use skiff_api::cron::Schedule;
use skiff_api::k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use skiff_api::k8s_openapi::api::core::v1::ObjectReference;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use skiff_api::k8s_openapi::jiff::tz::TimeZone;
use skiff_api::resources;

use self::plan::{decide, history_victims, job_name, until_next, CronView, Decision, Finished};
use self::plan::{SkipReason, MISSED_LIMIT};
use crate::error::ApiError;
use crate::registry::{Registry, Subresource};
use crate::runtime::clock::Clock;
use crate::runtime::events::{EventRecorder, EventType};
use crate::runtime::informer::{object_key, revision_of, Informer};
use crate::runtime::ownership::controller_of;
use crate::runtime::runner::{Action, Reconciler};

/// Extra wait after a scheduled time so the next sync finds it due (Kubernetes' `nextScheduleDelta`).
const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);

/// Starts a CronJob's Jobs on its schedule, per its concurrency policy, and prunes old ones.
pub struct CronJobController {
    pub registry: Registry,
    pub cronjobs: Arc<Informer<CronJob>>,
    pub jobs: Arc<Informer<Job>>,
    pub events: EventRecorder,
    pub clock: Arc<dyn Clock>,
}

/// The CronJob key that should react to a change of `job`.
pub fn owner_key(job: &Job) -> Option<String> {
    let owner = controller_of(&job.metadata)?;
    (owner.kind == "CronJob").then(|| object_key(job.metadata.namespace.as_deref(), &owner.name))
}

#[async_trait]
impl Reconciler for CronJobController {
    fn name(&self) -> &'static str {
        "cronjob-controller"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let Some(cronjob) = self.cronjobs.get(key) else {
            return Ok(Action::await_change());
        };
        if cronjob.metadata.deletion_timestamp.is_some() {
            return Ok(Action::await_change());
        }
        let now = self.clock.now();
        let spec = cronjob.spec.clone().unwrap_or_default();
        let uid = cronjob.metadata.uid.clone().unwrap_or_default();
        let jobs = self.jobs.controlled_by(&uid);
        let mut status = cronjob.status.clone().unwrap_or_default();
        let mut active: Vec<Arc<Job>> = jobs
            .iter()
            .filter(|j| job_outcome(j).is_none())
            .cloned()
            .collect();
        let finished: Vec<Finished> = jobs
            .iter()
            .filter_map(|j| {
                Some(Finished {
                    name: j.metadata.name.clone()?,
                    succeeded: job_outcome(j)?,
                    started: j.metadata.creation_timestamp.as_ref()?.0,
                })
            })
            .collect();
        if let Some(last) = jobs
            .iter()
            .filter(|j| job_outcome(j) == Some(true))
            .filter_map(|j| j.status.as_ref()?.completion_time.clone())
            .max()
        {
            status.last_successful_time = status.last_successful_time.max(Some(last));
        }
        let victims = history_victims(
            &finished,
            spec.successful_jobs_history_limit
                .unwrap_or(DEFAULT_SUCCESSFUL_JOBS_HISTORY_LIMIT)
                .max(0) as usize,
            spec.failed_jobs_history_limit
                .unwrap_or(DEFAULT_FAILED_JOBS_HISTORY_LIMIT)
                .max(0) as usize,
        );
        for name in victims {
            self.delete_job(&cronjob, &name).await?;
        }
        let mut requeue = None;
        if !spec.suspend.unwrap_or(false) {
            match spec.schedule.parse::<Schedule>() {
                Ok(schedule) => {
                    let time_zone = spec
                        .time_zone
                        .as_deref()
                        .and_then(|z| TimeZone::get(z).ok())
                        .unwrap_or(TimeZone::UTC);
                    let view = CronView {
                        schedule: &schedule,
                        time_zone: time_zone.clone(),
                        starting_deadline_seconds: spec.starting_deadline_seconds,
                        concurrency_policy: spec
                            .concurrency_policy
                            .as_deref()
                            .unwrap_or(DEFAULT_CONCURRENCY_POLICY),
                        created: cronjob
                            .metadata
                            .creation_timestamp
                            .as_ref()
                            .map_or(now, |t| t.0),
                        last_schedule: status.last_schedule_time.as_ref().map(|t| t.0),
                        active: active.len(),
                    };
                    self.act(&cronjob, decide(&view, now), &mut active, &mut status)
                        .await?;
                    requeue = until_next(&schedule, &time_zone, now);
                }
                Err(err) => self.events.record(
                    cronjob.as_ref(),
                    EventType::Warning,
                    "UnparseableSchedule",
                    format!("unparseable schedule {:?}: {err}", spec.schedule),
                ),
            }
        }
        active.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let refs: Vec<ObjectReference> = active.iter().map(|j| reference(j)).collect();
        status.active = (!refs.is_empty()).then_some(refs);
        self.write_status(&cronjob, status).await?;
        Ok(match requeue {
            Some(after) => Action::requeue(after + NEXT_SCHEDULE_DELTA),
            None => Action::await_change(),
        })
    }
}

impl CronJobController {
    /// Carries out a decision; `active` and `status` follow what was done.
    async fn act(
        &self,
        cronjob: &Arc<CronJob>,
        decision: Decision,
        active: &mut Vec<Arc<Job>>,
        status: &mut CronJobStatus,
    ) -> Result<(), ApiError> {
        match decision {
            Decision::Wait => Ok(()),
            Decision::Skip { scheduled, reason } => {
                let (kind, reason, message) = match reason {
                    SkipReason::MissedStartingDeadline => (
                        EventType::Warning,
                        "MissSchedule",
                        format!("Missed scheduled time to start a job: {scheduled}"),
                    ),
                    SkipReason::ConcurrencyForbidden => (
                        EventType::Normal,
                        "JobAlreadyActive",
                        "Not starting job because prior execution is running and concurrency policy is Forbid".to_string(),
                    ),
                };
                self.events.record(cronjob.as_ref(), kind, reason, message);
                Ok(())
            }
            Decision::Run {
                scheduled,
                missed,
                replace,
            } => {
                if missed >= MISSED_LIMIT {
                    self.events.record(
                        cronjob.as_ref(),
                        EventType::Warning,
                        "TooManyMissedTimes",
                        format!("too many missed start times: {missed}+; check clock skew"),
                    );
                }
                if replace {
                    for job in active.drain(..) {
                        let name = job.metadata.name.clone().unwrap_or_default();
                        self.delete_job(cronjob, &name).await?;
                    }
                }
                let name = job_name(
                    cronjob.metadata.name.as_deref().unwrap_or("cronjob"),
                    scheduled,
                );
                let job = job_from_cronjob(
                    cronjob,
                    &name,
                    [(SCHEDULED_TIMESTAMP.to_string(), scheduled.to_string())],
                );
                match self.registry.create_typed(&job).await {
                    Ok(created) => {
                        self.events.record(
                            cronjob.as_ref(),
                            EventType::Normal,
                            "SuccessfulCreate",
                            format!("Created job {name}"),
                        );
                        self.jobs.wait_for(revision_of(&created)).await;
                        active.push(Arc::new(created));
                    }
                    // Made already, by this controller before a restart or by a former leader.
                    Err(ApiError::AlreadyExists { .. }) => {
                        let key = object_key(job.metadata.namespace.as_deref(), &name);
                        if let Some(existing) = self.jobs.get(&key) {
                            if job_outcome(&existing).is_none()
                                && !active
                                    .iter()
                                    .any(|j| j.metadata.name == existing.metadata.name)
                            {
                                active.push(existing);
                            }
                        }
                    }
                    Err(err) => {
                        self.events.record(
                            cronjob.as_ref(),
                            EventType::Warning,
                            "FailedCreate",
                            format!("Error creating job: {err}"),
                        );
                        return Err(err);
                    }
                }
                status.last_schedule_time = Some(Time(scheduled));
                Ok(())
            }
        }
    }

    async fn delete_job(&self, cronjob: &CronJob, name: &str) -> Result<(), ApiError> {
        let result = self
            .registry
            .delete(
                resources::of::<Job>(),
                cronjob.metadata.namespace.as_deref(),
                name,
                &Default::default(),
            )
            .await;
        match result {
            Ok(_) => {
                self.events.record(
                    cronjob,
                    EventType::Normal,
                    "SuccessfulDelete",
                    format!("Deleted job {name}"),
                );
                Ok(())
            }
            Err(ApiError::NotFound { .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn write_status(&self, cronjob: &CronJob, status: CronJobStatus) -> Result<(), ApiError> {
        if cronjob.status.as_ref() == Some(&status)
            || (cronjob.status.is_none() && status == CronJobStatus::default())
        {
            return Ok(());
        }
        let mut updated = cronjob.clone();
        updated.status = Some(status);
        let written = self
            .registry
            .update_typed(&updated, Subresource::Status)
            .await?;
        self.cronjobs.wait_for(revision_of(&written)).await;
        Ok(())
    }
}

fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        field_path: None,
    }
}

#[cfg(test)]
mod tests;
