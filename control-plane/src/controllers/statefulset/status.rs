//! A StatefulSet's status from its pods, as Kubernetes counts them; the current revision
//! becomes the update revision once a rolling update reached every pod and all are ready.

use std::sync::Arc;
use std::time::Duration;

use skiff_api::k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::plan::{is_healthy, Revisions};
use super::pod::revision_of;
use crate::controllers::pods::{availability, Availability};

/// The status for `pods` (the set's own, any ordinal), and how soon a ready pod becomes
/// available under `minReadySeconds` if one is waiting.
pub fn status(
    sts: &StatefulSet,
    pods: &[Arc<Pod>],
    revisions: &Revisions,
    now: &Time,
) -> (StatefulSetStatus, Option<Duration>) {
    let spec = sts.spec.as_ref();
    let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let (mut replicas, mut ready, mut available, mut current, mut updated) = (0, 0, 0, 0, 0);
    let mut soonest: Option<Duration> = None;
    for pod in pods {
        replicas += 1;
        if is_healthy(pod) {
            ready += 1;
            match availability(pod, min_ready, now) {
                Availability::Available => available += 1,
                Availability::After(d) => soonest = Some(soonest.map_or(d, |s| s.min(d))),
                Availability::Unavailable => {}
            }
        }
        if pod.metadata.deletion_timestamp.is_none() {
            let revision = revision_of(pod);
            current += i32::from(revision == Some(revisions.current.as_str()));
            updated += i32::from(revision == Some(revisions.update.as_str()));
        }
    }
    let mut current_revision = revisions.current.clone();
    let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
    if updated == replicas && ready == replicas && replicas == desired {
        current_revision = revisions.update.clone();
        current = updated;
    }
    let status = StatefulSetStatus {
        replicas,
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        current_replicas: Some(current),
        updated_replicas: Some(updated),
        current_revision: Some(current_revision),
        update_revision: Some(revisions.update.clone()),
        observed_generation: sts.metadata.generation,
        collision_count: sts.status.as_ref().and_then(|s| s.collision_count),
        conditions: sts.status.as_ref().and_then(|s| s.conditions.clone()),
    };
    (status, soonest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::controllers::statefulset::pod::REVISION_LABEL;

    fn pod(revision: &str, ready: bool) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": "db-0", "labels": {REVISION_LABEL: revision}},
                "status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": if ready { "True" } else { "False" }}]}
            }))
            .expect("pod"),
        )
    }

    #[test]
    fn counts_and_advances_the_current_revision() {
        let sts: StatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "db", "generation": 4},
            "spec": {"replicas": 2, "serviceName": "db", "selector": {}, "template": {}}
        }))
        .expect("sts");
        let revisions = Revisions {
            current: "old".into(),
            update: "new".into(),
        };
        let now = Time(jiff::Timestamp::from_second(1_000).expect("time"));
        let cases = [
            (
                "mid rollout",
                vec![pod("old", true), pod("new", false)],
                (2, 1, 1, 1, "old"),
            ),
            (
                "updated but not ready",
                vec![pod("new", true), pod("new", false)],
                (2, 1, 0, 2, "old"),
            ),
            (
                "done",
                vec![pod("new", true), pod("new", true)],
                (2, 2, 2, 2, "new"),
            ),
            ("scaling up", vec![pod("new", true)], (1, 1, 0, 1, "old")),
        ];
        for (case, pods, (replicas, ready, current, updated, revision)) in cases {
            let (got, _) = status(&sts, &pods, &revisions, &now);
            assert_eq!(
                (
                    got.replicas,
                    got.ready_replicas,
                    got.current_replicas,
                    got.updated_replicas,
                    got.current_revision.as_deref()
                ),
                (
                    replicas,
                    Some(ready),
                    Some(current),
                    Some(updated),
                    Some(revision)
                ),
                "{case}"
            );
            assert_eq!(got.observed_generation, Some(4), "{case}");
            assert_eq!(got.update_revision.as_deref(), Some("new"), "{case}");
        }
    }
}
