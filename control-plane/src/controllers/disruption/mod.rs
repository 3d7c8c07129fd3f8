//! The disruption controller (leader only): keeps each PodDisruptionBudget's status —
//! expected, desired and current healthy pods, the disruptions allowed, and the
//! `DisruptionAllowed` condition — from the pods it selects and their controllers' scales,
//! as Kubernetes' disruption controller does. The eviction subresource spends the allowance.

pub mod budget;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use skiff_api::k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use skiff_api::k8s_openapi::api::batch::v1::Job;
use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use self::budget::{Budget, BudgetError, PodFacts};
use super::pods::is_ready;
use crate::error::ApiError;
use crate::registry::{Registry, Subresource};
use crate::runtime::informer::{object_key, Informer};
use crate::runtime::ownership::controller_of;
use crate::runtime::runner::{Action, Reconciler};

/// How long an evicted pod counts as disrupted while it is not yet seen going (Kubernetes'
/// `DeletionTimeout`).
pub const DISRUPTED_TIMEOUT: Duration = Duration::from_secs(120);

/// Keeps each PodDisruptionBudget's status (Kubernetes' disruption controller).
pub struct DisruptionController {
    pub registry: Registry,
    pub budgets: Arc<Informer<PodDisruptionBudget>>,
    pub pods: Arc<Informer<Pod>>,
    pub replicasets: Arc<Informer<ReplicaSet>>,
    pub deployments: Arc<Informer<Deployment>>,
    pub jobs: Arc<Informer<Job>>,
    pub statefulsets: Arc<Informer<StatefulSet>>,
}

#[async_trait]
impl Reconciler for DisruptionController {
    fn name(&self) -> &'static str {
        "disruption"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let Some(pdb) = self.budgets.get(key) else {
            return Ok(Action::await_change());
        };
        let pods = self.pods.list(|p| budget::selects(&pdb, p));
        let now = skiff_api::time::now();
        let old = pdb.status.clone().unwrap_or_default();
        let (disrupted, expires) = still_disrupted(old.disrupted_pods.as_ref(), &pods, &now);
        let facts: Vec<PodFacts> = pods.iter().map(|p| self.facts(p)).collect();
        let spec = pdb.spec.clone().unwrap_or_default();
        let computed = budget::compute(&spec, &facts, &disrupted.keys().cloned().collect());
        let status = status(
            computed,
            disrupted,
            pdb.metadata.generation,
            old.conditions.as_deref().unwrap_or_default(),
            &now,
        );
        if status != old {
            let mut next = (*pdb).clone();
            next.status = Some(status);
            self.registry
                .update_typed(&next, Subresource::Status)
                .await?;
        }
        Ok(match expires {
            Some(after) => Action::requeue(after),
            None => Action::await_change(),
        })
    }
}

impl DisruptionController {
    fn facts(&self, pod: &Pod) -> PodFacts {
        PodFacts {
            name: pod.metadata.name.clone().unwrap_or_default(),
            healthy: pod.metadata.deletion_timestamp.is_none() && is_ready(pod),
            controller: self.scale_of(pod),
        }
    }

    /// The uid and desired replicas of the pod's controller: its Deployment's through a
    /// ReplicaSet, else the ReplicaSet's, or a Job's parallelism.
    fn scale_of(&self, pod: &Pod) -> Option<(String, i32)> {
        let owner = controller_of(&pod.metadata)?;
        let ns = pod.metadata.namespace.as_deref();
        match owner.kind.as_str() {
            "ReplicaSet" => {
                let rs = self.replicasets.get(&object_key(ns, &owner.name))?;
                if let Some(deployment) = controller_of(&rs.metadata) {
                    if deployment.kind == "Deployment" {
                        let d = self.deployments.get(&object_key(ns, &deployment.name))?;
                        let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                        return Some((deployment.uid.clone(), replicas));
                    }
                }
                let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                Some((owner.uid.clone(), replicas))
            }
            "StatefulSet" => {
                let set = self.statefulsets.get(&object_key(ns, &owner.name))?;
                let replicas = set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                Some((owner.uid.clone(), replicas))
            }
            "Job" => {
                let job = self.jobs.get(&object_key(ns, &owner.name))?;
                let parallelism = job.spec.as_ref().and_then(|s| s.parallelism).unwrap_or(1);
                Some((owner.uid.clone(), parallelism))
            }
            _ => None,
        }
    }
}

