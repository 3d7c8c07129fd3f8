//! A recording fake runtime for agent tests: a test double, clearly not a runtime.
//!
//! It records every call the agent makes as a line of text (`calls`), and its containers run
//! until the test says otherwise: `exit_all` makes them exit with a code, `preload` leaves
//! running containers behind as if a previous agent had started them. It is its own image
//! service too: any reference "pulls".

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use skiff_node_runtime::runtime::{
    ContainerConfig, ContainerEvent, ContainerEventKind, ContainerId, ContainerRuntime,
    ContainerState, ContainerStats, ContainerStatus, ExecResult, ImageRef, ImageService,
    PodSandboxConfig, PodSandboxStatus, PullAuth, RuntimeError, SandboxId,
};
use tokio::sync::broadcast;

/// Records every call; containers stay Running until stopped or until `exit_all` is called.
/// It keeps the runtime contract (the conformance suite runs against it too), so what the
/// agent does with it, it would do with a real runtime. It is the test's image service too:
/// any reference "pulls".
pub struct RecordingRuntime {
    name: &'static str,
    /// Its containers keep running when the agent stops.
    outlives_agent: bool,
    /// Image references containing this can run here (`""`: any).
    accepts: &'static str,
    calls: Mutex<Vec<String>>,
    /// Each sandbox's log directory.
    sandboxes: Mutex<HashMap<SandboxId, PathBuf>>,
    containers: Mutex<HashMap<ContainerId, ContainerStatus>>,
    /// Memory each sandbox's containers report in their stats (`use_memory`).
    memory: Mutex<HashMap<SandboxId, u64>>,
    events: broadcast::Sender<ContainerEvent>,
}

impl Default for RecordingRuntime {
    fn default() -> Self {
        Self::named("recording", "")
    }
}

impl RecordingRuntime {
    /// A fake runtime called `name` (its RuntimeClass handler and container-id scheme) that
    /// can run images whose reference contains `accepts` (`""`: any).
    pub fn named(name: &'static str, accepts: &'static str) -> Self {
        RecordingRuntime {
            name,
            outlives_agent: false,
            accepts,
            calls: Mutex::default(),
            sandboxes: Mutex::default(),
            containers: Mutex::default(),
            memory: Mutex::default(),
            events: broadcast::channel(64).0,
        }
    }

    /// The same fake, but its containers keep running when the agent stops
    /// (`ContainerRuntime::outlives_agent`), as a daemon's do.
    pub fn outliving_agent(self) -> Self {
        RecordingRuntime {
            outlives_agent: true,
            ..self
        }
    }

    fn record(&self, call: String) {
        self.calls.lock().expect("calls").push(call);
    }

    fn emit(&self, status: &ContainerStatus, kind: ContainerEventKind) {
        let _ = self.events.send(ContainerEvent {
            container: status.id.clone(),
            sandbox: status.sandbox_id.clone(),
            kind,
        });
    }

    /// Every call so far, in order: `pull REF [as USER]`, `run_pod_sandbox NAME`,
    /// `create_container NAME attempt=N env=K=V,...`, `start_container`, `stop_container`,
    /// `remove_container`, `stop_pod_sandbox ID`, `remove_pod_sandbox ID`.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("calls").clone()
    }

    /// A running container `id` (attempt `attempt`) in `sandbox`, as a previous agent left it.
    pub fn preload(&self, sandbox: &str, id: &str, name: &str, attempt: u32) {
        self.sandboxes
            .lock()
            .expect("sandboxes")
            .insert(sandbox.into(), PathBuf::from("/dev/null"));
        self.containers.lock().expect("containers").insert(
            id.into(),
            ContainerStatus {
                id: id.into(),
                sandbox_id: sandbox.into(),
                name: name.into(),
                image: ImageRef {
                    reference: "registry.example/app:1".into(),
                    digest: "sha256:fake".into(),
                    size: 1,
                    config: Default::default(),
                    content: Default::default(),
                    layers: Vec::new(),
                },
                attempt,
                state: ContainerState::Running {
                    started_at: SystemTime::now(),
                },
                log_path: "/dev/null".into(),
            },
        );
    }

    /// Makes each container of `sandbox` report `bytes` of memory in its stats.
    pub fn use_memory(&self, sandbox: &str, bytes: u64) {
        self.memory
            .lock()
            .expect("memory")
            .insert(sandbox.into(), bytes);
    }

    /// Makes every running container exit with `code`.
    pub fn exit_all(&self, code: i32) {
        self.exit_where(code, |_| true);
    }

    /// Makes the running containers `select` picks exit with `code`, pushing `Exited`.
    fn exit_where(&self, code: i32, select: impl Fn(&ContainerStatus) -> bool) {
        for status in self.containers.lock().expect("containers").values_mut() {
            if !select(status) {
                continue;
            }
            if let ContainerState::Running { started_at } = status.state {
                status.state = ContainerState::Exited {
                    started_at,
                    finished_at: SystemTime::now(),
                    exit_code: code,
                    reason: "Error".into(),
                    message: String::new(),
                };
                self.emit(status, ContainerEventKind::Exited);
            }
        }
    }
}

#[async_trait]
impl ImageService for RecordingRuntime {
    async fn pull_image(
        &self,
        reference: &str,
        auth: Option<&PullAuth>,
    ) -> Result<ImageRef, RuntimeError> {
        match auth {
            Some(auth) => self.record(format!("pull {reference} as {}", auth.username)),
            None => self.record(format!("pull {reference}")),
        }
        Ok(ImageRef {
            reference: reference.into(),
            digest: "sha256:fake".into(),
            size: 1,
            config: Default::default(),
            content: Default::default(),
            layers: Vec::new(),
        })
    }
    async fn image_status(&self, _reference: &str) -> Result<Option<ImageRef>, RuntimeError> {
        Ok(None)
    }
    async fn list_images(&self) -> Result<Vec<ImageRef>, RuntimeError> {
        Ok(Vec::new())
    }
    async fn remove_image(&self, _reference: &str) -> Result<(), RuntimeError> {
        Ok(())
    }
}

