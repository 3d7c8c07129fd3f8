//! The eviction subresource (`POST .../pods/NAME/eviction`): deletes a pod only if its
//! PodDisruptionBudget allows, spending one allowed disruption with a write guarded by the
//! budget's resourceVersion, so two concurrent evictions cannot both pass on one allowance.

use serde_json::{json, Value};
use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::k8s_openapi::api::policy::v1::PodDisruptionBudget;
use skiff_api::resources;

use super::typed::from_value;
use super::{DeleteOptions, ListOptions, Registry, Subresource};
use crate::controllers::disruption::budget;
use crate::controllers::pods::is_ready;
use crate::error::ApiError;

/// Attempts at spending an allowance before giving up on conflicting writers.
const ATTEMPTS: usize = 10;

/// What Kubernetes answers when a budget forbids the eviction.
pub const BUDGET_VIOLATED: &str =
    "Cannot evict pod as it would violate the pod's disruption budget.";

/// What the budget says about evicting one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Evict without spending an allowance (the pod is not counted as healthy anyway).
    Free,
    /// Evict, spending one allowed disruption.
    Spend,
    /// Refused, with the reason for the 429's cause.
    Refuse(String),
}

/// Whether `pdb` lets `pod` go (Kubernetes' eviction REST checks; the default
/// `unhealthyPodEvictionPolicy` is `IfHealthyBudget`).
pub fn verdict(pdb: &PodDisruptionBudget, pod_ready: bool) -> Verdict {
    let name = pdb.metadata.name.as_deref().unwrap_or_default();
    let status = pdb.status.clone().unwrap_or_default();
    let policy = pdb
        .spec
        .as_ref()
        .and_then(|s| s.unhealthy_pod_eviction_policy.as_deref());
    if !pod_ready {
        let healthy_budget =
            status.current_healthy >= status.desired_healthy && status.desired_healthy > 0;
        if policy == Some("AlwaysAllow") || healthy_budget {
            return Verdict::Free;
        }
    }
    if status.observed_generation < pdb.metadata.generation {
        return Verdict::Refuse(format!(
            "The disruption budget {name} is still being processed by the server."
        ));
    }
    if status.disruptions_allowed <= 0 {
        return Verdict::Refuse(format!(
            "The disruption budget {name} needs {} healthy pods and has {} currently",
            status.desired_healthy, status.current_healthy
        ));
    }
    Verdict::Spend
}

impl Registry {
    /// Evicts pod `name` as the body (a policy/v1 `Eviction`) asks: 429 while its budget
    /// allows no disruption, 500 when more than one budget selects it.
    pub async fn evict(
        &self,
        namespace: &str,
        name: &str,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let pods = resources::of::<Pod>();
        let asked_uid = body
            .pointer("/deleteOptions/preconditions/uid")
            .and_then(Value::as_str);
        self.read_barrier().await?;
        for _ in 0..ATTEMPTS {
            let pod: Pod = from_value(self.get(pods, Some(namespace), name).await?)?;
            // The pod the budget was checked for is the one deleted, never a successor of the
            // same name (a StatefulSet's); a uid the caller names must be that pod's.
            let options = DeleteOptions {
                grace_period_seconds: body
                    .pointer("/deleteOptions/gracePeriodSeconds")
                    .and_then(Value::as_i64),
                uid: asked_uid
                    .map(str::to_string)
                    .or_else(|| pod.metadata.uid.clone()),
                ..Default::default()
            };
            if options.uid != pod.metadata.uid {
                // Refused before any budget is spent on it.
                return Err(ApiError::uid_mismatch(
                    pods,
                    name,
                    options.uid.as_deref().unwrap_or_default(),
                    pod.metadata.uid.as_deref().unwrap_or_default(),
                ));
            }
            if !needs_budget(&pod) {
                self.delete(pods, Some(namespace), name, &options).await?;
                return Ok(success());
            }
            let budgets = self.budgets_of(&pod).await?;
            let pdb = match budgets.as_slice() {
                [] => {
                    self.delete(pods, Some(namespace), name, &options).await?;
                    return Ok(success());
                }
                [pdb] => pdb.clone(),
                _ => {
                    return Err(ApiError::Internal(
                        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.".into(),
                    ))
                }
            };
            match verdict(&pdb, is_ready(&pod)) {
                Verdict::Refuse(cause) => {
                    return Err(ApiError::TooManyRequests {
                        message: BUDGET_VIOLATED.into(),
                        cause_reason: "DisruptionBudget".into(),
                        cause,
                    })
                }
                Verdict::Free => {}
                Verdict::Spend => {
                    let mut spent = pdb;
                    let status = spent.status.get_or_insert_with(Default::default);
                    status.disruptions_allowed -= 1;
                    status
                        .disrupted_pods
                        .get_or_insert_with(Default::default)
                        .insert(name.to_string(), skiff_api::time::now());
                    match self.update_typed(&spent, Subresource::Status).await {
                        Ok(_) => {}
                        Err(ApiError::Conflict { .. }) => continue,
                        Err(err) => return Err(err),
                    }
                }
            }
            self.delete(pods, Some(namespace), name, &options).await?;
            return Ok(success());
        }
        Err(ApiError::TooManyRequests {
            message: BUDGET_VIOLATED.into(),
            cause_reason: "DisruptionBudget".into(),
            cause: "the disruption budget kept changing; try again".into(),
        })
    }

