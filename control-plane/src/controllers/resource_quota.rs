//! The ResourceQuota controller: keeps each quota's `status.used` true as objects go away
//! (admission charges creates and updates itself, in the written object's own write). A
//! namespace is recomputed when one of its pods is deleted or ends, and every namespace on a
//! slow sweep.

use std::sync::Arc;
use std::time::Duration;

use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::resources;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::registry::{ListOptions, Registry, Subresource};
use crate::runtime::informer::{Change, Informer};

/// How often every quota is recomputed (deletes of other kinds than pods show up then).
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

pub struct ResourceQuotaController {
    pub registry: Registry,
    pub pods: Arc<Informer<Pod>>,
}

impl ResourceQuotaController {
    /// Runs until `shutdown` is cancelled.
    pub fn spawn(self, shutdown: CancellationToken) {
        tokio::spawn(async move {
            let mut pods = self.pods.subscribe();
            let mut tick = tokio::time::interval(SWEEP_INTERVAL);
            loop {
                let namespace = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => None,
                    change = pods.recv() => match change {
                        Ok(change) => match freed_namespace(&change) {
                            Some(ns) => Some(ns),
                            None => continue,
                        },
                        Err(broadcast::error::RecvError::Closed) => return,
                        Err(broadcast::error::RecvError::Lagged(_)) => None,
                    },
                };
                if let Err(err) = self.sync(namespace.as_deref()).await {
                    tracing::debug!(%err, "resource quota sync");
                }
            }
        });
    }

    /// Recomputes the quotas of `namespace`, or of all namespaces.
    async fn sync(&self, namespace: Option<&str>) -> Result<(), ApiError> {
        let kind = resources::by_name("resourcequotas").expect("resourcequotas are served");
        let (quotas, _) = self
            .registry
            .list(kind, namespace, &ListOptions::default())
            .await?;
        for mut quota in quotas {
            let (Some(ns), Some(name)) = (
                quota
                    .pointer("/metadata/namespace")
                    .and_then(|v| v.as_str()),
                quota.pointer("/metadata/name").and_then(|v| v.as_str()),
            ) else {
                continue;
            };
            let (ns, name) = (ns.to_string(), name.to_string());
            let status = self.registry.quota_status(&ns, &quota).await?;
            if quota.get("status") == Some(&status) {
                continue;
            }
            quota["status"] = status;
            // A 409 means admission charged it meanwhile: the next change or sweep settles it.
            match self
                .registry
                .update(kind, Some(&ns), &name, quota, Subresource::Status)
                .await
            {
                Ok(_) | Err(ApiError::Conflict { .. } | ApiError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

/// The namespace of a pod that stopped counting: deleted, or newly Succeeded or Failed.
fn freed_namespace(change: &Change<Pod>) -> Option<String> {
    let terminal = |p: &Pod| {
        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
        matches!(phase, Some("Succeeded" | "Failed"))
    };
    let freed = match (&change.old, &change.new) {
        (Some(_), None) => true,
        (Some(old), Some(new)) => terminal(new) && !terminal(old),
        _ => false,
    };
    let pod = change.old.as_ref()?;
    freed.then(|| pod.metadata.namespace.clone()).flatten()
}
