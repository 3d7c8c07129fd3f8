//! What the node's pods use, read from the runtimes' `container_stats`, and the machine's and
//! the agent's own usage from `/proc`: served as cAdvisor-style Prometheus text
//! (`/metrics/cadvisor`), the kubelet's resource metrics (`/metrics/resource`), the agent's
//! process metrics (`/metrics`) and the kubelet's `/stats/summary` JSON, which the API server
//! reads for `metrics.k8s.io` (`kubectl top`).
//!
//! The Prometheus endpoints read everything afresh on each scrape (counters need no history).
//! The summary's CPU rates are over the two latest readings of a loop that reads every
//! [`SAMPLE_INTERVAL`], as cAdvisor's housekeeping and metrics-server's scrapes are. The loop
//! starts with the first summary asked for, so a node nobody asks (a benchmark's thousands of
//! hollow nodes) reads nothing.

mod exposition;
mod host;
mod sample;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jiff::Timestamp;
use skiff_api::stats::{PodReference, Summary};
use tokio_util::sync::CancellationToken;

use super::log_index::LogIndex;
use crate::runtime::{ContainerState, RuntimeSet};
use sample::{ContainerSample, Sample};

/// How often the loop reads usage for the summary's rates (metrics-server's default
/// resolution is 15 s; cAdvisor's housekeeping 10 s).
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);

/// Reads the node's usage and keeps the two latest readings.
pub struct UsageReader {
    node_name: String,
    runtimes: RuntimeSet,
    /// Which pods the node runs (namespace, name, uid), as the pod workers keep it.
    pods: Arc<LogIndex>,
    /// The previous and the latest reading of the loop.
    history: Mutex<(Option<Sample>, Option<Sample>)>,
    /// Set once the loop runs.
    sampling: AtomicBool,
    /// Ends the loop with the agent.
    stop: CancellationToken,
}

impl UsageReader {
    /// A reader of the pods `pods` lists, on `runtimes`; its loop ends with `stop`.
    pub fn new(
        node_name: String,
        runtimes: RuntimeSet,
        pods: Arc<LogIndex>,
        stop: CancellationToken,
    ) -> Self {
        UsageReader {
            node_name,
            runtimes,
            pods,
            history: Mutex::new((None, None)),
            sampling: AtomicBool::new(false),
            stop,
        }
    }

    /// Reads every running container's stats and the host's usage now.
    async fn read(&self) -> Sample {
        let mut containers = Vec::new();
        for pod in self.pods.pods() {
            for runtime in self.runtimes.iter() {
                let Ok(listed) = runtime.list_containers(Some(&pod.uid)).await else {
                    continue;
                };
                for status in listed {
                    if !matches!(status.state, ContainerState::Running { .. }) {
                        continue;
                    }
                    let Ok(stats) = runtime.container_stats(&status.id).await else {
                        continue;
                    };
                    containers.push(ContainerSample {
                        pod: PodReference {
                            name: pod.name.clone(),
                            namespace: pod.namespace.clone(),
                            uid: pod.uid.clone(),
                        },
                        container: status.name,
                        id: status.id,
                        stats,
                    });
                }
            }
        }
        containers.sort_by(|a, b| {
            (&a.pod.namespace, &a.pod.name, &a.container).cmp(&(
                &b.pod.namespace,
                &b.pod.name,
                &b.container,
            ))
        });
        Sample {
            time: Timestamp::now(),
            instant: Instant::now(),
            containers,
            machine: host::machine(),
            process: host::process(),
        }
    }

    /// Reads every [`SAMPLE_INTERVAL`] until the agent stops, keeping the two latest readings.
    async fn sample(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let sample = self.read().await;
            let mut history = self.history.lock().expect("usage history lock");
            let latest = history.1.take();
            *history = (latest, Some(sample));
        }
    }

    /// The summary of the latest reading with rates against the one before (a fresh reading
    /// without rates before the loop's first); starts the loop on the first call.
    async fn summary(self: &Arc<Self>) -> Summary {
        if !self.sampling.swap(true, Ordering::SeqCst) {
            tokio::spawn(self.clone().sample());
        }
        let (previous, latest) = self.history.lock().expect("usage history lock").clone();
        match latest {
            Some(latest) => sample::summarize(&self.node_name, previous.as_ref(), &latest),
            None => sample::summarize(&self.node_name, None, &self.read().await),
        }
    }
}

/// `/metrics`, `/metrics/cadvisor`, `/metrics/resource` and `/stats/summary`.
pub fn router(reader: Arc<UsageReader>) -> Router {
    Router::new()
        .route("/metrics", get(process_metrics))
        .route("/metrics/cadvisor", get(cadvisor_metrics))
        .route("/metrics/resource", get(resource_metrics))
        .route("/stats/summary", get(summary))
        .with_state(reader)
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, exposition::CONTENT_TYPE)], body).into_response()
}

async fn process_metrics(State(reader): State<Arc<UsageReader>>) -> Response {
    text(exposition::process(&reader.read().await))
}

async fn cadvisor_metrics(State(reader): State<Arc<UsageReader>>) -> Response {
    text(exposition::cadvisor(&reader.read().await))
}

async fn resource_metrics(State(reader): State<Arc<UsageReader>>) -> Response {
    text(exposition::resource(&reader.read().await))
}

async fn summary(State(reader): State<Arc<UsageReader>>) -> Json<Summary> {
    Json(reader.summary().await)
}