#[async_trait]
impl ContainerRuntime for RecordingRuntime {
    fn name(&self) -> &'static str {
        self.name
    }
    fn version(&self) -> String {
        format!("{}://test", self.name)
    }
    fn node_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
    fn can_handle(&self, image: &ImageRef) -> bool {
        image.reference.contains(self.accepts)
    }
    fn subscribe(&self) -> broadcast::Receiver<ContainerEvent> {
        self.events.subscribe()
    }
    fn outlives_agent(&self) -> bool {
        self.outlives_agent
    }
    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<SandboxId, RuntimeError> {
        self.record(format!("run_pod_sandbox {}", config.name));
        self.sandboxes
            .lock()
            .expect("sandboxes")
            .insert(config.uid.clone(), config.log_directory.clone());
        Ok(config.uid.clone())
    }
    async fn pod_sandbox_status(&self, id: &SandboxId) -> Result<PodSandboxStatus, RuntimeError> {
        if !self.sandboxes.lock().expect("sandboxes").contains_key(id) {
            return Err(RuntimeError::SandboxNotFound(id.clone()));
        }
        Ok(PodSandboxStatus {
            id: id.clone(),
            ready: true,
            ip: Some("10.1.2.3".into()),
        })
    }
    async fn stop_pod_sandbox(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.record(format!("stop_pod_sandbox {id}"));
        self.exit_where(137, |c| c.sandbox_id == *id);
        Ok(())
    }
    async fn remove_pod_sandbox(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.record(format!("remove_pod_sandbox {id}"));
        self.sandboxes.lock().expect("sandboxes").remove(id);
        self.containers
            .lock()
            .expect("containers")
            .retain(|_, c| c.sandbox_id != *id);
        Ok(())
    }
    async fn create_container(
        &self,
        sandbox: &SandboxId,
        config: &ContainerConfig,
    ) -> Result<ContainerId, RuntimeError> {
        let env: Vec<String> = config.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.record(format!(
            "create_container {} attempt={} env={}",
            config.name,
            config.attempt,
            env.join(",")
        ));
        let log_directory = self
            .sandboxes
            .lock()
            .expect("sandboxes")
            .get(sandbox)
            .cloned()
            .ok_or_else(|| RuntimeError::SandboxNotFound(sandbox.clone()))?;
        let id = format!("c{}", self.calls().len());
        self.containers.lock().expect("containers").insert(
            id.clone(),
            ContainerStatus {
                id: id.clone(),
                sandbox_id: sandbox.clone(),
                name: config.name.clone(),
                image: config.image.clone(),
                attempt: config.attempt,
                state: ContainerState::Created,
                log_path: log_directory.join(&config.log_path),
            },
        );
        Ok(id)
    }
    async fn start_container(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        self.record("start_container".into());
        let mut containers = self.containers.lock().expect("containers");
        let status = containers
            .get_mut(id)
            .ok_or_else(|| RuntimeError::ContainerNotFound(id.clone()))?;
        status.state = ContainerState::Running {
            started_at: SystemTime::now(),
        };
        self.emit(status, ContainerEventKind::Started);
        Ok(())
    }
    async fn stop_container(&self, id: &ContainerId, _grace: Duration) -> Result<(), RuntimeError> {
        self.record("stop_container".into());
        self.exit_where(137, |c| c.id == *id);
        Ok(())
    }
    async fn remove_container(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        self.record("remove_container".into());
        self.containers.lock().expect("containers").remove(id);
        Ok(())
    }
    async fn container_status(&self, id: &ContainerId) -> Result<ContainerStatus, RuntimeError> {
        self.containers
            .lock()
            .expect("containers")
            .get(id)
            .cloned()
            .ok_or_else(|| RuntimeError::ContainerNotFound(id.clone()))
    }
    async fn list_containers(
        &self,
        sandbox: Option<&SandboxId>,
    ) -> Result<Vec<ContainerStatus>, RuntimeError> {
        Ok(self
            .containers
            .lock()
            .expect("containers")
            .values()
            .filter(|c| sandbox.is_none_or(|s| *s == c.sandbox_id))
            .cloned()
            .collect())
    }
    async fn container_stats(&self, id: &ContainerId) -> Result<ContainerStats, RuntimeError> {
        let containers = self.containers.lock().expect("containers");
        let Some(container) = containers.get(id) else {
            return Err(RuntimeError::ContainerNotFound(id.clone()));
        };
        let memory = self.memory.lock().expect("memory");
        Ok(ContainerStats {
            memory_bytes: memory.get(&container.sandbox_id).copied().unwrap_or(0),
            ..ContainerStats::default()
        })
    }
    async fn exec_sync(
        &self,
        _id: &ContainerId,
        _cmd: &[String],
        _timeout: Duration,
    ) -> Result<ExecResult, RuntimeError> {
        Err(RuntimeError::Unsupported {
            runtime: "recording",
            operation: "exec",
        })
    }
    /// The sandboxes of the containers it holds (those `preload` left, as if they had
    /// outlived an agent).
    async fn recover(&self) -> Result<Vec<SandboxId>, RuntimeError> {
        let mut sandboxes: Vec<SandboxId> = self
            .containers
            .lock()
            .expect("containers")
            .values()
            .map(|c| c.sandbox_id.clone())
            .collect();
        sandboxes.sort();
        sandboxes.dedup();
        Ok(sandboxes)
    }
}
