//! The node lifecycle controller: a node whose agent stops renewing its Lease (and posting its
//! status) for longer than the grace period is marked `Ready=Unknown`, tainted unreachable, and its pods are deleted so
//! that their controllers replace them elsewhere. When heartbeats resume, the taint goes; the
//! returning agent finishes the deletion of its old pods (a pod never runs twice). A live node
//! is tainted `NoSchedule` while it reports memory, disk or PID pressure.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use skiff_api::k8s_openapi::api::coordination::v1::Lease;
use skiff_api::k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use skiff_api::resources;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::registry::{Registry, Subresource};
use crate::runtime::events::{EventRecorder, EventType};
use crate::runtime::informer::Informer;

/// The taint of a node whose agent cannot be reached (as Kubernetes names it).
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";

/// Node conditions that taint a node `NoSchedule` while `True` (Kubernetes' taint-nodes-by-
/// condition), so the scheduler places no new pods on a node short of a resource.
const CONDITION_TAINTS: [(&str, &str); 3] = [
    ("MemoryPressure", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "node.kubernetes.io/disk-pressure"),
    ("PIDPressure", "node.kubernetes.io/pid-pressure"),
];
/// How often heartbeats are checked.
const CHECK_EVERY: Duration = Duration::from_millis(500);

pub struct NodeLifecycle {
    pub registry: Registry,
    pub nodes: Arc<Informer<Node>>,
    /// Node leases in `kube-node-lease`, renewed by the agents.
    pub leases: Arc<Informer<Lease>>,
    pub pods: Arc<Informer<Pod>>,
    pub events: EventRecorder,
    /// How long a node may go without a heartbeat before it is considered lost.
    pub grace: Duration,
}

/// Where node leases live.
const LEASE_NAMESPACE: &str = "kube-node-lease";

/// The agent's last signs of life: its lease renewal and its `Ready` heartbeat.
fn heartbeat(node: &Node, lease: Option<&Lease>) -> String {
    let renewed = lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    let reported = ready_condition(node)
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    format!("{renewed}|{reported}")
}

fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

fn is_tainted(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|taints| taints.iter().any(|t| t.key == UNREACHABLE_TAINT))
}

/// Heartbeat changes as this controller saw them, on its own clock: a control plane that was
/// down does not blame its nodes for the gap.
struct Heartbeats {
    grace: Duration,
    /// Per node: the last heartbeat seen and when it was first seen.
    seen: HashMap<String, (String, Instant)>,
}

impl Heartbeats {
    fn new(grace: Duration) -> Self {
        Heartbeats {
            grace,
            seen: HashMap::new(),
        }
    }

    /// Records `beat` of `node` at `now`; true if it has not changed for longer than the grace.
    fn silent(&mut self, node: &str, beat: String, now: Instant) -> bool {
        let entry = self
            .seen
            .entry(node.to_string())
            .or_insert_with(|| (beat.clone(), now));
        if entry.0 != beat {
            *entry = (beat, now);
        }
        now.duration_since(entry.1) > self.grace
    }

    /// Forgets the nodes `keep` rejects.
    fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.seen.retain(|name, _| keep(name));
    }
}

