//! The Deployment's status, computed from its ReplicaSets (no I/O): replica counts and the
//! `Available` and `Progressing` conditions, with `progressDeadlineSeconds`.

use std::sync::Arc;
use std::time::Duration;

use skiff_api::k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet,
};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::rollout::resolve;

/// `progressDeadlineSeconds` when unset.
const DEFAULT_PROGRESS_DEADLINE: i32 = 600;
/// The `Progressing` reason once a rollout stalled past its deadline.
pub const DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";

/// What this reconcile did to the ReplicaSets, beyond what their counts show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// The new ReplicaSet was created.
    pub created: bool,
    /// A ReplicaSet was scaled.
    pub scaled: bool,
}

/// The status `deployment` should report, given its new ReplicaSet (none while paused before
/// one exists), all it owns, and what this reconcile changed, at `now`.
pub fn status(
    deployment: &Deployment,
    new_rs: Option<&ReplicaSet>,
    all: &[Arc<ReplicaSet>],
    changes: Changes,
    now: &Time,
) -> DeploymentStatus {
    let spec = deployment.spec.clone().unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1);
    let sum = |f: &dyn Fn(&ReplicaSet) -> i32| all.iter().map(|rs| f(rs)).sum::<i32>();
    let replicas = sum(&|rs| rs.status.as_ref().map(|s| s.replicas).unwrap_or(0));
    let ready = sum(&|rs| {
        rs.status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
    });
    let available = sum(&|rs| {
        rs.status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0)
    });
    let new_status = new_rs.and_then(|rs| rs.status.as_ref());
    let updated = new_status.map(|s| s.replicas).unwrap_or(0);
    let new_available = new_status.and_then(|s| s.available_replicas).unwrap_or(0);
    let max_unavailable = spec
        .strategy
        .as_ref()
        .filter(|s| s.type_.as_deref() != Some("Recreate"))
        .map(|s| {
            resolve(
                s.rolling_update
                    .as_ref()
                    .and_then(|r| r.max_unavailable.as_ref()),
                desired,
                false,
            )
        })
        .unwrap_or(0);
    let is_available = available >= desired - max_unavailable;
    let complete =
        new_rs.is_some() && updated == desired && replicas == desired && new_available == desired;
    let previous = deployment.status.clone().unwrap_or_default();
    let counts_moved = previous.replicas != Some(replicas)
        || previous.updated_replicas != Some(updated)
        || previous.ready_replicas != Some(ready)
        || previous.available_replicas != Some(available)
        || previous.observed_generation != deployment.metadata.generation;
    let name = new_rs
        .and_then(|rs| rs.metadata.name.as_deref())
        .unwrap_or_default();
    let was = find(&previous, "Progressing");
    let was_reason = was.and_then(|c| c.reason.as_deref());
    let (progressing, reason, message) = if spec.paused == Some(true) {
        (None, "DeploymentPaused", "Deployment is paused".to_string())
    } else if complete {
        (
            Some(true),
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{name}\" has successfully progressed."),
        )
    } else if changes.created {
        (
            Some(true),
            "NewReplicaSetCreated",
            format!("Created new replica set \"{name}\""),
        )
    } else if was_reason == Some("DeploymentPaused") {
        (
            Some(true),
            "DeploymentResumed",
            "Deployment is resumed".to_string(),
        )
    } else if changes.scaled
        || counts_moved
        || was.is_none()
        || was_reason == Some("NewReplicaSetAvailable")
    {
        (
            Some(true),
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{name}\" is progressing."),
        )
    } else if let Some(was) =
        was.filter(|w| w.status != "True" || !past_deadline(deployment, w, now))
    {
        // No progress, deadline not passed (or already reported): the condition stays.
        let conditions = vec![
            available_condition(&previous, now, is_available),
            was.clone(),
        ];
        return counts(deployment, replicas, updated, ready, available, conditions);
    } else {
        (
            Some(false),
            DEADLINE_EXCEEDED,
            format!("ReplicaSet \"{name}\" has timed out progressing."),
        )
    };
    let mut progress = condition(&previous, now, "Progressing", progressing, reason, &message);
    if progressing == Some(true) && reason != "NewReplicaSetAvailable" {
        // Progress restarts the deadline.
        progress.last_update_time = Some(now.clone());
    }
    counts(
        deployment,
        replicas,
        updated,
        ready,
        available,
        vec![available_condition(&previous, now, is_available), progress],
    )
}

