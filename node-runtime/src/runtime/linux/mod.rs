//! The native Linux container runtime: Linux images (`ImageRef.layers`) run as containers
//! made with namespaces, cgroups and an overlay root filesystem, each under its own shim
//! process (see [`shim`]) so that containers outlive the agent.
//!
//! The runtime keeps no state of its own beyond its state directory (see [`spec`]): the
//! agent-side calls read and write the records there, and a new `LinuxRuntime` over the same
//! directory (after an agent restart) sees the same sandboxes and containers.

pub mod cgroups;
mod containers;
mod exec;
mod rootfs;
mod sandbox;
mod seccomp;
mod secure_join;
mod security;
pub mod shim;
mod spec;
mod teardown;
mod watch;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::logs::LogLimits;
use super::{
    ContainerConfig, ContainerEvent, ContainerId, ContainerRuntime, ContainerStats,
    ContainerStatus, ExecRequest, ExecResult, ExecSession, ImageRef, PodSandboxConfig,
    PodSandboxStatus, RuntimeError, SandboxId,
};
use spec::SandboxRecord;
pub use teardown::teardown;

/// The pids limit a container gets unless told otherwise (`--pod-pids-limit`).
pub const DEFAULT_PIDS_LIMIT: u64 = 1024;

/// How the runtime starts shims: a program and the arguments before `start DIR`/`exec DIR`.
#[derive(Debug, Clone)]
pub struct ShimCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl ShimCommand {
    /// The running binary's hidden `container-shim` subcommand (the `skiff` binary).
    pub fn current_exe() -> std::io::Result<Self> {
        Ok(ShimCommand {
            program: std::env::current_exe()?,
            args: vec![shim::SUBCOMMAND.into()],
        })
    }
}

/// The Linux runtime's settings.
#[derive(Debug, Clone)]
pub struct LinuxConfig {
    /// State directory (sandboxes, containers, root filesystems).
    pub data_dir: PathBuf,
    pub shim: ShimCommand,
    /// Where the cgroup filesystems are mounted (`/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// The cgroup (under each hierarchy) that holds the containers' cgroups.
    pub cgroup_parent: String,
    pub pids_limit: u64,
    pub log_limits: LogLimits,
    /// Where `seccompProfile: Localhost` profiles are (`--seccomp-profile-root`).
    pub seccomp_profile_root: PathBuf,
}

impl LinuxConfig {
    /// The defaults for a state directory and a shim.
    pub fn new(data_dir: PathBuf, shim: ShimCommand) -> Self {
        LinuxConfig {
            seccomp_profile_root: data_dir.join("seccomp"),
            data_dir,
            shim,
            cgroup_root: cgroups::CGROUP_ROOT.into(),
            cgroup_parent: "skiff".into(),
            pids_limit: DEFAULT_PIDS_LIMIT,
            log_limits: LogLimits::default(),
        }
    }
}

/// Why the Linux runtime cannot run on this host.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("the Linux runtime needs root")]
    NotRoot,
    #[error("the Linux runtime needs the cgroup filesystem at {0}")]
    NoCgroups(PathBuf),
    #[error("the Linux runtime's state directory {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Runs Linux containers; see the module docs.
pub struct LinuxRuntime {
    config: LinuxConfig,
    events: broadcast::Sender<ContainerEvent>,
    /// Containers whose exit is being awaited (to push one `Exited` event each).
    watched: Arc<Mutex<HashSet<ContainerId>>>,
}

impl LinuxRuntime {
    /// A runtime over `config.data_dir`; fails when this host cannot run containers.
    pub fn new(config: LinuxConfig) -> Result<Self, Unavailable> {
        if !nix::unistd::geteuid().is_root() {
            return Err(Unavailable::NotRoot);
        }
        if !config.cgroup_root.is_dir() {
            return Err(Unavailable::NoCgroups(config.cgroup_root.clone()));
        }
        for dir in ["sandboxes", "containers"] {
            let path = config.data_dir.join(dir);
            std::fs::create_dir_all(&path)
                .map_err(|source| Unavailable::StateDir { path, source })?;
        }
        Ok(LinuxRuntime {
            config,
            events: broadcast::channel(256).0,
            watched: Arc::default(),
        })
    }

    fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.config.data_dir.join("sandboxes").join(id)
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.config.data_dir.join("containers").join(id)
    }

    fn sandbox_record(&self, id: &SandboxId) -> Result<SandboxRecord, RuntimeError> {
        spec::read(&self.sandbox_dir(id).join(spec::SANDBOX))?
            .ok_or_else(|| RuntimeError::SandboxNotFound(id.clone()))
    }

    /// The ids of the records in `dir` (sandboxes or containers).
    fn ids(&self, dir: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.config.data_dir.join(dir)) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        ids.sort();
        ids
    }
}

/// A safe file name from an id the agent gave (a pod uid).
fn checked(id: &str) -> Result<&str, RuntimeError> {
    if id.is_empty() || id.contains('/') || id.starts_with('.') {
        return Err(RuntimeError::SandboxNotFound(id.to_string()));
    }
    Ok(id)
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let context = context.into();
    move |source| RuntimeError::Io { context, source }
}

