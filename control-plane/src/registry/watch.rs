//! Turning store changes into Kubernetes watch events, filtered by selectors.

use std::pin::Pin;
use std::time::Duration;

use std::borrow::Borrow;
use std::collections::BTreeMap;

use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use skiff_api::selector::{FieldSelector, LabelSelector};
use skiff_raft_store::{EventKind, KeyValue, WatchEvent as StoreEvent};

use super::object;

/// Label and field selectors of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub label_selector: Option<LabelSelector>,
    pub field_selector: Option<FieldSelector>,
    /// A watch sends a BOOKMARK event every [`BOOKMARK_INTERVAL`] (`allowWatchBookmarks`).
    pub allow_bookmarks: bool,
}

/// How often a watch that allows bookmarks gets one (Kubernetes sends them about every minute).
pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// The parts of a stored object that selectors usually read, decoded without the rest.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Selectable {
    metadata: SelectableMeta,
    spec: SelectableSpec,
    status: SelectableStatus,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SelectableMeta {
    name: Option<String>,
    namespace: Option<String>,
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SelectableSpec {
    #[serde(rename = "nodeName")]
    node_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SelectableStatus {
    phase: Option<String>,
}

/// Fields a field selector may use for which `Selectable` suffices.
const SELECTABLE_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "status.phase",
];

impl ListOptions {
    /// False when the stored bytes certainly do not match, decided from a partial decode; lists
    /// and watches call it before decoding whole objects (most of a selective list's cost).
    pub fn may_match(&self, raw: &[u8]) -> bool {
        let fields_known = self
            .field_selector
            .as_ref()
            .is_none_or(|s| s.fields().all(|f| SELECTABLE_FIELDS.contains(&f)));
        if self.label_selector.is_none() && (self.field_selector.is_none() || !fields_known) {
            return true;
        }
        let Ok(part) = serde_json::from_slice::<Selectable>(raw) else {
            return true;
        };
        if let Some(selector) = &self.label_selector {
            if !selector.matches(&part.metadata.labels) {
                return false;
            }
        }
        match &self.field_selector {
            Some(selector) if fields_known => selector.matches(&serde_json::json!({
                "metadata": {"name": part.metadata.name, "namespace": part.metadata.namespace},
                "spec": {"nodeName": part.spec.node_name},
                "status": {"phase": part.status.phase},
            })),
            _ => true,
        }
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.label_selector
            .as_ref()
            .is_none_or(|s| s.matches(&object::labels(obj)))
            && self.field_selector.as_ref().is_none_or(|s| s.matches(obj))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WatchEventType {
    Added,
    Modified,
    Deleted,
    /// No change: the watch has seen every change up to the object's `resourceVersion`, so a
    /// client can resume from there.
    Bookmark,
}

/// One line of a watch response.
#[derive(Debug, Clone, Serialize)]
pub struct WatchEvent {
    #[serde(rename = "type")]
    pub event_type: WatchEventType,
    pub object: Value,
}

pub type WatchStream = Pin<Box<dyn Stream<Item = WatchEvent> + Send>>;

/// A channel's items as a stream (a store watch's events, a node hub subscription's).
pub fn receiver_stream<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send {
    async_stream::stream! {
        while let Some(item) = rx.recv().await {
            yield item;
        }
    }
}

/// The initial objects as ADDED events, then the live changes that concern the selectors,
/// which follow revision `from`; with `allow_bookmarks`, a BOOKMARK every
/// [`BOOKMARK_INTERVAL`] carrying the last revision the watch has seen (its object holds only
/// `metadata.resourceVersion`; the caller adds the kind).
pub fn stream<E>(
    initial: Vec<Value>,
    live: impl Stream<Item = E> + Send + 'static,
    options: ListOptions,
    from: u64,
) -> WatchStream
where
    E: Borrow<StoreEvent> + Send,
{
    Box::pin(async_stream::stream! {
        for object in initial {
            yield WatchEvent { event_type: WatchEventType::Added, object };
        }
        let mut live = std::pin::pin!(live);
        let mut seen = from;
        let mut bookmarks = options.allow_bookmarks.then(|| {
            let first = tokio::time::Instant::now() + BOOKMARK_INTERVAL;
            tokio::time::interval_at(first, BOOKMARK_INTERVAL)
        });
        loop {
            let next = match bookmarks.as_mut() {
                Some(ticks) => tokio::select! {
                    event = live.next() => Some(event),
                    _ = ticks.tick() => None,
                },
                None => Some(live.next().await),
            };
            let event = match next {
                None => {
                    let object = serde_json::json!({"metadata": {"resourceVersion": seen.to_string()}});
                    yield WatchEvent { event_type: WatchEventType::Bookmark, object };
                    continue;
                }
                Some(None) => break,
                Some(Some(event)) => event,
            };
            let event: &StoreEvent = event.borrow();
            seen = seen.max(event.revision());
            let relevant = event.prev.iter().any(|kv| options.may_match(&kv.value))
                || (event.kind == EventKind::Put && options.may_match(&event.kv.value));
            if !relevant {
                continue;
            }
            let revision = event.revision();
            let prev = event.prev.as_ref().and_then(|kv| decode_at(kv, revision));
            let current = match event.kind {
                EventKind::Put => decode_at(&event.kv, revision),
                EventKind::Delete => None,
            };
            if let Some(out) = translate(prev, current, &options) {
                yield out;
            }
        }
    })
}

/// Decodes a stored value, stamping it with `revision` as its resourceVersion.
fn decode_at(kv: &KeyValue, revision: u64) -> Option<Value> {
    let mut obj: Value = match serde_json::from_slice(&kv.value) {
        Ok(obj) => obj,
        Err(err) => {
            tracing::error!(key = %String::from_utf8_lossy(&kv.key), %err, "skipping corrupt object in watch");
            return None;
        }
    };
    object::set_meta(&mut obj, "resourceVersion", revision.to_string());
    Some(obj)
}

/// The event a watcher with `options` sees for a change from `prev` to `current`: an object
/// that starts matching is ADDED, one that stops matching is DELETED (as Kubernetes' watch cache does).
fn translate(
    prev: Option<Value>,
    current: Option<Value>,
    options: &ListOptions,
) -> Option<WatchEvent> {
    let was = prev.filter(|p| options.matches(p));
    let now = current.filter(|c| options.matches(c));
    let (event_type, object) = match (was, now) {
        (None, Some(now)) => (WatchEventType::Added, now),
        (Some(_), Some(now)) => (WatchEventType::Modified, now),
        (Some(was), None) => (WatchEventType::Deleted, was),
        (None, None) => return None,
    };
    Some(WatchEvent { event_type, object })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(phase: &str) -> Value {
        json!({"metadata": {"name": "p", "labels": {"app": "a"}}, "status": {"phase": phase}})
    }

    #[test]
    fn partial_decoding_rules_out_only_non_matches() {
        let options = |labels: &str, fields: &str| ListOptions {
            label_selector: (!labels.is_empty()).then(|| labels.parse().expect("labels")),
            field_selector: (!fields.is_empty()).then(|| fields.parse().expect("fields")),
            ..Default::default()
        };
        let raw = serde_json::to_vec(&json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "a"}},
            "spec": {"nodeName": "n1", "containers": []},
            "status": {"phase": "Running"}
        }))
        .expect("json");
        let obj: Value = serde_json::from_slice(&raw).expect("value");
        for (labels, fields) in [
            ("app=a", ""),
            ("app=b", ""),
            ("", "spec.nodeName=n1"),
            ("", "spec.nodeName=n2"),
            ("app=a", "status.phase!=Running"),
            ("", "metadata.namespace=ns,metadata.name=p"),
            ("", "spec.unschedulable=true"),
        ] {
            let o = options(labels, fields);
            if !o.may_match(&raw) {
                assert!(!o.matches(&obj), "{labels} {fields}: ruled out a match");
            }
            assert_eq!(
                o.may_match(&raw),
                o.matches(&obj) || fields == "spec.unschedulable=true",
                "{labels} {fields}"
            );
        }
    }

    fn put(revision: u64, labels: Value) -> StoreEvent {
        let value = serde_json::to_vec(&json!({"metadata": {"name": "p", "labels": labels}}))
            .expect("json");
        StoreEvent {
            kind: EventKind::Put,
            kv: KeyValue {
                key: b"/registry/core/pods/default/p".to_vec(),
                value,
                create_revision: revision,
                mod_revision: revision,
                version: 1,
            },
            prev: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn bookmarks_carry_the_last_revision_seen_also_of_filtered_changes() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let live = async_stream::stream! {
            let mut rx = rx;
            while let Some(e) = rx.recv().await {
                yield e;
            }
        };
        let options = ListOptions {
            label_selector: Some("app=a".parse().expect("selector")),
            allow_bookmarks: true,
            ..Default::default()
        };
        let mut events = stream(Vec::new(), live, options, 7);
        // The paused clock advances to the next timer whenever the test waits.
        let first = events.next().await.expect("a bookmark");
        assert_eq!(first.event_type, WatchEventType::Bookmark);
        assert_eq!(first.object["metadata"]["resourceVersion"], "7");
        tx.send(put(8, json!({"app": "a"}))).expect("send");
        tx.send(put(9, json!({"app": "b"}))).expect("send");
        let added = events.next().await.expect("an event");
        assert_eq!(added.event_type, WatchEventType::Added);
        let started = tokio::time::Instant::now();
        let bookmark = events.next().await.expect("a bookmark");
        assert_eq!(bookmark.event_type, WatchEventType::Bookmark);
        assert_eq!(started.elapsed(), BOOKMARK_INTERVAL);
        assert_eq!(
            bookmark.object["metadata"]["resourceVersion"], "9",
            "the filtered change at 9 counts as seen"
        );
        let quiet = ListOptions::default();
        let (_tx, rx) = tokio::sync::mpsc::unbounded_channel::<StoreEvent>();
        let live = async_stream::stream! {
            let mut rx = rx;
            while let Some(e) = rx.recv().await {
                yield e;
            }
        };
        let mut without = stream(Vec::new(), live, quiet, 7);
        let waited = tokio::time::timeout(BOOKMARK_INTERVAL * 3, without.next()).await;
        assert!(waited.is_err(), "no bookmarks unless asked");
    }

    #[test]
    fn selector_transitions_become_added_and_deleted() {
        let options = ListOptions {
            label_selector: None,
            field_selector: Some("status.phase=Running".parse().expect("selector")),
            ..Default::default()
        };
        let start = translate(Some(pod("Pending")), Some(pod("Running")), &options);
        assert_eq!(start.map(|e| e.event_type), Some(WatchEventType::Added));
        let stay = translate(Some(pod("Running")), Some(pod("Running")), &options);
        assert_eq!(stay.map(|e| e.event_type), Some(WatchEventType::Modified));
        let leave = translate(Some(pod("Running")), Some(pod("Failed")), &options);
        assert_eq!(leave.map(|e| e.event_type), Some(WatchEventType::Deleted));
        assert!(translate(Some(pod("Pending")), Some(pod("Failed")), &options).is_none());
        let gone = translate(Some(pod("Running")), None, &options);
        assert_eq!(gone.map(|e| e.event_type), Some(WatchEventType::Deleted));
    }
}
