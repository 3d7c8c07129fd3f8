//! A local copy of every object of one kind (or of one named object), kept by list and watch
//! (re-listing after an error or a closed watch), with a signal on each change.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_api::k8s_openapi::{Metadata, Resource};
use skiff_client::{Client, ListParams};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Pause before re-listing after an API error.
const RETRY: Duration = Duration::from_secs(1);

/// Objects by `namespace/name`.
pub type Objects<K> = Arc<Mutex<BTreeMap<String, K>>>;

/// Keeps `objects` equal to the cluster's objects of kind `K` until `stop`, waking `changed`
/// after each (re)list and event.
pub async fn run<K>(
    client: Client,
    objects: Objects<K>,
    changed: Arc<Notify>,
    stop: CancellationToken,
) where
    K: Resource + Metadata<Ty = ObjectMeta> + DeserializeOwned + Serialize + Send + 'static,
{
    mirror(client, objects, None, changed, stop).await;
}

/// Keeps object `namespace/name` of kind `K` in `objects` (present or absent, as in the
/// cluster) until `stop`: a list and watch with `fieldSelector=metadata.name=NAME` in its
/// namespace, which is all the node authorizer lets a node read of Secrets.
pub async fn run_named<K>(
    client: Client,
    objects: Objects<K>,
    (namespace, name): (String, String),
    changed: Arc<Notify>,
    stop: CancellationToken,
) where
    K: Resource + Metadata<Ty = ObjectMeta> + DeserializeOwned + Serialize + Send + 'static,
{
    mirror(client, objects, Some((namespace, name)), changed, stop).await;
}

async fn mirror<K>(
    client: Client,
    objects: Objects<K>,
    scope: Option<(String, String)>,
    changed: Arc<Notify>,
    stop: CancellationToken,
) where
    K: Resource + Metadata<Ty = ObjectMeta> + DeserializeOwned + Serialize + Send + 'static,
{
    let (api, params) = match &scope {
        None => (client.api::<K>(None), ListParams::default()),
        Some((namespace, name)) => (
            client.api::<K>(Some(namespace)),
            ListParams {
                field_selector: Some(format!("metadata.name={name}")),
                ..ListParams::default()
            },
        ),
    };
    loop {
        let listed = tokio::select! {
            _ = stop.cancelled() => return,
            listed = api.list(&params) => listed,
        };
        let version = match listed {
            Ok((list, version)) => {
                let listed = list.into_iter().map(|o| (key(&o), o));
                let mut objects = objects.lock().expect("mirror lock");
                match &scope {
                    None => *objects = listed.collect(),
                    Some((namespace, name)) => {
                        objects.remove(&format!("{namespace}/{name}"));
                        objects.extend(listed);
                    }
                }
                drop(objects);
                changed.notify_one();
                version
            }
            Err(err) => {
                tracing::debug!(kind = K::KIND, %err, "listing for the proxy failed; retrying");
                if wait(&stop).await {
                    return;
                }
                continue;
            }
        };
        let mut events = match api.watch(&params, &version).await {
            Ok(events) => events.boxed(),
            Err(err) => {
                tracing::debug!(kind = K::KIND, %err, "watching for the proxy failed; re-listing");
                if wait(&stop).await {
                    return;
                }
                continue;
            }
        };
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => return,
                event = events.next() => event,
            };
            let Some(Ok(event)) = event else { break };
            let name = key(&event.object);
            {
                let mut objects = objects.lock().expect("mirror lock");
                if event.event_type == "DELETED" {
                    objects.remove(&name);
                } else {
                    objects.insert(name, event.object);
                }
            }
            changed.notify_one();
        }
    }
}

fn key<K: Metadata<Ty = ObjectMeta>>(object: &K) -> String {
    let meta = object.metadata();
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// Waits before a retry; true if the agent stops meanwhile.
async fn wait(stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(RETRY) => false,
    }
}
