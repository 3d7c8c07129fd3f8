//! The Deployment controller: one ReplicaSet per pod template (named by `pod-template-hash`),
//! rolled out with the RollingUpdate or Recreate strategy; old ReplicaSets stay (scaled to zero,
//! within `revisionHistoryLimit`) as the rollout history that `skiff rollout undo` goes back to.

mod revision;
mod rollout;
mod status;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use skiff_api::hash::pod_template_hash;
use skiff_api::k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use skiff_api::ownership::controller_ref;

pub use revision::{CHANGE_CAUSE_ANNOTATION, REVISION_ANNOTATION};

use crate::error::ApiError;
use crate::registry::{Registry, Subresource};
use crate::runtime::events::{EventRecorder, EventType};
use crate::runtime::informer::{object_key, revision_of, Informer};
use crate::runtime::ownership::controller_of;
use crate::runtime::runner::{Action, Reconciler};

/// Label that ties a ReplicaSet and its pods to one pod template.
pub const TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
/// Slack after a progress deadline before the reconcile that reports it.
const DEADLINE_SLACK: Duration = Duration::from_secs(1);

/// Rolls each Deployment out through ReplicaSets and writes its status and conditions.
pub struct DeploymentController {
    pub registry: Registry,
    pub deployments: Arc<Informer<Deployment>>,
    pub replicasets: Arc<Informer<ReplicaSet>>,
    pub events: EventRecorder,
}

/// The Deployment key that should react to a change of `rs`.
pub fn owner_key(rs: &ReplicaSet) -> Option<String> {
    let owner = controller_of(&rs.metadata)?;
    (owner.kind == "Deployment").then(|| object_key(rs.metadata.namespace.as_deref(), &owner.name))
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

#[async_trait]
impl Reconciler for DeploymentController {
    fn name(&self) -> &'static str {
        "deployment-controller"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let Some(deployment) = self.deployments.get(key) else {
            return Ok(Action::await_change());
        };
        if deployment.metadata.deletion_timestamp.is_some() {
            return Ok(Action::await_change());
        }
        let uid = deployment.metadata.uid.clone().unwrap_or_default();
        let spec = deployment.spec.clone().unwrap_or_default();
        let hash = pod_template_hash(&spec.template);
        // The ReplicaSet labelled with the template's hash first, then one with an equal template.
        let mut owned = self.replicasets.controlled_by(&uid);
        owned.sort_by_key(|rs| label(&rs.metadata, TEMPLATE_HASH_LABEL) != Some(hash.as_str()));
        let current = owned
            .iter()
            .position(|rs| revision::runs_template(rs, &spec.template, &hash));
        let new_rs = current.map(|i| owned.remove(i));
        let mut old = owned;
        old.sort_by_key(|rs| revision::revision(&rs.metadata));
        let paused = spec.paused == Some(true);
        let plan = if paused {
            let old_current: Vec<i32> = old.iter().map(|rs| spec_replicas(rs)).collect();
            rollout::scale_only(
                spec.replicas.unwrap_or(1).max(0),
                new_rs.as_deref().map(spec_replicas),
                &old_current,
            )
        } else {
            rollout::plan(&deployment, new_rs.as_deref(), &old)
        };
        let mut last = 0;
        let mut changes = status::Changes::default();
        let new_revision = revision::new_revision(new_rs.as_deref(), &old);
        let new_rs = match new_rs {
            Some(rs) => {
                let annotations = (!paused)
                    .then(|| revision::new_rs_annotations(&deployment, &rs.metadata, new_revision))
                    .flatten();
                let written = self
                    .sync_replicaset(&deployment, &rs, plan.new_replicas, annotations)
                    .await?;
                changes.scaled |= written > 0 && spec_replicas(&rs) != plan.new_replicas;
                last = last.max(written);
                Some(rs)
            }
            None if paused => None,
            None => {
                let created = self
                    .create_replicaset(&deployment, &hash, plan.new_replicas, new_revision)
                    .await?;
                last = revision_of(&created);
                changes.created = true;
                Some(Arc::new(created))
            }
        };
        for (rs, replicas) in old.iter().zip(&plan.old_replicas) {
            let written = self
                .sync_replicaset(&deployment, rs, *replicas, None)
                .await?;
            changes.scaled |= written > 0;
            last = last.max(written);
        }
        for rs in revision::history_to_delete(&deployment, &old) {
            last = last.max(self.delete_replicaset(&rs).await?);
        }
        if last > 0 {
            self.replicasets.wait_for(last).await;
        }
        let deployment = if paused {
            deployment
        } else {
            self.record_revision(deployment, new_revision).await?
        };
        let all = self.replicasets.controlled_by(&uid);
        let new_rs = new_rs.map(|rs| {
            all.iter()
                .find(|r| r.metadata.uid == rs.metadata.uid)
                .cloned()
                .unwrap_or(rs)
        });
        let now = skiff_api::time::now();
        let status = status::status(&deployment, new_rs.as_deref(), &all, changes, &now);
        let requeue = status::until_deadline(&deployment, &status, &now);
        self.update_status(&deployment, status).await?;
        Ok(match requeue {
            Some(left) => Action::requeue(left + DEADLINE_SLACK),
            None => Action::await_change(),
        })
    }
}

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

