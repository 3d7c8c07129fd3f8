//! Pod watches of one node (`fieldSelector=spec.nodeName=N`, what every agent keeps open),
//! served from one shared store watch and routed by node name. An event costs one partial
//! decode in total instead of a full decode per agent: the indexed watch cache of
//! Kubernetes' API server, without which thousands of agents would each decode every pod.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use skiff_raft_store::{Store, StoreError, WatchEvent};
use tokio::sync::mpsc;

use crate::encryption::Encryption;

/// Events buffered per subscriber before a slow one is dropped (its client re-watches).
const SUBSCRIBER_BUFFER: usize = 1024;
/// Pause before re-opening the shared store watch after it ended.
const RESTART_DELAY: Duration = Duration::from_millis(100);

/// Routes pod events to per-node subscribers; cheap to clone.
#[derive(Clone)]
pub struct NodeWatchHub {
    store: Store,
    prefix: Arc<Vec<u8>>,
    inner: Arc<Mutex<Hub>>,
    /// Opens pods' values, should they be encrypted at rest.
    encryption: Encryption,
}

#[derive(Default)]
struct Hub {
    /// Every pod event up to this revision has been routed.
    revision: u64,
    started: bool,
    subscribers: HashMap<String, Vec<mpsc::Sender<Arc<WatchEvent>>>>,
}

/// A subscription: events after `revision` arrive on `events`; earlier ones come from history.
pub struct Subscription {
    pub revision: u64,
    pub events: mpsc::Receiver<Arc<WatchEvent>>,
}

impl NodeWatchHub {
    /// A hub for the pods under `prefix`; its store watch starts with the first subscriber.
    pub fn new(store: Store, prefix: String, encryption: Encryption) -> Self {
        NodeWatchHub {
            store,
            prefix: Arc::new(prefix.into_bytes()),
            inner: Arc::new(Mutex::new(Hub::default())),
            encryption,
        }
    }

    /// Subscribes to the events of pods that are or were on `node`.
    pub fn subscribe(&self, node: &str) -> Subscription {
        let (tx, events) = mpsc::channel(SUBSCRIBER_BUFFER);
        let mut hub = self.inner.lock().expect("node watch hub");
        if !hub.started {
            hub.started = true;
            hub.revision = self.store.revision();
            tokio::spawn(self.clone().route());
        }
        hub.subscribers
            .entry(node.to_string())
            .or_default()
            .push(tx);
        Subscription {
            revision: hub.revision,
            events,
        }
    }

    /// The node's events in `from..=to` from the store's history.
    pub fn history(&self, node: &str, from: u64, to: u64) -> Result<Vec<WatchEvent>, StoreError> {
        let events = self.store.history(&self.prefix, from, to)?;
        Ok(events
            .into_iter()
            .filter_map(|e| self.encryption.open_event(e))
            .filter(|e| nodes_of(e).contains(&Some(node)))
            .collect())
    }

    /// Follows the store and hands each event to the subscribers of its old and new node.
    async fn route(self) {
        loop {
            let from = self.inner.lock().expect("node watch hub").revision + 1;
            let mut watch = match self.store.watch(&self.prefix, from) {
                Ok(watch) => watch,
                Err(StoreError::Stopped) => return,
                Err(StoreError::Compacted { .. }) => {
                    // The store skipped ahead (it installed the leader's snapshot): nobody can
                    // be served without a gap, so every stream ends and its agent re-lists.
                    let mut hub = self.inner.lock().expect("node watch hub");
                    hub.subscribers.clear();
                    hub.revision = self.store.revision();
                    continue;
                }
                Err(err) => {
                    tracing::warn!(%err, "node watch hub cannot watch pods; retrying");
                    tokio::time::sleep(RESTART_DELAY).await;
                    continue;
                }
            };
            while let Some(event) = watch.events.recv().await {
                let revision = event.revision();
                let Some(event) = self.encryption.open_event(event) else {
                    self.inner.lock().expect("node watch hub").revision = revision;
                    continue;
                };
                let mut targets: Vec<String> = nodes_of(&event)
                    .into_iter()
                    .flatten()
                    .map(str::to_string)
                    .collect();
                targets.dedup();
                let event = Arc::new(event);
                let mut hub = self.inner.lock().expect("node watch hub");
                for node in targets {
                    if let Some(subscribers) = hub.subscribers.get_mut(&node) {
                        // A full buffer drops the subscriber: its stream ends and the agent
                        // re-watches from its last revision, as with any lagging watch. Closed
                        // subscribers go the same way.
                        subscribers.retain(|tx| tx.try_send(event.clone()).is_ok());
                        if subscribers.is_empty() {
                            hub.subscribers.remove(&node);
                        }
                    }
                }
                hub.revision = revision;
            }
            tracing::debug!("node watch hub's store watch ended; resuming");
            tokio::time::sleep(RESTART_DELAY).await;
        }
    }
}

/// The node of the pod before and after the change (`None` where unbound or absent).
fn nodes_of(event: &WatchEvent) -> [Option<&str>; 2] {
    let before = event.prev.as_ref().and_then(|kv| node_name(&kv.value));
    let after = match event.kind {
        skiff_raft_store::EventKind::Put => node_name(&event.kv.value),
        skiff_raft_store::EventKind::Delete => None,
    };
    [before, after]
}

/// `spec.nodeName` of a stored pod, reading nothing else.
fn node_name(bytes: &[u8]) -> Option<&str> {
    #[derive(Deserialize)]
    struct Pod<'a> {
        #[serde(borrow)]
        spec: Option<Spec<'a>>,
    }
    #[derive(Deserialize)]
    struct Spec<'a> {
        #[serde(rename = "nodeName", borrow)]
        node_name: Option<&'a str>,
    }
    serde_json::from_slice::<Pod>(bytes)
        .ok()?
        .spec?
        .node_name
        .filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_the_node_name() {
        let bound =
            br#"{"metadata":{"name":"p"},"spec":{"containers":[],"nodeName":"n1"},"status":{}}"#;
        assert_eq!(node_name(bound), Some("n1"));
        assert_eq!(node_name(br#"{"spec":{"nodeName":""}}"#), None);
        assert_eq!(node_name(br#"{"spec":{}}"#), None);
        assert_eq!(node_name(b"not json"), None);
    }
}
