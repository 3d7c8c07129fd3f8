//! The DaemonSet controller: one pod on every node the template admits (with its RuntimeClass's
//! node selector and tolerations, as admission will merge them), added and removed as nodes
//! come and go, and replaced node by node (at most `maxUnavailable` at once) when the
//! template changes. Its pods are pinned to their node by node affinity and placed by the
//! scheduler, as Kubernetes does since 1.12.

mod eligibility;
mod plan;
mod pod;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::join_all;
use skiff_api::hash::pod_template_hash;
use skiff_api::k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use skiff_api::k8s_openapi::api::core::v1::{Node, Pod};
use skiff_api::k8s_openapi::api::node::v1::RuntimeClass;
use skiff_api::resources;

use self::eligibility::{admitted, eligible};
use self::plan::{max_unavailable, plan};
use self::pod::{pod_for, target_node, template_pod};
use super::pods::{is_active, is_ready};
use crate::error::ApiError;
use crate::registry::{object, Registry, Subresource};
use crate::runtime::events::{EventRecorder, EventType};
use crate::runtime::informer::{object_key, revision_of, Informer};
use crate::runtime::ownership::controller_of;
use crate::runtime::runner::{Action, Reconciler};

/// The label that tells which template revision made a pod.
pub const REVISION_LABEL: &str = "controller-revision-hash";

pub struct DaemonSetController {
    pub registry: Registry,
    pub daemonsets: Arc<Informer<DaemonSet>>,
    pub pods: Arc<Informer<Pod>>,
    pub nodes: Arc<Informer<Node>>,
    pub runtime_classes: Arc<Informer<RuntimeClass>>,
    pub events: EventRecorder,
}

/// The DaemonSet key that should react to a change of `pod`.
pub fn owner_key(pod: &Pod) -> Option<String> {
    let owner = controller_of(&pod.metadata)?;
    (owner.kind == "DaemonSet").then(|| object_key(pod.metadata.namespace.as_deref(), &owner.name))
}

#[async_trait]
impl Reconciler for DaemonSetController {
    fn name(&self) -> &'static str {
        "daemonset-controller"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let Some(ds) = self.daemonsets.get(key) else {
            return Ok(Action::await_change());
        };
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(Action::await_change());
        }
        let template = ds
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let revision = pod_template_hash(&template);
        self.runtime_classes.synced().await;
        let pod = admitted(template_pod(&ds, &revision), |class| {
            self.runtime_classes.get(&object_key(None, class))
        });
        if let Err(why) = &pod {
            self.events.record(
                ds.as_ref(),
                EventType::Warning,
                "FailedCreate",
                format!("Error creating: {why}"),
            );
        }
        let eligible = eligible(pod.as_ref().ok(), &self.nodes.list(|_| true));
        let desired = eligible.iter().filter(|(_, a)| *a).count();
        let plan = plan(
            &eligible,
            self.owned_by_node(&ds),
            &revision,
            max_unavailable(&ds, desired),
        );
        let mut last_revision = 0;
        let creations = plan.create.iter().map(|node| async {
            self.registry
                .create_typed(&pod_for(&ds, node, &revision))
                .await
        });
        for result in join_all(creations).await {
            let pod = result?;
            last_revision = last_revision.max(revision_of(&pod));
            self.events.record(
                ds.as_ref(),
                EventType::Normal,
                "SuccessfulCreate",
                format!("Created pod: {}", pod.metadata.name.unwrap_or_default()),
            );
        }
        let pods = resources::of::<Pod>();
        let deletions = plan.delete.iter().map(|pod| {
            let name = pod.metadata.name.clone().unwrap_or_default();
            async move {
                let result = self
                    .registry
                    .delete(
                        pods,
                        pod.metadata.namespace.as_deref(),
                        &name,
                        &Default::default(),
                    )
                    .await;
                (name, result)
            }
        });
        for (name, result) in join_all(deletions).await {
            match result {
                Ok(obj) => {
                    last_revision = last_revision.max(object::revision(&obj));
                    self.events.record(
                        ds.as_ref(),
                        EventType::Normal,
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    );
                }
                Err(ApiError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        if last_revision > 0 {
            self.pods.wait_for(last_revision).await;
        }
        self.update_status(&ds, &eligible, &revision).await?;
        Ok(Action::await_change())
    }
}

impl DaemonSetController {
    fn owned_by_node(&self, ds: &DaemonSet) -> HashMap<String, Vec<Arc<Pod>>> {
        let uid = ds.metadata.uid.clone().unwrap_or_default();
        let mut by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for pod in self
            .pods
            .controlled_by(&uid)
            .into_iter()
            .filter(|p| is_active(p))
        {
            let node = target_node(&pod).unwrap_or_default();
            by_node.entry(node).or_default().push(pod);
        }
        by_node
    }

    async fn update_status(
        &self,
        ds: &DaemonSet,
        eligible: &[(String, bool)],
        revision: &str,
    ) -> Result<(), ApiError> {
        let by_node = self.owned_by_node(ds);
        let (mut current, mut ready, mut updated, mut misscheduled) = (0, 0, 0, 0);
        for (node, admitted) in eligible {
            let bound: Vec<&Arc<Pod>> = by_node
                .get(node)
                .into_iter()
                .flatten()
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
                .collect();
            if bound.is_empty() {
                continue;
            }
            if !admitted {
                misscheduled += 1;
                continue;
            }
            current += 1;
            ready += i32::from(bound.iter().any(|p| is_ready(p)));
            updated += i32::from(bound.iter().any(|p| {
                p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(REVISION_LABEL))
                    .map(String::as_str)
                    == Some(revision)
            }));
        }
        let desired = eligible.iter().filter(|(_, a)| *a).count() as i32;
        let status = DaemonSetStatus {
            desired_number_scheduled: desired,
            current_number_scheduled: current,
            number_misscheduled: misscheduled,
            number_ready: ready,
            number_available: Some(ready),
            number_unavailable: Some(desired - ready),
            updated_number_scheduled: Some(updated),
            observed_generation: ds.metadata.generation,
            ..Default::default()
        };
        if ds.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut updated = ds.clone();
        updated.status = Some(status);
        let written = self
            .registry
            .update_typed(&updated, Subresource::Status)
            .await?;
        self.daemonsets.wait_for(revision_of(&written)).await;
        Ok(())
    }
}
