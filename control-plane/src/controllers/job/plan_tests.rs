//! Table tests of the Job plan: creation, completion, back-off, deadline and suspend.

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
        verdict: None,
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
fn a_huge_parallelism_creates_at_most_one_burst_per_sync() {
    let now = at(NOW);
    for (name, view, pods, first) in [
        ("work queue", job(None, i32::MAX, false), vec![], None),
        (
            "fixed count",
            job(Some(i32::MAX), i32::MAX, false),
            vec![],
            None,
        ),
        (
            "indexed",
            job(Some(i32::MAX), i32::MAX, true),
            vec![],
            Some(0),
        ),
        (
            "indexed, index 0 running",
            job(Some(i32::MAX), i32::MAX, true),
            vec![pod(Active, Some(0))],
            Some(1),
        ),
    ] {
        let planned = plan(&view, &pods, now);
        assert_eq!(planned.create.len(), BURST, "{name}");
        assert_eq!(planned.create.first(), Some(&first), "{name}");
    }
    // Short of a burst, the whole difference.
    assert_eq!(plan(&job(None, 3, false), &[], now).create.len(), 3);
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
    // Failures counted before their pods went (a lost node's pods) still count.
    let recorded = JobView {
        recorded_failed: 3,
        ..limited(2)
    };
    assert!(plan(&recorded, &[], at(NOW)).finish.is_some());
    let recorded = JobView {
        recorded_failed: 1,
        ..limited(2)
    };
    assert_eq!(
        plan(&recorded, &[failed_at("2026-01-01T00:00:00Z")], at(NOW)).failed,
        1
    );
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
fn the_failure_policy_ignores_or_fails_at_once() {
    let judged = |verdict| PodView {
        verdict: Some(verdict),
        ..failed_at("2026-01-01T00:00:00Z")
    };
    let strict = JobView {
        backoff_limit: 0,
        ..job(Some(1), 1, false)
    };
    // Ignored failures do not count: with backoffLimit 0 the Job goes on, without back-off.
    let ignored = plan(&strict, &[judged(Verdict::Ignore)], at(NOW));
    assert_eq!(
        (ignored.finish, ignored.failed, ignored.create),
        (None, 0, vec![None])
    );
    let counted = plan(&strict, &[judged(Verdict::Count)], at(NOW));
    assert!(matches!(
        counted.finish,
        Some(Finish::Failed {
            reason: "BackoffLimitExceeded",
            ..
        })
    ));
    // FailJob ends the Job at once, whatever the limit, stopping the running pods.
    let fail = plan(
        &job(Some(3), 2, false),
        &[
            pod(Active, None),
            judged(Verdict::FailJob("exit code 42".into())),
        ],
        at(NOW),
    );
    assert_eq!(fail.delete, vec![0]);
    assert_eq!(
        fail.finish,
        Some(Finish::Failed {
            reason: "PodFailurePolicy",
            message: "exit code 42".into()
        })
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
