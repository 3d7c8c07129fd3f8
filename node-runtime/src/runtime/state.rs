//! What a runtime reports: sandbox and container states, events, stats.

use std::path::PathBuf;
use std::time::SystemTime;

use super::{ContainerId, ImageRef, SandboxId};

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
    /// The container's log file, as the runtime writes it.
    pub log_path: PathBuf,
}

/// A pod sandbox as the runtime observes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSandboxStatus {
    pub id: SandboxId,
    pub ready: bool,
    /// The pod's own IP; `None` when the pod shares the node's network (its IP is the host's).
    pub ip: Option<String>,
}

/// What happened to a container, pushed by the runtime as it happens (CRI's container events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerEventKind {
    Started,
    Exited,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    pub container: ContainerId,
    pub sandbox: SandboxId,
    pub kind: ContainerEventKind,
}

/// What one container has used (CRI's `ContainerStats`).
#[derive(Debug, Clone, Default)]
pub struct ContainerStats {
    /// CPU time the container has run, in total since it started.
    pub cpu_usage_nanos: u64,
    /// All memory charged to the container now.
    pub memory_bytes: u64,
    /// Memory the container holds that cannot be reclaimed without it (cAdvisor's
    /// `container_memory_working_set_bytes`, what `kubectl top` shows).
    pub memory_working_set_bytes: u64,
    /// Anonymous memory (cAdvisor's `container_memory_rss`).
    pub memory_rss_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct ExecResult {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}
