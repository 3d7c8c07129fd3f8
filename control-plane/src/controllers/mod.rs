//! Controllers that run on the leader: Deployment, ReplicaSet, DaemonSet, StatefulSet, node lifecycle and
//! the garbage collectors, over shared informers.

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod endpointslice_mirroring;
pub mod gc;
mod gc_propagation;
pub mod job;
pub mod node_ipam;
pub mod node_lifecycle;
pub mod pod_gc;
pub mod pods;
pub mod replicaset;
pub mod resource_quota;
pub mod service_account;
mod service_endpoints;
pub mod statefulset;
pub mod token_secrets;
pub mod volume;

use std::sync::Arc;
use std::time::Duration;

use skiff_api::k8s_openapi::api::core::v1::Node;
use skiff_api::pod_cidr::PodCidrRange;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, QueueMetrics};
use crate::registry::Registry;
use crate::runtime::clock::SystemClock;
use crate::runtime::events::EventRecorder;
use crate::runtime::expectations::Expectations;
use crate::runtime::feed::{feed, feed_all};
use crate::runtime::informer::{key_of, Change};
use crate::runtime::{runner, Informers};
use crate::serviceaccount::TokenIssuer;

/// Concurrent reconciles per controller.
const WORKERS: usize = 4;

/// What the controllers are configured with.
#[derive(Clone)]
pub struct Settings {
    /// Nodes silent for longer than this are considered lost.
    pub node_grace: Duration,
    /// The blocks of the cluster CIDR that nodes get as their pod CIDRs.
    pub pod_cidrs: PodCidrRange,
    /// The cluster CA (PEM) every namespace's `kube-root-ca.crt` ConfigMap holds, if the
    /// server has one.
    pub cluster_ca: Option<Arc<str>>,
    /// What signs ServiceAccount tokens, if this server makes them.
    pub tokens: Option<TokenIssuer>,
    /// The server's metrics: the controllers' work queues count into them.
    pub metrics: Arc<Metrics>,
}

