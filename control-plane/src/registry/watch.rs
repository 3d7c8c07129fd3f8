//! Turning store changes into Kubernetes watch events, filtered by selectors.

use std::pin::Pin;

use futures::Stream;
use serde::Serialize;
use serde_json::Value;
use skiff_api::selector::{FieldSelector, LabelSelector};
use skiff_raft_store::{EventKind, KeyValue, Watch};

use super::object;

/// Label and field selectors of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub label_selector: Option<LabelSelector>,
    pub field_selector: Option<FieldSelector>,
}

impl ListOptions {
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
}

/// One line of a watch response.
#[derive(Debug, Clone, Serialize)]
pub struct WatchEvent {
    #[serde(rename = "type")]
    pub event_type: WatchEventType,
    pub object: Value,
}

pub type WatchStream = Pin<Box<dyn Stream<Item = WatchEvent> + Send>>;

/// The initial objects as ADDED events, then the live changes that concern the selectors.
pub fn stream(initial: Vec<Value>, mut live: Watch, options: ListOptions) -> WatchStream {
    Box::pin(async_stream::stream! {
        for object in initial {
            yield WatchEvent { event_type: WatchEventType::Added, object };
        }
        while let Some(event) = live.events.recv().await {
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
    fn selector_transitions_become_added_and_deleted() {
        let options = ListOptions {
            label_selector: None,
            field_selector: Some("status.phase=Running".parse().expect("selector")),
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
