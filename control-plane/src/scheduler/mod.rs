//! The scheduler: places each pending pod on the node `place` picks and binds it, keeping an
//! incremental cache of the cluster (the scheduler cache of Kubernetes). A placed pod is
//! assumed on its node at once and its binding is written in the background, so placement
//! never waits for the store; a binding that fails is forgotten and the pod tried again.

mod node_affinity;
mod node_ports;
mod place;
mod pod_affinity;
mod runtimes;
mod snapshot;
mod spread;
mod taints;
mod volumes;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use skiff_api::k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use skiff_api::k8s_openapi::api::storage::v1::StorageClass;
use skiff_api::storage::{claim_class, claim_volume_name, SELECTED_NODE_ANNOTATION};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

pub use node_affinity::selector_matches;
pub use place::{place, Placement, Unschedulable};
pub use snapshot::{ClusterSnapshot, NodeInfo, PodInfo, Resources};
pub use taints::tolerates;
pub use volumes::ClaimState;

use crate::error::ApiError;
use crate::metrics::SchedulerMetrics;
use crate::registry::{object, Registry, Subresource};
use crate::runtime::events::{EventRecorder, EventType};
use crate::runtime::informer::{key_of, object_key, Change, Informer};

/// The scheduler name pods get by default.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";
/// How often pods that did not fit are retried even if nothing seems to have changed.
const RETRY_UNSCHEDULABLE: Duration = Duration::from_secs(10);
/// Bindings written concurrently; more placements wait (back-pressure on the store).
const MAX_BINDS_IN_FLIGHT: usize = 256;
/// How long a placed pod waits for its WaitForFirstConsumer claims to be provisioned and
/// bound before it is placed again.
const VOLUME_BIND_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Scheduler {
    pub registry: Registry,
    pub pods: Arc<Informer<Pod>>,
    pub nodes: Arc<Informer<Node>>,
    pub claims: Arc<Informer<PersistentVolumeClaim>>,
    pub volumes: Arc<Informer<PersistentVolume>>,
    pub classes: Arc<Informer<StorageClass>>,
    pub events: EventRecorder,
    /// Where attempts and the queue's length are counted.
    pub metrics: SchedulerMetrics,
}

/// A pod this scheduler should place: unbound, not being deleted, addressed to us.
fn is_pending(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    !is_bound(pod)
        && pod.metadata.deletion_timestamp.is_none()
        && spec
            .and_then(|s| s.scheduler_name.as_deref())
            .is_none_or(|n| n == DEFAULT_SCHEDULER || n.is_empty())
}

