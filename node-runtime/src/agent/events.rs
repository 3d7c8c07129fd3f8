//! Events the agent records about pods (Pulled, Created, Started, BackOff, Failed, Killing).

use skiff_api::events::{new_event, EventSource, InvolvedObject};
use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::resources;
use skiff_client::Client;

/// Records events as `kubelet` on `node`; best-effort, in the background.
#[derive(Clone)]
pub struct Recorder {
    pub client: Client,
    pub node: String,
}

impl Recorder {
    pub fn normal(&self, pod: &Pod, reason: &str, message: String) {
        self.record(pod, "Normal", reason, message);
    }

    pub fn warning(&self, pod: &Pod, reason: &str, message: String) {
        self.record(pod, "Warning", reason, message);
    }

    fn record(&self, pod: &Pod, kind: &str, reason: &str, message: String) {
        let namespace = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let involved = InvolvedObject {
            api_version: "v1",
            kind: "Pod",
            namespace: Some(&namespace),
            name: pod.metadata.name.as_deref().unwrap_or_default(),
            uid: pod.metadata.uid.as_deref(),
        };
        let source = EventSource {
            component: "kubelet",
            host: Some(&self.node),
        };
        let event = new_event(
            &involved,
            &source,
            kind,
            reason,
            &message,
            &skiff_api::time::now_rfc3339(),
        );
        let client = self.client.clone();
        tokio::spawn(async move {
            let events = resources::by_name("events").expect("events are served");
            if let Err(err) = client.create(events, Some(&namespace), &event).await {
                tracing::debug!(%err, "dropping event");
            }
        });
    }
}
