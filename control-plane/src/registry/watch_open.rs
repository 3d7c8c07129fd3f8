//! Opening watches: from the store's history of a prefix, or from the shared hub for one
//! node's pods.

use futures::StreamExt;
use serde_json::Value;
use skiff_api::resources::ResourceKind;

use super::watch::{self, ListOptions, WatchStream};
use super::{list_prefix, strategy, Registry};
use crate::error::ApiError;

impl Registry {
    /// Streams changes to objects of `kind` matching `options`. Without `from`, the stream
    /// starts with an ADDED event for every existing object, as Kubernetes does.
    pub async fn watch(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        options: ListOptions,
        from: Option<u64>,
    ) -> Result<WatchStream, ApiError> {
        let prefix = list_prefix(kind, namespace);
        let (initial, start) = match from {
            Some(rv) => (Vec::new(), rv + 1),
            None => {
                let (items, revision) = self.list(kind, namespace, &options).await?;
                (items, revision + 1)
            }
        };
        if let Some(node) = strategy::of(kind).node_index(&options) {
            return self.watch_node(&node, prefix, initial, start, options);
        }
        let live = self.store.watch(prefix.as_bytes(), start)?;
        let encryption = self.encryption.clone();
        let events = watch::receiver_stream(live.events)
            .filter_map(move |e| std::future::ready(encryption.open_event(e)));
        Ok(watch::stream(initial, events, options, start - 1))
    }

    /// A watch of one node's pods from `start`: history up to the shared hub's revision,
    /// then the hub's routed events (see `node_watch`).
    fn watch_node(
        &self,
        node: &str,
        prefix: String,
        initial: Vec<Value>,
        start: u64,
        options: ListOptions,
    ) -> Result<WatchStream, ApiError> {
        let subscription = self.node_watches.subscribe(node);
        let replay = if start <= subscription.revision {
            self.node_watches
                .history(node, start, subscription.revision)?
        } else {
            Vec::new()
        };
        let live = watch::receiver_stream(subscription.events);
        let events = futures::stream::iter(replay.into_iter().map(std::sync::Arc::new))
            .chain(live)
            .filter(move |e| {
                let keep = e.revision() >= start && e.kv.key.starts_with(prefix.as_bytes());
                std::future::ready(keep)
            });
        Ok(watch::stream(initial, events, options, start - 1))
    }
}
