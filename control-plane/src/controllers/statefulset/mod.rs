//! The StatefulSet controller: pods `NAME-0..N-1` with stable names, hostnames and claims
//! (`TEMPLATE-NAME-i`, made before the pod), brought up and down in order (or all at once with
//! `Parallel`), updated from the highest ordinal down to the partition (or only when deleted,
//! with `OnDelete`). Revisions are ControllerRevisions, as in Kubernetes, so everything the
//! controller needs is in the store: a new leader carries on where the old one stopped.

mod plan;
mod pod;
mod revision;
mod status;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use skiff_api::k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use skiff_api::k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use skiff_api::resources;

use self::plan::{plan, Management, Policy, Revisions, Update};
use self::pod::{claims_for, deletes_claims_on_scale_down, ordinal_of, pod_for};
pub use self::pod::{POD_INDEX_LABEL, POD_NAME_LABEL, REVISION_LABEL};
use self::revision::{new_revision, next_number, surplus, template_of, update_revision_name};
use crate::error::ApiError;
use crate::registry::{object, Registry, Subresource};
use crate::runtime::events::{EventRecorder, EventType};
use crate::runtime::informer::{object_key, revision_of, Informer};
use crate::runtime::ownership::controller_of;
use crate::runtime::runner::{Action, Reconciler};

/// Keeps each StatefulSet's ordinal pods, claims and revisions as its spec says.
pub struct StatefulSetController {
    pub registry: Registry,
    pub statefulsets: Arc<Informer<StatefulSet>>,
    pub pods: Arc<Informer<Pod>>,
    pub revisions: Arc<Informer<ControllerRevision>>,
    pub events: EventRecorder,
    /// Per set (by uid), the pods (by uid) already reported as stuck past their deletion time.
    pub reported_stuck: Mutex<HashMap<String, HashSet<String>>>,
}

/// The StatefulSet key that should react to a change of `pod` (or of a revision).
pub fn owner_key<K: crate::registry::typed::Object>(obj: &K) -> Option<String> {
    let meta = obj.metadata();
    let owner = controller_of(meta)?;
    (owner.kind == "StatefulSet").then(|| object_key(meta.namespace.as_deref(), &owner.name))
}

/// The set's policies, from its (defaulted) spec.
fn policy_of(sts: &StatefulSet) -> Policy {
    let spec = sts.spec.as_ref();
    let management = match spec.and_then(|s| s.pod_management_policy.as_deref()) {
        Some("Parallel") => Management::Parallel,
        _ => Management::OrderedReady,
    };
    let strategy = spec.and_then(|s| s.update_strategy.as_ref());
    let update = match strategy.and_then(|s| s.type_.as_deref()) {
        Some("OnDelete") => Update::OnDelete,
        _ => Update::RollingUpdate {
            partition: strategy
                .and_then(|s| s.rolling_update.as_ref())
                .and_then(|r| r.partition)
                .unwrap_or(0)
                .max(0) as usize,
        },
    };
    Policy {
        replicas: spec.and_then(|s| s.replicas).unwrap_or(1).max(0) as usize,
        management,
        update,
        min_ready_seconds: spec.and_then(|s| s.min_ready_seconds).unwrap_or(0),
    }
}

