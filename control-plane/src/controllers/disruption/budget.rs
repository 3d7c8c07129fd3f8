//! A PodDisruptionBudget's numbers as Kubernetes' disruption controller computes them, as a
//! pure function of the budget's spec and the pods it selects.

use std::collections::BTreeSet;

use skiff_api::intstr::{self, NotAPercent};
use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use skiff_api::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use skiff_api::selector::LabelSelector;

/// Whether `pdb` selects `pod`: same namespace and its selector matches (in policy/v1 an
/// empty selector selects every pod, a missing one none).
pub fn selects(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    if pdb.metadata.namespace != pod.metadata.namespace {
        return false;
    }
    let Some(selector) = pdb.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    LabelSelector::from_k8s(selector).is_ok_and(|s| s.matches(&labels))
}

/// What the controller knows of one selected pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFacts {
    pub name: String,
    /// Ready and not being deleted.
    pub healthy: bool,
    /// The uid and scale (desired replicas) of its controller, when it has one with a scale.
    pub controller: Option<(String, i32)>,
}

/// The budget's status numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub expected_pods: i32,
    pub desired_healthy: i32,
    pub current_healthy: i32,
    pub disruptions_allowed: i32,
}

/// Why the numbers cannot be computed (the budget then allows no disruption).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("found no controller with a scale for pod {pod:?}")]
    NoController { pod: String },
    #[error("{field}: {source}")]
    Percent {
        field: &'static str,
        source: NotAPercent,
    },
}

/// The budget over `pods`; `disrupted` names pods an eviction already counted as gone.
/// With an integer `minAvailable` the expected count is the number of selected pods; with a
/// percentage or `maxUnavailable` it is the sum of their controllers' scales.
pub fn compute(
    spec: &PodDisruptionBudgetSpec,
    pods: &[PodFacts],
    disrupted: &BTreeSet<String>,
) -> Result<Budget, BudgetError> {
    let current_healthy = pods
        .iter()
        .filter(|p| p.healthy && !disrupted.contains(&p.name))
        .count() as i32;
    let (expected_pods, desired_healthy) = match (&spec.max_unavailable, &spec.min_available) {
        (Some(max_unavailable), _) => {
            let expected = expected_scale(pods)?;
            let unavailable =
                intstr::scaled_value(max_unavailable, expected, true).map_err(|source| {
                    BudgetError::Percent {
                        field: "spec.maxUnavailable",
                        source,
                    }
                })?;
            (expected, (expected - unavailable).max(0))
        }
        (None, Some(IntOrString::Int(min))) => (pods.len() as i32, *min),
        (None, Some(min @ IntOrString::String(_))) => {
            let expected = expected_scale(pods)?;
            let desired = intstr::scaled_value(min, expected, true).map_err(|source| {
                BudgetError::Percent {
                    field: "spec.minAvailable",
                    source,
                }
            })?;
            (expected, desired)
        }
        (None, None) => (pods.len() as i32, 0),
    };
    let disruptions_allowed = if expected_pods <= 0 {
        0
    } else {
        (current_healthy - desired_healthy).max(0)
    };
    Ok(Budget {
        expected_pods,
        desired_healthy,
        current_healthy,
        disruptions_allowed,
    })
}

/// The sum of the scales of the pods' controllers, each controller counted once.
fn expected_scale(pods: &[PodFacts]) -> Result<i32, BudgetError> {
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for pod in pods {
        let Some((uid, scale)) = &pod.controller else {
            return Err(BudgetError::NoController {
                pod: pod.name.clone(),
            });
        };
        if seen.insert(uid.clone()) {
            total += scale;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(min: Option<IntOrString>, max: Option<IntOrString>) -> PodDisruptionBudgetSpec {
        PodDisruptionBudgetSpec {
            min_available: min,
            max_unavailable: max,
            ..Default::default()
        }
    }

    fn pods(healthy: usize, unhealthy: usize, scale: i32) -> Vec<PodFacts> {
        (0..healthy + unhealthy)
            .map(|i| PodFacts {
                name: format!("p{i}"),
                healthy: i < healthy,
                controller: Some(("rs".into(), scale)),
            })
            .collect()
    }

    #[test]
    fn budgets_table() {
        use IntOrString::{Int, String as Pct};
        let budget = |expected, desired, current, allowed| Budget {
            expected_pods: expected,
            desired_healthy: desired,
            current_healthy: current,
            disruptions_allowed: allowed,
        };
        let cases = [
            (
                "minAvailable 2 of 3 healthy",
                spec(Some(Int(2)), None),
                pods(3, 0, 3),
                budget(3, 2, 3, 1),
            ),
            (
                "minAvailable 2 with one unready",
                spec(Some(Int(2)), None),
                pods(2, 1, 3),
                budget(3, 2, 2, 0),
            ),
            (
                "minAvailable counts pods, not scale",
                spec(Some(Int(1)), None),
                pods(2, 0, 5),
                budget(2, 1, 2, 1),
            ),
            (
                "maxUnavailable 0 allows nothing",
                spec(None, Some(Int(0))),
                pods(3, 0, 3),
                budget(3, 3, 3, 0),
            ),
            (
                "maxUnavailable 1 of 3",
                spec(None, Some(Int(1))),
                pods(3, 0, 3),
                budget(3, 2, 3, 1),
            ),
            (
                "maxUnavailable counts the missing replica",
                spec(None, Some(Int(1))),
                pods(2, 0, 3),
                budget(3, 2, 2, 0),
            ),
            (
                "maxUnavailable 50% rounds up",
                spec(None, Some(Pct("50%".into()))),
                pods(3, 0, 3),
                budget(3, 1, 3, 2),
            ),
            (
                "minAvailable 50% rounds up",
                spec(Some(Pct("50%".into())), None),
                pods(3, 0, 3),
                budget(3, 2, 3, 1),
            ),
            (
                "no pods allow nothing",
                spec(Some(Int(0)), None),
                pods(0, 0, 0),
                budget(0, 0, 0, 0),
            ),
        ];
        for (name, spec, pods, expected) in cases {
            assert_eq!(
                compute(&spec, &pods, &BTreeSet::new()),
                Ok(expected),
                "{name}"
            );
        }
    }

    #[test]
    fn evicted_pods_no_longer_count_as_healthy() {
        let disrupted = BTreeSet::from(["p0".to_string()]);
        let budget = compute(
            &spec(Some(IntOrString::Int(2)), None),
            &pods(3, 0, 3),
            &disrupted,
        );
        assert_eq!(
            budget.map(|b| (b.current_healthy, b.disruptions_allowed)),
            Ok((2, 0))
        );
    }

    #[test]
    fn a_percentage_needs_every_pod_to_have_a_controller() {
        let mut orphans = pods(2, 0, 2);
        orphans[1].controller = None;
        assert_eq!(
            compute(
                &spec(None, Some(IntOrString::Int(1))),
                &orphans,
                &BTreeSet::new()
            ),
            Err(BudgetError::NoController { pod: "p1".into() })
        );
        // An integer minAvailable does not look at controllers.
        assert!(compute(
            &spec(Some(IntOrString::Int(1)), None),
            &orphans,
            &BTreeSet::new()
        )
        .is_ok());
    }
}
