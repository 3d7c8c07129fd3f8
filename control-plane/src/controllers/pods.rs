//! Pod predicates shared by controllers and the scheduler.

use skiff_api::k8s_openapi::api::core::v1::Pod;

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
}