/// How long until `status`'s rollout passes its progress deadline, if it is still running.
pub fn until_deadline(
    deployment: &Deployment,
    status: &DeploymentStatus,
    now: &Time,
) -> Option<Duration> {
    let progressing = find(status, "Progressing")?;
    let running = progressing.status == "True"
        && !matches!(
            progressing.reason.as_deref(),
            Some("NewReplicaSetAvailable")
        );
    if !running {
        return None;
    }
    let since = progressing.last_update_time.as_ref()?;
    let deadline = since.0 + jiff::SignedDuration::from_secs(deadline_seconds(deployment));
    let left = now.0.duration_until(deadline);
    Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
}

fn deadline_seconds(deployment: &Deployment) -> i64 {
    i64::from(
        deployment
            .spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            .unwrap_or(DEFAULT_PROGRESS_DEADLINE),
    )
}

fn past_deadline(deployment: &Deployment, progressing: &DeploymentCondition, now: &Time) -> bool {
    progressing
        .last_update_time
        .as_ref()
        .is_some_and(|since| now.0.as_second() - since.0.as_second() > deadline_seconds(deployment))
}

fn find<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn available_condition(
    previous: &DeploymentStatus,
    now: &Time,
    is_available: bool,
) -> DeploymentCondition {
    condition(
        previous,
        now,
        "Available",
        Some(is_available),
        if is_available {
            "MinimumReplicasAvailable"
        } else {
            "MinimumReplicasUnavailable"
        },
        if is_available {
            "Deployment has minimum availability."
        } else {
            "Deployment does not have minimum availability."
        },
    )
}

fn counts(
    deployment: &Deployment,
    replicas: i32,
    updated: i32,
    ready: i32,
    available: i32,
    conditions: Vec<DeploymentCondition>,
) -> DeploymentStatus {
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    DeploymentStatus {
        replicas: Some(replicas),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        unavailable_replicas: Some((desired - available).max(0)),
        observed_generation: deployment.metadata.generation,
        conditions: Some(conditions),
        collision_count: None,
        terminating_replicas: None,
    }
}

