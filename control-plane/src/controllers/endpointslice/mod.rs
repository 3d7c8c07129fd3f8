//! The EndpointSlice controller (leader only): keeps, for each Service with a selector, the
//! `discovery.k8s.io/v1` EndpointSlices that list its selected pods' addresses with their
//! ready, serving and terminating conditions, as Kubernetes' EndpointSlice controller does.
//! The slices are owned by the Service and labelled with its name; a Service that goes (or
//! loses its selector) has its slices deleted here. Every write is guarded by the slice's
//! resourceVersion, and a reconcile waits for the cache to show its own writes.

pub mod plan;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use skiff_api::k8s_openapi::api::core::v1::{Pod, Service};
use skiff_api::k8s_openapi::api::discovery::v1::EndpointSlice;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use self::plan::SliceContent;
use crate::error::ApiError;
use crate::registry::{Registry, Subresource};
use crate::runtime::informer::{key_of, object_key, revision_of, Change, Informer};
use crate::runtime::queue::WorkQueue;
use crate::runtime::runner::{Action, Reconciler};

/// Label naming the Service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label naming the controller that manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's `managed-by` value (Kubernetes' own, so tools recognise the slices).
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

pub struct EndpointSliceController {
    pub registry: Registry,
    pub services: Arc<Informer<Service>>,
    pub pods: Arc<Informer<Pod>>,
    pub slices: Arc<Informer<EndpointSlice>>,
}

/// The Service key a managed slice belongs to, for the work queue.
pub fn service_key(slice: &EndpointSlice) -> Option<String> {
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY) {
        return None;
    }
    let service = labels.get(SERVICE_NAME_LABEL)?;
    Some(object_key(slice.metadata.namespace.as_deref(), service))
}

/// Queues the Services that select a pod (before or after a change that can move an
/// endpoint), every Service when notifications were lost; and at start, the Service of every
/// slice, so slices of Services deleted while no member led are removed.
pub fn feed(controller: &EndpointSliceController, queue: &WorkQueue, shutdown: &CancellationToken) {
    let mut changes = controller.pods.subscribe();
    let (services, slices) = (controller.services.clone(), controller.slices.clone());
    let (queue, shutdown) = (queue.clone(), shutdown.clone());
    tokio::spawn(async move {
        services.synced().await;
        slices.synced().await;
        for key in slices.list(|_| true).iter().filter_map(|s| service_key(s)) {
            queue.add(key);
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                change = changes.recv() => match change {
                    Ok(change) if endpoint_changed(&change) => {
                        let pods: Vec<&Arc<Pod>> = change.old.iter().chain(change.new.iter()).collect();
                        for service in services.list(|s| pods.iter().any(|p| plan::selects(s, p))) {
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

/// A pod change that can change an endpoint: it came or went, or its labels, address, node,
/// readiness, phase or deletion changed.
pub(crate) fn endpoint_changed(change: &Change<Pod>) -> bool {
    let (Some(old), Some(new)) = (change.old.as_ref(), change.new.as_ref()) else {
        return true;
    };
    let status = |p: &Pod| {
        let s = p.status.clone().unwrap_or_default();
        (s.pod_ip, s.phase, crate::controllers::pods::is_ready(p))
    };
    old.metadata.labels != new.metadata.labels
        || old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
        || old.spec.as_ref().map(|s| &s.node_name) != new.spec.as_ref().map(|s| &s.node_name)
        || status(old) != status(new)
}

#[async_trait]
impl Reconciler for EndpointSliceController {
    fn name(&self) -> &'static str {
        "endpointslice"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let (namespace, name) = key.split_once('/').unwrap_or(("", key));
        let mut existing = self.slices.list(|s| {
            s.metadata.namespace.as_deref() == Some(namespace)
                && service_key(s).as_deref() == Some(key)
        });
        existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let service = self
            .services
            .get(key)
            .filter(|s| plan::selector(s).is_some());
        let desired = match &service {
            Some(service) => {
                let pods = self.pods.list(|p| plan::selects(service, p));
                let refs: Vec<&Pod> = pods.iter().map(Arc::as_ref).collect();
                plan::desired(service, &refs)
            }
            None => Vec::new(),
        };
        // Slices of an earlier Service of the same name are not reused.
        let uid = service.as_ref().and_then(|s| s.metadata.uid.clone());
        let (mine, stale): (Vec<_>, Vec<_>) = existing
            .into_iter()
            .partition(|s| uid.is_some() && owner_uid(s) == uid.as_deref());
        for slice in stale.iter().chain(mine.iter().skip(desired.len())) {
            let slice_name = slice.metadata.name.as_deref().unwrap_or_default();
            match self
                .registry
                .delete_typed::<EndpointSlice>(Some(namespace), slice_name)
                .await
            {
                Ok(()) | Err(ApiError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        let Some(service) = service else {
            return Ok(Action::await_change());
        };
        let mut revision = 0;
        for (i, content) in desired.into_iter().enumerate() {
            let written = match mine.get(i) {
                Some(current) if same_content(current, &content) => continue,
                Some(current) => {
                    let mut next = (**current).clone();
                    fill(&mut next, &service, content);
                    self.registry.update_typed(&next, Subresource::Main).await?
                }
                None => {
                    let mut slice = EndpointSlice {
                        metadata: ObjectMeta {
                            generate_name: Some(format!("{name}-")),
                            namespace: Some(namespace.to_string()),
                            ..Default::default()
                        },
                        ..Default::default()
                    };
                    fill(&mut slice, &service, content);
                    self.registry.create_typed(&slice).await?
                }
            };
            revision = revision.max(revision_of(&written));
        }
        if revision > 0 {
            self.slices.wait_for(revision).await;
        }
        Ok(Action::await_change())
    }
}

fn owner_uid(slice: &EndpointSlice) -> Option<&str> {
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "Service" && o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

fn same_content(slice: &EndpointSlice, content: &SliceContent) -> bool {
    slice.address_type == "IPv4"
        && slice.endpoints == content.endpoints
        && slice.ports.as_deref().unwrap_or_default() == content.ports.as_slice()
}

/// Makes `slice` the Service's slice holding `content`.
fn fill(slice: &mut EndpointSlice, service: &Service, content: SliceContent) {
    let name = service.metadata.name.clone().unwrap_or_default();
    let labels = slice.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(SERVICE_NAME_LABEL.into(), name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    slice.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name,
        uid: service.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    slice.address_type = "IPv4".into();
    slice.endpoints = content.endpoints;
    slice.ports = Some(content.ports);
}
