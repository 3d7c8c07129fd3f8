//! Recording Kubernetes Events about objects (best-effort, as client-go's recorder).

use skiff_api::events::{new_event, EventSource, InvolvedObject};
use skiff_api::resources;

use std::sync::Arc;

use tokio::time::Instant;

use super::event_spam::SpamFilter;
use crate::registry::{object, typed, Registry};

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy)]
pub enum EventType {
    Normal,
    Warning,
}

/// Writes Events on behalf of one component (`deployment-controller`, `default-scheduler`, ...),
/// dropping what client-go's spam filter would (more than a burst about one object).
#[derive(Clone)]
pub struct EventRecorder {
    registry: Registry,
    component: &'static str,
    spam: Arc<SpamFilter>,
}

impl EventRecorder {
    pub fn new(registry: Registry, component: &'static str) -> Self {
        EventRecorder {
            registry,
            component,
            spam: Arc::default(),
        }
    }

    /// Records an event about `obj` in the background unless the spam filter drops it;
    /// failures are only logged.
    pub fn record<K: typed::Object>(
        &self,
        obj: &K,
        kind: EventType,
        reason: &str,
        message: String,
    ) {
        let meta = obj.metadata();
        let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
        let object = format!(
            "{}/{namespace}/{}/{}",
            K::KIND,
            meta.name.as_deref().unwrap_or_default(),
            meta.uid.as_deref().unwrap_or_default()
        );
        if !self.spam.allow(&object, Instant::now()) {
            return;
        }
        let involved = InvolvedObject {
            api_version: K::API_VERSION,
            kind: K::KIND,
            namespace: meta.namespace.as_deref(),
            name: meta.name.as_deref().unwrap_or_default(),
            uid: meta.uid.as_deref(),
        };
        let source = EventSource {
            component: self.component,
            host: None,
        };
        let event_type = match kind {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        };
        let event = new_event(
            &involved,
            &source,
            event_type,
            reason,
            &message,
            &object::now_rfc3339(),
        );
        let registry = self.registry.clone();
        tokio::spawn(async move {
            let events = resources::by_name("events").expect("events are served");
            if let Err(err) = registry.create(events, Some(&namespace), event).await {
                tracing::debug!(%err, "dropping event");
            }
        });
    }
}