#[async_trait]
impl Reconciler for StatefulSetController {
    fn name(&self) -> &'static str {
        "statefulset-controller"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let Some(sts) = self.statefulsets.get(key) else {
            return Ok(Action::await_change());
        };
        if sts.metadata.deletion_timestamp.is_some() {
            return Ok(Action::await_change());
        }
        self.revisions.synced().await;
        let uid = sts.metadata.uid.clone().unwrap_or_default();
        let name = sts.metadata.name.clone().unwrap_or_default();
        let update = self.ensure_update_revision(&sts, &uid).await?;
        let owned = self.revisions.controlled_by(&uid);
        let recorded = sts.status.as_ref().and_then(|s| s.current_revision.clone());
        let (current, current_template) = recorded
            .and_then(|name| {
                let revision = owned
                    .iter()
                    .find(|r| r.metadata.name.as_deref() == Some(&name))?;
                Some((name, template_of(revision)?))
            })
            .unwrap_or_else(|| (update.clone(), template(&sts)));
        let revisions = Revisions {
            current,
            update: update.clone(),
        };
        let policy = policy_of(&sts);
        let pods: BTreeMap<usize, Arc<Pod>> = self
            .pods
            .controlled_by(&uid)
            .into_iter()
            .filter_map(|p| Some((ordinal_of(&name, &p)?, p)))
            .collect();
        let now = skiff_api::time::now();
        let plan = plan(&policy, &revisions, &pods, &now);
        let mut last_revision = 0;
        // Ordered plans hold at most one step; parallel ones are small enough to run in turn.
        for (ordinal, revision) in &plan.create {
            let from = if *revision == update {
                template(&sts)
            } else {
                current_template.clone()
            };
            let created = self.create_pod(&sts, &from, revision, *ordinal).await?;
            last_revision = last_revision.max(created);
        }
        for pod in &plan.delete {
            let ordinal = ordinal_of(&name, pod).unwrap_or_default();
            let condemned = ordinal >= policy.replicas;
            last_revision = last_revision.max(self.delete_pod(&sts, pod).await?);
            if condemned && deletes_claims_on_scale_down(&sts) {
                self.delete_claims(&sts, ordinal).await?;
            }
        }
        if last_revision > 0 {
            self.pods.wait_for(last_revision).await;
        }
        let all: Vec<Arc<Pod>> = self
            .pods
            .controlled_by(&uid)
            .into_iter()
            .filter(|p| ordinal_of(&name, p).is_some())
            .collect();
        let (status, available_after) = status::status(&sts, &all, &revisions, &now);
        let current = status.current_revision.clone().unwrap_or_default();
        if sts.status.as_ref() != Some(&status) {
            let mut updated = (*sts).clone();
            updated.status = Some(status);
            let written = self
                .registry
                .update_typed(&updated, Subresource::Status)
                .await?;
            self.statefulsets.wait_for(revision_of(&written)).await;
        }
        self.trim_history(&sts, &all, &current, &update).await?;
        let stuck_after = self.report_stuck(&sts, &all, &now);
        let after = [available_after, stuck_after].into_iter().flatten().min();
        Ok(after.map_or_else(Action::await_change, Action::requeue))
    }
}

fn template(sts: &StatefulSet) -> PodTemplateSpec {
    sts.spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default()
}

impl StatefulSetController {
    /// Warns once about each pod still there past its deletion time (its node is likely lost:
    /// its ordinal waits for it, as in Kubernetes); returns how soon another pod's time is up.
    fn report_stuck(&self, sts: &StatefulSet, pods: &[Arc<Pod>], now: &Time) -> Option<Duration> {
        let mut reported_sets = self
            .reported_stuck
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let reported = reported_sets
            .entry(sts.metadata.uid.clone().unwrap_or_default())
            .or_default();
        let mut stuck = HashSet::new();
        let mut soonest: Option<Duration> = None;
        for pod in pods {
            let Some(at) = pod.metadata.deletion_timestamp.as_ref() else {
                continue;
            };
            let left = at.0.as_second() - now.0.as_second();
            if left >= 0 {
                let wait = Duration::from_secs(left as u64 + 1);
                soonest = Some(soonest.map_or(wait, |s| s.min(wait)));
                continue;
            }
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            stuck.insert(uid.clone());
            if reported.insert(uid) {
                let node = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .unwrap_or("<none>");
                self.events.record(
                    sts,
                    EventType::Warning,
                    "PodStuckTerminating",
                    format!(
                        "Pod {} is past its deletion time on node {node}, which may be lost; it is made again once the node confirms it stopped, the node is deleted, or the pod is force-deleted",
                        pod.metadata.name.as_deref().unwrap_or_default()
                    ),
                );
            }
        }
        reported.retain(|uid| stuck.contains(uid));
        soonest
    }

    /// The name of the revision of the set's template, created if it is new.
    async fn ensure_update_revision(
        &self,
        sts: &StatefulSet,
        uid: &str,
    ) -> Result<String, ApiError> {
        let name = update_revision_name(sts);
        let owned = self.revisions.controlled_by(uid);
        if owned
            .iter()
            .any(|r| r.metadata.name.as_deref() == Some(&name))
        {
            return Ok(name);
        }
        match self
            .registry
            .create_typed(&new_revision(sts, next_number(&owned)))
            .await
        {
            Ok(created) => self.revisions.wait_for(revision_of(&created)).await,
            // Made by a previous leader whose write this cache has not seen yet.
            Err(ApiError::AlreadyExists { .. }) => {}
            Err(err) => return Err(err),
        }
        Ok(name)
    }

