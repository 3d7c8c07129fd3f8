//! Controllers that run on the leader: Deployment, ReplicaSet, DaemonSet, node lifecycle and
//! the garbage collectors, over shared informers.

pub mod daemonset;
pub mod deployment;
pub mod events;
pub mod gc;
pub mod informer;
pub mod node_lifecycle;
pub mod ownership;
pub mod pod_gc;
pub mod pods;
pub mod queue;
pub mod replicaset;
pub mod runner;

use std::sync::Arc;
use std::time::Duration;

use skiff_api::k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use skiff_api::k8s_openapi::api::coordination::v1::Lease;
use skiff_api::k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use tokio::sync::{broadcast, watch};

use self::events::EventRecorder;
use self::informer::{key_of, Change, Informer};
use self::queue::WorkQueue;
use crate::registry::{typed, Registry};

/// How often every object of a controller is reconciled even without changes.
const RESYNC: Duration = Duration::from_secs(30);
/// Concurrent reconciles per controller.
const WORKERS: usize = 4;

/// The caches the leader's control loops share.
pub struct Informers {
    pub deployments: Arc<Informer<Deployment>>,
    pub replicasets: Arc<Informer<ReplicaSet>>,
    pub daemonsets: Arc<Informer<DaemonSet>>,
    pub pods: Arc<Informer<Pod>>,
    pub nodes: Arc<Informer<Node>>,
    pub namespaces: Arc<Informer<Namespace>>,
    pub leases: Arc<Informer<Lease>>,
}

impl Informers {
    pub fn start(registry: &Registry, shutdown: &watch::Receiver<bool>) -> Self {
        Informers {
            deployments: Informer::start(registry.clone(), shutdown.clone()),
            replicasets: Informer::start(registry.clone(), shutdown.clone()),
            daemonsets: Informer::start(registry.clone(), shutdown.clone()),
            pods: Informer::start(registry.clone(), shutdown.clone()),
            nodes: Informer::start(registry.clone(), shutdown.clone()),
            namespaces: Informer::start(registry.clone(), shutdown.clone()),
            leases: Informer::start(registry.clone(), shutdown.clone()),
        }
    }
}

/// Starts the Deployment, ReplicaSet, DaemonSet and node lifecycle controllers and the garbage collector;
/// nodes silent for longer than `node_grace` are considered lost.
pub fn start(
    registry: &Registry,
    informers: &Informers,
    node_grace: Duration,
    shutdown: &watch::Receiver<bool>,
) {
    let rs_queue = WorkQueue::new();
    feed(
        &informers.replicasets,
        &rs_queue,
        |rs| Some(key_of(rs)),
        &informers.replicasets,
        shutdown,
    );
    feed(
        &informers.pods,
        &rs_queue,
        replicaset::owner_key,
        &informers.replicasets,
        shutdown,
    );
    let replicasets = replicaset::ReplicaSetController {
        registry: registry.clone(),
        replicasets: informers.replicasets.clone(),
        pods: informers.pods.clone(),
        events: EventRecorder::new(registry.clone(), "replicaset-controller"),
    };
    runner::spawn(Arc::new(replicasets), rs_queue, WORKERS, shutdown.clone());

    let deployment_queue = WorkQueue::new();
    feed(
        &informers.deployments,
        &deployment_queue,
        |d| Some(key_of(d)),
        &informers.deployments,
        shutdown,
    );
    feed(
        &informers.replicasets,
        &deployment_queue,
        deployment::owner_key,
        &informers.deployments,
        shutdown,
    );
    let deployments = deployment::DeploymentController {
        registry: registry.clone(),
        deployments: informers.deployments.clone(),
        replicasets: informers.replicasets.clone(),
        events: EventRecorder::new(registry.clone(), "deployment-controller"),
    };
    runner::spawn(
        Arc::new(deployments),
        deployment_queue,
        WORKERS,
        shutdown.clone(),
    );

    let ds_queue = WorkQueue::new();
    feed(
        &informers.daemonsets,
        &ds_queue,
        |ds| Some(key_of(ds)),
        &informers.daemonsets,
        shutdown,
    );
    feed(
        &informers.pods,
        &ds_queue,
        daemonset::owner_key,
        &informers.daemonsets,
        shutdown,
    );
    feed_all(
        &informers.nodes,
        &ds_queue,
        node_placement_changed,
        &informers.daemonsets,
        shutdown,
    );
    let daemonsets = daemonset::DaemonSetController {
        registry: registry.clone(),
        daemonsets: informers.daemonsets.clone(),
        pods: informers.pods.clone(),
        nodes: informers.nodes.clone(),
        events: EventRecorder::new(registry.clone(), "daemonset-controller"),
    };
    runner::spawn(Arc::new(daemonsets), ds_queue, WORKERS, shutdown.clone());

    node_lifecycle::NodeLifecycle {
        registry: registry.clone(),
        nodes: informers.nodes.clone(),
        leases: informers.leases.clone(),
        pods: informers.pods.clone(),
        events: EventRecorder::new(registry.clone(), "node-controller"),
        grace: node_grace,
    }
    .spawn(shutdown.clone());

    pod_gc::PodGarbageCollector {
        registry: registry.clone(),
        nodes: informers.nodes.clone(),
        pods: informers.pods.clone(),
    }
    .spawn(shutdown.clone());

    gc::GarbageCollector {
        registry: registry.clone(),
        deployments: informers.deployments.clone(),
        replicasets: informers.replicasets.clone(),
        daemonsets: informers.daemonsets.clone(),
        pods: informers.pods.clone(),
        namespaces: informers.namespaces.clone(),
    }
    .spawn(shutdown.clone());
}

