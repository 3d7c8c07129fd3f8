//! The Deployment's status, computed from its ReplicaSets (no I/O).

use std::sync::Arc;

use skiff_api::k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet,
};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::rollout::resolve;

/// The status `deployment` should report, given its new ReplicaSet and all it owns, at `now`.
pub fn status(
    deployment: &Deployment,
    new_rs: &ReplicaSet,
    all: &[Arc<ReplicaSet>],
    now: &Time,
) -> DeploymentStatus {
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
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
    let updated = new_rs.status.as_ref().map(|s| s.replicas).unwrap_or(0);
    let max_unavailable = deployment
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
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
    let complete = updated == desired && replicas == desired && available == desired;
    let previous = deployment.status.clone().unwrap_or_default();
    let conditions = vec![
        condition(
            &previous,
            now,
            "Available",
            is_available,
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
        ),
        condition(
            &previous,
            now,
            "Progressing",
            true,
            if complete {
                "NewReplicaSetAvailable"
            } else {
                "ReplicaSetUpdated"
            },
            &format!(
                "ReplicaSet \"{}\" {}.",
                new_rs.metadata.name.as_deref().unwrap_or_default(),
                if complete {
                    "has successfully progressed"
                } else {
                    "is progressing"
                }
            ),
        ),
    ];
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
    status: bool,
    reason: &str,
    message: &str,
) -> DeploymentCondition {
    let status = if status { "True" } else { "False" }.to_string();
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

    #[test]
    fn counts_replicas_and_reports_progress() {
        let new = rs("web-new", 2, 1);
        let all = [Arc::new(new.clone()), Arc::new(rs("web-old", 2, 2))];
        let rolling = status(&deployment(4, None), &new, &all, &at(100));
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
        let progressing = condition(&rolling, "Progressing");
        assert_eq!(progressing.reason.as_deref(), Some("ReplicaSetUpdated"));

        let done = rs("web-new", 4, 4);
        let complete = status(
            &deployment(4, None),
            &done,
            &[Arc::new(done.clone())],
            &at(100),
        );
        let progressing = condition(&complete, "Progressing");
        assert_eq!(
            progressing.reason.as_deref(),
            Some("NewReplicaSetAvailable")
        );
    }

    #[test]
    fn transition_times_change_only_when_a_condition_flips() {
        let down = rs("web-new", 4, 1);
        let first = status(
            &deployment(4, None),
            &down,
            &[Arc::new(down.clone())],
            &at(100),
        );
        assert_eq!(condition(&first, "Available").status, "False");
        let again = status(
            &deployment(4, Some(first.clone())),
            &down,
            &[Arc::new(down.clone())],
            &at(200),
        );
        assert_eq!(
            again, first,
            "nothing changed: the same status, not a new write"
        );
        let up = rs("web-new", 4, 4);
        let later = status(
            &deployment(4, Some(first)),
            &up,
            &[Arc::new(up.clone())],
            &at(300),
        );
        let available = condition(&later, "Available");
        assert_eq!(available.status, "True");
        assert_eq!(available.last_transition_time, Some(at(300)));
    }
}
