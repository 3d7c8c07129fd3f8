//! Init containers and sidecars in the lifecycle: their order, restarts and the phase.

use std::time::Duration;

use tokio::time::Instant;

use super::*;

fn c(role: Role, observed: Observed) -> ContainerView {
    ContainerView {
        role,
        observed,
        backoff_until: None,
        retry_at: None,
        started: true,
    }
}

const OK: Observed = Observed::Exited { exit_code: 0 };
const FAIL: Observed = Observed::Exited { exit_code: 1 };

#[test]
fn init_and_sidecar_steps_table() {
    use Observed::{Absent, Running};
    use RestartPolicy::{Always, Never, OnFailure};
    use Role::{App, Init, Sidecar};
    use Step::{Keep, Start, Stop};
    let now = Instant::now();
    let later = now + Duration::from_secs(10);
    let backing_off = ContainerView {
        backoff_until: Some(later),
        ..c(Init, FAIL)
    };
    let cases: Vec<(&str, RestartPolicy, Vec<ContainerView>, Vec<Step>)> = vec![
        (
            "only the first init container starts",
            Always,
            vec![c(Init, Absent), c(Init, Absent), c(App, Absent)],
            vec![Start, Keep, Keep],
        ),
        (
            "a running init container holds the rest",
            Always,
            vec![c(Init, Running), c(Init, Absent), c(App, Absent)],
            vec![Keep, Keep, Keep],
        ),
        (
            "the next init container starts after a success",
            Always,
            vec![c(Init, OK), c(Init, Absent), c(App, Absent)],
            vec![Keep, Start, Keep],
        ),
        (
            "app containers start once every init container succeeded",
            Always,
            vec![c(Init, OK), c(Init, OK), c(App, Absent), c(App, Absent)],
            vec![Keep, Keep, Start, Start],
        ),
        (
            "a failed init container restarts in an Always pod",
            Always,
            vec![c(Init, FAIL), c(App, Absent)],
            vec![Start, Keep],
        ),
        (
            "a failed init container backs off, the app waits",
            OnFailure,
            vec![backing_off, c(App, Absent)],
            vec![Step::WaitUntil(later), Keep],
        ),
        (
            "a failed init container stays failed in a Never pod",
            Never,
            vec![c(Init, FAIL), c(App, Absent)],
            vec![Keep, Keep],
        ),
        (
            "a completed init container is not rerun in an Always pod",
            Always,
            vec![c(Init, OK), c(App, Running)],
            vec![Keep, Keep],
        ),
        (
            "the init container after a sidecar waits for it to run",
            Always,
            vec![c(Sidecar, Absent), c(Init, Absent), c(App, Absent)],
            vec![Start, Keep, Keep],
        ),
        (
            "a running sidecar lets the next one start",
            Always,
            vec![c(Sidecar, Running), c(Init, Absent), c(App, Absent)],
            vec![Keep, Start, Keep],
        ),
        (
            "a running sidecar whose startup probe has not passed holds the next one",
            Always,
            vec![
                ContainerView {
                    started: false,
                    ..c(Sidecar, Running)
                },
                c(Init, Absent),
                c(App, Absent),
            ],
            vec![Keep, Keep, Keep],
        ),
        (
            "a sidecar restarts in a Never pod",
            Never,
            vec![c(Sidecar, OK), c(App, Running)],
            vec![Start, Keep],
        ),
        (
            "sidecars stop once the app containers are done",
            Never,
            vec![c(Sidecar, Running), c(Sidecar, Running), c(App, OK)],
            vec![Stop, Stop, Keep],
        ),
        (
            "a stopped sidecar stays stopped",
            OnFailure,
            vec![c(Sidecar, FAIL), c(App, OK)],
            vec![Keep, Keep],
        ),
        (
            "sidecars keep running while an Always pod's app restarts",
            Always,
            vec![c(Sidecar, Running), c(App, OK)],
            vec![Keep, Start],
        ),
    ];
    for (name, policy, containers, expected) in cases {
        assert_eq!(
            step(policy, false, &containers, now),
            Ok(expected),
            "{name}"
        );
    }
}

#[test]
fn init_phases_table() {
    use Observed::{Absent, Running};
    use RestartPolicy::{Always, Never, OnFailure};
    use Role::{App, Init, Sidecar};
    type Case = (RestartPolicy, Vec<(Role, Observed)>, bool, &'static str);
    let cases: Vec<Case> = vec![
        (
            Always,
            vec![(Init, Running), (App, Absent)],
            false,
            "Pending",
        ),
        (Always, vec![(Init, FAIL), (App, Absent)], false, "Pending"),
        (
            OnFailure,
            vec![(Init, FAIL), (App, Absent)],
            false,
            "Pending",
        ),
        (Never, vec![(Init, FAIL), (App, Absent)], false, "Failed"),
        (Always, vec![(Init, OK), (App, Running)], true, "Running"),
        (
            Never,
            vec![(Sidecar, Absent), (App, Absent)],
            false,
            "Pending",
        ),
        (
            Never,
            vec![(Sidecar, Running), (App, Absent)],
            false,
            "Running",
        ),
        (
            Never,
            vec![(Sidecar, Running), (App, OK)],
            true,
            "Succeeded",
        ),
        (Never, vec![(Sidecar, FAIL), (App, OK)], true, "Succeeded"),
        (OnFailure, vec![(Sidecar, OK), (App, FAIL)], true, "Running"),
        (Never, vec![(Sidecar, OK), (App, FAIL)], true, "Failed"),
    ];
    for (policy, containers, started, expected) in cases {
        assert_eq!(
            phase(policy, &containers, started),
            expected,
            "{policy:?} {containers:?}"
        );
    }
}

#[test]
fn a_crashing_sidecar_wakes_the_worker_even_in_a_never_pod() {
    let now = Instant::now();
    let later = now + Duration::from_secs(10);
    let sidecar = ContainerView {
        backoff_until: Some(later),
        ..c(Role::Sidecar, FAIL)
    };
    let init = ContainerView {
        backoff_until: Some(later),
        ..c(Role::Init, FAIL)
    };
    assert_eq!(
        next_wake(RestartPolicy::Never, &[sidecar], now),
        Some(later)
    );
    assert_eq!(next_wake(RestartPolicy::Never, &[init], now), None);
    assert_eq!(next_wake(RestartPolicy::Always, &[init], now), Some(later));
}
