//! The Deployment controller: one ReplicaSet per pod template (named by `pod-template-hash`),
//! rolled out with the RollingUpdate or Recreate strategy.

mod rollout;
mod status;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use skiff_api::hash::pod_template_hash;
use skiff_api::k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::error::ApiError;
use crate::registry::{Registry, Subresource};
use crate::runtime::events::{EventRecorder, EventType};
use crate::runtime::informer::{object_key, revision_of, Informer};
use crate::runtime::ownership::{controller_of, controller_ref};
use crate::runtime::runner::{Action, Reconciler};

/// Label that ties a ReplicaSet and its pods to one pod template.
pub const TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

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
        let owned = self.replicasets.controlled_by(&uid);
        let hash = pod_template_hash(
            &deployment
                .spec
                .as_ref()
                .map(|s| s.template.clone())
                .unwrap_or_default(),
        );
        let (new_rs, mut old): (Vec<_>, Vec<_>) = owned
            .into_iter()
            .partition(|rs| label(&rs.metadata, TEMPLATE_HASH_LABEL) == Some(hash.as_str()));
        old.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
        });
        let plan = rollout::plan(&deployment, new_rs.first().map(Arc::as_ref), &old);
        let mut last = 0;
        let new_rs = match new_rs.into_iter().next() {
            Some(rs) => rs,
            None => {
                let created = self
                    .create_replicaset(&deployment, &hash, plan.new_replicas, &old)
                    .await?;
                last = revision_of(&created);
                Arc::new(created)
            }
        };
        last = last.max(self.scale(&deployment, &new_rs, plan.new_replicas).await?);
        for (rs, replicas) in old.iter().zip(&plan.old_replicas) {
            last = last.max(self.scale(&deployment, rs, *replicas).await?);
        }
        last = last.max(self.clean_up_history(&deployment, &old).await?);
        if last > 0 {
            self.replicasets.wait_for(last).await;
        }
        let all = self.replicasets.controlled_by(&uid);
        self.update_status(&deployment, &new_rs, &all).await?;
        Ok(Action::await_change())
    }
}

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

fn revision(meta: &ObjectMeta) -> i64 {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

impl DeploymentController {
    async fn create_replicaset(
        &self,
        deployment: &Deployment,
        hash: &str,
        replicas: i32,
        old: &[Arc<ReplicaSet>],
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
        let next_revision = old
            .iter()
            .map(|rs| revision(&rs.metadata))
            .max()
            .unwrap_or(0)
            + 1;
        let name = format!(
            "{}-{hash}",
            deployment.metadata.name.as_deref().unwrap_or("deployment")
        );
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: deployment.metadata.namespace.clone(),
                labels: Some(labels),
                annotations: Some(BTreeMap::from([(
                    REVISION_ANNOTATION.to_string(),
                    next_revision.to_string(),
                )])),
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

    /// Sets `rs.spec.replicas`; returns the write's revision (0 if nothing changed).
    async fn scale(
        &self,
        deployment: &Deployment,
        rs: &ReplicaSet,
        replicas: i32,
    ) -> Result<u64, ApiError> {
        let current = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        if current == replicas {
            return Ok(0);
        }
        let mut scaled = rs.clone();
        scaled.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        let updated = self
            .registry
            .update_typed(&scaled, Subresource::Main)
            .await?;
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
        Ok(revision_of(&updated))
    }

    /// Deletes old, scaled-down ReplicaSets beyond `revisionHistoryLimit`.
    async fn clean_up_history(
        &self,
        deployment: &Deployment,
        old: &[Arc<ReplicaSet>],
    ) -> Result<u64, ApiError> {
        let limit = deployment
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10)
            .max(0) as usize;
        let idle: Vec<_> = old
            .iter()
            .filter(|rs| {
                rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) == 0
                    && rs.status.as_ref().map(|s| s.replicas).unwrap_or(0) == 0
            })
            .collect();
        let mut last = 0;
        for rs in idle.iter().take(idle.len().saturating_sub(limit)) {
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
                Ok(obj) => last = last.max(crate::registry::object::revision(&obj)),
                Err(ApiError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(last)
    }

    async fn update_status(
        &self,
        deployment: &Deployment,
        new_rs: &ReplicaSet,
        all: &[Arc<ReplicaSet>],
    ) -> Result<(), ApiError> {
        let status = status::status(deployment, new_rs, all, &skiff_api::time::now());
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
