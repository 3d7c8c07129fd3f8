//! The ReplicaSet controller: keeps `spec.replicas` active pods per ReplicaSet.

use std::cmp::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::join_all;
use skiff_api::k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_api::selector::LabelSelector;

use super::pods::{is_active, is_ready};
use crate::error::ApiError;
use crate::registry::{Registry, Subresource};
use crate::runtime::events::{EventRecorder, EventType};
use crate::runtime::informer::{object_key, revision_of, Informer};
use crate::runtime::ownership::{controller_of, controller_ref};
use crate::runtime::runner::{Action, Reconciler};

/// Most pods created or deleted in one reconcile (Kubernetes' burst is 500).
const BURST: usize = 500;

pub struct ReplicaSetController {
    pub registry: Registry,
    pub replicasets: Arc<Informer<ReplicaSet>>,
    pub pods: Arc<Informer<Pod>>,
    pub events: EventRecorder,
}

/// The ReplicaSet key that should react to a change of `pod`.
pub fn owner_key(pod: &Pod) -> Option<String> {
    let owner = controller_of(&pod.metadata)?;
    (owner.kind == "ReplicaSet").then(|| object_key(pod.metadata.namespace.as_deref(), &owner.name))
}

#[async_trait]
impl Reconciler for ReplicaSetController {
    fn name(&self) -> &'static str {
        "replicaset-controller"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let Some(rs) = self.replicasets.get(key) else {
            return Ok(Action::await_change());
        };
        if rs.metadata.deletion_timestamp.is_some() {
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
        let mut last_revision = 0;
        if active.len() < desired {
            let count = (desired - active.len()).min(BURST);
            last_revision = self.create_pods(&rs, count).await?;
        } else if active.len() > desired {
            let mut victims = active.clone();
            victims.sort_by(deletion_order);
            victims.truncate((active.len() - desired).min(BURST));
            last_revision = self.delete_pods(&rs, &victims).await?;
        }
        if last_revision > 0 {
            self.pods.wait_for(last_revision).await;
        }
        self.update_status(&rs, &owned()).await?;
        Ok(Action::await_change())
    }
}

impl ReplicaSetController {
    async fn create_pods(&self, rs: &ReplicaSet, count: usize) -> Result<u64, ApiError> {
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
        let results = join_all((0..count).map(|_| self.registry.create_typed(&pod))).await;
        let mut last = 0;
        let mut created = 0;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(pod) => {
                    created += 1;
                    last = last.max(revision_of(&pod));
                    self.events.record(
                        rs,
                        EventType::Normal,
                        "SuccessfulCreate",
                        format!("Created pod: {}", pod.metadata.name.unwrap_or_default()),
                    );
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        if let Some(err) = first_error {
            self.events.record(
                rs,
                EventType::Warning,
                "FailedCreate",
                format!("Error creating: {err}"),
            );
            if created == 0 {
                return Err(err);
            }
        }
        Ok(last)
    }

    async fn delete_pods(&self, rs: &ReplicaSet, victims: &[Arc<Pod>]) -> Result<u64, ApiError> {
        let pods = skiff_api::resources::of::<Pod>();
        let deletions = victims.iter().map(|pod| {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let namespace = pod.metadata.namespace.clone();
            async move {
                let result = self
                    .registry
                    .delete(pods, namespace.as_deref(), &name, &Default::default())
                    .await;
                (name, result)
            }
        });
        let mut last = 0;
        for (name, result) in join_all(deletions).await {
            match result {
                Ok(obj) => {
                    last = last.max(crate::registry::object::revision(&obj));
                    self.events.record(
                        rs,
                        EventType::Normal,
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    );
                }
                Err(ApiError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(last)
    }

    async fn update_status(&self, rs: &ReplicaSet, pods: &[Arc<Pod>]) -> Result<(), ApiError> {
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
            available_replicas: Some(ready),
            observed_generation: rs.metadata.generation,
            conditions: None,
            terminating_replicas: None,
        };
        if rs.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut updated = rs.clone();
        updated.status = Some(status);
        let written = self
            .registry
            .update_typed(&updated, Subresource::Status)
            .await?;
        // Read our own write before the next reconcile, or it would conflict with it.
        self.replicasets.wait_for(revision_of(&written)).await;
        Ok(())
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
