//! Events the agent records about pods (Pulled, Created, Started, BackOff, Failed, Killing).

use serde_json::json;
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
        let name = pod.metadata.name.clone().unwrap_or_default();
        let now = jiff::Timestamp::now().to_string();
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": format!("{name}."), "namespace": namespace},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": namespace, "name": name, "uid": pod.metadata.uid},
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": "kubelet", "host": self.node},
            "reportingComponent": "kubelet",
            "reportingInstance": self.node,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        });
        let client = self.client.clone();
        tokio::spawn(async move {
            let events = resources::by_name("events").expect("events are served");
            if let Err(err) = client.create(events, Some(&namespace), &event).await {
                tracing::debug!(%err, "dropping event");
            }
        });
    }
}
