//! The pod lifecycle as a pure step function: from what the pod asks for and what the runtime
//! shows, the next thing to do for each container. No I/O: the worker carries it out.

use std::time::Instant;

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
    pub observed: Observed,
    /// When a crashed container may start again.
    pub backoff_until: Option<Instant>,
}

/// What the worker should do next for one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Pull, resolve config, create and start the container (a new attempt if one exited).
    Start,
    /// Start the created container.
    StartCreated,
    /// Leave it: running, or finished for good.
    Keep,
    /// Exited and will restart at this instant (CrashLoopBackOff until then).
    WaitUntil(Instant),
}

/// Errors for transitions the lifecycle does not allow.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LifecycleError {
    #[error("pod is being deleted; containers may not start")]
    Terminating,
}

/// The step for each container of a pod that is not being deleted.
pub fn step(
    policy: RestartPolicy,
    deleting: bool,
    containers: &[ContainerView],
    now: Instant,
) -> Result<Vec<Step>, LifecycleError> {
    if deleting {
        return Err(LifecycleError::Terminating);
    }
    Ok(containers
        .iter()
        .map(|c| match c.observed {
            Observed::Absent => Step::Start,
            Observed::Created => Step::StartCreated,
            Observed::Running => Step::Keep,
            Observed::Exited { exit_code } if policy.restarts(exit_code) => match c.backoff_until {
                Some(until) if until > now => Step::WaitUntil(until),
                _ => Step::Start,
            },
            Observed::Exited { .. } => Step::Keep,
        })
        .collect())
}

/// Pod phase from its containers, as Kubernetes defines it.
pub fn phase(policy: RestartPolicy, containers: &[Observed], ever_started: bool) -> &'static str {
    let running = containers.iter().any(|c| matches!(c, Observed::Running));
    let exits: Vec<i32> = containers
        .iter()
        .filter_map(|c| match c {
            Observed::Exited { exit_code } => Some(*exit_code),
            _ => None,
        })
        .collect();
    let all_exited = exits.len() == containers.len() && !containers.is_empty();
    if all_exited && !exits.iter().any(|code| policy.restarts(*code)) {
        return if exits.iter().all(|c| *c == 0) {
            "Succeeded"
        } else {
            "Failed"
        };
    }
    if running || (ever_started && policy != RestartPolicy::Never) {
        "Running"
    } else {
        "Pending"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn view(observed: Observed, backoff_until: Option<Instant>) -> ContainerView {
        ContainerView {
            observed,
            backoff_until,
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
            assert_eq!(
                phase(*policy, containers, *started),
                *expected,
                "{policy:?} {containers:?}"
            );
        }
    }
}