fn is_bound(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

/// Whether the pod's node selector, required node affinity and tolerations admit the node,
/// resources and readiness aside: where a DaemonSet runs its pod.
pub fn admits(pod: &Pod, node: &Node) -> bool {
    let info = NodeInfo::of(node);
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default();
    node_affinity::required_matches(pod, &info)
        && taints::untolerated(&info.taints, tolerations).is_none()
}

/// The scheduling loop's state: the cache, the queue, and the pods waiting for a change.
#[derive(Default)]
struct State {
    cache: ClusterSnapshot,
    queue: VecDeque<String>,
    queued: HashSet<String>,
    /// Pods that fit nowhere, retried when nodes change or pods go away.
    unschedulable: HashSet<String>,
    /// Pods placed whose binding is not yet seen, with their node.
    assumed: HashMap<String, String>,
}

impl State {
    fn enqueue(&mut self, key: String) {
        if self.queued.insert(key.clone()) {
            self.queue.push_back(key);
        }
    }

    fn retry_unschedulable(&mut self) {
        for key in std::mem::take(&mut self.unschedulable) {
            self.enqueue(key);
        }
    }

    /// Rebuilds the cache from the informers (after missing notifications), keeping assumptions.
    fn resync(&mut self, scheduler: &Scheduler) {
        let nodes = scheduler.nodes.list(|_| true);
        let pods = scheduler.pods.list(|_| true);
        self.cache = ClusterSnapshot::build(
            nodes.iter().map(Arc::as_ref),
            pods.iter().map(Arc::as_ref).filter(|p| is_bound(p)),
        );
        for pod in &pods {
            let key = key_of(pod.as_ref());
            match self.assumed.get(&key) {
                Some(node) if is_pending(pod) => self.cache.assume(node, pod),
                _ if is_pending(pod) => self.enqueue(key),
                _ => {}
            }
        }
        self.assumed
            .retain(|key, _| self.cache.node_of(key).is_some());
    }

    fn pod_changed(&mut self, change: Change<Pod>) {
        let freed = change.old.as_ref().is_some_and(|old| is_bound(old))
            && change.new.as_ref().is_none_or(|new| {
                matches!(
                    new.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                ) || !is_bound(new)
            });
        match change.new {
            Some(pod) => {
                let key = key_of(pod.as_ref());
                if is_bound(&pod) {
                    self.assumed.remove(&key);
                    self.unschedulable.remove(&key);
                    self.cache.update_pod(&pod);
                } else if !is_pending(&pod) {
                    self.assumed.remove(&key);
                    self.unschedulable.remove(&key);
                    self.cache.remove_pod(&key);
                } else if !self.assumed.contains_key(&key) && !self.unschedulable.contains(&key) {
                    self.enqueue(key);
                }
            }
            None => {
                if let Some(old) = change.old {
                    let key = key_of(old.as_ref());
                    self.assumed.remove(&key);
                    self.unschedulable.remove(&key);
                    self.cache.remove_pod(&key);
                }
            }
        }
        if freed {
            self.retry_unschedulable();
        }
    }

    fn node_changed(&mut self, change: Change<Node>) {
        match (change.new, change.old) {
            (Some(node), _) => {
                if self.cache.upsert_node(&node) {
                    self.retry_unschedulable();
                }
            }
            (None, Some(old)) => self
                .cache
                .remove_node(old.metadata.name.as_deref().unwrap_or_default()),
            (None, None) => {}
        }
    }

    /// A binding failed: the pod is no longer counted on its node and is tried again.
    fn forget(&mut self, key: String) {
        if self.assumed.remove(&key).is_some() {
            self.cache.remove_pod(&key);
        }
        self.enqueue(key);
    }
}

/// Takes every notification already waiting; false when the informer is gone.
fn drain<K: Clone>(
    changes: &mut broadcast::Receiver<Change<K>>,
    state: &mut State,
    scheduler: &Scheduler,
    apply: fn(&mut State, Change<K>),
) -> bool {
    loop {
        match changes.try_recv() {
            Ok(change) => apply(state, change),
            Err(TryRecvError::Empty) => return true,
            Err(TryRecvError::Lagged(_)) => state.resync(scheduler),
            Err(TryRecvError::Closed) => return false,
        }
    }
}

impl Scheduler {
    /// Starts the scheduling loop; it ends when `shutdown` is cancelled.
    pub fn spawn(self, shutdown: CancellationToken) {
        tokio::spawn(Arc::new(self).run(shutdown));
    }

    async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut pod_changes = self.pods.subscribe();
        let mut node_changes = self.nodes.subscribe();
        let mut claim_changes = self.claims.subscribe();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = async {
                self.pods.synced().await;
                self.nodes.synced().await;
                self.claims.synced().await;
                self.volumes.synced().await;
                self.classes.synced().await;
            } => {}
        }
        let mut state = State::default();
        state.resync(&self);
        let (failed_tx, mut failed_rx) = mpsc::unbounded_channel();
        let binds = Arc::new(Semaphore::new(MAX_BINDS_IN_FLIGHT));
        let mut retry = tokio::time::interval(RETRY_UNSCHEDULABLE);
        loop {
            // Every decision sees every change that has arrived.
            if !drain(&mut pod_changes, &mut state, &self, State::pod_changed)
                || !drain(&mut node_changes, &mut state, &self, State::node_changed)
                || shutdown.is_cancelled()
            {
                return;
            }
            while let Ok(key) = failed_rx.try_recv() {
                state.forget(key);
            }
            self.metrics
                .pending(state.queue.len(), state.unschedulable.len());
            if let Some(key) = state.queue.pop_front() {
                state.queued.remove(&key);
                self.schedule_one(&mut state, key, &binds, &failed_tx).await;
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = retry.tick() => state.retry_unschedulable(),
                change = pod_changes.recv() => match change {
                    Ok(change) => state.pod_changed(change),
                    Err(RecvError::Lagged(_)) => state.resync(&self),
                    Err(RecvError::Closed) => return,
                },
                change = node_changes.recv() => match change {
                    Ok(change) => state.node_changed(change),
                    Err(RecvError::Lagged(_)) => state.resync(&self),
                    Err(RecvError::Closed) => return,
                },
                Some(key) = failed_rx.recv() => state.forget(key),
                // A claim created, bound or selected may let a waiting pod in.
                change = claim_changes.recv() => match change {
                    Ok(_) | Err(RecvError::Lagged(_)) => state.retry_unschedulable(),
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }

    async fn schedule_one(
        self: &Arc<Self>,
        state: &mut State,
        key: String,
        binds: &Arc<Semaphore>,
        failed: &mpsc::UnboundedSender<String>,
    ) {
        let Some(pod) = self.pods.get(&key).filter(|p| is_pending(p)) else {
            return;
        };
        if state.assumed.contains_key(&key) {
            return;
        }
        let started = std::time::Instant::now();
        state.cache.claims = self.claims_of(&pod);
        match place(&state.cache, &pod) {
            Ok(placement) => {
                let waiting = waiting_claims(&state.cache.claims);
                state.cache.assume(&placement.node, &pod);
                state.assumed.insert(key.clone(), placement.node.clone());
                let Ok(permit) = binds.clone().acquire_owned().await else {
                    return;
                };
                let scheduler = self.clone();
                let failed = failed.clone();
                tokio::spawn(async move {
                    let bound = match scheduler
                        .bind_volumes(&pod, &placement.node, &waiting)
                        .await
                    {
                        Ok(()) => scheduler.bind(&pod, &placement.node).await,
                        Err(err) => Err(err),
                    };
                    let result = match bound {
                        Ok(()) => "scheduled",
                        Err(err) => {
                            tracing::debug!(pod = %key, %err, "binding failed; retrying");
                            let _ = failed.send(key);
                            "error"
                        }
                    };
                    let seconds = started.elapsed().as_secs_f64();
                    scheduler
                        .metrics
                        .attempt(DEFAULT_SCHEDULER, result, seconds);
                    drop(permit);
                });
            }
            Err(unschedulable) => {
                let seconds = started.elapsed().as_secs_f64();
                self.metrics
                    .attempt(DEFAULT_SCHEDULER, "unschedulable", seconds);
                state.unschedulable.insert(key);
                let scheduler = self.clone();
                tokio::spawn(async move {
                    if let Err(err) = scheduler.report_unschedulable(&pod, &unschedulable).await {
                        tracing::debug!(%err, "could not report an unschedulable pod");
                    }
                });
            }
        }
    }

    async fn bind(&self, pod: &Pod, node: &str) -> Result<(), ApiError> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        self.registry.bind(namespace, name, node).await?;
        self.events.record(
            pod,
            EventType::Normal,
            "Scheduled",
            format!("Successfully assigned {namespace}/{name} to {node}"),
        );
        Ok(())
    }
}

/// The WaitForFirstConsumer claims of the pod being placed, with the node already selected.
fn waiting_claims(claims: &HashMap<String, ClaimState>) -> Vec<(String, Option<String>)> {
    claims
        .iter()
        .filter_map(|(key, state)| match state {
            ClaimState::WaitForConsumer { selected_node, .. } => {
                Some((key.clone(), selected_node.clone()))
            }
            _ => None,
        })
        .collect()
}

impl Scheduler {
    /// The states of the claims `pod` uses, by `namespace/name`; missing claims are absent.
    fn claims_of(&self, pod: &Pod) -> HashMap<String, ClaimState> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        volumes::claim_names(pod)
            .filter_map(|name| {
                let key = object_key(Some(namespace), name);
                let claim = self.claims.get(&key)?;
                let volume = claim_volume_name(&claim).and_then(|v| self.volumes.get(v));
                let class = self.classes.get(claim_class(&claim));
                let state = volumes::claim_state(&claim, volume.as_deref(), class.as_deref());
                Some((key, state))
            })
            .collect()
    }

    /// Selects `node` on the pod's WaitForFirstConsumer claims (the provisioner then makes
    /// their volumes there) and waits until they are bound, as Kubernetes' PreBind does.
    async fn bind_volumes(
        &self,
        pod: &Pod,
        node: &str,
        waiting: &[(String, Option<String>)],
    ) -> Result<(), ApiError> {
        if waiting.is_empty() {
            return Ok(());
        }
        let mut changes = self.claims.subscribe();
        for (key, selected) in waiting {
            if selected.as_deref() == Some(node) {
                continue;
            }
            let (namespace, name) = key.split_once('/').unwrap_or(("default", key));
            // Written on the version the placement saw, so two pods sharing a claim that are
            // placed at once cannot each select a node for it: the second write is a 409 and
            // its pod is placed again, on the node the first selected.
            let seen = self.claims.get(key).ok_or_else(|| {
                ApiError::Unavailable(format!("claim {key} is not in the scheduler's cache"))
            })?;
            let now_selected = seen
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(SELECTED_NODE_ANNOTATION));
            if now_selected != selected.as_ref() {
                return Err(ApiError::Unavailable(format!(
                    "claim {key} had another node selected meanwhile"
                )));
            }
            let version = seen.metadata.resource_version.clone().unwrap_or_default();
            let patch = json!({"metadata": {
                "resourceVersion": version,
                "annotations": {SELECTED_NODE_ANNOTATION: node},
            }});
            let _: PersistentVolumeClaim = self
                .registry
                .patch_typed(Some(namespace), name, &patch, Subresource::Main)
                .await?;
        }
        let all_bound = || {
            waiting.iter().all(|(key, _)| {
                self.claims
                    .get(key)
                    .is_some_and(|c| claim_volume_name(&c).is_some())
            })
        };
        let deadline = tokio::time::Instant::now() + VOLUME_BIND_TIMEOUT;
        while !all_bound() {
            match tokio::time::timeout_at(deadline, changes.recv()).await {
                Ok(Ok(_) | Err(RecvError::Lagged(_))) => {}
                Ok(Err(RecvError::Closed)) | Err(_) => {
                    return Err(ApiError::Unavailable(format!(
                        "the claims of pod {} were not bound within {VOLUME_BIND_TIMEOUT:?}",
                        key_of(pod)
                    )))
                }
            }
        }
        Ok(())
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
        let _: Pod = self
            .registry
            .patch_typed(
                pod.metadata.namespace.as_deref(),
                pod.metadata.name.as_deref().unwrap_or_default(),
                &patch,
                Subresource::Status,
            )
            .await?;
        self.events
            .record(pod, EventType::Warning, "FailedScheduling", message);
        Ok(())
    }
}
