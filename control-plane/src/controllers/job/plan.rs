//! What one Job sync does, as a pure function of the Job's spec, its pods and the time:
//! which pods to create (and with which completion index), which to delete, and whether the
//! Job is now finished.

use std::collections::BTreeSet;
use std::time::Duration;

use skiff_api::k8s_openapi::jiff::Timestamp;

use crate::runtime::slow_start::BURST;

pub use super::failure_policy::Verdict;

/// First delay before retrying after a pod failure; it doubles with each further failure
/// (Kubernetes' `DefaultJobPodFailureBackOff`).
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(10);
/// Longest delay between retries (Kubernetes' `MaxJobPodFailureBackOff`).
pub const MAX_FAILURE_BACKOFF: Duration = Duration::from_secs(600);

/// The parts of a Job's spec and status the plan needs.
#[derive(Debug, Clone, Default)]
pub struct JobView {
    pub completions: Option<i32>,
    pub parallelism: i32,
    pub indexed: bool,
    pub backoff_limit: i32,
    /// `restartPolicy: OnFailure`: container restarts count as failures.
    pub restarts_count: bool,
    pub active_deadline_seconds: Option<i64>,
    pub suspend: bool,
    pub start_time: Option<Timestamp>,
    /// `status.failed` as last written: failures already counted whose pods may be gone.
    pub recorded_failed: i32,
}

/// Where one pod of the Job stands. A pod being deleted that the Job controller did not delete
/// (its node was lost, or someone deleted it) is `Failed`: it is replaced and counted against
/// `backoffLimit`, never as a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodState {
    Active,
    Succeeded,
    Failed,
}

/// One pod of the Job.
#[derive(Debug, Clone)]
pub struct PodView {
    pub state: PodState,
    /// Its completion index, for an Indexed Job.
    pub index: Option<i32>,
    /// When its last container ended (failed pods start the back-off from it).
    pub finished_at: Option<Timestamp>,
    pub restarts: i32,
    /// For a failed pod, what the Job's `podFailurePolicy` makes of it (`None`: counted).
    pub verdict: Option<Verdict>,
}

/// How a Job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    Complete,
    Failed {
        reason: &'static str,
        message: String,
    },
}

/// The outcome of one sync.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Pods to create, at most a burst: their completion index (`None` for a NonIndexed Job).
    pub create: Vec<Option<i32>>,
    /// Positions in the pod list of active pods to delete.
    pub delete: Vec<usize>,
    pub finish: Option<Finish>,
    /// When to look again even if nothing changes (a back-off or deadline ending).
    pub requeue_after: Option<Duration>,
    pub active: i32,
    pub succeeded: i32,
    pub failed: i32,
    /// Succeeded indexes of an Indexed Job, as Kubernetes writes them (`0-2,5`).
    pub completed_indexes: Option<String>,
}

