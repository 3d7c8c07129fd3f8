//! The lifecycle step function: table tests of steps and phases.

use super::*;

fn view(observed: Observed, backoff_until: Option<Instant>) -> ContainerView {
    ContainerView {
        role: Role::App,
        observed,
        backoff_until,
        retry_at: None,
        started: true,
    }
}

fn retrying(observed: Observed, retry_at: Instant) -> ContainerView {
    ContainerView {
        retry_at: Some(retry_at),
        started: true,
        ..view(observed, None)
    }
}

#[test]
fn steps_table() {
    let now = Instant::now();
    let later = now + Duration::from_secs(10);
    let crashed = Observed::Exited { exit_code: 3 };
    let done = Observed::Exited { exit_code: 0 };
    let cases = [
        (
            "new container starts",
            RestartPolicy::Always,
            view(Observed::Absent, None),
            Step::Start,
        ),
        (
            "created container is started",
            RestartPolicy::Always,
            view(Observed::Created, None),
            Step::StartCreated,
        ),
        (
            "running is kept",
            RestartPolicy::Always,
            view(Observed::Running, None),
            Step::Keep,
        ),
        (
            "crash waits for backoff",
            RestartPolicy::Always,
            view(crashed, Some(later)),
            Step::WaitUntil(later),
        ),
        (
            "crash restarts after backoff",
            RestartPolicy::Always,
            view(crashed, Some(now)),
            Step::Start,
        ),
        (
            "Always restarts completed containers",
            RestartPolicy::Always,
            view(done, None),
            Step::Start,
        ),
        (
            "OnFailure restarts crashes",
            RestartPolicy::OnFailure,
            view(crashed, None),
            Step::Start,
        ),
        (
            "OnFailure keeps completed",
            RestartPolicy::OnFailure,
            view(done, None),
            Step::Keep,
        ),
        (
            "Never keeps crashes",
            RestartPolicy::Never,
            view(crashed, None),
            Step::Keep,
        ),
        (
            "a failed start waits for its retry",
            RestartPolicy::Always,
            retrying(Observed::Absent, later),
            Step::RetryAt(later),
        ),
        (
            "a due retry starts",
            RestartPolicy::Always,
            retrying(Observed::Absent, now),
            Step::Start,
        ),
        (
            "a restart after backoff still waits for a failed pull's retry",
            RestartPolicy::Always,
            ContainerView {
                backoff_until: Some(now),
                ..retrying(crashed, later)
            },
            Step::RetryAt(later),
        ),
    ];
    for (name, policy, container, expected) in cases {
        assert_eq!(
            step(policy, false, &[container], now),
            Ok(vec![expected]),
            "{name}"
        );
    }
    assert_eq!(
        step(
            RestartPolicy::Always,
            true,
            &[view(Observed::Running, None)],
            now
        ),
        Err(LifecycleError::Terminating)
    );
}

#[test]
fn phases_table() {
    use Observed::*;
    let cases: &[(RestartPolicy, &[Observed], bool, &str)] = &[
        (RestartPolicy::Always, &[Absent], false, "Pending"),
        (RestartPolicy::Always, &[Running, Absent], true, "Running"),
        (
            RestartPolicy::Always,
            &[Exited { exit_code: 3 }],
            true,
            "Running",
        ),
        (
            RestartPolicy::Never,
            &[Exited { exit_code: 0 }],
            true,
            "Succeeded",
        ),
        (
            RestartPolicy::Never,
            &[Exited { exit_code: 0 }, Exited { exit_code: 1 }],
            true,
            "Failed",
        ),
        (
            RestartPolicy::OnFailure,
            &[Exited { exit_code: 0 }],
            true,
            "Succeeded",
        ),
        (
            RestartPolicy::OnFailure,
            &[Exited { exit_code: 2 }],
            true,
            "Running",
        ),
        (
            RestartPolicy::Never,
            &[Running, Exited { exit_code: 1 }],
            true,
            "Running",
        ),
    ];
    for (policy, containers, started, expected) in cases {
        let containers: Vec<_> = containers.iter().map(|c| (Role::App, *c)).collect();
        assert_eq!(
            phase(*policy, &containers, *started),
            *expected,
            "{policy:?} {containers:?}"
        );
    }
}
