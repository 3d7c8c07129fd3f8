//! One task per pod, the executor of the lifecycle: it re-attaches to or makes the pod's
//! sandbox (`sandbox.rs`), forwards its host ports (`host_ports.rs`), observes the
//! containers, carries out the lifecycle's steps (`start.rs`), publishes the status
//! (`publish.rs`) and tears the pod down (`teardown.rs`).
//! It wakes on pod updates, on its containers' events from the runtime, and on the timers
//! of backoffs and retries.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use skiff_api::k8s_openapi::api::core::v1::{
    ContainerStatus as ApiContainerStatus, Pod, PodStatus,
};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use skiff_client::Client;
use tokio::sync::{broadcast, watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::admission::{Admission, AdmittedPod};
use super::dns::ClusterDns;
use super::events::Recorder;
use super::eviction::MemoryPressure;
use super::host_ports::HostPorts;
use super::lifecycle::{self, ContainerView, RestartPolicy, Role, Step};
use super::log_index::{ContainerLog, LogIndex};
use super::network::PodNetworks;
use super::record::Record;
use super::recovery::Survivors;
use super::source_watch::{SourceChange, SourceWatch};
use super::status;
use super::volume_setup::VolumeState;
use super::volumes;
use crate::runtime::{
    ContainerEvent, ContainerRuntime, ContainerState, DnsConfig, ImageService, PodNetwork,
    RuntimeError, RuntimeSet,
};
use skiff_api::backoff::Backoff;

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
    /// The pods admitted to this node.
    pub admission: Arc<Admission>,
    /// The memory limit of containers that set none.
    pub default_memory: Option<u64>,
    /// The Node's `MemoryPressure`, which the eviction manager keeps.
    pub memory_pressure: Arc<MemoryPressure>,
    /// ConfigMap and Secret changes, for volumes that project them.
    pub source_changes: SourceWatch,
    /// The pods' ServiceAccount tokens, for volumes that project them.
    pub tokens: super::volumes::TokenCache,
    /// The pods' own networks; None: pods share the node's network.
    pub network: Option<Arc<PodNetworks>>,
    /// The cluster DNS, for `ClusterFirst` pods.
    pub cluster_dns: ClusterDns,
    /// The node's own resolver settings, for `Default` pods.
    pub node_dns: DnsConfig,
}

/// The latest word on a pod from the API.
#[derive(Clone)]
pub enum Update {
    Pod(Arc<Pod>),
    /// The pod is gone from the API.
    Gone,
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
    /// Choices in a row that found no runtime for the pod here (for the back-off).
    pub runtime_unavailable: u32,
    /// Its container events, subscribed before the sandbox was made.
    pub container_events: Option<broadcast::Receiver<ContainerEvent>>,
    pub sandbox: Option<String>,
    /// The pod's own network, once attached.
    pub network: Option<PodNetwork>,
    pub pod_ip: Option<String>,
    pub published: Option<PodStatus>,
    pub start_time: Time,
    /// Finished before this agent started: only deletion is handled.
    finished: bool,
    pub publish_failed: bool,
    /// Its admission to the node, while it counts there.
    pub admitted: Option<Arc<AdmittedPod>>,
    /// Failed for good on this node (rejected or evicted): the pod's reason and message.
    pub failure: Option<(String, String)>,
    /// The pod's volumes, once set up, and when to rewrite their projected files.
    pub volumes: Option<volumes::Volumes>,
    pub volume_state: VolumeState,
    source_changes: broadcast::Receiver<SourceChange>,
    /// Notified when a probe's verdict changes.
    pub probe_wake: Arc<Notify>,
    /// The listeners forwarding its host ports.
    pub host_ports: HostPorts,
}

/// Runs the worker of one pod until it is deleted, gone, or the agent stops.
pub async fn run(
    ctx: Arc<Context>,
    pod: Arc<Pod>,
    mut updates: watch::Receiver<Update>,
    shutdown: CancellationToken,
) {
    let mut worker = Worker::new(ctx, pod);
    worker.adopt().await;
    if !worker.finished && worker.pod.metadata.deletion_timestamp.is_none() {
        worker.admit();
    }
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
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let sandbox = worker.sandbox.clone().unwrap_or_default();
        let pod = worker.pod.clone();
        let probe_wake = worker.probe_wake.clone();
        // Shutdown first: the agent stopping also closes `updates`, and that must not read as
        // the pod being gone (which would stop containers that outlive the agent).
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return worker.agent_stopping().await,
            changed = updates.changed() => if changed.is_err() { return worker.teardown(false).await },
            _ = sleep => {}
            _ = probe_wake.notified() => {}
            _ = next_event(worker.container_events.as_mut(), &sandbox) => {}
            message = evicted(worker.admitted.clone()) => worker.evict(message).await,
            _ = source_changed(&mut worker.source_changes, &pod) => worker.volume_state.stale = true,
        }
    }
}

/// Resolves with the eviction message when the admitted pod is to be evicted.
async fn evicted(admitted: Option<Arc<AdmittedPod>>) -> String {
    match admitted {
        Some(admitted) => admitted.evicted().await,
        None => std::future::pending().await,
    }
}

