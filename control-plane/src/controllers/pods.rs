//! Pod predicates shared by controllers and the scheduler.

use std::time::Duration;

use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Not being deleted and not finished: counts toward a ReplicaSet's replicas.
pub fn is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && !is_terminal(pod)
}

/// Phase Succeeded or Failed.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A pod's availability under `minReadySeconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// Not ready.
    Unavailable,
    /// Ready, and available after this much longer.
    After(Duration),
    /// Ready for at least `minReadySeconds`.
    Available,
}

/// Whether `pod` has been ready for `min_ready_seconds` at `now` (a ready pod with no
/// transition time counts as available).
pub fn availability(pod: &Pod, min_ready_seconds: i32, now: &Time) -> Availability {
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready" && c.status == "True"));
    let Some(ready) = ready else {
        return Availability::Unavailable;
    };
    let min_ready = i64::from(min_ready_seconds.max(0));
    let ready_for = ready
        .last_transition_time
        .as_ref()
        .map_or(min_ready, |since| now.0.as_second() - since.0.as_second());
    if ready_for >= min_ready {
        Availability::Available
    } else {
        Availability::After(Duration::from_secs((min_ready - ready_for) as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    fn pod(phase: &str, ready: bool) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn classifies_pods() {
        assert!(is_active(&pod("Running", true)) && is_ready(&pod("Running", true)));
        assert!(!is_ready(&pod("Running", false)));
        assert!(!is_active(&pod("Succeeded", false)) && is_terminal(&pod("Failed", false)));
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let at = |second| Time(jiff::Timestamp::from_second(second).expect("time"));
        let mut ready = pod("Running", true);
        ready
            .status
            .as_mut()
            .expect("status")
            .conditions
            .as_mut()
            .expect("conditions")[0]
            .last_transition_time = Some(at(100));
        let cases = [
            (
                "not ready",
                pod("Running", false),
                0,
                100,
                Availability::Unavailable,
            ),
            (
                "no minReadySeconds",
                ready.clone(),
                0,
                100,
                Availability::Available,
            ),
            (
                "too soon",
                ready.clone(),
                10,
                104,
                Availability::After(Duration::from_secs(6)),
            ),
            (
                "long enough",
                ready.clone(),
                10,
                110,
                Availability::Available,
            ),
            (
                "no transition time",
                pod("Running", true),
                10,
                0,
                Availability::Available,
            ),
        ];
        for (case, pod, min_ready, now, want) in cases {
            assert_eq!(availability(&pod, min_ready, &at(now)), want, "{case}");
        }
    }
}
