//! The ServiceAccount controller and the root CA publisher (Kubernetes'
//! serviceaccounts-controller and root-ca-cert-publisher): every namespace that is not being
//! deleted has a `default` ServiceAccount and a `kube-root-ca.crt` ConfigMap holding the
//! cluster CA under `ca.crt`; either is made again when deleted, and the ConfigMap is put
//! back when edited.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use skiff_api::k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio_util::sync::CancellationToken;

use super::WORKERS;
use crate::error::ApiError;
use crate::registry::service_account::{DEFAULT_SERVICE_ACCOUNT, ROOT_CA_CONFIG_MAP, ROOT_CA_KEY};
use crate::registry::{Registry, Subresource};
use crate::runtime::feed::feed;
use crate::runtime::informer::{key_of, object_key, Informer};
use crate::runtime::queue::WorkQueue;
use crate::runtime::runner::{self, Action, Reconciler};

/// Keeps each namespace's `default` ServiceAccount and `kube-root-ca.crt` ConfigMap.
pub struct ServiceAccountController {
    pub registry: Registry,
    pub namespaces: Arc<Informer<Namespace>>,
    pub accounts: Arc<Informer<ServiceAccount>>,
    /// The cluster CA (PEM); without one no ConfigMap is published.
    pub cluster_ca: Option<Arc<str>>,
    /// Its work queue (`QueueMetrics::queue`, or `WorkQueue::new()`).
    pub queue: WorkQueue,
}

struct Reconcile {
    registry: Registry,
    namespaces: Arc<Informer<Namespace>>,
    accounts: Arc<Informer<ServiceAccount>>,
    config_maps: Arc<Informer<ConfigMap>>,
    cluster_ca: Option<Arc<str>>,
}

impl ServiceAccountController {
    /// Starts its informers and workers; they run until `shutdown` is cancelled.
    pub fn spawn(self, shutdown: CancellationToken) {
        let accounts = self.accounts;
        let config_maps: Arc<Informer<ConfigMap>> =
            Informer::start(self.registry.clone(), shutdown.clone());
        let queue = self.queue.clone();
        let namespaces = &self.namespaces;
        feed(
            namespaces,
            &queue,
            |n| Some(key_of(n)),
            namespaces,
            &shutdown,
        );
        feed(
            &accounts,
            &queue,
            |a| owning_namespace(&a.metadata, DEFAULT_SERVICE_ACCOUNT),
            namespaces,
            &shutdown,
        );
        feed(
            &config_maps,
            &queue,
            |c| owning_namespace(&c.metadata, ROOT_CA_CONFIG_MAP),
            namespaces,
            &shutdown,
        );
        let reconcile = Reconcile {
            registry: self.registry,
            namespaces: self.namespaces,
            accounts,
            config_maps,
            cluster_ca: self.cluster_ca,
        };
        runner::spawn(Arc::new(reconcile), queue, WORKERS, shutdown);
    }
}

/// The namespace of an object named `name`, which is all the controller looks at.
fn owning_namespace(meta: &ObjectMeta, name: &str) -> Option<String> {
    (meta.name.as_deref() == Some(name))
        .then(|| meta.namespace.clone())
        .flatten()
}

fn ca_data(ca: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(ROOT_CA_KEY.to_string(), ca.to_string())])
}

#[async_trait]
impl Reconciler for Reconcile {
    fn name(&self) -> &'static str {
        "serviceaccount-controller"
    }

    async fn reconcile(&self, namespace: &str) -> Result<Action, ApiError> {
        let Some(ns) = self.namespaces.get(namespace) else {
            return Ok(Action::await_change());
        };
        let terminating = ns.metadata.deletion_timestamp.is_some()
            || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
        if terminating {
            return Ok(Action::await_change());
        }
        let meta = |name: &str| ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        };
        if self
            .accounts
            .get(&object_key(Some(namespace), DEFAULT_SERVICE_ACCOUNT))
            .is_none()
        {
            let account = ServiceAccount {
                metadata: meta(DEFAULT_SERVICE_ACCOUNT),
                ..Default::default()
            };
            created(self.registry.create_typed(&account).await)?;
        }
        let Some(ca) = self.cluster_ca.as_deref() else {
            return Ok(Action::await_change());
        };
        match self
            .config_maps
            .get(&object_key(Some(namespace), ROOT_CA_CONFIG_MAP))
        {
            None => {
                let mut metadata = meta(ROOT_CA_CONFIG_MAP);
                metadata.annotations = Some(BTreeMap::from([(
                    "kubernetes.io/description".to_string(),
                    "Contains a CA bundle that can be used to verify the kube-apiserver when \
                     using internal endpoints such as the internal service IP or \
                     kubernetes.default.svc. No other usage is guaranteed across distributions \
                     of Kubernetes clusters."
                        .to_string(),
                )]));
                let config_map = ConfigMap {
                    metadata,
                    data: Some(ca_data(ca)),
                    ..Default::default()
                };
                created(self.registry.create_typed(&config_map).await)?;
            }
            Some(current)
                if current.data.as_ref() != Some(&ca_data(ca)) || current.binary_data.is_some() =>
            {
                let mut fixed = (*current).clone();
                fixed.data = Some(ca_data(ca));
                fixed.binary_data = None;
                self.registry
                    .update_typed(&fixed, Subresource::Main)
                    .await?;
            }
            Some(_) => {}
        }
        Ok(Action::await_change())
    }
}

/// A create that lost a race with another maker has done its job.
fn created<T>(result: Result<T, ApiError>) -> Result<(), ApiError> {
    match result {
        Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
        Err(err) => Err(err),
    }
}