#[async_trait]
impl ContainerRuntime for LinuxRuntime {
    fn name(&self) -> &'static str {
        "linux"
    }

    fn version(&self) -> String {
        format!("linux://skiff-{}", env!("CARGO_PKG_VERSION"))
    }

    fn node_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("kubernetes.io/os".to_string(), "linux".to_string())])
    }

    fn can_handle(&self, image: &ImageRef) -> bool {
        !image.layers.is_empty()
    }

    fn subscribe(&self) -> broadcast::Receiver<ContainerEvent> {
        self.events.subscribe()
    }

    fn outlives_agent(&self) -> bool {
        true
    }

    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<SandboxId, RuntimeError> {
        let id = checked(&config.uid)?.to_string();
        let dir = self.sandbox_dir(&id);
        if spec::read::<SandboxRecord>(&dir.join(spec::SANDBOX))?.is_some() {
            return Ok(id);
        }
        let record = SandboxRecord {
            id: id.clone(),
            log_directory: config.log_directory.clone(),
            ip: config.network.as_ref().map(|n| n.ip.to_string()),
            own_network: config.network.is_some(),
            stopped: false,
        };
        let made = sandbox::create(&dir, config)
            .and_then(|()| spec::write(&dir.join(spec::SANDBOX), &record));
        if let Err(e) = made {
            let _ = sandbox::release(&dir);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(io(format!("creating sandbox {id}"))(e));
        }
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        let Ok(mut record) = self.sandbox_record(id) else {
            return Ok(());
        };
        for container in self.list_containers(Some(id)).await? {
            self.stop_container(&container.id, Duration::ZERO).await?;
        }
        record.stopped = true;
        spec::write(&self.sandbox_dir(id).join(spec::SANDBOX), &record)
            .map_err(io(format!("stopping sandbox {id}")))
    }

    async fn remove_pod_sandbox(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        if checked(id).is_err() {
            return Ok(());
        }
        for container in self.list_containers(Some(id)).await? {
            self.remove_container(&container.id).await?;
        }
        let dir = self.sandbox_dir(id);
        sandbox::release(&dir).map_err(io(format!("releasing sandbox {id}")))?;
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io(format!("removing sandbox {id}"))(e))
            }
            _ => Ok(()),
        }
    }

    async fn pod_sandbox_status(&self, id: &SandboxId) -> Result<PodSandboxStatus, RuntimeError> {
        let record = self.sandbox_record(id)?;
        Ok(PodSandboxStatus {
            id: record.id,
            ready: !record.stopped,
            ip: record.ip,
        })
    }

    async fn create_container(
        &self,
        sandbox: &SandboxId,
        config: &ContainerConfig,
    ) -> Result<ContainerId, RuntimeError> {
        containers::create(self, sandbox, config).await
    }

    async fn start_container(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        containers::start(self, id).await
    }

    async fn stop_container(&self, id: &ContainerId, grace: Duration) -> Result<(), RuntimeError> {
        containers::stop(self, id, grace).await
    }

    async fn remove_container(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        containers::remove(self, id).await
    }

    async fn container_status(&self, id: &ContainerId) -> Result<ContainerStatus, RuntimeError> {
        containers::status(self, id)
    }

    async fn list_containers(
        &self,
        sandbox: Option<&SandboxId>,
    ) -> Result<Vec<ContainerStatus>, RuntimeError> {
        let mut listed = Vec::new();
        for id in self.ids("containers") {
            match containers::status(self, &id) {
                Ok(status) if sandbox.is_none_or(|s| *s == status.sandbox_id) => {
                    listed.push(status)
                }
                // Removed meanwhile, or half-made by a create that failed.
                Ok(_) | Err(RuntimeError::ContainerNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(listed)
    }

    async fn container_stats(&self, id: &ContainerId) -> Result<ContainerStats, RuntimeError> {
        let spec = containers::spec_of(self, id)?;
        let usage = spec.cgroup.usage();
        Ok(ContainerStats {
            cpu_usage_nanos: usage.cpu_nanos,
            memory_bytes: usage.memory_bytes,
            memory_working_set_bytes: usage.working_set_bytes,
            memory_rss_bytes: usage.rss_bytes,
        })
    }

    async fn exec_sync(
        &self,
        id: &ContainerId,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecResult, RuntimeError> {
        containers::exec(self, id, cmd, timeout).await
    }

    async fn exec(
        &self,
        id: &ContainerId,
        request: &ExecRequest,
    ) -> Result<ExecSession, RuntimeError> {
        exec::exec(self, id, request).await
    }

    async fn recover(&self) -> Result<Vec<SandboxId>, RuntimeError> {
        for id in self.ids("containers") {
            containers::watch(self, &id, false);
        }
        Ok(self
            .ids("sandboxes")
            .into_iter()
            .filter(|id| self.sandbox_record(id).is_ok())
            .collect())
    }
}
