//! Watching the ConfigMaps and Secrets the node's pods project, so that their volumes are
//! rewritten as soon as they change (the kubelet resyncs about once a minute; this is
//! event-driven, and each worker also resyncs in case an event was missed). As the kubelet's
//! watch-based ConfigMap and Secret managers do, each object is watched on its own, in its
//! namespace with `fieldSelector=metadata.name=NAME`: the node authorizer lets a node read
//! only the objects its pods use, never a whole collection. A watch starts with the first pod
//! that projects the object (nodes without such pods, and hollow nodes, open none) and lasts
//! while the agent runs; each (re)list reports the object as changed, so nothing between a
//! list and a watch is lost.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use skiff_api::k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use skiff_api::k8s_openapi::Resource;
use skiff_client::{Client, ListParams};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Pause before re-listing after an API error.
const RETRY: Duration = Duration::from_secs(1);

/// Which kind of source changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// The objects watched so far.
    watched: Mutex<HashSet<(SourceKind, String, String)>>,
    stop: CancellationToken,
}

impl SourceWatch {
    /// A watch (not started) that buffers `capacity` changes and ends with `stop`.
    pub fn new(client: Client, capacity: usize, stop: CancellationToken) -> Self {
        SourceWatch {
            client,
            changes: broadcast::channel(capacity).0,
            watched: Mutex::default(),
            stop,
        }
    }

    /// A receiver of every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SourceChange> {
        self.changes.subscribe()
    }

    /// Watches each ConfigMap and Secret `pod` projects that is not watched yet.
    pub fn watch_pod(&self, pod: &Pod) {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let mut watched = self.watched.lock().expect("watched sources");
        for (kind, name) in super::volumes::sources(pod) {
            if !watched.insert((kind, namespace.clone(), name.clone())) {
                continue;
            }
            let (client, changes, stop) =
                (self.client.clone(), self.changes.clone(), self.stop.clone());
            let namespace = namespace.clone();
            tokio::spawn(async move {
                let watching = async {
                    match kind {
                        SourceKind::ConfigMap => {
                            watch::<ConfigMap>(&client, kind, &namespace, &name, &changes).await
                        }
                        SourceKind::Secret => {
                            watch::<Secret>(&client, kind, &namespace, &name, &changes).await
                        }
                    }
                };
                tokio::select! {
                    _ = watching => {}
                    _ = stop.cancelled() => {}
                }
            });
        }
    }
}

/// Sends a `SourceChange` for every event of object `namespace/name` of `kind`, for ever.
async fn watch<K>(
    client: &Client,
    kind: SourceKind,
    namespace: &str,
    name: &str,
    changes: &broadcast::Sender<SourceChange>,
) where
    K: Resource + serde::de::DeserializeOwned + serde::Serialize + Send + 'static,
    K: skiff_api::k8s_openapi::Metadata<
        Ty = skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    >,
{
    let api = client.api::<K>(Some(namespace));
    let params = ListParams {
        field_selector: Some(format!("metadata.name={name}")),
        ..ListParams::default()
    };
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
