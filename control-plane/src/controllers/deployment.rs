//! The Deployment controller: one ReplicaSet per pod template (named by `pod-template-hash`),
//! rolled out with the RollingUpdate or Recreate strategy.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use skiff_api::hash::pod_template_hash;
use skiff_api::k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use skiff_api::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::events::{EventRecorder, EventType};
use super::informer::{object_key, revision_of, Informer};
use super::ownership::{controller_of, controller_ref};
use super::runner::{Action, Reconciler};
use crate::error::ApiError;
use crate::registry::{Registry, Subresource};

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
        let plan = plan(&deployment, new_rs.first().map(Arc::as_ref), &old);
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

/// Replica counts a reconcile should set: the new ReplicaSet, then each old one (oldest first).
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    new_replicas: i32,
    old_replicas: Vec<i32>,
}

fn plan(deployment: &Deployment, new_rs: Option<&ReplicaSet>, old: &[Arc<ReplicaSet>]) -> Plan {
    let spec = deployment.spec.clone().unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1).max(0);
    let spec_replicas = |rs: &ReplicaSet| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let available = |rs: &ReplicaSet| {
        rs.status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0)
    };
    let new_current = new_rs.map(spec_replicas).unwrap_or(0);
    let old_current: Vec<i32> = old.iter().map(|rs| spec_replicas(rs)).collect();
    let old_total: i32 = old_current.iter().sum();
    let strategy = spec.strategy.unwrap_or_default();
    if strategy.type_.as_deref() == Some("Recreate") {
        let old_running: i32 = old
            .iter()
            .map(|rs| rs.status.as_ref().map(|s| s.replicas).unwrap_or(0))
            .sum();
        let new_replicas = if old_total == 0 && old_running == 0 {
            desired
        } else {
            0
        };
        return Plan {
            new_replicas,
            old_replicas: vec![0; old.len()],
        };
    }
    if old_total == 0 {
        return Plan {
            new_replicas: desired,
            old_replicas: old_current,
        };
    }
    let rolling = strategy.rolling_update.unwrap_or_default();
    let mut max_surge = resolve(rolling.max_surge.as_ref(), desired, true);
    let max_unavailable = resolve(rolling.max_unavailable.as_ref(), desired, false);
    if max_surge == 0 && max_unavailable == 0 {
        max_surge = 1;
    }
    let max_unavailable = if max_surge == 0 {
        max_unavailable.max(1)
    } else {
        max_unavailable
    };
    // Scale the new ReplicaSet up within the surge budget.
    let total = new_current + old_total;
    let room = (desired + max_surge - total).max(0);
    let new_replicas = if new_current >= desired {
        desired
    } else {
        new_current + room.min(desired - new_current)
    };
    // Scale old ReplicaSets down while keeping `desired - max_unavailable` pods available.
    let min_available = desired - max_unavailable;
    let new_unavailable = (new_current - new_rs.map(available).unwrap_or(0)).max(0);
    let mut budget = (total - min_available - new_unavailable).max(0);
    let old_replicas = old_current
        .iter()
        .map(|&current| {
            let cut = current.min(budget);
            budget -= cut;
            current - cut
        })
        .collect();
    Plan {
        new_replicas,
        old_replicas,
    }
}

/// An absolute count from an int-or-percent, rounding up (surge) or down (unavailable).
fn resolve(value: Option<&IntOrString>, total: i32, round_up: bool) -> i32 {
    match value {
        None => resolve(Some(&IntOrString::String("25%".into())), total, round_up),
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => {
            let percent: i64 = s.trim_end_matches('%').parse().unwrap_or(25);
            let scaled = percent * i64::from(total);
            let count = if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            };
            count as i32
        }
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
        let desired = deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1);
        let sum = |f: &dyn Fn(&ReplicaSet) -> i32| all.iter().map(|rs| f(rs)).sum::<i32>();
        let replicas = sum(&|rs| rs.status.as_ref().map(|s| s.replicas).unwrap_or(0));
        let ready = sum(&|rs| {
            rs.status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0)
        });
        let available = sum(&|rs| {
            rs.status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0)
        });
        let updated = new_rs.status.as_ref().map(|s| s.replicas).unwrap_or(0);
        let max_unavailable = deployment
            .spec
            .as_ref()
            .and_then(|s| s.strategy.as_ref())
            .filter(|s| s.type_.as_deref() != Some("Recreate"))
            .map(|s| {
                resolve(
                    s.rolling_update
                        .as_ref()
                        .and_then(|r| r.max_unavailable.as_ref()),
                    desired,
                    false,
                )
            })
            .unwrap_or(0);
        let is_available = available >= desired - max_unavailable;
        let complete = updated == desired && replicas == desired && available == desired;
        let previous = deployment.status.clone().unwrap_or_default();
        let conditions = vec![
            condition(
                &previous,
                "Available",
                is_available,
                if is_available {
                    "MinimumReplicasAvailable"
                } else {
                    "MinimumReplicasUnavailable"
                },
                if is_available {
                    "Deployment has minimum availability."
                } else {
                    "Deployment does not have minimum availability."
                },
            ),
            condition(
                &previous,
                "Progressing",
                true,
                if complete {
                    "NewReplicaSetAvailable"
                } else {
                    "ReplicaSetUpdated"
                },
                &format!(
                    "ReplicaSet \"{}\" {}.",
                    new_rs.metadata.name.as_deref().unwrap_or_default(),
                    if complete {
                        "has successfully progressed"
                    } else {
                        "is progressing"
                    }
                ),
            ),
        ];
        let status = DeploymentStatus {
            replicas: Some(replicas),
            updated_replicas: Some(updated),
            ready_replicas: Some(ready),
            available_replicas: Some(available),
            unavailable_replicas: Some((desired - available).max(0)),
            observed_generation: deployment.metadata.generation,
            conditions: Some(conditions),
            collision_count: None,
            terminating_replicas: None,
        };
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