impl DeploymentController {
    async fn create_replicaset(
        &self,
        deployment: &Deployment,
        hash: &str,
        replicas: i32,
        revision: i64,
    ) -> Result<ReplicaSet, ApiError> {
        let spec = deployment.spec.clone().unwrap_or_default();
        let mut template = spec.template;
        let mut template_meta = template.metadata.unwrap_or_default();
        let mut labels = template_meta.labels.unwrap_or_default();
        labels.insert(TEMPLATE_HASH_LABEL.into(), hash.to_string());
        template_meta.labels = Some(labels.clone());
        template.metadata = Some(template_meta);
        let mut selector: LabelSelector = spec.selector;
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(TEMPLATE_HASH_LABEL.into(), hash.to_string());
        let name = format!(
            "{}-{hash}",
            deployment.metadata.name.as_deref().unwrap_or("deployment")
        );
        let annotations =
            revision::new_rs_annotations(deployment, &ObjectMeta::default(), revision);
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: deployment.metadata.namespace.clone(),
                labels: Some(labels),
                annotations,
                owner_references: Some(vec![controller_ref(deployment)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        match self.registry.create_typed(&rs).await {
            Ok(created) => {
                self.events.record(
                    deployment,
                    EventType::Normal,
                    "ScalingReplicaSet",
                    format!("Scaled up replica set {name} from 0 to {replicas}"),
                );
                Ok(created)
            }
            // Created by an earlier reconcile that the cache has not shown yet: retry.
            Err(ApiError::AlreadyExists { resource, name }) => Err(ApiError::Conflict {
                resource,
                name,
                message: "replica set exists but is not cached yet".into(),
            }),
            Err(err) => Err(err),
        }
    }

    /// Sets `rs.spec.replicas` (and its annotations, if given); returns the write's revision
    /// (0 if nothing changed).
    async fn sync_replicaset(
        &self,
        deployment: &Deployment,
        rs: &ReplicaSet,
        replicas: i32,
        annotations: Option<BTreeMap<String, String>>,
    ) -> Result<u64, ApiError> {
        let current = spec_replicas(rs);
        if current == replicas && annotations.is_none() {
            return Ok(0);
        }
        let mut next = rs.clone();
        next.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        if annotations.is_some() {
            next.metadata.annotations = annotations;
        }
        let updated = self.registry.update_typed(&next, Subresource::Main).await?;
        if current != replicas {
            let direction = if replicas > current { "up" } else { "down" };
            self.events.record(
                deployment,
                EventType::Normal,
                "ScalingReplicaSet",
                format!(
                    "Scaled {direction} replica set {} from {current} to {replicas}",
                    rs.metadata.name.as_deref().unwrap_or_default()
                ),
            );
        }
        Ok(revision_of(&updated))
    }

    /// Deletes an old ReplicaSet beyond the history limit; returns the write's revision.
    async fn delete_replicaset(&self, rs: &ReplicaSet) -> Result<u64, ApiError> {
        let kind = skiff_api::resources::of::<ReplicaSet>();
        let name = rs.metadata.name.as_deref().unwrap_or_default();
        match self
            .registry
            .delete(
                kind,
                rs.metadata.namespace.as_deref(),
                name,
                &Default::default(),
            )
            .await
        {
            Ok(obj) => Ok(crate::registry::object::revision(&obj)),
            Err(ApiError::NotFound { .. }) => Ok(0),
            Err(err) => Err(err),
        }
    }

    /// Annotates the Deployment with its current revision (as its new ReplicaSet carries it).
    async fn record_revision(
        &self,
        deployment: Arc<Deployment>,
        revision: i64,
    ) -> Result<Arc<Deployment>, ApiError> {
        if revision::revision(&deployment.metadata) == revision {
            return Ok(deployment);
        }
        let mut next = (*deployment).clone();
        next.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(REVISION_ANNOTATION.into(), revision.to_string());
        let written = self.registry.update_typed(&next, Subresource::Main).await?;
        self.deployments.wait_for(revision_of(&written)).await;
        Ok(Arc::new(written))
    }

    async fn update_status(
        &self,
        deployment: &Deployment,
        status: skiff_api::k8s_openapi::api::apps::v1::DeploymentStatus,
    ) -> Result<(), ApiError> {
        if deployment.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut next = deployment.clone();
        next.status = Some(status);
        let written = self
            .registry
            .update_typed(&next, Subresource::Status)
            .await?;
        // Read our own write before the next reconcile, or it would conflict with it.
        self.deployments.wait_for(revision_of(&written)).await;
        Ok(())
    }
}