    /// Creates pod `ordinal`'s claims (those that exist stay as they are), then the pod;
    /// returns the store revision of the pod's creation (0 if it already existed).
    async fn create_pod(
        &self,
        sts: &StatefulSet,
        template: &PodTemplateSpec,
        revision: &str,
        ordinal: usize,
    ) -> Result<u64, ApiError> {
        for claim in claims_for(sts, ordinal) {
            let claim_name = claim.metadata.name.clone().unwrap_or_default();
            match self.registry.create_typed(&claim).await {
                Ok(_) => self.events.record(
                    sts,
                    EventType::Normal,
                    "SuccessfulCreate",
                    format!(
                        "create Claim {claim_name} Pod {} in StatefulSet {} success",
                        pod::pod_name(sts, ordinal),
                        name_of(sts)
                    ),
                ),
                Err(ApiError::AlreadyExists { .. }) => {}
                Err(err) => {
                    self.events.record(
                        sts,
                        EventType::Warning,
                        "FailedCreate",
                        format!("create Claim {claim_name} for Pod {} in StatefulSet {} failed error: {err}", pod::pod_name(sts, ordinal), name_of(sts)),
                    );
                    return Err(err);
                }
            }
        }
        let pod = pod_for(sts, template, revision, ordinal);
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        match self.registry.create_typed(&pod).await {
            Ok(created) => {
                self.events.record(
                    sts,
                    EventType::Normal,
                    "SuccessfulCreate",
                    format!(
                        "create Pod {pod_name} in StatefulSet {} successful",
                        name_of(sts)
                    ),
                );
                Ok(revision_of(&created))
            }
            // Still terminating, or made by a previous leader: its events bring us back.
            Err(ApiError::AlreadyExists { .. }) => Ok(0),
            Err(err) => {
                self.events.record(
                    sts,
                    EventType::Warning,
                    "FailedCreate",
                    format!(
                        "create Pod {pod_name} in StatefulSet {} failed error: {err}",
                        name_of(sts)
                    ),
                );
                Err(err)
            }
        }
    }

    /// Deletes `pod`; returns the store revision of the deletion (0 if it was gone).
    async fn delete_pod(&self, sts: &StatefulSet, pod: &Pod) -> Result<u64, ApiError> {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let result = self
            .registry
            .delete(
                resources::of::<Pod>(),
                pod.metadata.namespace.as_deref(),
                &pod_name,
                &Default::default(),
            )
            .await;
        match result {
            Ok(obj) => {
                self.events.record(
                    sts,
                    EventType::Normal,
                    "SuccessfulDelete",
                    format!(
                        "delete Pod {pod_name} in StatefulSet {} successful",
                        name_of(sts)
                    ),
                );
                Ok(object::revision(&obj))
            }
            Err(ApiError::NotFound { .. }) => Ok(0),
            Err(err) => Err(err),
        }
    }

    /// Deletes pod `ordinal`'s claims (`whenScaled: Delete`).
    async fn delete_claims(&self, sts: &StatefulSet, ordinal: usize) -> Result<(), ApiError> {
        for claim in claims_for(sts, ordinal) {
            let claim_name = claim.metadata.name.unwrap_or_default();
            match self
                .registry
                .delete(
                    resources::of::<PersistentVolumeClaim>(),
                    sts.metadata.namespace.as_deref(),
                    &claim_name,
                    &Default::default(),
                )
                .await
            {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Deletes revisions beyond `revisionHistoryLimit` that no pod and no status names.
    async fn trim_history(
        &self,
        sts: &StatefulSet,
        pods: &[Arc<Pod>],
        current: &str,
        update: &str,
    ) -> Result<(), ApiError> {
        let uid = sts.metadata.uid.as_deref().unwrap_or_default();
        let limit = sts
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10)
            .max(0) as usize;
        let mut live: HashSet<String> = [current.to_string(), update.to_string()].into();
        live.extend(
            pods.iter()
                .filter_map(|p| pod::revision_of(p).map(str::to_string)),
        );
        for old in surplus(&self.revisions.controlled_by(uid), &live, limit) {
            let name = old.metadata.name.clone().unwrap_or_default();
            match self
                .registry
                .delete(
                    resources::of::<ControllerRevision>(),
                    old.metadata.namespace.as_deref(),
                    &name,
                    &Default::default(),
                )
                .await
            {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

fn name_of(sts: &StatefulSet) -> &str {
    sts.metadata.name.as_deref().unwrap_or_default()
}
