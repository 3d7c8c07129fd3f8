//! What the agent asks of a runtime: a pod sandbox and the containers in it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ImageRef;

/// What the agent asks of a pod sandbox.
#[derive(Debug, Clone)]
pub struct PodSandboxConfig {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Directory for this pod's container logs; each container's `log_path` is relative to it.
    pub log_directory: PathBuf,
    /// The pod's own network, or None when the pod shares the node's network.
    pub network: Option<PodNetwork>,
    /// The pod's host name (`spec.hostname`, else the pod's name), for runtimes that give
    /// containers a UTS namespace and an `/etc/hostname`.
    pub hostname: String,
    /// The resolver the pod's containers use (`/etc/resolv.conf`), from its `dnsPolicy` and
    /// `dnsConfig`; None leaves them the node's resolver.
    pub dns: Option<DnsConfig>,
}

/// A pod's resolver configuration (CRI's DNSConfig): what `/etc/resolv.conf` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    pub nameservers: Vec<IpAddr>,
    /// Search domains, in order (`NAMESPACE.svc.cluster.local` first for ClusterFirst).
    pub searches: Vec<String>,
    /// Resolver options as written in resolv.conf (`ndots:5`).
    pub options: Vec<String>,
}

/// A pod's own network, set up by the agent before the sandbox runs (the CNI plugin's part in
/// Kubernetes): a network namespace whose interface holds the pod's address. The runtime runs
/// the pod's sockets in it.
#[derive(Debug, Clone)]
pub struct PodNetwork {
    /// The pod's address (`status.podIP`).
    pub ip: IpAddr,
    /// The pod's network namespace, held open by the agent for the pod's lifetime.
    pub netns: Arc<OwnedFd>,
}

/// Resource limits for one container (already parsed from Quantities).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerResources {
    /// CPU limit in millicores (None = unlimited).
    pub cpu_millis: Option<u64>,
    /// Memory limit in bytes (None = unlimited).
    pub memory_bytes: Option<u64>,
}

/// The transport protocol of a container port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// A port the container may listen on (its `containerPorts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContainerPort {
    pub port: u16,
    pub protocol: Protocol,
}

/// A host directory made visible in the container (a pod volume as the agent prepared it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where the container sees it.
    pub container_path: String,
    pub host_path: PathBuf,
    pub read_only: bool,
}

/// The container's security context (pod-level settings already merged in). A runtime
/// applies what it can; the Wasm runtime has no users or root filesystem and records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityContext {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub read_only_root_filesystem: bool,
    pub privileged: bool,
    /// `capabilities.add` and `capabilities.drop`, as written (names with or without `CAP_`).
    pub capabilities_add: Vec<String>,
    pub capabilities_drop: Vec<String>,
    /// `allowPrivilegeEscalation`: `Some(false)` sets no_new_privs.
    pub allow_privilege_escalation: Option<bool>,
    /// The container's `seccompProfile`, else the pod's.
    pub seccomp: SeccompProfile,
    /// `procMount: Unmasked`: /proc without masked and read-only paths.
    pub unmasked_proc: bool,
}

/// A `seccompProfile`; unset means [`SeccompProfile::RuntimeDefault`] (as containerd and
/// Docker do, not Kubernetes' Unconfined).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SeccompProfile {
    #[default]
    RuntimeDefault,
    Unconfined,
    /// A profile file, relative to the node's seccomp profile root.
    Localhost(String),
}

/// What the agent asks to run: env resolved from ConfigMaps/Secrets and merged with the
/// image config, command and args composed as Kubernetes does.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    pub name: String,
    pub image: ImageRef,
    /// The program and its leading arguments (the pod's `command`, else the image's
    /// entrypoint); empty when neither says, and the runtime runs the image's own program.
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub resources: ContainerResources,
    pub mounts: Vec<Mount>,
    /// The ports the pod spec declares for this container: the only ones it may listen on.
    pub ports: Vec<ContainerPort>,
    pub security: SecurityContext,
    /// Restart count of this container.
    pub attempt: u32,
    /// The log file, relative to the sandbox's `log_directory` (the agent's convention).
    pub log_path: PathBuf,
}

impl ContainerConfig {
    /// The first attempt of container `name` running `image` as the image says (no command,
    /// args, env, limits, mounts or ports of its own), logging to [`container_log_path`].
    pub fn new(name: impl Into<String>, image: ImageRef) -> Self {
        let name = name.into();
        ContainerConfig {
            log_path: container_log_path(&name, 0),
            name,
            image,
            command: vec![],
            args: vec![],
            env: vec![],
            working_dir: None,
            resources: ContainerResources::default(),
            mounts: vec![],
            ports: vec![],
            security: SecurityContext::default(),
            attempt: 0,
        }
    }
}

/// `<container>/<attempt>.log`: one attempt's log file, relative to the pod's log directory
/// (given to the runtime in `ContainerConfig::log_path`, as the CRI does).
pub fn container_log_path(container: &str, attempt: u32) -> PathBuf {
    Path::new(container).join(format!("{attempt}.log"))
}
