//! The scheduler: binds each pending pod to the node `place` picks, and reports why when none fits.

mod place;
mod snapshot;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use skiff_api::k8s_openapi::api::core::v1::{Node, Pod};
use tokio::sync::{broadcast, watch};

pub use place::{place, Placement, Unschedulable};
pub use snapshot::{ClusterSnapshot, NodeInfo, Resources};

use crate::controllers::events::{EventRecorder, EventType};
use crate::controllers::informer::{key_of, revision_of, Informer};
use crate::controllers::queue::WorkQueue;
use crate::controllers::runner::{self, Action, Reconciler};
use crate::error::ApiError;
use crate::registry::{object, Registry, Subresource};

/// The scheduler name pods get by default.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";
/// How often pods that did not fit are retried even if nothing seems to have changed.
const RETRY_UNSCHEDULABLE: Duration = Duration::from_secs(10);

pub struct Scheduler {
    pub registry: Registry,
    pub pods: Arc<Informer<Pod>>,
    pub nodes: Arc<Informer<Node>>,
    pub events: EventRecorder,
}

/// A pod this scheduler should place: unbound, not being deleted, addressed to us.
fn is_pending(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    spec.and_then(|s| s.node_name.as_deref())
        .is_none_or(str::is_empty)
        && pod.metadata.deletion_timestamp.is_none()
        && spec
            .and_then(|s| s.scheduler_name.as_deref())
            .is_none_or(|n| n == DEFAULT_SCHEDULER || n.is_empty())
}

impl Scheduler {
    /// Starts the scheduling loop; it ends when `shutdown` flips to true.
    pub fn spawn(self, shutdown: watch::Receiver<bool>) {
        let queue = WorkQueue::new();
        let scheduler = Arc::new(self);
        runner::spawn(scheduler.clone(), queue.clone(), 1, shutdown.clone());
        tokio::spawn(feed(scheduler, queue, shutdown));
    }

    fn pending_keys(&self) -> Vec<String> {
        self.pods
            .list(is_pending)
            .iter()
            .map(|p| key_of(p.as_ref()))
            .collect()
    }
}

/// Queues pending pods as they appear, and every pending pod again when capacity may have freed up.
async fn feed(scheduler: Arc<Scheduler>, queue: WorkQueue, mut shutdown: watch::Receiver<bool>) {
    let mut pods = scheduler.pods.subscribe();
    let mut nodes = scheduler.nodes.subscribe();
    scheduler.pods.synced().await;
    scheduler.nodes.synced().await;
    let requeue_all = |queue: &WorkQueue| {
        scheduler
            .pending_keys()
            .into_iter()
            .for_each(|k| queue.add(k))
    };
    requeue_all(&queue);
    let mut retry = tokio::time::interval(RETRY_UNSCHEDULABLE);
    loop {
        tokio::select! {
            _ = crate::shutdown::stopped(&mut shutdown) => return,
            _ = retry.tick() => requeue_all(&queue),
            change = nodes.recv() => match change {
                Err(broadcast::error::RecvError::Closed) => return,
                _ => requeue_all(&queue),
            },
            change = pods.recv() => match change {
                Ok(change) => {
                    if let Some(pod) = change.new.as_ref().filter(|p| is_pending(p)) {
                        queue.add(key_of(pod.as_ref()));
                    } else if change.old.is_some_and(|p| !is_pending(&p)) {
                        // A bound pod went away or changed: its resources may be free now.
                        requeue_all(&queue);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => requeue_all(&queue),
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

#[async_trait]
impl Reconciler for Scheduler {
    fn name(&self) -> &'static str {
        DEFAULT_SCHEDULER
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let Some(pod) = self.pods.get(key).filter(|p| is_pending(p)) else {
            return Ok(Action::await_change());
        };
        let nodes = self.nodes.list(|_| true);
        let pods = self
            .pods
            .list(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_some()));
        let snapshot =
            ClusterSnapshot::build(nodes.iter().map(Arc::as_ref), pods.iter().map(Arc::as_ref));
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        match place(&snapshot, &pod) {
            Ok(placement) => {
                let bound = self.registry.bind(namespace, name, &placement.node).await?;
                self.pods.wait_for(object::revision(&bound)).await;
                self.events.record(
                    pod.as_ref(),
                    EventType::Normal,
                    "Scheduled",
                    format!(
                        "Successfully assigned {namespace}/{name} to {}",
                        placement.node
                    ),
                );
                Ok(Action::await_change())
            }
            Err(unschedulable) => {
                self.report_unschedulable(&pod, &unschedulable).await?;
                Ok(Action::await_change())
            }
        }
    }
}

impl Scheduler {
    /// Sets `PodScheduled=False` with the reasons, and records an event when the message changes.
    async fn report_unschedulable(&self, pod: &Pod, why: &Unschedulable) -> Result<(), ApiError> {
        let message = why.to_string();
        let current = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
            .and_then(|c| c.message.clone());
        if current.as_deref() == Some(message.as_str()) {
            return Ok(());
        }
        let patch = json!({"status": {"conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastTransitionTime": object::now_rfc3339(),
        }]}});
        let updated: Pod = self
            .registry
            .patch_typed(
                pod.metadata.namespace.as_deref(),
                pod.metadata.name.as_deref().unwrap_or_default(),
                &patch,
                Subresource::Status,
            )
            .await?;
        self.pods.wait_for(revision_of(&updated)).await;
        self.events
            .record(pod, EventType::Warning, "FailedScheduling", message);
        Ok(())
    }
}