/// The evictions still to be seen: entries for pods that exist, are not yet going, and were
/// evicted less than `DISRUPTED_TIMEOUT` ago; and when the first of them expires.
fn still_disrupted(
    recorded: Option<&BTreeMap<String, Time>>,
    pods: &[Arc<Pod>],
    now: &Time,
) -> (BTreeMap<String, Time>, Option<Duration>) {
    let timeout = DISRUPTED_TIMEOUT.as_secs() as i64;
    let mut kept = BTreeMap::new();
    let mut expires: Option<i64> = None;
    for (name, at) in recorded.into_iter().flatten() {
        let present = pods.iter().any(|p| {
            p.metadata.name.as_deref() == Some(name) && p.metadata.deletion_timestamp.is_none()
        });
        let left = at.0.as_second() + timeout - now.0.as_second();
        if present && left > 0 {
            kept.insert(name.clone(), at.clone());
            expires = Some(expires.map_or(left, |e| e.min(left)));
        }
    }
    (kept, expires.map(|s| Duration::from_secs(s as u64)))
}

/// The status to write for the computed budget (or the failure to compute it).
fn status(
    computed: Result<Budget, BudgetError>,
    disrupted: BTreeMap<String, Time>,
    generation: Option<i64>,
    old_conditions: &[Condition],
    now: &Time,
) -> PodDisruptionBudgetStatus {
    let (budget, allowed, reason, message) = match computed {
        Ok(b) if b.disruptions_allowed > 0 => (b, "True", "SufficientPods", String::new()),
        Ok(b) => (b, "False", "InsufficientPods", String::new()),
        Err(err) => {
            let none = Budget {
                expected_pods: 0,
                desired_healthy: 0,
                current_healthy: 0,
                disruptions_allowed: 0,
            };
            (none, "False", "SyncFailed", err.to_string())
        }
    };
    let since = old_conditions
        .iter()
        .find(|c| c.type_ == "DisruptionAllowed" && c.status == allowed)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    PodDisruptionBudgetStatus {
        current_healthy: budget.current_healthy,
        desired_healthy: budget.desired_healthy,
        expected_pods: budget.expected_pods,
        disruptions_allowed: budget.disruptions_allowed,
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        observed_generation: generation,
        conditions: Some(vec![Condition {
            type_: "DisruptionAllowed".into(),
            status: allowed.into(),
            reason: reason.into(),
            message,
            last_transition_time: since,
            observed_generation: generation,
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::k8s_openapi::jiff::Timestamp;

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).expect("time"))
    }

    fn pod(name: &str, deleting: bool) -> Arc<Pod> {
        let mut pod = Pod::default();
        pod.metadata.name = Some(name.into());
        pod.metadata.deletion_timestamp = deleting.then(|| at(1));
        Arc::new(pod)
    }

    #[test]
    fn evictions_are_forgotten_once_seen_or_expired() {
        let recorded = BTreeMap::from([
            ("pending".to_string(), at(1000)),
            ("going".to_string(), at(1000)),
            ("gone".to_string(), at(1000)),
            ("old".to_string(), at(800)),
        ]);
        let pods = [pod("pending", false), pod("going", true), pod("old", false)];
        let (kept, expires) = still_disrupted(Some(&recorded), &pods, &at(1030));
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["pending"]);
        assert_eq!(expires, Some(Duration::from_secs(90)));
    }

    #[test]
    fn status_carries_the_condition_and_keeps_its_transition_time() {
        let budget = Budget {
            expected_pods: 3,
            desired_healthy: 2,
            current_healthy: 3,
            disruptions_allowed: 1,
        };
        let first = status(Ok(budget), BTreeMap::new(), Some(2), &[], &at(10));
        let condition = &first.conditions.as_ref().expect("conditions")[0];
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("True", "SufficientPods")
        );
        assert_eq!(first.observed_generation, Some(2));
        let again = status(
            Ok(budget),
            BTreeMap::new(),
            Some(2),
            first.conditions.as_deref().unwrap_or_default(),
            &at(20),
        );
        assert_eq!(again, first);
        let failed = status(
            Err(BudgetError::NoController { pod: "p".into() }),
            BTreeMap::new(),
            Some(2),
            &[],
            &at(30),
        );
        let condition = &failed.conditions.as_ref().expect("conditions")[0];
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("False", "SyncFailed")
        );
        assert_eq!(failed.disruptions_allowed, 0);
    }
}
