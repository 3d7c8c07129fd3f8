//! The machinery control loops share (kube-runtime's counterpart): informers that cache one kind
//! each, work queues, the reconcile runner, and the event recorder. Controllers and the scheduler
//! build on it; it knows neither.

pub mod clock;
pub mod event_spam;
pub mod events;
pub mod expectations;
pub mod feed;
pub mod informer;
pub mod ownership;
pub mod queue;
pub mod runner;
pub mod slow_start;

use std::sync::Arc;

use skiff_api::k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use skiff_api::k8s_openapi::api::batch::v1::{CronJob, Job};
use skiff_api::k8s_openapi::api::coordination::v1::Lease;
use skiff_api::k8s_openapi::api::core::v1::{
    Endpoints, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, Service,
    ServiceAccount,
};
use skiff_api::k8s_openapi::api::discovery::v1::EndpointSlice;
use skiff_api::k8s_openapi::api::node::v1::RuntimeClass;
use skiff_api::k8s_openapi::api::policy::v1::PodDisruptionBudget;
use skiff_api::k8s_openapi::api::storage::v1::StorageClass;
use tokio_util::sync::CancellationToken;

use self::informer::Informer;
use crate::registry::Registry;

/// The caches the leader's control loops share.
pub struct Informers {
    pub deployments: Arc<Informer<Deployment>>,
    pub replicasets: Arc<Informer<ReplicaSet>>,
    pub daemonsets: Arc<Informer<DaemonSet>>,
    pub statefulsets: Arc<Informer<StatefulSet>>,
    pub controller_revisions: Arc<Informer<ControllerRevision>>,
    pub jobs: Arc<Informer<Job>>,
    pub cronjobs: Arc<Informer<CronJob>>,
    pub pods: Arc<Informer<Pod>>,
    pub nodes: Arc<Informer<Node>>,
    pub namespaces: Arc<Informer<Namespace>>,
    pub leases: Arc<Informer<Lease>>,
    pub runtime_classes: Arc<Informer<RuntimeClass>>,
    pub persistent_volumes: Arc<Informer<PersistentVolume>>,
    pub persistent_volume_claims: Arc<Informer<PersistentVolumeClaim>>,
    pub storage_classes: Arc<Informer<StorageClass>>,
    pub disruption_budgets: Arc<Informer<PodDisruptionBudget>>,
    pub services: Arc<Informer<Service>>,
    pub endpoint_slices: Arc<Informer<EndpointSlice>>,
    pub endpoints: Arc<Informer<Endpoints>>,
    pub service_accounts: Arc<Informer<ServiceAccount>>,
}

impl Informers {
    /// Starts one informer per kind; they stop when `shutdown` is cancelled.
    pub fn start(registry: &Registry, shutdown: &CancellationToken) -> Self {
        Informers {
            deployments: Informer::start(registry.clone(), shutdown.clone()),
            replicasets: Informer::start(registry.clone(), shutdown.clone()),
            daemonsets: Informer::start(registry.clone(), shutdown.clone()),
            statefulsets: Informer::start(registry.clone(), shutdown.clone()),
            controller_revisions: Informer::start(registry.clone(), shutdown.clone()),
            jobs: Informer::start(registry.clone(), shutdown.clone()),
            cronjobs: Informer::start(registry.clone(), shutdown.clone()),
            pods: Informer::start(registry.clone(), shutdown.clone()),
            nodes: Informer::start(registry.clone(), shutdown.clone()),
            namespaces: Informer::start(registry.clone(), shutdown.clone()),
            leases: Informer::start(registry.clone(), shutdown.clone()),
            runtime_classes: Informer::start(registry.clone(), shutdown.clone()),
            persistent_volumes: Informer::start(registry.clone(), shutdown.clone()),
            persistent_volume_claims: Informer::start(registry.clone(), shutdown.clone()),
            storage_classes: Informer::start(registry.clone(), shutdown.clone()),
            disruption_budgets: Informer::start(registry.clone(), shutdown.clone()),
            services: Informer::start(registry.clone(), shutdown.clone()),
            endpoint_slices: Informer::start(registry.clone(), shutdown.clone()),
            endpoints: Informer::start(registry.clone(), shutdown.clone()),
            service_accounts: Informer::start(registry.clone(), shutdown.clone()),
        }
    }
}