/// Resolves when a ConfigMap or Secret that one of the pod's volumes projects changed (or
/// changes were lost); never for a pod without such volumes.
async fn source_changed(changes: &mut broadcast::Receiver<SourceChange>, pod: &Pod) {
    if !volumes::projects_files(pod) {
        return std::future::pending().await;
    }
    loop {
        match changes.recv().await {
            Ok(change) if volumes::references(pod, &change) => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
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
    /// Whether a failed setup step (volumes, sandbox) is still backing off at `now`.
    pub(super) fn waiting_to_retry(&self, now: Instant) -> bool {
        self.records
            .iter()
            .any(|r| r.retry_at.is_some_and(|at| at > now))
    }

    fn new(ctx: Arc<Context>, pod: Arc<Pod>) -> Self {
        let status = pod.status.as_ref();
        let previous = |statuses: Option<&Vec<_>>, name: &str| {
            statuses
                .into_iter()
                .flatten()
                .find(|s: &&ApiContainerStatus| s.name == name)
                .cloned()
        };
        let init_statuses = status.and_then(|s| s.init_container_statuses.as_ref());
        let app_statuses = status.and_then(|s| s.container_statuses.as_ref());
        let spec = pod.spec.as_ref();
        let init = spec
            .and_then(|s| s.init_containers.as_ref())
            .into_iter()
            .flatten()
            .map(|c| {
                let role = Role::of_init(c.restart_policy.as_deref());
                Record::new(c, role, previous(init_statuses, &c.name).as_ref())
            });
        let apps = spec
            .into_iter()
            .flat_map(|s| s.containers.iter())
            .map(|c| Record::new(c, Role::App, previous(app_statuses, &c.name).as_ref()));
        let records = init.chain(apps).collect();
        let finished = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        let start_time = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.clone())
            .unwrap_or_else(status::now);
        let source_changes = ctx.source_changes.subscribe();
        Worker {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            namespace: pod
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            name: pod.metadata.name.clone().unwrap_or_default(),
            published: pod.status.clone(),
            ctx,
            pod,
            records,
            runtime: None,
            runtime_unavailable: 0,
            container_events: None,
            sandbox: None,
            network: None,
            pod_ip: None,
            start_time,
            finished,
            publish_failed: false,
            admitted: None,
            failure: None,
            volumes: None,
            volume_state: VolumeState::default(),
            source_changes,
            probe_wake: Arc::new(Notify::new()),
            host_ports: HostPorts::default(),
        }
    }

    pub(super) fn policy(&self) -> RestartPolicy {
        RestartPolicy::parse(
            self.pod
                .spec
                .as_ref()
                .and_then(|s| s.restart_policy.as_deref()),
        )
    }

    fn views(&self) -> Vec<ContainerView> {
        self.records.iter().map(Record::view).collect()
    }

    /// Observes the runtime, then takes each container's next step.
    async fn sync(&mut self) {
        if self.failure.is_some() {
            return;
        }
        let now = Instant::now();
        if !self.ensure_volumes(now).await || !self.ensure_sandbox(now).await {
            return;
        }
        self.ensure_host_ports(now).await;
        self.refresh_volumes(now).await;
        if self.check_volume_usage(now).await {
            return;
        }
        for i in 0..self.records.len() {
            self.observe(i, now).await;
        }
        self.probe(now).await;
        let Ok(steps) = lifecycle::step(self.policy(), false, &self.views(), now) else {
            return;
        };
        let mut stops = Vec::new();
        for (i, step) in steps.into_iter().enumerate() {
            match step {
                Step::Stop => stops.push(i),
                Step::Start => self.start(i, now).await,
                Step::StartCreated => self.start_created(i, now).await,
                Step::WaitUntil(until) => self.back_off(i, until, now),
                Step::RetryAt(_) => {}
                Step::Keep => {
                    if self.records[i].id.is_some() {
                        self.records[i].waiting = None;
                    }
                }
            }
        }
        // Sidecars stop in the reverse of their start order.
        for i in stops.into_iter().rev() {
            self.stop_sidecar(i, now).await;
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

    /// Stops sidecar `i` (its pod's app containers are done) within the pod's grace period.
    async fn stop_sidecar(&mut self, i: usize, now: Instant) {
        let (Some(id), Some(runtime)) = (self.records[i].id.clone(), self.runtime.clone()) else {
            return;
        };
        let grace = lifecycle::termination_grace(
            None,
            self.pod
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds),
        );
        if let Err(err) = runtime.stop_container(&id, grace).await {
            tracing::warn!(pod = %self.name, %err, "stopping a sidecar failed");
        }
        self.observe(i, now).await;
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
    pub(super) async fn observe(&mut self, i: usize, now: Instant) {
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
                let (crashes, until) = lifecycle::crashed(r.crashes, ran, &self.ctx.backoff, now);
                r.crashes = crashes;
                r.backoff_until = Some(until);
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

    /// When to look again without an update or a container event.
    fn next_wake(&self) -> Option<Instant> {
        let now = Instant::now();
        let publish = self.publish_failed.then(|| now + PUBLISH_RETRY);
        if self.failure.is_some() {
            return publish;
        }
        let wake = lifecycle::next_wake(self.policy(), &self.views(), now);
        let resync = self.volume_resync_at();
        let host_ports = self.host_ports.retry_at();
        wake.into_iter()
            .chain(publish)
            .chain(resync)
            .chain(host_ports)
            .min()
    }
}