impl NodeLifecycle {
    /// Runs until `shutdown` is cancelled.
    pub fn spawn(self, shutdown: CancellationToken) {
        tokio::spawn(async move {
            self.nodes.synced().await;
            let mut heartbeats = Heartbeats::new(self.grace);
            let mut tick = tokio::time::interval(CHECK_EVERY);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let now = Instant::now();
                for node in self.nodes.list(|_| true) {
                    let name = node.metadata.name.clone().unwrap_or_default();
                    let lease = self.leases.get(&format!("{LEASE_NAMESPACE}/{name}"));
                    let beat = heartbeat(&node, lease.as_deref());
                    let result = if heartbeats.silent(&name, beat, now) {
                        self.mark_lost(&node).await
                    } else {
                        self.sync_live(&node).await
                    };
                    if let Err(err) = result {
                        tracing::warn!(node = %name, %err, "node lifecycle update failed");
                    }
                }
                heartbeats.retain(|name| self.nodes.get(name).is_some());
            }
        });
    }

    /// Ready=Unknown, the unreachable taint, and deletion of the node's pods.
    async fn mark_lost(&self, node: &Node) -> Result<(), ApiError> {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let ready = ready_condition(node);
        if ready.is_some_and(|c| c.status != "Unknown") {
            let mut conditions: Vec<NodeCondition> = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .map(|cs| cs.iter().filter(|c| c.type_ != "Ready").cloned().collect())
                .unwrap_or_default();
            conditions.push(NodeCondition {
                type_: "Ready".into(),
                status: "Unknown".into(),
                reason: Some("NodeStatusUnknown".into()),
                message: Some("Kubelet stopped posting node status.".into()),
                last_heartbeat_time: ready.and_then(|c| c.last_heartbeat_time.clone()),
                last_transition_time: Some(skiff_api::time::now()),
            });
            let conditions =
                serde_json::to_value(conditions).map_err(|e| ApiError::Internal(e.to_string()))?;
            let nodes = resources::of::<Node>();
            self.registry
                .patch(
                    nodes,
                    None,
                    name,
                    &json!({"status": {"conditions": conditions}}),
                    Subresource::Status,
                )
                .await?;
            self.events.record(
                node,
                EventType::Warning,
                "NodeNotReady",
                format!("Node {name} status is now: NodeNotReady"),
            );
            tracing::warn!(
                node = name,
                "node stopped posting heartbeats; evicting its pods"
            );
        }
        if !is_tainted(node) {
            let mut taints = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default();
            taints.push(Taint {
                key: UNREACHABLE_TAINT.into(),
                effect: "NoExecute".into(),
                time_added: None,
                value: None,
            });
            self.set_taints(name, &taints).await?;
        }
        let pods = resources::of::<Pod>();
        let unreachable = Taint {
            key: UNREACHABLE_TAINT.into(),
            effect: "NoExecute".into(),
            ..Default::default()
        };
        // Pods that tolerate the taint for good (DaemonSet pods, for one) stay.
        let stays = |p: &Pod| {
            p.spec
                .iter()
                .flat_map(|s| s.tolerations.iter().flatten())
                .any(|t| {
                    t.toleration_seconds.is_none() && crate::scheduler::tolerates(t, &unreachable)
                })
        };
        for pod in self.pods.list(|p| {
            p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name)
                && p.metadata.deletion_timestamp.is_none()
                && !stays(p)
        }) {
            let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
            match self
                .registry
                .delete(
                    pods,
                    pod.metadata.namespace.as_deref(),
                    pod_name,
                    &Default::default(),
                )
                .await
            {
                Ok(_) => self.events.record(
                    pod.as_ref(),
                    EventType::Warning,
                    "NodeNotReady",
                    format!("Deleting pod: node {name} is unreachable"),
                ),
                Err(ApiError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// A node that heartbeats: the unreachable taint goes once it is Ready again, and the
    /// pressure taints follow its conditions; one write if anything changed.
    async fn sync_live(&self, node: &Node) -> Result<(), ApiError> {
        let current: Vec<Taint> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let back = is_tainted(node) && ready_condition(node).is_some_and(|c| c.status == "True");
        let mut desired = current.clone();
        if back {
            desired.retain(|t| t.key != UNREACHABLE_TAINT);
        }
        let desired = with_condition_taints(node, desired);
        if desired == current {
            return Ok(());
        }
        let name = node.metadata.name.as_deref().unwrap_or_default();
        self.set_taints(name, &desired).await?;
        if back {
            self.events.record(
                node,
                EventType::Normal,
                "NodeReady",
                format!("Node {name} status is now: NodeReady"),
            );
        }
        Ok(())
    }

    async fn set_taints(&self, name: &str, taints: &[Taint]) -> Result<(), ApiError> {
        let nodes = resources::of::<Node>();
        let taints = serde_json::to_value(taints).map_err(|e| ApiError::Internal(e.to_string()))?;
        self.registry
            .patch(
                nodes,
                None,
                name,
                &json!({"spec": {"taints": taints}}),
                Subresource::Main,
            )
            .await
            .map(drop)
    }
}

/// `taints` with each condition taint present exactly when its condition is `True`.
fn with_condition_taints(node: &Node, mut taints: Vec<Taint>) -> Vec<Taint> {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    for (condition, key) in CONDITION_TAINTS {
        let on = conditions.is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == condition && c.status == "True")
        });
        let has = taints.iter().any(|t| t.key == key);
        if on && !has {
            taints.push(Taint {
                key: key.into(),
                effect: "NoSchedule".into(),
                ..Default::default()
            });
        } else if !on && has {
            taints.retain(|t| t.key != key);
        }
    }
    taints
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(6);

    #[tokio::test(start_paused = true)]
    async fn a_node_is_lost_only_after_a_silent_grace_period() {
        let mut beats = Heartbeats::new(GRACE);
        assert!(!beats.silent("n1", "t0".into(), Instant::now()));
        tokio::time::advance(GRACE).await;
        assert!(
            !beats.silent("n1", "t0".into(), Instant::now()),
            "exactly the grace is not yet lost"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(beats.silent("n1", "t0".into(), Instant::now()));
        // A new heartbeat makes it healthy again, and starts a new grace period.
        assert!(!beats.silent("n1", "t1".into(), Instant::now()));
        tokio::time::advance(GRACE / 2).await;
        assert!(!beats.silent("n1", "t1".into(), Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn the_grace_starts_when_this_controller_first_sees_a_node() {
        let mut beats = Heartbeats::new(GRACE);
        tokio::time::advance(GRACE * 10).await;
        // An old heartbeat seen for the first time (a new leader) is not blamed at once.
        assert!(!beats.silent("n1", "long ago".into(), Instant::now()));
        beats.retain(|_| false);
        tokio::time::advance(GRACE * 2).await;
        assert!(
            !beats.silent("n1", "long ago".into(), Instant::now()),
            "a forgotten node starts over"
        );
    }

    fn node(conditions: &[(&str, &str)], taints: &[&str]) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n1"},
            "spec": {"taints": taints.iter().map(|k| json!({"key": k, "effect": "NoSchedule"})).collect::<Vec<_>>()},
            "status": {"conditions": conditions.iter().map(|(t, s)| json!({"type": t, "status": s})).collect::<Vec<_>>()},
        }))
        .expect("node")
    }

    fn keys(taints: Vec<Taint>) -> Vec<String> {
        taints.into_iter().map(|t| t.key).collect()
    }

    /// Conditions (type, status), taints before, taint keys after.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a [&'a str]);

    #[test]
    fn pressure_conditions_taint_the_node_while_true() {
        let cases: [Case; 5] = [
            (
                &[("MemoryPressure", "True")],
                &[],
                &["node.kubernetes.io/memory-pressure"],
            ),
            (
                &[("MemoryPressure", "False")],
                &["node.kubernetes.io/memory-pressure"],
                &[],
            ),
            (
                &[("MemoryPressure", "True")],
                &["node.kubernetes.io/memory-pressure"],
                &["node.kubernetes.io/memory-pressure"],
            ),
            (
                &[],
                &["dedicated", "node.kubernetes.io/pid-pressure"],
                &["dedicated"],
            ),
            (
                &[("DiskPressure", "True"), ("Ready", "True")],
                &["dedicated"],
                &["dedicated", "node.kubernetes.io/disk-pressure"],
            ),
        ];
        for (conditions, taints, want) in cases {
            let node = node(conditions, taints);
            let current = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default();
            assert_eq!(
                keys(with_condition_taints(&node, current)),
                want,
                "{conditions:?} {taints:?}"
            );
        }
    }
}
