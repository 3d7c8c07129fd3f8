//! Events the agent records about pods (Pulled, Created, Started, BackOff, Failed, Killing),
//! sent as the kubelet sends them: through a queue of at most [`QUEUED`] events (more are
//! dropped, as client-go's broadcaster drops when its queue is full), at most `qps` a second
//! after a burst of `burst` (the kubelet's `--event-qps` and `--event-burst`). A burst of
//! pods so cannot flood the API with events while their bindings and statuses wait.

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;
use skiff_api::events::{new_event, EventSource, InvolvedObject};
use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::resources;
use skiff_client::Client;
use skiff_net::token_bucket::TokenBucket;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Events waiting to be sent (client-go's `maxQueuedEvents`).
pub const QUEUED: usize = 1000;
/// Event writes in flight at once.
const IN_FLIGHT: usize = 16;

/// How fast the agent sends events: `qps` a second after a burst of `burst`; `qps` 0 sends
/// them as fast as the API takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLimits {
    pub qps: u32,
    pub burst: u32,
}

impl Default for EventLimits {
    /// The kubelet's defaults: 50 a second, bursts of 100.
    fn default() -> Self {
        EventLimits {
            qps: 50,
            burst: 100,
        }
    }
}

/// Records events as `kubelet` on `node`; best-effort, in the background.
#[derive(Clone)]
pub struct Recorder {
    node: String,
    queue: mpsc::Sender<(String, Value)>,
}

impl Recorder {
    /// A recorder whose events `client` sends within `limits` until `stop`.
    pub fn start(
        client: Client,
        node: String,
        limits: EventLimits,
        stop: CancellationToken,
    ) -> Self {
        let kind = resources::by_name("events").expect("events are served");
        let write = move |namespace: String, event: Value| {
            let client = client.clone();
            async move {
                if let Err(err) = client.create(kind, Some(&namespace), &event).await {
                    tracing::debug!(%err, "dropping event");
                }
            }
        };
        Self::with_writer(node, limits, stop, write)
    }

    /// A recorder whose events `write` sends (in the namespace given) within `limits`.
    fn with_writer<W, F>(
        node: String,
        limits: EventLimits,
        stop: CancellationToken,
        write: W,
    ) -> Self
    where
        W: Fn(String, Value) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let (queue, events) = mpsc::channel(QUEUED);
        tokio::spawn(send(write, events, limits, stop));
        Recorder { node, queue }
    }

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
        if self.queue.try_send((namespace, event)).is_err() {
            tracing::debug!(reason, "event queue full; dropping the event");
        }
    }
}

/// Sends queued events with `write` within `limits`, a few at a time, until `stop` or the
/// last recorder is gone.
async fn send<W, F>(
    write: W,
    mut events: mpsc::Receiver<(String, Value)>,
    limits: EventLimits,
    stop: CancellationToken,
) where
    W: Fn(String, Value) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut pace = TokenBucket::per_second(limits.qps, limits.burst, Instant::now());
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let (namespace, event) = tokio::select! {
            _ = stop.cancelled() => return,
            next = events.recv() => match next {
                Some(next) => next,
                None => return,
            },
        };
        if let Some(pace) = pace.as_mut() {
            pace.take().await;
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let written = write(namespace, event);
        tokio::spawn(async move {
            written.await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn pod(name: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "uid": "u-1"}
        }))
        .expect("a pod")
    }

    #[tokio::test(start_paused = true)]
    async fn events_are_paced_and_dropped_beyond_the_queue() {
        let written = Arc::new(AtomicUsize::new(0));
        let count = written.clone();
        let recorder = Recorder::with_writer(
            "node-a".into(),
            EventLimits {
                qps: 50,
                burst: 100,
            },
            CancellationToken::new(),
            move |namespace, event| {
                assert_eq!(namespace, "default");
                assert_eq!(event["source"]["host"], "node-a");
                count.fetch_add(1, Ordering::SeqCst);
                async {}
            },
        );
        for i in 0..1_500 {
            recorder.normal(&pod(&format!("p-{i}")), "Started", "Started".into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        let burst = written.load(Ordering::SeqCst);
        assert_eq!(burst, 100, "the burst goes at once");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after_a_second = written.load(Ordering::SeqCst);
        assert!(
            (149..=151).contains(&after_a_second),
            "then 50 a second: {after_a_second}"
        );
        tokio::time::sleep(Duration::from_secs(60)).await;
        let all = written.load(Ordering::SeqCst);
        assert!(
            (1_000..=1_001).contains(&all),
            "what did not fit in the queue of 1,000 was dropped: {all} written"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn zero_qps_sends_unpaced() {
        let written = Arc::new(AtomicUsize::new(0));
        let count = written.clone();
        let recorder = Recorder::with_writer(
            "node-a".into(),
            EventLimits { qps: 0, burst: 1 },
            CancellationToken::new(),
            move |_, _| {
                count.fetch_add(1, Ordering::SeqCst);
                async {}
            },
        );
        for i in 0..500 {
            recorder.warning(&pod(&format!("p-{i}")), "BackOff", "Back-off".into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(written.load(Ordering::SeqCst), 500);
    }
}
