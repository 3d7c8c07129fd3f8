//! The ReplicaSet controller: keeps `spec.replicas` active pods per ReplicaSet.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use skiff_api::k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_api::ownership::controller_ref;
use skiff_api::selector::LabelSelector;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::pods::{availability, is_active, is_ready, Availability};
use crate::error::ApiError;
use crate::registry::{Registry, Subresource};
use crate::runtime::events::{EventRecorder, EventType};
use crate::runtime::expectations::Expectations;
use crate::runtime::informer::{object_key, revision_of, Change, Informer};
use crate::runtime::ownership::controller_of;
use crate::runtime::queue::WorkQueue;
use crate::runtime::runner::{Action, Reconciler};
use crate::runtime::slow_start::{self, BURST};

pub struct ReplicaSetController {
    pub registry: Registry,
    pub replicasets: Arc<Informer<ReplicaSet>>,
    pub pods: Arc<Informer<Pod>>,
    pub events: EventRecorder,
    /// Creates and deletes made per ReplicaSet key and not yet seen in `pods`.
    pub expectations: Arc<Expectations>,
}

/// The ReplicaSet key that should react to a change of `pod`.
pub fn owner_key(pod: &Pod) -> Option<String> {
    let owner = controller_of(&pod.metadata)?;
    (owner.kind == "ReplicaSet").then(|| object_key(pod.metadata.namespace.as_deref(), &owner.name))
}

/// Lowers `expectations` as `pods` sees pods of a ReplicaSet created or deleted (or marked
/// terminating), then queues that ReplicaSet so it can act again.
pub fn observe(
    pods: &Arc<Informer<Pod>>,
    expectations: Arc<Expectations>,
    queue: &WorkQueue,
    shutdown: &CancellationToken,
) {
    let mut changes = pods.subscribe();
    let (queue, shutdown) = (queue.clone(), shutdown.clone());
    let terminating = |p: &Pod| p.metadata.deletion_timestamp.is_some();
    tokio::spawn(async move {
        loop {
            let change = tokio::select! {
                _ = shutdown.cancelled() => return,
                change = changes.recv() => change,
            };
            match change {
                Ok(Change {
                    old: None,
                    new: Some(pod),
                }) => {
                    if let Some(key) = owner_key(&pod) {
                        expectations.created(&key, 1);
                        queue.add(key);
                    }
                }
                Ok(Change {
                    old: Some(pod),
                    new,
                }) => {
                    let gone = new.as_deref().is_none_or(terminating);
                    if gone && !terminating(&pod) {
                        if let Some(key) = owner_key(&pod) {
                            expectations.deleted(&key, 1);
                            queue.add(key);
                        }
                    }
                }
                Ok(Change {
                    old: None,
                    new: None,
                }) => {}
                // Lost notifications: the counts can no longer be trusted; act on the cache.
                Err(broadcast::error::RecvError::Lagged(_)) => expectations.clear(),
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

#[async_trait]
impl Reconciler for ReplicaSetController {
    fn name(&self) -> &'static str {
        "replicaset-controller"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let Some(rs) = self.replicasets.get(key) else {
            self.expectations.forget(key);
            return Ok(Action::await_change());
        };
        // Act only on a cache that has seen this set's last creates and deletes (or after they
        // expired): their arrival queues the key again, and the status then catches up.
        if rs.metadata.deletion_timestamp.is_some()
            || !self.expectations.satisfied(key, Instant::now())
        {
            return Ok(Action::await_change());
        }
        let uid = rs.metadata.uid.clone().unwrap_or_default();
        let owned = || {
            self.pods
                .controlled_by(&uid)
                .into_iter()
                .filter(|p| is_active(p))
                .collect::<Vec<_>>()
        };
        let active = owned();
        let desired = rs
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1)
            .max(0) as usize;
        let managed = match plan(active.len(), desired) {
            Plan::Create(count) => self.create_pods(key, &rs, count).await,
            Plan::Delete(count) => {
                let mut victims = active.clone();
                victims.sort_by(deletion_order);
                victims.truncate(count);
                self.delete_pods(key, &rs, &victims).await
            }
            Plan::Nothing => Ok(()),
        };
        let pending = self.update_status(&rs, &owned()).await?;
        managed?;
        // Pods that become available with `minReadySeconds` change the status without an event.
        Ok(pending.map_or(Action::await_change(), Action::requeue))
    }
}

impl ReplicaSetController {
    /// Creates `count` pods in slow-start batches, stopping at the first error.
    async fn create_pods(&self, key: &str, rs: &ReplicaSet, count: usize) -> Result<(), ApiError> {
        let template = rs
            .spec
            .as_ref()
            .and_then(|s| s.template.clone())
            .unwrap_or_default();
        let template_meta = template.metadata.unwrap_or_default();
        let pod = Pod {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", rs.metadata.name.as_deref().unwrap_or("rs"))),
                namespace: rs.metadata.namespace.clone(),
                labels: template_meta.labels,
                annotations: template_meta.annotations,
                owner_references: Some(vec![controller_ref(rs)]),
                ..Default::default()
            },
            spec: template.spec,
            status: None,
        };
        self.expectations.expect(key, count, 0, Instant::now());
        let outcome = slow_start::run(count, |_| self.registry.create_typed(&pod)).await;
        for created in &outcome.done {
            self.events.record(
                rs,
                EventType::Normal,
                "SuccessfulCreate",
                format!(
                    "Created pod: {}",
                    created.metadata.name.as_deref().unwrap_or_default()
                ),
            );
        }
        // Creates never made will never be seen.
        self.expectations.created(key, count - outcome.done.len());
        match outcome.error {
            Some(err) => {
                self.events.record(
                    rs,
                    EventType::Warning,
                    "FailedCreate",
                    format!("Error creating: {err}"),
                );
                Err(err)
            }
            None => Ok(()),
        }
    }

    /// Deletes `victims` in slow-start batches, stopping at the first error.
    async fn delete_pods(
        &self,
        key: &str,
        rs: &ReplicaSet,
        victims: &[Arc<Pod>],
    ) -> Result<(), ApiError> {
        let pods = skiff_api::resources::of::<Pod>();
        self.expectations
            .expect(key, 0, victims.len(), Instant::now());
        let outcome = slow_start::run(victims.len(), |i| {
            let name = victims[i].metadata.name.clone().unwrap_or_default();
            let namespace = victims[i].metadata.namespace.clone();
            async move {
                let result = self
                    .registry
                    .delete(pods, namespace.as_deref(), &name, &Default::default())
                    .await;
                match result {
                    Ok(_) => Ok(Some(name)),
                    // Already gone: its deletion may have been seen before we expected it.
                    Err(ApiError::NotFound { .. }) => {
                        self.expectations.deleted(key, 1);
                        Ok(None)
                    }
                    Err(err) => Err(err),
                }
            }
        })
        .await;
        for name in outcome.done.iter().flatten() {
            self.events.record(
                rs,
                EventType::Normal,
                "SuccessfulDelete",
                format!("Deleted pod: {name}"),
            );
        }
        self.expectations
            .deleted(key, victims.len() - outcome.done.len());
        outcome.error.map_or(Ok(()), Err)
    }

    /// Writes the set's status; returns how long until a ready pod becomes available, if any.
    async fn update_status(
        &self,
        rs: &ReplicaSet,
        pods: &[Arc<Pod>],
    ) -> Result<Option<Duration>, ApiError> {
        let template_labels = rs
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let labeled = LabelSelector::from_k8s(
            &skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                match_labels: Some(template_labels),
                ..Default::default()
            },
        )
        .ok();
        let ready = pods.iter().filter(|p| is_ready(p)).count() as i32;
        let min_ready = rs
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0);
        let now = skiff_api::time::now();
        let availability: Vec<_> = pods
            .iter()
            .map(|p| availability(p, min_ready, &now))
            .collect();
        let available = availability
            .iter()
            .filter(|a| **a == Availability::Available)
            .count() as i32;
        let pending = availability
            .iter()
            .filter_map(|a| match a {
                Availability::After(wait) => Some(*wait),
                _ => None,
            })
            .min();
        let status = ReplicaSetStatus {
            replicas: pods.len() as i32,
            fully_labeled_replicas: Some(
                pods.iter()
                    .filter(|p| {
                        let labels = p.metadata.labels.as_ref();
                        labeled
                            .as_ref()
                            .zip(labels)
                            .is_some_and(|(s, l)| s.matches(l))
                    })
                    .count() as i32,
            ),
            ready_replicas: Some(ready),
            available_replicas: Some(available),
            observed_generation: rs.metadata.generation,
            conditions: None,
            terminating_replicas: None,
        };
        if rs.status.as_ref() == Some(&status) {
            return Ok(pending);
        }
        let mut updated = rs.clone();
        updated.status = Some(status);
        let written = self
            .registry
            .update_typed(&updated, Subresource::Status)
            .await?;
        // Read our own write before the next reconcile, or it would conflict with it.
        self.replicasets.wait_for(revision_of(&written)).await;
        Ok(pending)
    }
}

