//! The leader's endpoint reconciler (kube-apiserver's lease endpoint reconciler): the
//! `default/kubernetes` EndpointSlices and Endpoints list the members whose leases are live. It runs when a
//! lease in `kube-system` changes, when the first live lease is due to expire, and at least
//! every [`RESYNC`]; it writes only what differs from the slices the informer holds.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use skiff_api::k8s_openapi::api::coordination::v1::Lease;
use skiff_api::k8s_openapi::api::core::v1::Endpoints;
use skiff_api::k8s_openapi::api::discovery::v1::EndpointSlice;
use skiff_api::resources;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::{plan, LEASE_NAMESPACE, SERVICE, SERVICE_NAMESPACE};
use crate::controllers::endpointslice::{MANAGED_BY_LABEL, SERVICE_NAME_LABEL};
use crate::error::ApiError;
use crate::registry::{DeleteOptions, Registry, Subresource};
use crate::runtime::informer::{object_key, revision_of, Informer};

/// The longest pause between two reconciles (kube-apiserver's endpoint reconciler interval).
const RESYNC: Duration = Duration::from_secs(10);
/// Pause after a failed write before trying again.
const RETRY: Duration = Duration::from_millis(500);

/// Keeps the `kubernetes` slices following the member leases until `shutdown` (the end of
/// the leader's term).
pub fn spawn(
    registry: Registry,
    leases: Arc<Informer<Lease>>,
    slices: Arc<Informer<EndpointSlice>>,
    endpoints: Arc<Informer<Endpoints>>,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        let mut changes = leases.subscribe();
        tokio::select! {
            () = async {
                leases.synced().await;
                slices.synced().await;
                endpoints.synced().await;
            } => {}
            () = shutdown.cancelled() => return,
        }
        loop {
            let now = Timestamp::now();
            let members: Vec<Arc<Lease>> =
                leases.list(|l| l.metadata.namespace.as_deref() == Some(LEASE_NAMESPACE));
            let desired = plan::slices(members.iter().filter_map(|l| plan::live_address(l, now)));
            let mut wait = plan::next_expiry(members.iter().map(Arc::as_ref), now)
                .and_then(|at| Duration::try_from(at.duration_since(now)).ok())
                .map_or(RESYNC, |until| until.min(RESYNC));
            let addresses = members.iter().filter_map(|l| plan::live_address(l, now));
            let wrote = match write(&registry, &slices, &desired).await {
                Ok(()) => write_endpoints(&registry, &endpoints, plan::endpoints(addresses)).await,
                Err(err) => Err(err),
            };
            if let Err(err) = wrote {
                tracing::warn!(%err, "updating the kubernetes Service's endpoints failed");
                wait = RETRY;
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                changed = next_member_change(&mut changes) => if !changed { return },
                () = shutdown.cancelled() => return,
            }
        }
    });
}

/// Waits for a change of a lease in `kube-system` (or lost notifications); false once the
/// informer is gone.
async fn next_member_change(
    changes: &mut tokio::sync::broadcast::Receiver<crate::runtime::informer::Change<Lease>>,
) -> bool {
    loop {
        match changes.recv().await {
            Ok(change) => {
                let in_namespace = |l: &Option<Arc<Lease>>| {
                    l.as_ref()
                        .is_some_and(|l| l.metadata.namespace.as_deref() == Some(LEASE_NAMESPACE))
                };
                if in_namespace(&change.old) || in_namespace(&change.new) {
                    return true;
                }
            }
            Err(RecvError::Lagged(_)) => return true,
            Err(RecvError::Closed) => return false,
        }
    }
}

/// Creates or updates each desired slice that differs, deletes the `kubernetes` slices no
/// longer desired, then waits for the informer to see its writes.
async fn write(
    registry: &Registry,
    slices: &Informer<EndpointSlice>,
    desired: &[EndpointSlice],
) -> Result<(), ApiError> {
    let kind = resources::of::<EndpointSlice>();
    let ns = Some(SERVICE_NAMESPACE);
    let mut wrote = false;
    for slice in desired {
        let name = slice.metadata.name.clone().unwrap_or_default();
        let body = serde_json::to_value(slice).map_err(|e| ApiError::Internal(e.to_string()))?;
        match slices.get(&object_key(ns, &name)) {
            Some(current) if plan::same_content(&current, slice) => continue,
            Some(current) => {
                let mut body = body;
                body["metadata"]["resourceVersion"] =
                    revision_of(current.as_ref()).to_string().into();
                registry
                    .update(kind, ns, &name, body, Subresource::Main)
                    .await?;
            }
            None => {
                registry.create(kind, ns, body).await?;
            }
        }
        wrote = true;
    }
    let keep: BTreeSet<Option<&str>> = desired.iter().map(|s| s.metadata.name.as_deref()).collect();
    let stale = slices.list(|s| {
        let labels = s.metadata.labels.as_ref();
        s.metadata.namespace.as_deref() == ns
            && labels
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .map(String::as_str)
                == Some(SERVICE)
            && labels.is_none_or(|l| !l.contains_key(MANAGED_BY_LABEL))
            && !keep.contains(&s.metadata.name.as_deref())
    });
    for slice in stale {
        let name = slice.metadata.name.clone().unwrap_or_default();
        let options = DeleteOptions {
            uid: slice.metadata.uid.clone(),
            ..DeleteOptions::default()
        };
        match registry.delete(kind, ns, &name, &options).await {
            Ok(_) | Err(ApiError::NotFound { .. }) => wrote = true,
            Err(err) => return Err(err),
        }
    }
    if wrote {
        slices.wait_for(registry.revision()).await;
    }
    Ok(())
}

/// Creates or updates the `kubernetes` Endpoints when it differs from `desired` (its labels
/// or subsets), then waits for the informer to see the write.
async fn write_endpoints(
    registry: &Registry,
    endpoints: &Informer<Endpoints>,
    desired: Endpoints,
) -> Result<(), ApiError> {
    let written = match endpoints.get(&object_key(Some(SERVICE_NAMESPACE), SERVICE)) {
        Some(current) if plan::same_endpoints(&current, &desired) => return Ok(()),
        Some(current) => {
            let mut next = (*current).clone();
            next.metadata.labels = desired.metadata.labels;
            next.subsets = desired.subsets;
            registry.update_typed(&next, Subresource::Main).await?
        }
        None => registry.create_typed(&desired).await?,
    };
    endpoints.wait_for(revision_of(&written)).await;
    Ok(())
}
