//! The DaemonSet controller: one pod on every node the template admits, added and removed as
//! nodes come and go, and replaced node by node (at most `maxUnavailable` at once) when the
//! template changes. Its pods are pinned to their node by node affinity and placed by the
//! scheduler, as Kubernetes does since 1.12.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::join_all;
use serde_json::json;
use skiff_api::hash::pod_template_hash;
use skiff_api::k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use skiff_api::k8s_openapi::api::core::v1::{Node, Pod, Toleration};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_api::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use skiff_api::resources;

use super::events::{EventRecorder, EventType};
use super::informer::{object_key, revision_of, Informer};
use super::ownership::{controller_of, controller_ref};
use super::pods::{is_active, is_ready};
use super::runner::{Action, Reconciler};
use crate::error::ApiError;
use crate::registry::{object, Registry, Subresource};

/// The label that tells which template revision made a pod.
pub const REVISION_LABEL: &str = "controller-revision-hash";

pub struct DaemonSetController {
    pub registry: Registry,
    pub daemonsets: Arc<Informer<DaemonSet>>,
    pub pods: Arc<Informer<Pod>>,
    pub nodes: Arc<Informer<Node>>,
    pub events: EventRecorder,
}

/// The DaemonSet key that should react to a change of `pod`.
pub fn owner_key(pod: &Pod) -> Option<String> {
    let owner = controller_of(&pod.metadata)?;
    (owner.kind == "DaemonSet").then(|| object_key(pod.metadata.namespace.as_deref(), &owner.name))
}

/// The node a DaemonSet pod belongs to: where it is bound, or where its affinity pins it.
fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(node) = spec.node_name.clone().filter(|n| !n.is_empty()) {
        return Some(node);
    }
    spec.affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|f| f.key == "metadata.name" && f.operator == "In")
        .and_then(|f| f.values.as_ref()?.first().cloned())
}

/// What to change: nodes that need a pod, and pods to delete.
#[derive(Debug, Default, PartialEq)]
struct Plan {
    create: Vec<String>,
    delete: Vec<Arc<Pod>>,
}

/// Compares where pods should run (`eligible`, node name → admitted) with where they are.
/// `max_unavailable` bounds how many outdated pods (not of `revision`) are replaced at once.
fn plan(
    eligible: &[(String, bool)],
    mut by_node: HashMap<String, Vec<Arc<Pod>>>,
    revision: &str,
    max_unavailable: Option<usize>,
) -> Plan {
    let mut plan = Plan::default();
    let mut outdated = Vec::new();
    let mut unavailable = 0;
    for (node, admitted) in eligible {
        let mut pods = by_node.remove(node).unwrap_or_default();
        if !admitted {
            plan.delete.extend(pods);
            continue;
        }
        // The oldest pod stays; duplicates go.
        pods.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
        });
        let mut pods = pods.into_iter();
        match pods.next() {
            None => {
                plan.create.push(node.clone());
                unavailable += 1;
            }
            Some(pod) => {
                if !is_ready(&pod) {
                    unavailable += 1;
                }
                let current = pod
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(REVISION_LABEL))
                    .is_some_and(|h| h == revision);
                if !current {
                    outdated.push(pod);
                }
            }
        }
        plan.delete.extend(pods);
    }
    // Pods on nodes that are gone.
    plan.delete.extend(by_node.into_values().flatten());
    if let Some(max) = max_unavailable {
        // Replace pods that are down anyway first, then as many as the budget allows.
        outdated.sort_by_key(|p| is_ready(p));
        let budget = max.saturating_sub(unavailable);
        let down = outdated.iter().filter(|p| !is_ready(p)).count();
        plan.delete
            .extend(outdated.into_iter().take(down.max(budget)));
    }
    plan
}

/// Tolerations every DaemonSet pod gets, so it stays on unreachable, not-ready and cordoned nodes.
fn default_tolerations() -> Vec<Toleration> {
    [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]
    .into_iter()
    .map(|(key, effect)| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    })
    .collect()
}

/// The pod the DaemonSet runs on `node`.
fn pod_for(ds: &DaemonSet, node: &str, revision: &str) -> Result<Pod, ApiError> {
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let template_meta = template.metadata.unwrap_or_default();
    let mut labels = template_meta.labels.unwrap_or_default();
    labels.insert(REVISION_LABEL.into(), revision.into());
    let mut spec = serde_json::to_value(template.spec.unwrap_or_default())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = json!({
        "nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": [node]}]}]
    });
    let mut pod = Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", ds.metadata.name.as_deref().unwrap_or("ds"))),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: template_meta.annotations,
            owner_references: Some(vec![controller_ref(ds)]),
            ..Default::default()
        },
        spec: Some(serde_json::from_value(spec).map_err(|e| ApiError::Internal(e.to_string()))?),
        status: None,
    };
    if let Some(spec) = pod.spec.as_mut() {
        let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
        for default in default_tolerations() {
            if !tolerations.contains(&default) {
                tolerations.push(default);
            }
        }
    }
    Ok(pod)
}

