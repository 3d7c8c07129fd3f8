//! One task per pod: carries out the lifecycle's steps against the runtime, restarts with
//! backoff, publishes the pod's status, and tears the pod down when it is deleted.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use skiff_api::k8s_openapi::api::core::v1::{Container, Pod};
use skiff_api::quantity;
use skiff_client::{Client, DeleteParams};
use tokio::sync::watch;

use super::backoff::Backoff;
use super::env;
use super::events::Recorder;
use super::lifecycle::{self, ContainerView, RestartPolicy, Step};
use super::log_index::{pod_log_dir, ContainerLog, LogIndex};
use super::status::{self, ContainerReport};
use crate::runtime::{
    ContainerConfig, ContainerResources, ContainerRuntime, ContainerState, ImageRef,
    PodSandboxConfig, RuntimeError,
};
use skiff_api::time::now_rfc3339;

/// How often running containers are checked for exits.
const POLL: Duration = Duration::from_millis(250);
/// Retry delay for configuration errors (missing ConfigMap, ...).
const CONFIG_RETRY: Duration = Duration::from_secs(2);
/// Grace when the pod does not say.
const DEFAULT_GRACE: i64 = 30;

/// What every worker shares.
pub struct Context {
    pub client: Client,
    pub runtime: Arc<dyn ContainerRuntime>,
    pub node: String,
    pub host_ip: String,
    pub pods_dir: PathBuf,
    pub backoff: Backoff,
    pub logs: Arc<LogIndex>,
    pub events: Recorder,
}

/// The latest word on a pod from the API.
#[derive(Clone)]
pub enum Update {
    Pod(Arc<Pod>),
    /// The pod is gone from the API.
    Gone,
}

/// One container's worker-side record.
struct Record {
    spec: Container,
    id: Option<String>,
    restart_count: u32,
    /// The API shows an earlier attempt (from before an agent restart): the next start is a restart.
    started_before: bool,
    image: Option<ImageRef>,
    state: Option<ContainerState>,
    waiting: Option<(String, String)>,
    last_terminated: Option<Value>,
    seen_exit: bool,
    crashes: u32,
    backoff_until: Option<Instant>,
    retry_at: Option<Instant>,
    pull_failures: u32,
}

struct Worker {
    ctx: Arc<Context>,
    pod: Arc<Pod>,
    uid: String,
    namespace: String,
    name: String,
    records: Vec<Record>,
    sandbox: Option<String>,
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
        tokio::select! {
            changed = updates.changed() => if changed.is_err() { return worker.teardown(false).await },
            _ = sleep => {}
            _ = super::stopped(&mut shutdown) => return worker.teardown(false).await,
        }
    }
}