/// A node came, went, or changed its labels, taints or readiness (not just its heartbeat).
fn node_placement_changed(change: &Change<Node>) -> bool {
    let (Some(old), Some(new)) = (change.old.as_ref(), change.new.as_ref()) else {
        return true;
    };
    let ready = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.clone())
    };
    old.metadata.labels != new.metadata.labels || old.spec != new.spec || ready(old) != ready(new)
}

/// Queues every key of `targets` when `source` changes in a way `relevant` accepts.
fn feed_all<S, T>(
    source: &Arc<Informer<S>>,
    queue: &WorkQueue,
    relevant: fn(&Change<S>) -> bool,
    targets: &Arc<Informer<T>>,
    shutdown: &watch::Receiver<bool>,
) where
    S: typed::Object,
    T: typed::Object,
{
    let mut changes = source.subscribe();
    let (queue, targets, mut shutdown) = (queue.clone(), targets.clone(), shutdown.clone());
    tokio::spawn(async move {
        let queue_all = || targets.keys().into_iter().for_each(|k| queue.add(k));
        loop {
            tokio::select! {
                _ = crate::shutdown::stopped(&mut shutdown) => return,
                change = changes.recv() => match change {
                    Ok(change) if relevant(&change) => queue_all(),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => queue_all(),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
}

/// Queues `to_key(obj)` for every change of `source`, and every key of `targets` at start,
/// on resync and when notifications were lost.
fn feed<S, T>(
    source: &Arc<Informer<S>>,
    queue: &WorkQueue,
    to_key: fn(&S) -> Option<String>,
    targets: &Arc<Informer<T>>,
    shutdown: &watch::Receiver<bool>,
) where
    S: typed::Object,
    T: typed::Object,
{
    let mut changes = source.subscribe();
    let (queue, targets, mut shutdown) = (queue.clone(), targets.clone(), shutdown.clone());
    tokio::spawn(async move {
        targets.synced().await;
        let queue_all = || targets.keys().into_iter().for_each(|k| queue.add(k));
        queue_all();
        let mut resync = tokio::time::interval(RESYNC);
        loop {
            tokio::select! {
                _ = crate::shutdown::stopped(&mut shutdown) => return,
                _ = resync.tick() => queue_all(),
                change = changes.recv() => match change {
                    Ok(change) => {
                        for obj in change.old.iter().chain(change.new.iter()) {
                            if let Some(key) = to_key(obj) {
                                queue.add(key);
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => queue_all(),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
}
