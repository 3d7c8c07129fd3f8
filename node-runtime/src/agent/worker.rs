//! One task per pod: chooses the pod's runtime, carries out the lifecycle's steps against it,
//! restarts with backoff, publishes the pod's status, and tears the pod down when it is
//! deleted. It wakes on pod updates, on its containers' events from the runtime, and on
//! the timers of backoffs and retries.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use skiff_api::k8s_openapi::api::core::v1::{Container, Pod};
use skiff_client::Client;
use tokio::sync::{broadcast, watch};

use super::backoff::Backoff;
use super::events::Recorder;
use super::lifecycle::{self, ContainerView, RestartPolicy, Step};
use super::log_index::{pod_log_dir, ContainerLog, LogIndex};
use super::recovery::{self, Survivors};
use super::runtime_choice::{self, ChoiceError};
use super::status::{self, ContainerReport};
use super::volumes;
use crate::runtime::{
    ContainerEvent, ContainerRuntime, ContainerState, ImageRef, ImageService, PodSandboxConfig,
    RuntimeError, RuntimeSet,
};
use skiff_api::time::now_rfc3339;

/// Retry delay for configuration errors (missing ConfigMap, unknown RuntimeClass, ...).
pub(super) const CONFIG_RETRY: Duration = Duration::from_secs(2);
/// Retry delay for a status write the API refused.
const PUBLISH_RETRY: Duration = Duration::from_millis(250);

/// What every worker shares.
pub struct Context {
    pub client: Client,
    pub images: Arc<dyn ImageService>,
    pub runtimes: RuntimeSet,
    pub node: String,
    pub host_ip: String,
    pub pods_dir: PathBuf,
    pub backoff: Backoff,
    pub logs: Arc<LogIndex>,
    pub events: Recorder,
    /// Sandboxes that outlived an agent restart, for their pods' workers to re-attach to.
    pub survivors: Survivors,
}

/// The latest word on a pod from the API.
#[derive(Clone)]
pub enum Update {
    Pod(Arc<Pod>),
    /// The pod is gone from the API.
    Gone,
}

/// One container's worker-side record.
pub(super) struct Record {
    pub spec: Container,
    pub id: Option<String>,
    pub restart_count: u32,
    /// The API shows an earlier attempt (from before an agent restart): the next start is a restart.
    pub started_before: bool,
    pub image: Option<ImageRef>,
    /// Pulled to choose the runtime, for the start that follows.
    pub pulled: Option<ImageRef>,
    pub state: Option<ContainerState>,
    pub log_path: Option<PathBuf>,
    pub previous_log: Option<PathBuf>,
    pub waiting: Option<(String, String)>,
    pub last_terminated: Option<Value>,
    pub seen_exit: bool,
    pub crashes: u32,
    pub backoff_until: Option<Instant>,
    pub retry_at: Option<Instant>,
    pub pull_failures: u32,
}

pub(super) struct Worker {
    pub ctx: Arc<Context>,
    pub pod: Arc<Pod>,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub records: Vec<Record>,
    /// The runtime chosen for this pod, once chosen.
    pub runtime: Option<Arc<dyn ContainerRuntime>>,
    /// Its container events, subscribed before the sandbox was made.
    container_events: Option<broadcast::Receiver<ContainerEvent>>,
    pub sandbox: Option<String>,
    pod_ip: Option<String>,
    published: Option<Value>,
    start_time: String,
    /// Finished before this agent started: only deletion is handled.
    finished: bool,
    publish_failed: bool,
}

/// Runs the worker of one pod until it is deleted, gone, or the agent stops.
pub async fn run(
    ctx: Arc<Context>,
    pod: Arc<Pod>,
    mut updates: watch::Receiver<Update>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut worker = Worker::new(ctx, pod);
    worker.adopt().await;
    loop {
        let update = updates.borrow_and_update().clone();
        match update {
            Update::Gone => return worker.teardown(false).await,
            Update::Pod(pod) => worker.pod = pod,
        }
        if worker.pod.metadata.deletion_timestamp.is_some() {
            return worker.teardown(true).await;
        }
        let wake = if worker.finished {
            None
        } else {
            worker.sync().await;
            worker.publish().await;
            worker.next_wake()
        };
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let sandbox = worker.sandbox.clone().unwrap_or_default();
        tokio::select! {
            changed = updates.changed() => if changed.is_err() { return worker.teardown(false).await },
            _ = sleep => {}
            _ = next_event(worker.container_events.as_mut(), &sandbox) => {}
            _ = super::stopped(&mut shutdown) => return worker.teardown(false).await,
        }
    }
}

