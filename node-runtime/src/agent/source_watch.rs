//! Watching ConfigMaps and Secrets so that the volumes projecting them are rewritten as soon
//! as they change (the kubelet resyncs about once a minute; this is event-driven, and each
//! worker also resyncs in case an event was missed). The watch starts with the node's first
//! pod that projects files, so nodes without such pods (and hollow nodes) open none; each
//! (re)list reports every object as changed, so nothing between a list and a watch is lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use skiff_api::k8s_openapi::api::core::v1::{ConfigMap, Secret};
use skiff_api::k8s_openapi::Resource;
use skiff_client::{Client, ListParams};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Pause before re-listing after an API error.
const RETRY: Duration = Duration::from_secs(1);

/// Which kind of source changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    ConfigMap,
    Secret,
}

/// A ConfigMap or Secret that was added, changed or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceChange {
    pub kind: SourceKind,
    pub namespace: String,
    pub name: String,
}

/// ConfigMap and Secret changes for the node's workers, watched once first needed.
pub struct SourceWatch {
    client: Client,
    changes: broadcast::Sender<SourceChange>,
    started: AtomicBool,
    stop: CancellationToken,
}

impl SourceWatch {
    /// A watch (not started) that buffers `capacity` changes and ends with `stop`.
    pub fn new(client: Client, capacity: usize, stop: CancellationToken) -> Self {
        SourceWatch {
            client,
            changes: broadcast::channel(capacity).0,
            started: AtomicBool::new(false),
            stop,
        }
    }

    /// A receiver of every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SourceChange> {
        self.changes.subscribe()
    }

    /// Starts watching, once.
    pub fn start(&self) {
        if !self.started.swap(true, Ordering::SeqCst) {
            tokio::spawn(run(
                self.client.clone(),
                self.changes.clone(),
                self.stop.clone(),
            ));
        }
    }
}

/// Sends a `SourceChange` for every ConfigMap and Secret event until `stop`.
async fn run(client: Client, changes: broadcast::Sender<SourceChange>, stop: CancellationToken) {
    tokio::select! {
        _ = watch::<ConfigMap>(&client, SourceKind::ConfigMap, &changes) => {}
        _ = watch::<Secret>(&client, SourceKind::Secret, &changes) => {}
        _ = stop.cancelled() => {}
    }
}

async fn watch<K>(client: &Client, kind: SourceKind, changes: &broadcast::Sender<SourceChange>)
where
    K: Resource + serde::de::DeserializeOwned + serde::Serialize + Send + 'static,
    K: skiff_api::k8s_openapi::Metadata<
        Ty = skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    >,
{
    let api = client.api::<K>(None);
    let params = ListParams::default();
    loop {
        // After a (re)list every object counts as changed: events may have been missed.
        let version = match api.list(&params).await {
            Ok((objects, version)) => {
                for object in &objects {
                    let _ = changes.send(change(kind, object));
                }
                version
            }
            Err(err) => {
                tracing::debug!(%err, ?kind, "listing volume sources failed; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let mut events = match api.watch(&params, &version).await {
            Ok(events) => events.boxed(),
            Err(err) => {
                tracing::debug!(%err, ?kind, "watching volume sources failed; re-listing");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        while let Some(Ok(event)) = events.next().await {
            let _ = changes.send(change(kind, &event.object));
        }
    }
}

fn change<K>(kind: SourceKind, object: &K) -> SourceChange
where
    K: skiff_api::k8s_openapi::Metadata<
        Ty = skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    >,
{
    let meta = object.metadata();
    SourceChange {
        kind,
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
    }
}