/// Plans one sync of an unfinished Job.
pub fn plan(job: &JobView, pods: &[PodView], now: Timestamp) -> Plan {
    let active: Vec<usize> = positions(pods, PodState::Active);
    let mut failed = pods.iter().filter(|p| counts_as_failure(p)).count() as i32;
    if job.restarts_count {
        failed += pods.iter().map(|p| p.restarts).sum::<i32>();
    }
    // A counted failure stays counted when its pod is gone.
    failed = failed.max(job.recorded_failed);
    let done_indexes: BTreeSet<i32> = pods
        .iter()
        .filter(|p| p.state == PodState::Succeeded)
        .filter_map(|p| p.index)
        .filter(|i| job.completions.is_some_and(|c| *i < c))
        .collect();
    let succeeded = if job.indexed {
        done_indexes.len() as i32
    } else {
        positions(pods, PodState::Succeeded).len() as i32
    };
    let mut plan = Plan {
        active: active.len() as i32,
        succeeded,
        failed,
        completed_indexes: job.indexed.then(|| index_ranges(&done_indexes)),
        ..Plan::default()
    };
    let stop_all = |plan: &mut Plan, finish: Option<Finish>| {
        plan.delete = active.clone();
        plan.finish = finish;
    };
    let complete = match job.completions {
        Some(c) => succeeded >= c,
        None => succeeded > 0 && active.is_empty(),
    };
    if complete {
        stop_all(&mut plan, Some(Finish::Complete));
        return plan;
    }
    let policy_failure = pods.iter().find_map(|p| match &p.verdict {
        Some(Verdict::FailJob(message)) if p.state == PodState::Failed => Some(message.clone()),
        _ => None,
    });
    if let Some(message) = policy_failure {
        stop_all(
            &mut plan,
            Some(Finish::Failed {
                reason: "PodFailurePolicy",
                message,
            }),
        );
        return plan;
    }
    if failed > job.backoff_limit {
        let message = "Job has reached the specified backoff limit".to_string();
        stop_all(
            &mut plan,
            Some(Finish::Failed {
                reason: "BackoffLimitExceeded",
                message,
            }),
        );
        return plan;
    }
    if let (Some(deadline), Some(start)) = (job.active_deadline_seconds, job.start_time) {
        let elapsed = now.duration_since(start).as_secs_f64();
        if elapsed >= deadline as f64 {
            let message = "Job was active longer than specified deadline".to_string();
            stop_all(
                &mut plan,
                Some(Finish::Failed {
                    reason: "DeadlineExceeded",
                    message,
                }),
            );
            return plan;
        }
        plan.requeue_after = Some(Duration::from_secs_f64(deadline as f64 - elapsed));
    }
    if job.suspend {
        stop_all(&mut plan, None);
        plan.requeue_after = None;
        return plan;
    }
    let wanted = match job.completions {
        Some(c) => job.parallelism.min(c - succeeded).max(0),
        // A work queue with a success creates no more pods but lets the running ones finish.
        None if succeeded > 0 => active.len() as i32,
        None => job.parallelism.max(0),
    } as usize;
    // Active pods doing work already done (an index that succeeded or runs twice) go first.
    let mut running_indexes = BTreeSet::new();
    let mut keep = Vec::new();
    for &i in &active {
        let redundant = job.indexed
            && pods[i].index.is_none_or(|index| {
                done_indexes.contains(&index)
                    || job.completions.is_some_and(|c| index >= c)
                    || !running_indexes.insert(index)
            });
        if redundant {
            plan.delete.push(i);
        } else {
            keep.push(i);
        }
    }
    if keep.len() > wanted {
        plan.delete.extend(keep.split_off(wanted));
    }
    // At most a burst per sync: the pods created bring the Job back for the rest.
    let missing = (wanted - keep.len()).min(BURST);
    if missing == 0 {
        return plan;
    }
    if let Some(wait) = backoff_remaining(pods, failed, now) {
        plan.requeue_after = Some(plan.requeue_after.map_or(wait, |d| d.min(wait)));
        return plan;
    }
    plan.create = if job.indexed {
        (0..job.completions.unwrap_or(0))
            .filter(|i| !done_indexes.contains(i) && !running_indexes.contains(i))
            .take(missing)
            .map(Some)
            .collect()
    } else {
        vec![None; missing]
    };
    plan
}

/// How long the retry after the last failure must still wait: 10 s doubled per failure.
fn backoff_remaining(pods: &[PodView], failed: i32, now: Timestamp) -> Option<Duration> {
    if failed == 0 {
        return None;
    }
    let last = pods
        .iter()
        .filter(|p| counts_as_failure(p) || p.restarts > 0)
        .filter_map(|p| p.finished_at)
        .max()?;
    let delay = FAILURE_BACKOFF
        .saturating_mul(1 << (failed - 1).clamp(0, 16))
        .min(MAX_FAILURE_BACKOFF);
    let since = Duration::try_from(now.duration_since(last)).unwrap_or_default();
    delay.checked_sub(since).filter(|d| !d.is_zero())
}

/// A failed pod that the failure policy does not ignore.
fn counts_as_failure(pod: &PodView) -> bool {
    pod.state == PodState::Failed && pod.verdict != Some(Verdict::Ignore)
}

fn positions(pods: &[PodView], state: PodState) -> Vec<usize> {
    (0..pods.len())
        .filter(|i| pods[*i].state == state)
        .collect()
}

/// `0-2,5`: sorted indexes with runs joined, as `status.completedIndexes`.
pub fn index_ranges(indexes: &BTreeSet<i32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end = iter.next().unwrap_or(end);
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(",")
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