/// What one sync does about a set with `active` of `desired` pods.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    Create(usize),
    Delete(usize),
    Nothing,
}

/// Creates or deletes the difference, at most a burst per sync.
fn plan(active: usize, desired: usize) -> Plan {
    match active.cmp(&desired) {
        Ordering::Less => Plan::Create((desired - active).min(BURST)),
        Ordering::Greater => Plan::Delete((active - desired).min(BURST)),
        Ordering::Equal => Plan::Nothing,
    }
}

/// Which pods to delete first when scaling down (Kubernetes' `ActivePods` order):
/// unscheduled, then pending, then not ready, then the most recently created.
fn deletion_order(a: &Arc<Pod>, b: &Arc<Pod>) -> Ordering {
    let scheduled = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
    let phase_rank = |p: &Pod| match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") | None => 0,
        Some("Unknown") => 1,
        _ => 2,
    };
    scheduled(a)
        .cmp(&scheduled(b))
        .then(phase_rank(a).cmp(&phase_rank(b)))
        .then(is_ready(a).cmp(&is_ready(b)))
        .then(
            b.metadata
                .creation_timestamp
                .cmp(&a.metadata.creation_timestamp),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sync_creates_or_deletes_at_most_a_burst_in_slow_start_batches() {
        for (active, desired, expected, batches) in [
            (0, 0, Plan::Nothing, vec![]),
            (3, 3, Plan::Nothing, vec![]),
            (0, 3, Plan::Create(3), vec![1, 2]),
            (
                0,
                1000,
                Plan::Create(500),
                vec![1, 2, 4, 8, 16, 32, 64, 128, 245],
            ),
            (
                0,
                2_147_483_647,
                Plan::Create(500),
                vec![1, 2, 4, 8, 16, 32, 64, 128, 245],
            ),
            (
                1000,
                0,
                Plan::Delete(500),
                vec![1, 2, 4, 8, 16, 32, 64, 128, 245],
            ),
            (5, 1, Plan::Delete(4), vec![1, 2, 1]),
        ] {
            let planned = plan(active, desired);
            let count = match planned {
                Plan::Create(n) | Plan::Delete(n) => n,
                Plan::Nothing => 0,
            };
            assert_eq!(planned, expected, "{active} of {desired}");
            assert_eq!(
                slow_start::batch_sizes(count),
                batches,
                "{active} of {desired}"
            );
        }
    }
}
