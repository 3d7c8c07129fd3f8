//! A local copy of every object of one kind, kept by list and watch (re-listing after an
//! error or a closed watch), with a signal on each change.

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
    let api = client.api::<K>(None);
    let params = ListParams::default();
    loop {
        let listed = tokio::select! {
            _ = stop.cancelled() => return,
            listed = api.list(&params) => listed,
        };
        let version = match listed {
            Ok((list, version)) => {
                *objects.lock().expect("mirror lock") =
                    list.into_iter().map(|o| (key(&o), o)).collect();
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
