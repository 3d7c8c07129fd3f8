//! The CRI-like runtime seam: an image service and a runtime service.
//!
//! The agent codes against these types; each runtime (`wasm` now; linux and a hollow
//! simulator later) implements them. Stop and remove are idempotent, as the CRI requires.

pub mod hollow;
pub mod wasm;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

/// Identifies a pod sandbox (the agent uses the pod's uid).
pub type SandboxId = String;
/// Identifies a container inside a runtime (unique per create).
pub type ContainerId = String;

/// What the agent asks of a pod sandbox.
#[derive(Debug, Clone)]
pub struct PodSandboxConfig {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Directory for this pod's container logs (`<dir>/<container>/<restart>.log`).
    pub log_directory: PathBuf,
}

/// An image as pulled onto the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The reference the pod spec named (`file:/abs/path.wasm`, later `registry/repo:tag`).
    pub reference: String,
    /// `sha256:<hex>` of the image content.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

/// Resource limits for one container (already parsed from Quantities).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerResources {
    /// CPU limit in millicores (None = unlimited).
    pub cpu_millis: Option<u64>,
    /// Memory limit in bytes (None = unlimited).
    pub memory_bytes: Option<u64>,
}

/// What the agent asks to run (env already resolved from ConfigMaps/Secrets).
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    pub name: String,
    pub image: ImageRef,
    /// `command` then `args`, as Kubernetes composes them; argv[0] is the program name.
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub resources: ContainerResources,
    /// Restart count, used to name the log file.
    pub attempt: u32,
    /// `spec.runtimeClassName` of the pod, if any.
    pub runtime_class: Option<String>,
}

/// Container state as the runtime observes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running {
        started_at: SystemTime,
    },
    Exited {
        started_at: SystemTime,
        finished_at: SystemTime,
        exit_code: i32,
        /// Kubernetes reason: `Completed`, `Error`, `OOMKilled`, `Trapped`, ...
        reason: String,
        message: String,
    },
    Unknown,
}

#[derive(Debug, Clone)]
pub struct ContainerStatus {
    pub id: ContainerId,
    pub sandbox_id: SandboxId,
    pub name: String,
    pub image: ImageRef,
    pub attempt: u32,
    pub state: ContainerState,
    pub log_path: PathBuf,
}

#[derive(Debug, Clone, Default)]
pub struct ContainerStats {
    pub cpu_usage_nanos: u64,
    pub memory_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct ExecResult {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A runtime failure, mapped by the agent to a container waiting/terminated reason.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("image {reference}: {message}")]
    ImagePull { reference: String, message: String },
    #[error("image {reference} is not a WebAssembly module or component: {message}")]
    InvalidImage { reference: String, message: String },
    #[error("container {name}: create failed: {message}")]
    CreateContainer { name: String, message: String },
    #[error("container {0} not found")]
    ContainerNotFound(ContainerId),
    #[error("sandbox {0} not found")]
    SandboxNotFound(SandboxId),
    #[error("{operation} is not supported by the {runtime} runtime")]
    Unsupported {
        runtime: &'static str,
        operation: &'static str,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// CRI ImageService.
#[async_trait]
pub trait ImageService: Send + Sync {
    async fn pull_image(&self, reference: &str) -> Result<ImageRef, RuntimeError>;
    async fn image_status(&self, reference: &str) -> Result<Option<ImageRef>, RuntimeError>;
    async fn list_images(&self) -> Result<Vec<ImageRef>, RuntimeError>;
    async fn remove_image(&self, reference: &str) -> Result<(), RuntimeError>;
}

/// CRI RuntimeService, plus `can_handle` and `recover` (as Nomad drivers and runwasi need).
#[async_trait]
pub trait ContainerRuntime: ImageService {
    /// Short name (`wasm`, `linux`, `hollow`), as used in `runtimeClassName`.
    fn name(&self) -> &'static str;
    /// Whether this runtime can run the container (by runtime class and image).
    fn can_handle(&self, config: &ContainerConfig) -> bool;

    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<SandboxId, RuntimeError>;
    async fn stop_pod_sandbox(&self, id: &SandboxId) -> Result<(), RuntimeError>;
    async fn remove_pod_sandbox(&self, id: &SandboxId) -> Result<(), RuntimeError>;

    async fn create_container(
        &self,
        sandbox: &SandboxId,
        config: &ContainerConfig,
    ) -> Result<ContainerId, RuntimeError>;
    async fn start_container(&self, id: &ContainerId) -> Result<(), RuntimeError>;
    /// Asks the container to stop, and kills it after `grace`.
    async fn stop_container(&self, id: &ContainerId, grace: Duration) -> Result<(), RuntimeError>;
    async fn remove_container(&self, id: &ContainerId) -> Result<(), RuntimeError>;
    async fn container_status(&self, id: &ContainerId) -> Result<ContainerStatus, RuntimeError>;
    async fn list_containers(
        &self,
        sandbox: Option<&SandboxId>,
    ) -> Result<Vec<ContainerStatus>, RuntimeError>;
    async fn container_stats(&self, id: &ContainerId) -> Result<ContainerStats, RuntimeError>;
    async fn exec_sync(
        &self,
        id: &ContainerId,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecResult, RuntimeError>;

    /// Re-attaches to workloads that survived an agent restart; returns the sandboxes found.
    async fn recover(&self) -> Result<Vec<SandboxId>, RuntimeError>;
}
