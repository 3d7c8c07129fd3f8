//! What one Job sync does, as a pure function of the Job's spec, its pods and the time:
//! which pods to create (and with which completion index), which to delete, and whether the
//! Job is now finished.

use std::collections::BTreeSet;
use std::time::Duration;

use skiff_api::k8s_openapi::jiff::Timestamp;

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
}

/// Where one pod of the Job stands.
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
    /// Pods to create: their completion index (`None` for a NonIndexed Job).
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
    let mut failed = positions(pods, PodState::Failed).len() as i32;
    if job.restarts_count {
        failed += pods.iter().map(|p| p.restarts).sum::<i32>();
    }
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
    let missing = wanted - keep.len();
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
        .filter(|p| p.state == PodState::Failed || p.restarts > 0)
        .filter_map(|p| p.finished_at)
        .max()?;
    let delay = FAILURE_BACKOFF
        .saturating_mul(1 << (failed - 1).clamp(0, 16))
        .min(MAX_FAILURE_BACKOFF);
    let since = Duration::try_from(now.duration_since(last)).unwrap_or_default();
    delay.checked_sub(since).filter(|d| !d.is_zero())
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
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T00:10:00Z";

    fn at(s: &str) -> Timestamp {
        s.parse().expect(s)
    }

    fn job(completions: Option<i32>, parallelism: i32, indexed: bool) -> JobView {
        JobView {
            completions,
            parallelism,
            indexed,
            backoff_limit: 6,
            start_time: Some(at("2026-01-01T00:00:00Z")),
            ..JobView::default()
        }
    }

    fn pod(state: PodState, index: Option<i32>) -> PodView {
        PodView {
            state,
            index,
            finished_at: None,
            restarts: 0,
        }
    }

    fn failed_at(finished: &str) -> PodView {
        PodView {
            finished_at: Some(at(finished)),
            ..pod(PodState::Failed, None)
        }
    }

    use PodState::{Active, Failed, Succeeded};

    #[test]
    fn creates_up_to_parallelism_and_finishes_at_completions() {
        type Case = (
            &'static str,
            JobView,
            Vec<PodView>,
            Vec<Option<i32>>,
            Vec<usize>,
            Option<Finish>,
        );
        let cases: Vec<Case> = vec![
            (
                "fresh job",
                job(Some(3), 2, false),
                vec![],
                vec![None, None],
                vec![],
                None,
            ),
            (
                "parallelism caps",
                job(Some(5), 2, false),
                vec![pod(Active, None)],
                vec![None],
                vec![],
                None,
            ),
            (
                "only what is left",
                job(Some(3), 3, false),
                vec![pod(Succeeded, None), pod(Succeeded, None)],
                vec![None],
                vec![],
                None,
            ),
            (
                "done",
                job(Some(2), 2, false),
                vec![pod(Succeeded, None), pod(Succeeded, None)],
                vec![],
                vec![],
                Some(Finish::Complete),
            ),
            (
                "done stops the rest",
                job(Some(1), 2, false),
                vec![pod(Succeeded, None), pod(Active, None)],
                vec![],
                vec![1],
                Some(Finish::Complete),
            ),
            (
                "lowered parallelism",
                job(Some(9), 1, false),
                vec![pod(Active, None), pod(Active, None)],
                vec![],
                vec![1],
                None,
            ),
            (
                "work queue runs until one succeeds",
                job(None, 2, false),
                vec![pod(Active, None)],
                vec![None],
                vec![],
                None,
            ),
            (
                "work queue done when all finish",
                job(None, 2, false),
                vec![pod(Succeeded, None)],
                vec![],
                vec![],
                Some(Finish::Complete),
            ),
            (
                "work queue waits for the rest",
                job(None, 2, false),
                vec![pod(Succeeded, None), pod(Active, None)],
                vec![],
                vec![],
                None,
            ),
            (
                "indexed: lowest missing indexes",
                job(Some(3), 2, true),
                vec![],
                vec![Some(0), Some(1)],
                vec![],
                None,
            ),
            (
                "indexed: skip done and running",
                job(Some(4), 2, true),
                vec![pod(Succeeded, Some(0)), pod(Active, Some(1))],
                vec![Some(2)],
                vec![],
                None,
            ),
            (
                "indexed: a failed index runs again",
                job(Some(3), 2, true),
                vec![
                    pod(Succeeded, Some(0)),
                    pod(Failed, Some(1)),
                    pod(Succeeded, Some(2)),
                ],
                vec![Some(1)],
                vec![],
                None,
            ),
            (
                "indexed: duplicates go",
                job(Some(3), 3, true),
                vec![
                    pod(Active, Some(0)),
                    pod(Active, Some(0)),
                    pod(Active, Some(1)),
                ],
                vec![Some(2)],
                vec![1],
                None,
            ),
            (
                "indexed: done when every index succeeded",
                job(Some(2), 2, true),
                vec![
                    pod(Succeeded, Some(1)),
                    pod(Succeeded, Some(0)),
                    pod(Succeeded, Some(1)),
                ],
                vec![],
                vec![],
                Some(Finish::Complete),
            ),
        ];
        for (name, job, pods, create, delete, finish) in cases {
            let plan = plan(&job, &pods, at(NOW));
            assert_eq!(
                (plan.create, plan.delete, plan.finish),
                (create, delete, finish),
                "{name}"
            );
        }
    }

    #[test]
    fn failures_back_off_exponentially_until_the_limit() {
        let limited = |limit| JobView {
            backoff_limit: limit,
            ..job(Some(1), 1, false)
        };
        // One failure 5 s ago: 10 s back-off, 5 s left.
        let plan1 = plan(&limited(2), &[failed_at("2026-01-01T00:09:55Z")], at(NOW));
        assert_eq!(plan1.create, vec![]);
        assert_eq!(plan1.requeue_after, Some(Duration::from_secs(5)));
        // Two failures, the last 15 s ago: 20 s back-off, 5 s left.
        let two = [
            failed_at("2026-01-01T00:05:00Z"),
            failed_at("2026-01-01T00:09:45Z"),
        ];
        assert_eq!(
            plan(&limited(2), &two, at(NOW)).requeue_after,
            Some(Duration::from_secs(5))
        );
        // ... and 25 s after it, the retry starts.
        let later = plan(&limited(2), &two, at("2026-01-01T00:10:05Z"));
        assert_eq!((later.create, later.failed), (vec![None], 2));
        // A third failure exceeds backoffLimit 2: the Job fails, its running pods stop.
        let three = [
            failed_at("2026-01-01T00:01:00Z"),
            failed_at("2026-01-01T00:02:00Z"),
            failed_at("2026-01-01T00:03:00Z"),
            pod(Active, None),
        ];
        let failed = plan(&limited(2), &three, at(NOW));
        assert_eq!(failed.delete, vec![3]);
        assert!(matches!(
            failed.finish,
            Some(Finish::Failed {
                reason: "BackoffLimitExceeded",
                ..
            })
        ));
        // backoffLimit 0: the first failure fails the Job.
        let zero = plan(&limited(0), &[failed_at("2026-01-01T00:09:00Z")], at(NOW));
        assert!(matches!(
            zero.finish,
            Some(Finish::Failed {
                reason: "BackoffLimitExceeded",
                ..
            })
        ));
        // restartPolicy OnFailure: container restarts count.
        let restarted = PodView {
            restarts: 3,
            ..pod(Active, None)
        };
        let on_failure = JobView {
            restarts_count: true,
            ..limited(2)
        };
        assert!(plan(&on_failure, &[restarted], at(NOW)).finish.is_some());
        assert_eq!(
            backoff_remaining(&[failed_at(NOW)], 40, at(NOW)),
            Some(MAX_FAILURE_BACKOFF),
            "capped"
        );
    }

    #[test]
    fn deadline_and_suspend_stop_the_pods() {
        let deadline = |secs| JobView {
            active_deadline_seconds: Some(secs),
            ..job(Some(3), 2, false)
        };
        let running = [pod(Active, None), pod(Active, None)];
        let before = plan(&deadline(900), &running, at(NOW));
        assert_eq!(
            (before.finish, before.requeue_after),
            (None, Some(Duration::from_secs(300)))
        );
        let after = plan(&deadline(600), &running, at(NOW));
        assert_eq!(after.delete, vec![0, 1]);
        assert!(matches!(
            after.finish,
            Some(Finish::Failed {
                reason: "DeadlineExceeded",
                ..
            })
        ));
        let suspended = JobView {
            suspend: true,
            ..job(Some(3), 2, false)
        };
        let plan = plan(&suspended, &running, at(NOW));
        assert_eq!(
            (plan.create, plan.delete, plan.finish),
            (vec![], vec![0, 1], None)
        );
    }

    #[test]
    fn completed_indexes_are_written_as_ranges() {
        for (indexes, expected) in [
            (vec![], ""),
            (vec![3], "3"),
            (vec![0, 1, 2], "0-2"),
            (vec![0, 1, 2, 5, 7, 8], "0-2,5,7-8"),
        ] {
            assert_eq!(index_ranges(&indexes.into_iter().collect()), expected);
        }
    }
}
