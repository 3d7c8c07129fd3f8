//! The pod lifecycle as pure functions: from what the pod asks for, what the runtime shows
//! and the time, the next thing to do for each container, when to look again, and the pod's
//! phase. No I/O: the worker carries it out. Time is `tokio::time::Instant`, so tests pause it.

use std::time::Duration;

use tokio::time::Instant;

use skiff_api::backoff::Backoff;

/// `spec.restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    pub fn parse(policy: Option<&str>) -> Self {
        match policy {
            Some("Never") => RestartPolicy::Never,
            Some("OnFailure") => RestartPolicy::OnFailure,
            _ => RestartPolicy::Always,
        }
    }

    /// Whether any exit can lead to a restart.
    pub fn restarts_any(self) -> bool {
        self != RestartPolicy::Never
    }

    /// Whether a container that exited with `exit_code` runs again.
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => exit_code != 0,
            RestartPolicy::Never => false,
        }
    }
}

/// Where a container stands in its pod: an init container runs to completion before the
/// next; a sidecar (an init container with `restartPolicy: Always`) starts in its turn and
/// keeps running beside the app containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    Init,
    Sidecar,
    #[default]
    App,
}

impl Role {
    /// The role of an init container with this `restartPolicy`.
    pub fn of_init(restart_policy: Option<&str>) -> Self {
        match restart_policy {
            Some("Always") => Role::Sidecar,
            _ => Role::Init,
        }
    }

    /// The restart policy that applies to a container in this role of a pod with `pod`:
    /// an init container restarts only after a failure (never in a `Never` pod), a sidecar
    /// always.
    pub fn policy(self, pod: RestartPolicy) -> RestartPolicy {
        match (self, pod) {
            (Role::App, policy) => policy,
            (Role::Sidecar, _) => RestartPolicy::Always,
            (Role::Init, RestartPolicy::Never) => RestartPolicy::Never,
            (Role::Init, _) => RestartPolicy::OnFailure,
        }
    }
}

/// A container as the runtime shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// No container was created for the current attempt.
    Absent,
    Created,
    Running,
    Exited {
        exit_code: i32,
    },
}

/// One container's situation.
#[derive(Debug, Clone, Copy)]
pub struct ContainerView {
    pub role: Role,
    pub observed: Observed,
    /// When a crashed container may start again.
    pub backoff_until: Option<Instant>,
    /// When a failed pull, create or start may be tried again.
    pub retry_at: Option<Instant>,
    /// Its startup probe succeeded, or it has none.
    pub started: bool,
}

/// What the worker should do next for one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Pull, resolve config, create and start the container (a new attempt if one exited).
    Start,
    /// Start the created container.
    StartCreated,
    /// Leave it: running, finished for good, or waiting for the init containers before it.
    Keep,
    /// Stop it: a sidecar whose app containers have all finished.
    Stop,
    /// Exited and will restart at this instant (CrashLoopBackOff until then).
    WaitUntil(Instant),
    /// An earlier attempt to start it failed; try again at this instant.
    RetryAt(Instant),
}

/// Errors for transitions the lifecycle does not allow.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LifecycleError {
    #[error("pod is being deleted; containers may not start")]
    Terminating,
}

/// The step for each container of a pod that is not being deleted, in the pod's order (init
/// containers first). Init containers run one at a time, each to success before the next;
/// a sidecar must be running and started (its startup probe passed) before the next starts;
/// app containers start once all are.
/// When the app containers have finished for good, the sidecars are stopped.
pub fn step(
    policy: RestartPolicy,
    deleting: bool,
    containers: &[ContainerView],
    now: Instant,
) -> Result<Vec<Step>, LifecycleError> {
    if deleting {
        return Err(LifecycleError::Terminating);
    }
    let apps_done = apps_finished(policy, containers);
    let mut steps = vec![Step::Keep; containers.len()];
    for (i, c) in containers.iter().enumerate() {
        match c.role {
            Role::Init if c.observed == (Observed::Exited { exit_code: 0 }) => {}
            Role::Init => {
                steps[i] = one(c.role.policy(policy), c, now);
                return Ok(steps);
            }
            Role::Sidecar if apps_done => {
                if c.observed == Observed::Running {
                    steps[i] = Step::Stop;
                }
            }
            Role::Sidecar => {
                steps[i] = one(RestartPolicy::Always, c, now);
                if c.observed != Observed::Running || !c.started {
                    return Ok(steps);
                }
            }
            Role::App => steps[i] = one(policy, c, now),
        }
    }
    Ok(steps)
}

