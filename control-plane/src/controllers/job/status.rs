//! A Job's status as Kubernetes writes it: counts, times and the Complete, Failed and
//! Suspended conditions.

use skiff_api::batch::job_outcome;
use skiff_api::k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use skiff_api::k8s_openapi::jiff::Timestamp;

use super::plan::{Finish, Plan};

/// When a finished Job finished: its completion time, or when it was marked Failed.
pub fn finished_at(job: &Job) -> Option<Timestamp> {
    let condition = if job_outcome(job)? {
        "Complete"
    } else {
        "Failed"
    };
    let status = job.status.as_ref()?;
    let marked = || {
        status
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == condition && c.status == "True")?
            .last_transition_time
            .as_ref()
    };
    status.completion_time.as_ref().or_else(marked).map(|t| t.0)
}

/// The status after one sync that planned `plan`.
pub fn next_status(
    job: &Job,
    plan: &Plan,
    start_time: Option<Timestamp>,
    ready: i32,
    suspend: bool,
    now: Timestamp,
) -> JobStatus {
    let old = job.status.clone().unwrap_or_default();
    let mut conditions = old.conditions.clone().unwrap_or_default();
    let was_suspended = conditions
        .iter()
        .any(|c| c.type_ == "Suspended" && c.status == "True");
    if suspend != was_suspended && (suspend || conditions.iter().any(|c| c.type_ == "Suspended")) {
        let (reason, message) = if suspend {
            ("JobSuspended", "Job suspended")
        } else {
            ("JobResumed", "Job resumed")
        };
        set_condition(&mut conditions, "Suspended", suspend, reason, message, now);
    }
    let mut completion_time = old.completion_time.clone();
    match &plan.finish {
        Some(Finish::Complete) => {
            set_condition(&mut conditions, "Complete", true, "", "", now);
            completion_time = Some(Time(now));
        }
        Some(Finish::Failed { reason, message }) => {
            set_condition(&mut conditions, "Failed", true, reason, message, now);
        }
        None => {}
    }
    let finished = plan.finish.is_some();
    JobStatus {
        active: Some(if finished {
            0
        } else {
            plan.active - plan.delete.len() as i32 + plan.create.len() as i32
        })
        .filter(|n| *n > 0),
        succeeded: Some(plan.succeeded).filter(|n| *n > 0),
        failed: Some(plan.failed).filter(|n| *n > 0),
        ready: Some(if finished { 0 } else { ready }),
        start_time: start_time.map(Time),
        completion_time,
        completed_indexes: plan.completed_indexes.clone().filter(|s| !s.is_empty()),
        conditions: (!conditions.is_empty()).then_some(conditions),
        ..old
    }
}

fn set_condition(
    conditions: &mut Vec<JobCondition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    let condition = JobCondition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: (!reason.is_empty()).then(|| reason.into()),
        message: (!message.is_empty()).then(|| message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}
