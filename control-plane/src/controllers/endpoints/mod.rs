//! The endpoints controller (leader only): keeps, for each Service with a selector, the core
//! `v1 Endpoints` of the same name listing its selected pods' addresses (ready ones in
//! `addresses`, the others in `notReadyAddresses`), as Kubernetes' endpoints controller does
//! for the tools that still read them. The subsets come from the same plan the EndpointSlice
//! controller writes, so both kinds always agree. The Endpoints it writes carry the Service's
//! labels and `endpointslice.kubernetes.io/skip-mirror: "true"`; they are deleted when their
//! Service goes. Endpoints of a Service without a selector (written by hand, or the
//! `kubernetes` one the lease reconciler writes) are never touched; as in Kubernetes, a
//! Service that loses its selector keeps its last Endpoints. A write happens only when the content changed.
//! More than 1000 addresses are truncated and the Endpoints annotated
//! `endpoints.kubernetes.io/over-capacity: truncated`, as in Kubernetes (the slices list all).

pub mod plan;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use skiff_api::k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::controllers::endpointslice::{self, plan as slice_plan};
use crate::error::ApiError;
use crate::registry::{Registry, Subresource};
use crate::runtime::informer::{key_of, revision_of, Informer};
use crate::runtime::queue::WorkQueue;
use crate::runtime::runner::{Action, Reconciler};

/// Label Kubernetes' endpoints controller puts on the Endpoints it manages, so that the
/// EndpointSlice mirroring controller leaves them alone; here it also marks them as ours.
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";

/// Keeps the Endpoints of Services with selectors from the informers' Services and pods.
pub struct EndpointsController {
    pub registry: Registry,
    pub services: Arc<Informer<Service>>,
    pub pods: Arc<Informer<Pod>>,
    pub endpoints: Arc<Informer<Endpoints>>,
}

/// The key of an Endpoints this controller manages, for the work queue (None for the ones
/// written by hand or by the API servers' lease reconciler).
pub fn managed_key(endpoints: &Endpoints) -> Option<String> {
    is_managed(endpoints).then(|| key_of(endpoints))
}

fn is_managed(endpoints: &Endpoints) -> bool {
    endpoints
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SKIP_MIRROR_LABEL))
        .is_some_and(|v| v == "true")
}

/// Queues the Services that select a pod before or after a change that can move an
/// endpoint, and every Service when notifications were lost.
pub fn feed_pods(
    controller: &EndpointsController,
    queue: &WorkQueue,
    shutdown: &CancellationToken,
) {
    let mut changes = controller.pods.subscribe();
    let services = controller.services.clone();
    let (queue, shutdown) = (queue.clone(), shutdown.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                change = changes.recv() => match change {
                    Ok(change) if endpointslice::endpoint_changed(&change) => {
                        let pods: Vec<&Arc<Pod>> = change.old.iter().chain(change.new.iter()).collect();
                        for service in services.list(|s| pods.iter().any(|p| slice_plan::selects(s, p))) {
                            queue.add(key_of(service.as_ref()));
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        services.keys().into_iter().for_each(|k| queue.add(k));
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
}

#[async_trait]
impl Reconciler for EndpointsController {
    fn name(&self) -> &'static str {
        "endpoints"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let (namespace, name) = key.split_once('/').unwrap_or(("", key));
        let current = self.endpoints.get(key);
        let service = self.services.get(key);
        let Some(service) = service else {
            // Only ours go with their Service: hand-written ones are not this controller's.
            if current.is_some_and(|e| is_managed(&e)) {
                let deleted = self
                    .registry
                    .delete_typed::<Endpoints>(Some(namespace), name)
                    .await;
                match deleted {
                    Ok(()) | Err(ApiError::NotFound { .. }) => {}
                    Err(err) => return Err(err),
                }
            }
            return Ok(Action::await_change());
        };
        // A Service without a selector has its Endpoints written by others (by hand, or by
        // the API servers' lease reconciler for `kubernetes`): left as they are.
        if slice_plan::selector(&service).is_none() {
            return Ok(Action::await_change());
        }
        let pods = self.pods.list(|p| slice_plan::selects(&service, p));
        let refs: Vec<&Pod> = pods.iter().map(Arc::as_ref).collect();
        let mut subsets = plan::subsets(&service, &slice_plan::desired(&service, &refs));
        let truncated = plan::truncate(&mut subsets);
        let labels = labels_for(&service);
        let annotations = annotations_for(current.as_deref(), truncated);
        let written = match current {
            Some(current) if same(&current, &labels, &annotations, &subsets) => {
                return Ok(Action::await_change())
            }
            Some(current) => {
                let mut next = (*current).clone();
                next.metadata.labels = Some(labels);
                next.metadata.annotations = annotations;
                next.subsets = Some(subsets).filter(|s| !s.is_empty());
                self.registry.update_typed(&next, Subresource::Main).await?
            }
            None => {
                let endpoints = Endpoints {
                    metadata: ObjectMeta {
                        name: Some(name.to_string()),
                        namespace: Some(namespace.to_string()),
                        labels: Some(labels),
                        annotations,
                        ..Default::default()
                    },
                    subsets: Some(subsets).filter(|s| !s.is_empty()),
                };
                self.registry.create_typed(&endpoints).await?
            }
        };
        self.endpoints.wait_for(revision_of(&written)).await;
        Ok(Action::await_change())
    }
}

/// The Service's labels and the skip-mirror label, as Kubernetes labels its Endpoints.
fn labels_for(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    labels.insert(SKIP_MIRROR_LABEL.into(), "true".into());
    labels
}

/// The current annotations with `over-capacity: truncated` when the addresses were cut, and
/// without it when they were not.
fn annotations_for(
    current: Option<&Endpoints>,
    truncated: bool,
) -> Option<BTreeMap<String, String>> {
    let mut annotations = current
        .and_then(|e| e.metadata.annotations.clone())
        .unwrap_or_default();
    if truncated {
        annotations.insert(plan::OVER_CAPACITY_ANNOTATION.into(), "truncated".into());
    } else {
        annotations.remove(plan::OVER_CAPACITY_ANNOTATION);
    }
    Some(annotations).filter(|a| !a.is_empty())
}

fn same(
    current: &Endpoints,
    labels: &BTreeMap<String, String>,
    annotations: &Option<BTreeMap<String, String>>,
    subsets: &[skiff_api::k8s_openapi::api::core::v1::EndpointSubset],
) -> bool {
    current.metadata.labels.as_ref() == Some(labels)
        && current
            .metadata
            .annotations
            .iter()
            .flatten()
            .eq(annotations.iter().flatten())
        && current.subsets.as_deref().unwrap_or_default() == subsets
}