/// A condition that keeps its transition time unless its status flips.
fn condition(
    previous: &DeploymentStatus,
    now: &Time,
    type_: &str,
    status: Option<bool>,
    reason: &str,
    message: &str,
) -> DeploymentCondition {
    let status = match status {
        Some(true) => "True",
        Some(false) => "False",
        None => "Unknown",
    }
    .to_string();
    let old = previous
        .conditions
        .as_ref()
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_));
    let transitioned = match old {
        Some(old) if old.status == status => old.last_transition_time.clone(),
        _ => Some(now.clone()),
    };
    let unchanged = old.is_some_and(|o| {
        o.status == status
            && o.reason.as_deref() == Some(reason)
            && o.message.as_deref() == Some(message)
    });
    DeploymentCondition {
        type_: type_.to_string(),
        status,
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_transition_time: transitioned,
        last_update_time: if unchanged {
            old.and_then(|o| o.last_update_time.clone())
        } else {
            Some(now.clone())
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use serde_json::json;

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).expect("time"))
    }

    fn deployment(replicas: i32, status: Option<DeploymentStatus>) -> Deployment {
        let mut d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": 3},
            "spec": {"replicas": replicas, "selector": {}, "template": {},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%"}}}
        }))
        .expect("deployment");
        d.status = status;
        d
    }

    fn rs(name: &str, replicas: i32, available: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "status": {"replicas": replicas, "readyReplicas": available, "availableReplicas": available}
        }))
        .expect("rs")
    }

    fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> &'a DeploymentCondition {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_)
            .expect("condition")
    }

    /// The status with `new` and the `old` ReplicaSets at `second`, changing nothing.
    fn run(d: &Deployment, new: &ReplicaSet, old: &[ReplicaSet], second: i64) -> DeploymentStatus {
        let all: Vec<_> = std::iter::once(new)
            .chain(old)
            .cloned()
            .map(Arc::new)
            .collect();
        status(d, Some(new), &all, Changes::default(), &at(second))
    }

    fn reason(status: &DeploymentStatus) -> (&str, &str) {
        let c = condition(status, "Progressing");
        (c.status.as_str(), c.reason.as_deref().unwrap_or_default())
    }

    #[test]
    fn counts_replicas_and_reports_progress() {
        let new = rs("web-new", 2, 1);
        let rolling = run(&deployment(4, None), &new, &[rs("web-old", 2, 2)], 100);
        assert_eq!(
            (
                rolling.replicas,
                rolling.updated_replicas,
                rolling.available_replicas,
                rolling.unavailable_replicas,
                rolling.observed_generation
            ),
            (Some(4), Some(2), Some(3), Some(1), Some(3))
        );
        // 3 of 4 available is within maxUnavailable 25%.
        assert_eq!(condition(&rolling, "Available").status, "True");
        assert_eq!(reason(&rolling), ("True", "ReplicaSetUpdated"));

        let done = rs("web-new", 4, 4);
        let complete = run(&deployment(4, None), &done, &[], 100);
        assert_eq!(reason(&complete), ("True", "NewReplicaSetAvailable"));
    }

    #[test]
    fn transition_times_change_only_when_a_condition_flips() {
        let down = rs("web-new", 4, 1);
        let first = run(&deployment(4, None), &down, &[], 100);
        assert_eq!(condition(&first, "Available").status, "False");
        let again = run(&deployment(4, Some(first.clone())), &down, &[], 200);
        assert_eq!(
            again, first,
            "nothing changed: the same status, not a new write"
        );
        let up = rs("web-new", 4, 4);
        let later = run(&deployment(4, Some(first)), &up, &[], 300);
        let available = condition(&later, "Available");
        assert_eq!(available.status, "True");
        assert_eq!(available.last_transition_time, Some(at(300)));
    }

    #[test]
    fn progressing_reasons_and_the_deadline() {
        // The deadline is 600 s by default; the rollout stalls at 1 of 4 available from t=100.
        let stalled = rs("web-new", 4, 1);
        let all = [Arc::new(stalled.clone())];
        let created = status(
            &deployment(4, None),
            Some(&stalled),
            &all,
            Changes {
                created: true,
                scaled: true,
            },
            &at(100),
        );
        assert_eq!(reason(&created), ("True", "NewReplicaSetCreated"));
        let d = deployment(4, Some(created.clone()));
        assert_eq!(
            until_deadline(&d, &created, &at(400)),
            Some(Duration::from_secs(300))
        );
        let cases = [
            (
                "before the deadline: unchanged",
                650,
                ("True", "NewReplicaSetCreated"),
            ),
            (
                "at the deadline: not yet",
                700,
                ("True", "NewReplicaSetCreated"),
            ),
            ("past it: exceeded", 701, ("False", DEADLINE_EXCEEDED)),
        ];
        for (case, second, want) in cases {
            assert_eq!(reason(&run(&d, &stalled, &[], second)), want, "{case}");
        }
        let exceeded = run(&d, &stalled, &[], 701);
        let d = deployment(4, Some(exceeded.clone()));
        assert_eq!(
            until_deadline(&d, &exceeded, &at(800)),
            None,
            "reported once"
        );
        assert_eq!(run(&d, &stalled, &[], 900), exceeded, "stays exceeded");
        let moving = rs("web-new", 4, 2);
        let resumed = run(&d, &moving, &[], 900);
        assert_eq!(
            reason(&resumed),
            ("True", "ReplicaSetUpdated"),
            "progress again"
        );
        assert_eq!(
            condition(&resumed, "Progressing").last_update_time,
            Some(at(900))
        );
    }

    #[test]
    fn a_paused_deployment_reports_paused_without_a_deadline() {
        let stalled = rs("web-new", 4, 1);
        let mut d = deployment(4, None);
        d.spec.as_mut().expect("spec").paused = Some(true);
        let paused = run(&d, &stalled, &[], 100);
        assert_eq!(reason(&paused), ("Unknown", "DeploymentPaused"));
        assert_eq!(until_deadline(&d, &paused, &at(100)), None);
        d.status = Some(paused.clone());
        assert_eq!(run(&d, &stalled, &[], 10_000), paused);
        d.spec.as_mut().expect("spec").paused = Some(false);
        assert_eq!(
            reason(&run(&d, &stalled, &[], 10_000)),
            ("True", "DeploymentResumed")
        );
        let none = status(&d, None, &[], Changes::default(), &at(1));
        assert_eq!(none.updated_replicas, Some(0), "no new ReplicaSet yet");
    }
}
