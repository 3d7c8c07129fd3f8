//! The EndpointSlice mirroring controller (leader only): copies the `v1 Endpoints` of a
//! Service without a selector (written by hand, for a backend outside the cluster) into
//! `discovery.k8s.io/v1` EndpointSlices, as Kubernetes' EndpointSliceMirroring controller
//! does, so that the agents' Service proxy and DNS, which read slices only, reach them. The
//! slices are owned by the Endpoints, carry its labels and annotations (but the trigger-time
//! and last-applied ones), `kubernetes.io/service-name` and this controller's `managed-by`;
//! they go when the Endpoints or its Service goes, when the Service gains a selector, or
//! when the Endpoints is labelled `endpointslice.kubernetes.io/skip-mirror: "true"` (as the
//! endpoints controller's and the API servers' own are). Addresses beyond 1000 of a subset
//! are left out with an `AddressesSkipped` warning event on the Endpoints.

pub mod plan;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use skiff_api::k8s_openapi::api::core::v1::{Endpoints, Service};
use skiff_api::k8s_openapi::api::discovery::v1::EndpointSlice;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use tokio_util::sync::CancellationToken;

use self::plan::MirroredSlice;
use crate::controllers::endpointslice::{MANAGED_BY_LABEL, SERVICE_NAME_LABEL};
use crate::error::ApiError;
use crate::registry::{Registry, Subresource};
use crate::runtime::events::{EventRecorder, EventType};
use crate::runtime::informer::{object_key, revision_of, Informer};
use crate::runtime::queue::WorkQueue;
use crate::runtime::runner::{Action, Reconciler};

/// This controller's `managed-by` value (Kubernetes' own, so tools recognise the slices).
pub const MANAGED_BY: &str = "endpointslicemirroring-controller.k8s.io";

/// Mirrors selector-less Services' Endpoints into EndpointSlices; keyed by the Endpoints
/// (which is also the Service's key).
pub struct EndpointSliceMirroringController {
    pub registry: Registry,
    pub services: Arc<Informer<Service>>,
    pub endpoints: Arc<Informer<Endpoints>>,
    pub slices: Arc<Informer<EndpointSlice>>,
    pub events: EventRecorder,
}

/// The key of the Endpoints a slice was mirrored from, for the work queue (None for slices
/// this controller does not manage).
pub fn endpoints_key(slice: &EndpointSlice) -> Option<String> {
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY) {
        return None;
    }
    let name = labels.get(SERVICE_NAME_LABEL)?;
    Some(object_key(slice.metadata.namespace.as_deref(), name))
}

/// At start, queues the Endpoints of every mirrored slice, so that slices whose Endpoints
/// or Service went while no member led are removed.
pub fn feed_orphans(
    controller: &EndpointSliceMirroringController,
    queue: &WorkQueue,
    shutdown: &CancellationToken,
) {
    let slices = controller.slices.clone();
    let (queue, shutdown) = (queue.clone(), shutdown.clone());
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = slices.synced() => {
                for key in slices.list(|_| true).iter().filter_map(|s| endpoints_key(s)) {
                    queue.add(key);
                }
            }
        }
    });
}