/// One container's step under `policy`.
fn one(policy: RestartPolicy, c: &ContainerView, now: Instant) -> Step {
    let start = match c.retry_at {
        Some(at) if at > now => Step::RetryAt(at),
        _ => Step::Start,
    };
    match c.observed {
        Observed::Absent => start,
        Observed::Created => Step::StartCreated,
        Observed::Running => Step::Keep,
        Observed::Exited { exit_code } if policy.restarts(exit_code) => match c.backoff_until {
            Some(until) if until > now => Step::WaitUntil(until),
            _ => start,
        },
        Observed::Exited { .. } => Step::Keep,
    }
}

/// Whether the pod's app containers have all exited and none will run again.
fn apps_finished(policy: RestartPolicy, containers: &[ContainerView]) -> bool {
    let mut apps = containers.iter().filter(|c| c.role == Role::App).peekable();
    apps.peek().is_some()
        && apps.all(
            |c| matches!(c.observed, Observed::Exited { exit_code } if !policy.restarts(exit_code)),
        )
}

/// A crash as first seen: the consecutive crashes so far and when the restart may happen.
/// A container that ran at least `backoff.reset_after` starts its count again.
pub fn crashed(crashes: u32, ran: Duration, backoff: &Backoff, now: Instant) -> (u32, Instant) {
    let crashes = if backoff.resets(ran) { 1 } else { crashes + 1 };
    (crashes, now + backoff.delay(crashes))
}

/// When to look again without news from the API or the runtime: the earliest restart after
/// a backoff or retry of a failed start.
pub fn next_wake(
    policy: RestartPolicy,
    containers: &[ContainerView],
    now: Instant,
) -> Option<Instant> {
    containers
        .iter()
        .flat_map(|c| {
            let restart = match c.observed {
                Observed::Exited { .. } if c.role.policy(policy).restarts_any() => c.backoff_until,
                _ => None,
            };
            [restart, c.retry_at.map(|at| at.max(now))]
        })
        .flatten()
        .min()
}

/// Grace for stopping the containers: the deletion's, else the pod's
/// `terminationGracePeriodSeconds`, else Kubernetes' default of 30 s.
pub fn termination_grace(deletion: Option<i64>, spec: Option<i64>) -> Duration {
    const DEFAULT_GRACE: i64 = 30;
    Duration::from_secs(deletion.or(spec).unwrap_or(DEFAULT_GRACE).max(0) as u64)
}

/// Whether the init containers have all succeeded and the sidecars all started.
pub fn initialized(containers: &[(Role, Observed)]) -> bool {
    containers.iter().all(|(role, observed)| match role {
        Role::Init => *observed == Observed::Exited { exit_code: 0 },
        Role::Sidecar => matches!(observed, Observed::Running | Observed::Exited { .. }),
        Role::App => true,
    })
}

/// Pod phase from its containers, as Kubernetes defines it: Pending until initialized
/// (Failed when an init container failed in a `Never` pod), then from the app containers
/// (`ever_started`: any of them was ever started).
pub fn phase(
    policy: RestartPolicy,
    containers: &[(Role, Observed)],
    ever_started: bool,
) -> &'static str {
    let init_failed = containers.iter().any(|(role, observed)| {
        *role == Role::Init
            && matches!(observed, Observed::Exited { exit_code }
                if *exit_code != 0 && !role.policy(policy).restarts(*exit_code))
    });
    if init_failed {
        return "Failed";
    }
    if !initialized(containers) {
        return "Pending";
    }
    let apps: Vec<Observed> = containers
        .iter()
        .filter(|(role, _)| *role == Role::App)
        .map(|(_, observed)| *observed)
        .collect();
    let sidecar_running = containers
        .iter()
        .any(|(role, observed)| *role == Role::Sidecar && *observed == Observed::Running);
    let running = apps.iter().any(|c| matches!(c, Observed::Running));
    let exits: Vec<i32> = apps
        .iter()
        .filter_map(|c| match c {
            Observed::Exited { exit_code } => Some(*exit_code),
            _ => None,
        })
        .collect();
    let all_exited = exits.len() == apps.len() && !apps.is_empty();
    if all_exited && !exits.iter().any(|code| policy.restarts(*code)) {
        return if exits.iter().all(|c| *c == 0) {
            "Succeeded"
        } else {
            "Failed"
        };
    }
    if running || sidecar_running || (ever_started && policy != RestartPolicy::Never) {
        "Running"
    } else {
        "Pending"
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "lifecycle_init_tests.rs"]
mod init_tests;

#[cfg(test)]
#[path = "lifecycle_timing_tests.rs"]
mod timing_tests;