/// Resolves at the next event of the sandbox's containers, or when events were lost (so the
/// worker looks again); never without a subscription.
async fn next_event(events: Option<&mut broadcast::Receiver<ContainerEvent>>, sandbox: &str) {
    let Some(events) = events else {
        return std::future::pending().await;
    };
    loop {
        match events.recv().await {
            Ok(event) if event.sandbox == sandbox => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
        }
    }
}

impl Worker {
    fn new(ctx: Arc<Context>, pod: Arc<Pod>) -> Self {
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default();
        let records = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .map(|spec| {
                let previous = statuses.iter().find(|s| s.name == spec.name);
                let started_before = previous.is_some_and(|s| {
                    s.state
                        .as_ref()
                        .is_some_and(|st| st.running.is_some() || st.terminated.is_some())
                });
                Record {
                    spec: spec.clone(),
                    id: None,
                    restart_count: previous.map(|s| s.restart_count.max(0) as u32).unwrap_or(0),
                    started_before,
                    image: None,
                    pulled: None,
                    state: None,
                    log_path: None,
                    previous_log: None,
                    waiting: None,
                    last_terminated: None,
                    seen_exit: false,
                    crashes: 0,
                    backoff_until: None,
                    retry_at: None,
                    pull_failures: 0,
                }
            })
            .collect();
        let finished = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        let start_time = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0.to_string())
            .unwrap_or_else(now_rfc3339);
        Worker {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            namespace: pod
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            name: pod.metadata.name.clone().unwrap_or_default(),
            published: pod
                .status
                .as_ref()
                .and_then(|s| serde_json::to_value(s).ok()),
            ctx,
            pod,
            records,
            runtime: None,
            container_events: None,
            sandbox: None,
            pod_ip: None,
            start_time,
            finished,
            publish_failed: false,
        }
    }

    /// Re-attaches to this pod's sandbox and containers if they outlived an agent restart:
    /// the latest attempt of each container is taken over, not started again.
    async fn adopt(&mut self) {
        let Some(found) = self.ctx.survivors.take(&self.uid) else {
            return;
        };
        let runtime = found.runtime;
        self.container_events = Some(runtime.subscribe());
        let latest = recovery::latest_by_name(&found.containers);
        for r in &mut self.records {
            if let Some(container) = latest.get(&r.spec.name) {
                r.id = Some(container.id.clone());
                r.restart_count = container.attempt;
                r.started_before = false;
                r.image = Some(container.image.clone());
                r.state = Some(container.state.clone());
                r.log_path = Some(container.log_path.clone());
            }
        }
        self.pod_ip = match runtime.pod_sandbox_status(&self.uid).await {
            Ok(status) => status.ip,
            Err(err) => {
                tracing::warn!(pod = %self.name, %err, "pod sandbox status failed");
                None
            }
        };
        self.sandbox = Some(self.uid.clone());
        self.runtime = Some(runtime);
    }

    pub(super) fn policy(&self) -> RestartPolicy {
        RestartPolicy::parse(
            self.pod
                .spec
                .as_ref()
                .and_then(|s| s.restart_policy.as_deref()),
        )
    }

    /// Every container waits for the same reason, retried after `retry`.
    fn all_waiting(&mut self, reason: &str, message: String, retry: Option<Instant>) {
        for r in &mut self.records {
            r.waiting = Some((reason.into(), message.clone()));
            if retry.is_some() {
                r.retry_at = retry;
            }
        }
    }

    /// Chooses the pod's runtime: by its RuntimeClass, else by its images, pulled first.
    async fn choose_runtime(&mut self, now: Instant) -> Option<Arc<dyn ContainerRuntime>> {
        let class = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.runtime_class_name.clone());
        let chosen = match class {
            Some(class) => {
                runtime_choice::by_class(&self.ctx.client, &self.ctx.runtimes, &class).await
            }
            None => {
                let mut images = Vec::new();
                for i in 0..self.records.len() {
                    let image = self.pull(i, now).await?;
                    self.records[i].pulled = Some(image.clone());
                    images.push(image);
                }
                runtime_choice::by_images(&self.ctx.runtimes, &images)
            }
        };
        match chosen {
            Ok(runtime) => Some(runtime),
            Err(err) => {
                let reason = match err {
                    ChoiceError::Lookup { .. } => "ContainerCreating",
                    ChoiceError::NoRuntimeForImage { .. } => "CreateContainerError",
                    ChoiceError::UnknownClass { .. } | ChoiceError::NoHandler { .. } => {
                        "CreateContainerConfigError"
                    }
                };
                let message = err.to_string();
                if self
                    .records
                    .iter()
                    .all(|r| r.waiting.as_ref().is_none_or(|(_, m)| *m != message))
                {
                    self.ctx
                        .events
                        .warning(&self.pod, "FailedCreatePodSandBox", message.clone());
                }
                self.all_waiting(reason, message, Some(now + CONFIG_RETRY));
                None
            }
        }
    }

    /// Chooses the runtime and makes the pod sandbox on it, once.
    async fn ensure_sandbox(&mut self, now: Instant) -> bool {
        if self.sandbox.is_some() {
            return true;
        }
        if self
            .records
            .iter()
            .any(|r| r.retry_at.is_some_and(|at| at > now))
        {
            return false;
        }
        let runtime = match self.runtime.clone() {
            Some(runtime) => runtime,
            None => match self.choose_runtime(now).await {
                Some(runtime) => {
                    self.container_events = Some(runtime.subscribe());
                    self.runtime = Some(runtime.clone());
                    runtime
                }
                None => return false,
            },
        };
        let config = PodSandboxConfig {
            uid: self.uid.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            labels: self.pod.metadata.labels.clone().unwrap_or_default(),
            log_directory: pod_log_dir(&self.ctx.pods_dir, &self.uid),
        };
        let made = match volumes::prepare(&self.pod, &self.ctx.pods_dir).await {
            Ok(()) => runtime.run_pod_sandbox(&config).await,
            Err(source) => Err(RuntimeError::Io {
                context: "making the pod's emptyDir volumes".into(),
                source,
            }),
        };
        match made {
            Ok(id) => {
                self.pod_ip = match runtime.pod_sandbox_status(&id).await {
                    Ok(status) => status.ip,
                    Err(err) => {
                        tracing::warn!(pod = %self.name, %err, "pod sandbox status failed");
                        None
                    }
                };
                self.sandbox = Some(id);
                true
            }
            Err(err) => {
                self.all_waiting(
                    "ContainerCreating",
                    format!("creating the pod sandbox: {err}"),
                    Some(now + CONFIG_RETRY),
                );
                false
            }
        }
    }

    /// Observes the runtime, then takes each container's next step.
    async fn sync(&mut self) {
        let now = Instant::now();
        if !self.ensure_sandbox(now).await {
            return;
        }
        for i in 0..self.records.len() {
            self.observe(i, now).await;
        }
        let views: Vec<ContainerView> = self
            .records
            .iter()
            .map(|r| ContainerView {
                observed: status::observed(r.state.as_ref()),
                backoff_until: r.backoff_until,
            })
            .collect();
        let Ok(steps) = lifecycle::step(self.policy(), false, &views, now) else {
            return;
        };
        for (i, step) in steps.into_iter().enumerate() {
            match step {
                Step::Start => {
                    if self.records[i].retry_at.is_none_or(|at| at <= now) {
                        self.start(i, now).await;
                    }
                }
                Step::StartCreated => self.start_created(i).await,
                Step::WaitUntil(until) => self.back_off(i, until, now),
                Step::Keep => {
                    if self.records[i].id.is_some() {
                        self.records[i].waiting = None;
                    }
                }
            }
        }
        for r in &self.records {
            let log = ContainerLog {
                current: r.log_path.clone(),
                previous: r.previous_log.clone(),
                running: matches!(r.state, Some(ContainerState::Running { .. })),
            };
            self.ctx
                .logs
                .set(&self.namespace, &self.name, &self.uid, &r.spec.name, log);
        }
    }

    /// Record `i` waits in CrashLoopBackOff until `until`.
    fn back_off(&mut self, i: usize, until: Instant, now: Instant) {
        let r = &mut self.records[i];
        let delay = until.saturating_duration_since(now).as_secs().max(1);
        let message = format!(
            "back-off {}s restarting failed container={} pod={}_{}({})",
            self.ctx.backoff.delay(r.crashes).as_secs(),
            r.spec.name,
            self.name,
            self.namespace,
            self.uid
        );
        if r.waiting
            .as_ref()
            .is_none_or(|(reason, _)| reason != "CrashLoopBackOff")
        {
            self.ctx.events.warning(
                &self.pod,
                "BackOff",
                format!(
                    "Back-off restarting failed container {} ({delay}s)",
                    r.spec.name
                ),
            );
        }
        r.waiting = Some(("CrashLoopBackOff".into(), message));
    }

    /// Reads the runtime state of record `i`, noting a fresh exit and its restart backoff.
    async fn observe(&mut self, i: usize, now: Instant) {
        let (Some(id), Some(runtime)) = (self.records[i].id.clone(), self.runtime.clone()) else {
            return;
        };
        let status = match runtime.container_status(&id).await {
            Ok(status) => Some(status),
            Err(RuntimeError::ContainerNotFound(_)) => None,
            Err(err) => {
                tracing::warn!(pod = %self.name, %err, "container status failed");
                return;
            }
        };
        let r = &mut self.records[i];
        if let Some(ContainerState::Exited {
            started_at,
            finished_at,
            ..
        }) = status.as_ref().map(|s| &s.state)
        {
            if !r.seen_exit {
                r.seen_exit = true;
                let ran = finished_at.duration_since(*started_at).unwrap_or_default();
                r.crashes = if ran >= self.ctx.backoff.reset_after {
                    1
                } else {
                    r.crashes + 1
                };
                r.backoff_until = Some(now + self.ctx.backoff.delay(r.crashes));
            }
        }
        if let Some(status) = &status {
            r.log_path = Some(status.log_path.clone());
        }
        r.state = status.map(|s| s.state);
    }

    /// `<runtime>://<id>`, as Kubernetes shows container ids.
    pub(super) fn container_id(&self, id: &str) -> String {
        let scheme = self.runtime.as_ref().map_or("unknown", |r| r.name());
        format!("{scheme}://{id}")
    }

    fn reports(&self) -> Vec<ContainerReport> {
        self.records
            .iter()
            .map(|r| ContainerReport {
                name: r.spec.name.clone(),
                image: r.spec.image.clone().unwrap_or_default(),
                image_id: r.image.as_ref().map(|i| i.digest.clone()),
                container_id: r.id.as_deref().map(|id| self.container_id(id)),
                restart_count: r.restart_count,
                state: r.state.clone(),
                waiting: r.waiting.clone(),
                last_terminated: r.last_terminated.clone(),
            })
            .collect()
    }

    /// Writes the pod's status through `/status` when it changed.
    async fn publish(&mut self) {
        let host_ip = &self.ctx.host_ip;
        let status = status::pod_status(
            self.policy(),
            &self.reports(),
            status::Addresses {
                host_ip,
                pod_ip: self.pod_ip.as_deref().unwrap_or(host_ip),
            },
            &self.start_time,
            self.published.as_ref(),
            &now_rfc3339(),
        );
        if self.published.as_ref() == Some(&status) {
            return;
        }
        let body = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "status": status,
        });
        let pods = skiff_api::resources::by_name("pods").expect("pods are served");
        match self
            .ctx
            .client
            .replace_status(pods, Some(&self.namespace), &self.name, &body)
            .await
        {
            Ok(_) => {
                self.published = Some(status);
                self.publish_failed = false;
            }
            Err(err) => {
                tracing::warn!(pod = %self.name, %err, "publishing pod status failed; will retry");
                self.publish_failed = true;
            }
        }
    }

    /// When to look again without an update or a container event: when a backoff or a
    /// retry is due, or to write a refused status again.
    fn next_wake(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut wake: Option<Instant> = None;
        let mut consider = |at: Instant| wake = Some(wake.map_or(at, |w| w.min(at)));
        for r in &self.records {
            if let (Some(ContainerState::Exited { .. }), Some(at)) = (&r.state, r.backoff_until) {
                if self.policy().restarts_any() {
                    consider(at);
                }
            }
            if let Some(at) = r.retry_at {
                consider(at.max(now));
            }
        }
        if self.publish_failed {
            consider(now + PUBLISH_RETRY);
        }
        wake
    }
}