fn limits(container: &Container) -> ContainerResources {
    let limit = |name: &str| {
        container
            .resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get(name))
            .map(|q| q.0.clone())
    };
    ContainerResources {
        cpu_millis: limit("cpu").and_then(|q| quantity::parse_cpu_millis(&q).ok()),
        memory_bytes: limit("memory").and_then(|q| quantity::parse_bytes(&q).ok()),
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
                    state: None,
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
            sandbox: None,
            start_time,
            finished,
            publish_failed: false,
        }
    }

    fn policy(&self) -> RestartPolicy {
        RestartPolicy::parse(
            self.pod
                .spec
                .as_ref()
                .and_then(|s| s.restart_policy.as_deref()),
        )
    }

    /// Observes the runtime, then takes each container's next step.
    async fn sync(&mut self) {
        if self.sandbox.is_none() {
            let config = PodSandboxConfig {
                uid: self.uid.clone(),
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                labels: self.pod.metadata.labels.clone().unwrap_or_default(),
                log_directory: pod_log_dir(&self.ctx.pods_dir, &self.uid),
            };
            match self.ctx.runtime.run_pod_sandbox(&config).await {
                Ok(id) => self.sandbox = Some(id),
                Err(err) => {
                    for r in &mut self.records {
                        r.waiting = Some((
                            "ContainerCreating".into(),
                            format!("creating the pod sandbox: {err}"),
                        ));
                    }
                    return;
                }
            }
        }
        let now = Instant::now();
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
                        self.start(i).await;
                    }
                }
                Step::StartCreated => {
                    if let Some(id) = self.records[i].id.clone() {
                        if let Err(err) = self.ctx.runtime.start_container(&id).await {
                            self.records[i].waiting =
                                Some(("RunContainerError".into(), err.to_string()));
                        }
                    }
                }
                Step::WaitUntil(until) => {
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
                Step::Keep => {
                    if self.records[i].id.is_some() {
                        self.records[i].waiting = None;
                    }
                }
            }
        }
        for r in &self.records {
            let running = matches!(r.state, Some(ContainerState::Running { .. }));
            let log = ContainerLog {
                attempt: r.restart_count,
                running,
            };
            self.ctx
                .logs
                .set(&self.namespace, &self.name, &self.uid, &r.spec.name, log);
        }
    }

    /// Reads the runtime state of record `i`, noting a fresh exit and its restart backoff.
    async fn observe(&mut self, i: usize, now: Instant) {
        let Some(id) = self.records[i].id.clone() else {
            return;
        };
        let state = match self.ctx.runtime.container_status(&id).await {
            Ok(status) => Some(status.state),
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
        }) = state.as_ref()
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
        r.state = state;
    }

    /// Pulls, resolves, creates and starts record `i` (a new attempt if an earlier one exists).
    async fn start(&mut self, i: usize) {
        let ctx = self.ctx.clone();
        let now = Instant::now();
        let pod = self.pod.clone();
        let r = &mut self.records[i];
        if let Some(old) = r.id.take() {
            r.last_terminated = r
                .state
                .as_ref()
                .and_then(|s| status::terminated(s, Some(&old)));
            if let Err(err) = ctx.runtime.remove_container(&old).await {
                tracing::warn!(%err, "removing the exited container failed");
            }
            r.restart_count += 1;
        } else if r.started_before {
            r.restart_count += 1;
        }
        r.started_before = false;
        r.state = None;
        r.seen_exit = false;
        let reference = r.spec.image.clone().unwrap_or_default();
        let image = match ctx.runtime.pull_image(&reference).await {
            Ok(image) => {
                if r.image.as_ref() != Some(&image) {
                    ctx.events.normal(
                        &pod,
                        "Pulled",
                        format!(
                            "Container image \"{reference}\" ({}) is on the node",
                            image.digest
                        ),
                    );
                }
                r.pull_failures = 0;
                image
            }
            Err(err) => {
                r.pull_failures += 1;
                let reason = if r.pull_failures > 1 {
                    "ImagePullBackOff"
                } else {
                    "ErrImagePull"
                };
                ctx.events.warning(
                    &pod,
                    "Failed",
                    format!("Failed to pull image \"{reference}\": {err}"),
                );
                r.waiting = Some((reason.into(), err.to_string()));
                r.retry_at = Some(now + ctx.backoff.delay(r.pull_failures));
                r.started_before = r.restart_count > 0;
                return;
            }
        };
        r.image = Some(image.clone());
        let env = match env::resolve(&ctx.client, &pod, &r.spec).await {
            Ok(env) => env,
            Err(err) => {
                r.waiting = Some(("CreateContainerConfigError".into(), err.to_string()));
                r.retry_at = Some(now + CONFIG_RETRY);
                ctx.events.warning(&pod, "Failed", format!("Error: {err}"));
                return;
            }
        };
        let config = ContainerConfig {
            name: r.spec.name.clone(),
            image,
            command: r.spec.command.clone().unwrap_or_default(),
            args: r.spec.args.clone().unwrap_or_default(),
            env,
            working_dir: r.spec.working_dir.clone(),
            resources: limits(&r.spec),
            attempt: r.restart_count,
            runtime_class: pod.spec.as_ref().and_then(|s| s.runtime_class_name.clone()),
        };
        if !ctx.runtime.can_handle(&config) {
            r.waiting = Some((
                "CreateContainerError".into(),
                format!(
                    "the {} runtime cannot run runtimeClassName {:?}",
                    ctx.runtime.name(),
                    config.runtime_class
                ),
            ));
            r.retry_at = Some(now + CONFIG_RETRY);
            return;
        }
        let sandbox = self.sandbox.clone().unwrap_or_default();
        let id = match ctx.runtime.create_container(&sandbox, &config).await {
            Ok(id) => id,
            Err(err) => {
                r.waiting = Some(("CreateContainerError".into(), err.to_string()));
                r.retry_at = Some(now + CONFIG_RETRY);
                ctx.events.warning(&pod, "Failed", format!("Error: {err}"));
                return;
            }
        };
        ctx.events.normal(
            &pod,
            "Created",
            format!("Created container {}", config.name),
        );
        r.id = Some(id.clone());
        match ctx.runtime.start_container(&id).await {
            Ok(()) => {
                ctx.events.normal(
                    &pod,
                    "Started",
                    format!("Started container {}", config.name),
                );
                r.waiting = None;
                r.retry_at = None;
                r.state = ctx
                    .runtime
                    .container_status(&id)
                    .await
                    .ok()
                    .map(|s| s.state);
            }
            Err(err) => {
                r.waiting = Some(("RunContainerError".into(), err.to_string()));
                r.retry_at = Some(now + CONFIG_RETRY);
            }
        }
    }

    fn reports(&self) -> Vec<ContainerReport> {
        self.records
            .iter()
            .map(|r| ContainerReport {
                name: r.spec.name.clone(),
                image: r.spec.image.clone().unwrap_or_default(),
                image_id: r.image.as_ref().map(|i| i.digest.clone()),
                container_id: r.id.clone(),
                restart_count: r.restart_count,
                state: r.state.clone(),
                waiting: r.waiting.clone(),
                last_terminated: r.last_terminated.clone(),
            })
            .collect()
    }

    /// Writes the pod's status through `/status` when it changed.
    async fn publish(&mut self) {
        let status = status::pod_status(
            self.policy(),
            &self.reports(),
            &self.ctx.host_ip,
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

    /// When to look again: soon while containers run or retries are due.
    fn next_wake(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut wake: Option<Instant> = None;
        let mut consider = |at: Instant| wake = Some(wake.map_or(at, |w| w.min(at)));
        for r in &self.records {
            match r.state {
                Some(ContainerState::Running { .. } | ContainerState::Created) => {
                    consider(now + POLL)
                }
                Some(ContainerState::Exited { .. }) if self.policy().restarts_any() => {
                    if let Some(at) = r.backoff_until {
                        consider(at);
                    }
                }
                _ => {}
            }
            if let Some(at) = r.retry_at {
                consider(at.max(now));
            }
        }
        if self.publish_failed {
            consider(now + POLL);
        }
        wake
    }

    /// Stops everything of this pod; for a deleted pod, removes it from the API for good.
    async fn teardown(&mut self, final_delete: bool) {
        let grace = self
            .pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(DEFAULT_GRACE)
            .max(0) as u64;
        for r in &self.records {
            if let Some(id) = r.id.as_ref() {
                if matches!(r.state, Some(ContainerState::Running { .. })) {
                    self.ctx.events.normal(
                        &self.pod,
                        "Killing",
                        format!("Stopping container {}", r.spec.name),
                    );
                }
                if let Err(err) = self
                    .ctx
                    .runtime
                    .stop_container(id, Duration::from_secs(grace))
                    .await
                {
                    tracing::warn!(pod = %self.name, %err, "stopping container failed");
                }
            }
        }
        if let Err(err) = self.ctx.runtime.remove_pod_sandbox(&self.uid).await {
            tracing::warn!(pod = %self.name, %err, "removing the pod sandbox failed");
        }
        self.ctx.logs.remove(&self.namespace, &self.name);
        if final_delete {
            self.delete_from_api().await;
        }
    }

    /// The final delete (grace 0) once the containers are gone, guarded by uid.
    async fn delete_from_api(&self) {
        let pods = self.ctx.client.api::<Pod>(Some(&self.namespace));
        for _ in 0..5 {
            match pods.get(&self.name).await {
                Ok(current) if current.metadata.uid.as_deref() != Some(self.uid.as_str()) => return,
                Ok(_) => {}
                Err(err) if err.is_not_found() => return,
                Err(err) => {
                    tracing::warn!(pod = %self.name, %err, "reading pod before final delete failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
            match pods
                .delete(
                    &self.name,
                    &DeleteParams {
                        grace_period_seconds: Some(0),
                    },
                )
                .await
            {
                Ok(()) => return,
                Err(err) if err.is_not_found() => return,
                Err(err) => {
                    tracing::warn!(pod = %self.name, %err, "final delete failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}