/// `maxUnavailable` of a RollingUpdate strategy against `desired` pods (at least 1); `None` for OnDelete.
fn max_unavailable(ds: &DaemonSet, desired: usize) -> Option<usize> {
    let strategy = ds.spec.as_ref()?.update_strategy.as_ref();
    if strategy.and_then(|s| s.type_.as_deref()) == Some("OnDelete") {
        return None;
    }
    let value = strategy
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.max_unavailable.clone())
        .unwrap_or(IntOrString::Int(1));
    let n = match value {
        IntOrString::Int(n) => n.max(0) as usize,
        IntOrString::String(s) => {
            let percent: usize = s.trim_end_matches('%').parse().unwrap_or(0);
            (desired * percent).div_ceil(100)
        }
    };
    Some(n.max(1))
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
        let nodes = self.nodes.list(|_| true);
        let mut eligible = Vec::with_capacity(nodes.len());
        for node in &nodes {
            let name = node.metadata.name.clone().unwrap_or_default();
            let admitted = crate::scheduler::admits(&pod_for(&ds, &name, &revision)?, node);
            eligible.push((name, admitted));
        }
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
                .create_typed(&pod_for(&ds, node, &revision)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: &str, revision: &str, ready: bool) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {REVISION_LABEL: revision},
                    "creationTimestamp": format!("2026-01-01T00:00:0{}Z", name.len() % 10)},
                "spec": {"nodeName": node, "containers": []},
                "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
            }))
            .expect("pod"),
        )
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<String> {
        let mut names: Vec<String> = pods
            .iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect();
        names.sort();
        names
    }

    fn nodes(list: &[(&str, bool)]) -> Vec<(String, bool)> {
        list.iter().map(|(n, a)| (n.to_string(), *a)).collect()
    }

    fn by_node(pods: &[Arc<Pod>]) -> HashMap<String, Vec<Arc<Pod>>> {
        let mut map: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for p in pods {
            map.entry(target_node(p).unwrap_or_default())
                .or_default()
                .push(p.clone());
        }
        map
    }

    #[test]
    fn one_pod_per_admitted_node() {
        let pods = [
            pod("a", "n1", "r1", true),
            pod("bb", "n1", "r1", true),
            pod("c", "n3", "r1", true),
            pod("d", "gone", "r1", true),
        ];
        let plan = plan(
            &nodes(&[("n1", true), ("n2", true), ("n3", false)]),
            by_node(&pods),
            "r1",
            Some(1),
        );
        assert_eq!(plan.create, vec!["n2".to_string()]);
        assert_eq!(
            names(&plan.delete),
            vec!["bb", "c", "d"],
            "duplicate, not admitted, node gone"
        );
    }

    #[test]
    fn rolling_update_respects_max_unavailable() {
        let pods = [
            pod("a", "n1", "old", true),
            pod("b", "n2", "old", true),
            pod("c", "n3", "old", true),
        ];
        let eligible = nodes(&[("n1", true), ("n2", true), ("n3", true)]);
        let one = plan(&eligible, by_node(&pods), "new", Some(1));
        assert_eq!(one.delete.len(), 1);
        let two = plan(&eligible, by_node(&pods), "new", Some(2));
        assert_eq!(two.delete.len(), 2);
        assert!(
            plan(&eligible, by_node(&pods), "new", None)
                .delete
                .is_empty(),
            "OnDelete"
        );
        // One node already without a pod uses up the budget.
        let missing = plan(&eligible, by_node(&pods[..2]), "new", Some(1));
        assert_eq!((missing.create.len(), missing.delete.len()), (1, 0));
        // A pod that is down anyway is replaced regardless.
        let down = [pod("a", "n1", "old", false), pod("b", "n2", "old", true)];
        let plan = plan(
            &nodes(&[("n1", true), ("n2", true)]),
            by_node(&down),
            "new",
            Some(1),
        );
        assert_eq!(names(&plan.delete), vec!["a"]);
    }

    #[test]
    fn pods_are_pinned_to_their_node() {
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "default", "uid": "u1"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}]}}}
        }))
        .expect("ds");
        let pod = pod_for(&ds, "n7", "r1").expect("pod");
        assert_eq!(target_node(&pod).as_deref(), Some("n7"));
        assert_eq!(
            pod.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(REVISION_LABEL))
                .map(String::as_str),
            Some("r1")
        );
        assert_eq!(
            pod.spec
                .as_ref()
                .and_then(|s| s.tolerations.as_ref())
                .map(Vec::len),
            Some(3)
        );
    }
}