#[async_trait]
impl Reconciler for EndpointSliceMirroringController {
    fn name(&self) -> &'static str {
        "endpointslice_mirroring"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let (namespace, _) = key.split_once('/').unwrap_or(("", key));
        let mut existing = self.slices.list(|s| {
            s.metadata.namespace.as_deref() == Some(namespace)
                && endpoints_key(s).as_deref() == Some(key)
        });
        existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let service = self.services.get(key);
        let mirrored = self
            .endpoints
            .get(key)
            .filter(|e| plan::should_mirror(e, service.as_deref()));
        let mirror = mirrored.as_deref().map(plan::desired).unwrap_or_default();
        // Slices of an earlier Endpoints of the same name are not reused.
        let uid = mirrored.as_ref().and_then(|e| e.metadata.uid.clone());
        let (mut mine, stale): (Vec<_>, Vec<_>) = existing
            .into_iter()
            .partition(|s| uid.is_some() && owner_uid(s) == uid.as_deref());
        self.delete(namespace, &stale).await?;
        let Some(endpoints) = mirrored else {
            self.delete(namespace, &mine).await?;
            return Ok(Action::await_change());
        };
        if mirror.skipped > 0 {
            let message = format!(
                "Skipped {} addresses beyond {} of a subset when mirroring to EndpointSlices",
                mirror.skipped,
                plan::MAX_ENDPOINTS_PER_SUBSET
            );
            let reason = "AddressesSkipped";
            self.events
                .record(endpoints.as_ref(), EventType::Warning, reason, message);
        }
        if mirror.invalid > 0 {
            let message = format!(
                "Skipped {} addresses that are not IP addresses when mirroring to EndpointSlices",
                mirror.invalid
            );
            let reason = "InvalidIPAddress";
            self.events
                .record(endpoints.as_ref(), EventType::Warning, reason, message);
        }
        let mut revision = 0;
        for content in mirror.slices {
            // Reuse a slice of the same address type, one with the same ports if any.
            let reuse = mine
                .iter()
                .position(|s| {
                    s.address_type == content.address_type
                        && s.ports.as_deref() == Some(content.ports.as_slice())
                })
                .or_else(|| {
                    mine.iter()
                        .position(|s| s.address_type == content.address_type)
                });
            let written = match reuse.map(|i| mine.remove(i)) {
                Some(current) => {
                    let mut next = (*current).clone();
                    fill(&mut next, &endpoints, content);
                    if next == *current {
                        continue;
                    }
                    self.registry.update_typed(&next, Subresource::Main).await?
                }
                None => {
                    let name = endpoints.metadata.name.as_deref().unwrap_or_default();
                    let mut slice = EndpointSlice {
                        metadata: ObjectMeta {
                            generate_name: Some(format!("{name}-")),
                            namespace: Some(namespace.to_string()),
                            ..Default::default()
                        },
                        ..Default::default()
                    };
                    fill(&mut slice, &endpoints, content);
                    self.registry.create_typed(&slice).await?
                }
            };
            revision = revision.max(revision_of(&written));
        }
        // What is left of ours is no longer wanted, now that its replacements are written.
        self.delete(namespace, &mine).await?;
        if revision > 0 {
            self.slices.wait_for(revision).await;
        }
        Ok(Action::await_change())
    }
}

impl EndpointSliceMirroringController {
    /// Deletes `slices`; one already gone is fine.
    async fn delete(&self, namespace: &str, slices: &[Arc<EndpointSlice>]) -> Result<(), ApiError> {
        for slice in slices {
            let name = slice.metadata.name.as_deref().unwrap_or_default();
            match self
                .registry
                .delete_typed::<EndpointSlice>(Some(namespace), name)
                .await
            {
                Ok(()) | Err(ApiError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

fn owner_uid(slice: &EndpointSlice) -> Option<&str> {
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "Endpoints" && o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

/// Makes `slice` the mirror of `endpoints` holding `content`.
fn fill(slice: &mut EndpointSlice, endpoints: &Endpoints, content: MirroredSlice) {
    let name = endpoints.metadata.name.clone().unwrap_or_default();
    let mut labels = endpoints.metadata.labels.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.into(), name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    slice.metadata.labels = Some(labels);
    let annotations: BTreeMap<String, String> = endpoints
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| !plan::NOT_COPIED_ANNOTATIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    slice.metadata.annotations = Some(annotations).filter(|a| !a.is_empty());
    slice.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Endpoints".into(),
        name,
        uid: endpoints.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    slice.address_type = content.address_type;
    slice.endpoints = content.endpoints;
    slice.ports = Some(content.ports);
}
