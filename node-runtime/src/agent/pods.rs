//! Watching the pods bound to this node and handing each to its worker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_client::ListParams;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::pod_dirs;
use super::worker::{self, Context, Update};

/// Pause before re-listing after an API error.
const RETRY: Duration = Duration::from_secs(1);
/// How long workers get to stop when the agent stops.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

struct Handle {
    updates: watch::Sender<Update>,
    task: JoinHandle<()>,
}

/// Pod uid → its worker.
struct Workers {
    ctx: Arc<Context>,
    shutdown: CancellationToken,
    workers: HashMap<String, Handle>,
}

impl Workers {
    fn upsert(&mut self, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let pod = Arc::new(pod);
        self.workers.retain(|_, h| !h.task.is_finished());
        if let Some(handle) = self.workers.get(&uid) {
            handle.updates.send_replace(Update::Pod(pod));
            return;
        }
        let (updates, receiver) = watch::channel(Update::Pod(pod.clone()));
        let task = tokio::spawn(worker::run(
            self.ctx.clone(),
            pod,
            receiver,
            self.shutdown.clone(),
        ));
        self.workers.insert(uid, Handle { updates, task });
    }

    fn gone(&mut self, uid: &str) {
        if let Some(handle) = self.workers.remove(uid) {
            handle.updates.send_replace(Update::Gone);
        }
    }

    /// After a list: workers whose pods are no longer listed are told they are gone.
    fn keep_only(&mut self, listed: &[String]) {
        let stale: Vec<String> = self
            .workers
            .keys()
            .filter(|uid| !listed.contains(uid))
            .cloned()
            .collect();
        for uid in stale {
            self.gone(&uid);
        }
    }

    async fn stop_all(self) {
        let tasks: Vec<JoinHandle<()>> = self.workers.into_values().map(|h| h.task).collect();
        let _ = tokio::time::timeout(SHUTDOWN_WAIT, futures::future::join_all(tasks)).await;
    }
}

/// Lists and watches this node's pods until `shutdown`; re-lists after any watch failure.
pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    let api = ctx.client.api::<Pod>(None);
    let params = ListParams {
        field_selector: Some(format!("spec.nodeName={}", ctx.node)),
        label_selector: None,
    };
    let mut workers = Workers {
        ctx: ctx.clone(),
        shutdown: shutdown.clone(),
        workers: HashMap::new(),
    };
    'relist: loop {
        if shutdown.is_cancelled() {
            break;
        }
        let (pods, version) = match api.list(&params).await {
            Ok(listed) => listed,
            Err(err) => {
                tracing::warn!(%err, "listing this node's pods failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => continue 'relist,
                    _ = shutdown.cancelled() => break 'relist,
                }
            }
        };
        let uids: Vec<String> = pods.iter().filter_map(|p| p.metadata.uid.clone()).collect();
        for pod in pods {
            workers.upsert(pod);
        }
        // Pods still tearing down keep their directories until the next list.
        let mut keep = uids.clone();
        keep.extend(workers.workers.keys().cloned());
        workers.keep_only(&uids);
        ctx.survivors.remove_orphans(&uids).await;
        pod_dirs::collect_garbage(&ctx.pods_dir, &keep).await;
        let mut events = match api.watch(&params, &version).await {
            Ok(events) => events.boxed(),
            Err(err) => {
                tracing::debug!(%err, "watching this node's pods failed; re-listing");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => continue 'relist,
                    _ = shutdown.cancelled() => break 'relist,
                }
            }
        };
        loop {
            let event = tokio::select! {
                event = events.next() => event,
                _ = shutdown.cancelled() => break 'relist,
            };
            match event {
                Some(Ok(event)) if event.event_type == "DELETED" => {
                    if let Some(uid) = event.object.metadata.uid.as_deref() {
                        workers.gone(uid);
                    }
                }
                Some(Ok(event)) => workers.upsert(event.object),
                Some(Err(err)) => {
                    tracing::debug!(%err, "pod watch failed; re-listing");
                    continue 'relist;
                }
                None => continue 'relist,
            }
        }
    }
    workers.stop_all().await;
}