/// Starts the Deployment, ReplicaSet, DaemonSet, StatefulSet, Job, CronJob, node lifecycle and
/// node IPAM controllers and the garbage collector.
pub fn start(
    registry: &Registry,
    informers: &Informers,
    settings: Settings,
    shutdown: &CancellationToken,
) {
    let queues = &settings.metrics.queues;
    let rs_queue = queues.queue("replicaset");
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
    let expectations = Arc::new(Expectations::default());
    replicaset::observe(&informers.pods, expectations.clone(), &rs_queue, shutdown);
    let replicasets = replicaset::ReplicaSetController {
        registry: registry.clone(),
        replicasets: informers.replicasets.clone(),
        pods: informers.pods.clone(),
        events: EventRecorder::new(registry.clone(), "replicaset-controller"),
        expectations,
    };
    runner::spawn(Arc::new(replicasets), rs_queue, WORKERS, shutdown.clone());

    let deployment_queue = queues.queue("deployment");
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

    let ds_queue = queues.queue("daemonset");
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
    // A RuntimeClass that appears, goes or changes moves every DaemonSet naming it.
    feed_all(
        &informers.runtime_classes,
        &ds_queue,
        |_| true,
        &informers.daemonsets,
        shutdown,
    );
    let daemonsets = daemonset::DaemonSetController {
        registry: registry.clone(),
        daemonsets: informers.daemonsets.clone(),
        pods: informers.pods.clone(),
        nodes: informers.nodes.clone(),
        runtime_classes: informers.runtime_classes.clone(),
        events: EventRecorder::new(registry.clone(), "daemonset-controller"),
    };
    runner::spawn(Arc::new(daemonsets), ds_queue, WORKERS, shutdown.clone());

    let sts_queue = queues.queue("statefulset");
    feed(
        &informers.statefulsets,
        &sts_queue,
        |s| Some(key_of(s)),
        &informers.statefulsets,
        shutdown,
    );
    feed(
        &informers.pods,
        &sts_queue,
        statefulset::owner_key,
        &informers.statefulsets,
        shutdown,
    );
    feed(
        &informers.controller_revisions,
        &sts_queue,
        statefulset::owner_key,
        &informers.statefulsets,
        shutdown,
    );
    let statefulsets = statefulset::StatefulSetController {
        registry: registry.clone(),
        statefulsets: informers.statefulsets.clone(),
        pods: informers.pods.clone(),
        revisions: informers.controller_revisions.clone(),
        events: EventRecorder::new(registry.clone(), "statefulset-controller"),
        reported_stuck: Default::default(),
    };
    runner::spawn(Arc::new(statefulsets), sts_queue, WORKERS, shutdown.clone());

    let job_queue = queues.queue("job");
    feed(
        &informers.jobs,
        &job_queue,
        |j| Some(key_of(j)),
        &informers.jobs,
        shutdown,
    );
    feed(
        &informers.pods,
        &job_queue,
        job::owner_key,
        &informers.jobs,
        shutdown,
    );
    let jobs = job::JobController {
        registry: registry.clone(),
        jobs: informers.jobs.clone(),
        pods: informers.pods.clone(),
        events: EventRecorder::new(registry.clone(), "job-controller"),
        stopped: Default::default(),
    };
    runner::spawn(Arc::new(jobs), job_queue, WORKERS, shutdown.clone());

    let cronjob_queue = queues.queue("cronjob");
    feed(
        &informers.cronjobs,
        &cronjob_queue,
        |c| Some(key_of(c)),
        &informers.cronjobs,
        shutdown,
    );
    feed(
        &informers.jobs,
        &cronjob_queue,
        cronjob::owner_key,
        &informers.cronjobs,
        shutdown,
    );
    let cronjobs = cronjob::CronJobController {
        registry: registry.clone(),
        cronjobs: informers.cronjobs.clone(),
        jobs: informers.jobs.clone(),
        events: EventRecorder::new(registry.clone(), "cronjob-controller"),
        clock: Arc::new(SystemClock),
    };
    runner::spawn(Arc::new(cronjobs), cronjob_queue, WORKERS, shutdown.clone());

    start_volumes(registry, informers, queues, shutdown);
    let pdb_queue = queues.queue("disruption");
    let budgets = &informers.disruption_budgets;
    feed(budgets, &pdb_queue, |b| Some(key_of(b)), budgets, shutdown);
    feed_all(&informers.pods, &pdb_queue, |_| true, budgets, shutdown);
    feed_all(
        &informers.deployments,
        &pdb_queue,
        |_| true,
        budgets,
        shutdown,
    );
    feed_all(
        &informers.replicasets,
        &pdb_queue,
        |_| true,
        budgets,
        shutdown,
    );
    feed_all(
        &informers.statefulsets,
        &pdb_queue,
        |_| true,
        budgets,
        shutdown,
    );
    feed_all(&informers.jobs, &pdb_queue, |_| true, budgets, shutdown);
    let disruption = disruption::DisruptionController {
        registry: registry.clone(),
        budgets: budgets.clone(),
        pods: informers.pods.clone(),
        replicasets: informers.replicasets.clone(),
        deployments: informers.deployments.clone(),
        jobs: informers.jobs.clone(),
        statefulsets: informers.statefulsets.clone(),
    };
    runner::spawn(Arc::new(disruption), pdb_queue, WORKERS, shutdown.clone());

    service_endpoints::start(registry, informers, queues, shutdown);

    node_lifecycle::NodeLifecycle {
        registry: registry.clone(),
        nodes: informers.nodes.clone(),
        leases: informers.leases.clone(),
        pods: informers.pods.clone(),
        events: EventRecorder::new(registry.clone(), "node-controller"),
        grace: settings.node_grace,
    }
    .spawn(shutdown.clone());

    node_ipam::NodeIpam {
        registry: registry.clone(),
        nodes: informers.nodes.clone(),
        range: settings.pod_cidrs,
        events: EventRecorder::new(registry.clone(), "node-ipam-controller"),
    }
    .spawn(shutdown.clone());

    pod_gc::PodGarbageCollector {
        registry: registry.clone(),
        nodes: informers.nodes.clone(),
        pods: informers.pods.clone(),
    }
    .spawn(shutdown.clone());

    resource_quota::ResourceQuotaController {
        registry: registry.clone(),
        pods: informers.pods.clone(),
    }
    .spawn(shutdown.clone());

    service_account::ServiceAccountController {
        registry: registry.clone(),
        namespaces: informers.namespaces.clone(),
        accounts: informers.service_accounts.clone(),
        cluster_ca: settings.cluster_ca.clone(),
        queue: queues.queue("serviceaccount"),
    }
    .spawn(shutdown.clone());

    if let Some(tokens) = &settings.tokens {
        token_secrets::TokenSecretsController {
            registry: registry.clone(),
            tokens: tokens.clone(),
            accounts: informers.service_accounts.clone(),
            cluster_ca: settings.cluster_ca.clone(),
            queue: queues.queue("serviceaccount_tokens_secret"),
        }
        .spawn(shutdown.clone());
    }

    gc::GarbageCollector {
        registry: registry.clone(),
        deployments: informers.deployments.clone(),
        replicasets: informers.replicasets.clone(),
        daemonsets: informers.daemonsets.clone(),
        statefulsets: informers.statefulsets.clone(),
        controller_revisions: informers.controller_revisions.clone(),
        jobs: informers.jobs.clone(),
        cronjobs: informers.cronjobs.clone(),
        pods: informers.pods.clone(),
        claims: informers.persistent_volume_claims.clone(),
        namespaces: informers.namespaces.clone(),
    }
    .spawn(shutdown.clone());
}

/// Starts the claim binder (with the local-path provisioner) and the volume reclaimer.
fn start_volumes(
    registry: &Registry,
    informers: &Informers,
    queues: &QueueMetrics,
    shutdown: &CancellationToken,
) {
    let claim_queue = queues.queue("volumes");
    let claims = &informers.persistent_volume_claims;
    feed(claims, &claim_queue, |c| Some(key_of(c)), claims, shutdown);
    feed(
        &informers.persistent_volumes,
        &claim_queue,
        volume::claim_key_of,
        claims,
        shutdown,
    );
    let binder = volume::ClaimBinder {
        registry: registry.clone(),
        claims: claims.clone(),
        volumes: informers.persistent_volumes.clone(),
        classes: informers.storage_classes.clone(),
        nodes: informers.nodes.clone(),
        events: EventRecorder::new(registry.clone(), "persistentvolume-controller"),
        reported: Default::default(),
    };
    runner::spawn(Arc::new(binder), claim_queue, WORKERS, shutdown.clone());

    let volume_queue = queues.queue("volume-reclaim");
    let volumes = &informers.persistent_volumes;
    feed(
        volumes,
        &volume_queue,
        |v| Some(key_of(v)),
        volumes,
        shutdown,
    );
    feed(
        claims,
        &volume_queue,
        volume::volume_key_of,
        volumes,
        shutdown,
    );
    let reclaimer = volume::VolumeReclaimer {
        registry: registry.clone(),
        volumes: volumes.clone(),
        pods: informers.pods.clone(),
        events: EventRecorder::new(registry.clone(), "persistentvolume-controller"),
    };
    runner::spawn(Arc::new(reclaimer), volume_queue, WORKERS, shutdown.clone());
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