    async fn budgets_of(&self, pod: &Pod) -> Result<Vec<PodDisruptionBudget>, ApiError> {
        let kind = resources::of::<PodDisruptionBudget>();
        let namespace = pod.metadata.namespace.as_deref();
        let (items, _) = self.list(kind, namespace, &ListOptions::default()).await?;
        let mut budgets = Vec::new();
        for item in items {
            let pdb: PodDisruptionBudget = from_value(item)?;
            if budget::selects(&pdb, pod) {
                budgets.push(pdb);
            }
        }
        Ok(budgets)
    }
}

/// Pods a budget does not guard: already going, finished, or not yet running (Kubernetes'
/// `canIgnorePDB`).
fn needs_budget(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none()
        && !matches!(phase, Some("Succeeded" | "Failed" | "Pending"))
}

fn success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::k8s_openapi::api::policy::v1::{
        PodDisruptionBudgetSpec, PodDisruptionBudgetStatus,
    };

    fn pdb(allowed: i32, desired: i32, current: i32, policy: Option<&str>) -> PodDisruptionBudget {
        let mut pdb = PodDisruptionBudget {
            spec: Some(PodDisruptionBudgetSpec {
                unhealthy_pod_eviction_policy: policy.map(str::to_string),
                ..Default::default()
            }),
            status: Some(PodDisruptionBudgetStatus {
                disruptions_allowed: allowed,
                desired_healthy: desired,
                current_healthy: current,
                observed_generation: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        };
        pdb.metadata.name = Some("web".into());
        pdb.metadata.generation = Some(1);
        pdb
    }

    #[test]
    fn verdicts_table() {
        let refused = Verdict::Refuse(
            "The disruption budget web needs 2 healthy pods and has 2 currently".into(),
        );
        let cases = [
            (
                "an allowance is spent",
                pdb(1, 2, 3, None),
                true,
                Verdict::Spend,
            ),
            (
                "no allowance left",
                pdb(0, 2, 2, None),
                true,
                refused.clone(),
            ),
            (
                "an unready pod goes free while the budget is healthy",
                pdb(0, 2, 2, None),
                false,
                Verdict::Free,
            ),
            (
                "an unready pod waits while the budget is short",
                pdb(0, 2, 1, None),
                false,
                Verdict::Refuse(
                    "The disruption budget web needs 2 healthy pods and has 1 currently".into(),
                ),
            ),
            (
                "AlwaysAllow lets unready pods go",
                pdb(0, 2, 1, Some("AlwaysAllow")),
                false,
                Verdict::Free,
            ),
        ];
        for (name, pdb, ready, expected) in cases {
            assert_eq!(verdict(&pdb, ready), expected, "{name}");
        }
        let mut stale = pdb(1, 2, 3, None);
        stale.metadata.generation = Some(2);
        assert!(
            matches!(verdict(&stale, true), Verdict::Refuse(m) if m.contains("still being processed"))
        );
    }
}