/// A condition that keeps its transition time unless its status flips.
fn condition(
    previous: &DeploymentStatus,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
) -> DeploymentCondition {
    let status = if status { "True" } else { "False" }.to_string();
    let old = previous
        .conditions
        .as_ref()
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_));
    let now = Time(
        Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now()),
    );
    let transitioned = match old {
        Some(old) if old.status == status => old.last_transition_time.clone(),
        _ => Some(now.clone()),
    };
    let unchanged = old.is_some_and(|o| {
        o.status == status
            && o.reason.as_deref() == Some(reason)
            && o.message.as_deref() == Some(message)
    });
    DeploymentCondition {
        type_: type_.to_string(),
        status,
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_transition_time: transitioned,
        last_update_time: if unchanged {
            old.and_then(|o| o.last_update_time.clone())
        } else {
            Some(now)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::k8s_openapi::api::apps::v1::{DeploymentSpec, ReplicaSetStatus};

    fn deployment(replicas: i32) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn rs(spec: i32, available: i32) -> ReplicaSet {
        ReplicaSet {
            spec: Some(ReplicaSetSpec {
                replicas: Some(spec),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas: spec,
                available_replicas: Some(available),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn steady_state_and_scaling_set_the_new_replicaset() {
        assert_eq!(
            plan(&deployment(3), None, &[]),
            Plan {
                new_replicas: 3,
                old_replicas: vec![]
            }
        );
        assert_eq!(
            plan(&deployment(5), Some(&rs(3, 3)), &[]),
            Plan {
                new_replicas: 5,
                old_replicas: vec![]
            }
        );
    }

    #[test]
    fn rolling_update_surges_then_scales_old_down_as_new_becomes_available() {
        let old = vec![Arc::new(rs(4, 4))];
        // 25% of 4: surge 1, unavailable 1.
        let first = plan(&deployment(4), Some(&rs(0, 0)), &old);
        assert_eq!(
            first,
            Plan {
                new_replicas: 1,
                old_replicas: vec![3]
            }
        );
        let later = plan(&deployment(4), Some(&rs(2, 2)), &[Arc::new(rs(2, 2))]);
        assert_eq!(
            later,
            Plan {
                new_replicas: 3,
                old_replicas: vec![1]
            }
        );
        let unavailable_new = plan(&deployment(4), Some(&rs(2, 0)), &[Arc::new(rs(2, 2))]);
        assert_eq!(
            unavailable_new.old_replicas,
            vec![2],
            "keeps old pods while new ones are unavailable"
        );
    }

    #[test]
    fn recreate_waits_for_old_pods_to_go() {
        let mut d = deployment(2);
        d.spec.as_mut().expect("spec").strategy =
            Some(skiff_api::k8s_openapi::api::apps::v1::DeploymentStrategy {
                type_: Some("Recreate".into()),
                rolling_update: None,
            });
        let old = vec![Arc::new(rs(2, 2))];
        assert_eq!(
            plan(&d, None, &old),
            Plan {
                new_replicas: 0,
                old_replicas: vec![0]
            }
        );
        let drained = vec![Arc::new(rs(0, 0))];
        assert_eq!(plan(&d, Some(&rs(0, 0)), &drained).new_replicas, 2);
    }

    #[test]
    fn percentages_round_like_kubernetes() {
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(resolve(Some(&pct("25%")), 3, true), 1);
        assert_eq!(resolve(Some(&pct("25%")), 3, false), 0);
        assert_eq!(resolve(Some(&IntOrString::Int(2)), 3, false), 2);
    }
}
