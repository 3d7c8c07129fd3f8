//! The CRI-like runtime seam: one image service for the node (`images`) and a runtime
//! service per runtime (`ContainerRuntime`).
//!
//! The agent codes against these types; each runtime (`wasm` now, `hollow` for scale tests,
//! linux later) implements them, and the agent never matches on the concrete runtime. Stop
//! and remove are idempotent, as the CRI requires.

mod config;
mod error;
mod exec;
pub mod hollow;
pub mod images;
pub mod linux;
pub mod logs;
mod set;
mod state;
pub mod wasm;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;

pub use config::{
    container_log_path, ContainerConfig, ContainerPort, ContainerResources, DnsConfig, Mount,
    PodNetwork, PodSandboxConfig, Protocol, SeccompProfile, SecurityContext,
};
pub use error::RuntimeError;
pub use exec::{ExecRequest, ExecSession, TerminalSize};
pub use images::{
    push_wasm, FileImages, ImageConfig, ImageRef, ImageService, ImageStore, PullAuth, PushError,
    Pushed, PUSH_CHUNK,
};
pub use set::RuntimeSet;
pub use state::{
    ContainerEvent, ContainerEventKind, ContainerState, ContainerStats, ContainerStatus,
    ExecResult, PodSandboxStatus,
};

/// Identifies a pod sandbox (the agent uses the pod's uid).
pub type SandboxId = String;
/// Identifies a container inside a runtime (unique per create).
pub type ContainerId = String;

/// CRI RuntimeService, plus `can_handle` and `recover` (as Nomad drivers and runwasi need).
#[async_trait]
pub trait ContainerRuntime: Send + Sync {
    /// Short name (`wasm`, `linux`, `hollow`): the RuntimeClass handler that selects it, the
    /// scheme of its container ids, and the node label `runtime.skiff.dev/<name>=true`.
    fn name(&self) -> &'static str;
    /// The node's `containerRuntimeVersion` for this runtime (as `containerd://1.7.0`).
    fn version(&self) -> String;
    /// Labels this runtime adds to its node (such as `kubernetes.io/os`).
    fn node_labels(&self) -> BTreeMap<String, String>;
    /// Whether this runtime can run the pulled image (asked when a pod names no runtime class).
    fn can_handle(&self, image: &ImageRef) -> bool;
    /// Container events from now on, pushed as containers start and exit.
    fn subscribe(&self) -> broadcast::Receiver<ContainerEvent>;
    /// Whether its containers keep running when the agent stops (a daemon's, unlike guests
    /// in the agent's own process): the agent then leaves them for the next agent to
    /// re-attach to (`recover`) instead of stopping them.
    fn outlives_agent(&self) -> bool {
        false
    }

    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<SandboxId, RuntimeError>;
    async fn stop_pod_sandbox(&self, id: &SandboxId) -> Result<(), RuntimeError>;
    async fn remove_pod_sandbox(&self, id: &SandboxId) -> Result<(), RuntimeError>;
    async fn pod_sandbox_status(&self, id: &SandboxId) -> Result<PodSandboxStatus, RuntimeError>;

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
    /// Starts `request.cmd` in a running container with its streams attached (`skiff exec`).
    async fn exec(
        &self,
        id: &ContainerId,
        request: &ExecRequest,
    ) -> Result<ExecSession, RuntimeError> {
        let _ = (id, request);
        Err(RuntimeError::Unsupported {
            runtime: self.name(),
            operation: "exec",
        })
    }

    /// Re-attaches to workloads that survived an agent restart; returns the sandboxes found.
    async fn recover(&self) -> Result<Vec<SandboxId>, RuntimeError>;
}
