//! What the runtime writes down for each container and sandbox under its state directory,
//! so that a shim can run the container alone and a restarted agent can find it again:
//!
//! ```text
//! DATA_DIR/sandboxes/<sandbox>/sandbox.json   the sandbox (SandboxRecord)
//! DATA_DIR/sandboxes/<sandbox>/{net,ipc,uts}  its namespaces, bind-mounted to stay alive
//! DATA_DIR/sandboxes/<sandbox>/etc/           its hosts, hostname and resolv.conf
//! DATA_DIR/containers/<id>/spec.json          the container (ContainerSpec), at create
//! DATA_DIR/containers/<id>/started.json       written by the shim once the process runs
//! DATA_DIR/containers/<id>/exit.json          written by the shim when the process ended
//! DATA_DIR/containers/<id>/{rootfs,upper,work} its root filesystem
//! ```

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::cgroups::Cgroup;
use super::seccomp_profile::Filter;
use crate::runtime::logs::LogLimits;
use crate::runtime::{ImageRef, RuntimeError};

/// A pod sandbox as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: String,
    pub log_directory: PathBuf,
    /// The pod's own address, when it has its own network.
    pub ip: Option<String>,
    /// Whether `net` holds the pod's network namespace (else the node's network is used).
    pub own_network: bool,
    /// Set once the sandbox is stopped.
    #[serde(default)]
    pub stopped: bool,
}

/// A host path bind-mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub target: String,
    pub read_only: bool,
}

/// Everything the shim needs to run one container, resolved by the runtime at create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub id: String,
    pub sandbox: String,
    pub name: String,
    pub attempt: u32,
    pub image: ImageRef,
    /// The log file (absolute).
    pub log_path: PathBuf,
    pub log_limits: LogLimits,
    /// The program and its arguments; the program is looked up on the container's `PATH`.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    /// The user, resolved to numbers (`None` when the image names a user by name, which the
    /// shim resolves from the rootfs's /etc/passwd).
    pub user: UserSpec,
    pub read_only_root: bool,
    pub privileged: bool,
    /// What confines an unprivileged container (ignored when privileged).
    #[serde(default)]
    pub hardening: Hardening,
    pub mounts: Vec<BindMount>,
    pub cgroup: Cgroup,
    /// The sandbox's state directory (namespaces and /etc files).
    pub sandbox_dir: PathBuf,
    pub rootfs: PathBuf,
    pub created_at: SystemTime,
}

/// The confinement of an unprivileged container, from its security context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardening {
    /// The capabilities kept in the bounding set (so the process exec'd as root has these).
    pub capabilities: Vec<u32>,
    /// no_new_privs: set exactly when `allowPrivilegeEscalation` is false.
    pub no_new_privs: bool,
    pub seccomp: Seccomp,
    /// Masks and makes read-only the /proc and /sys paths runc's default spec does.
    pub mask_paths: bool,
}

impl Default for Hardening {
    /// What a record written before these fields existed was run with.
    fn default() -> Self {
        Hardening {
            capabilities: skiff_api::capabilities::DEFAULT.to_vec(),
            no_new_privs: true,
            seccomp: Seccomp::RuntimeDefault,
            mask_paths: false,
        }
    }
}

/// The seccomp filter a container's processes run under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Seccomp {
    /// The built-in profile.
    RuntimeDefault,
    /// No filter.
    Unconfined,
    /// A `Localhost` profile, compiled.
    Profile(Filter),
}

/// Whom the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserSpec {
    Ids { uid: u32, gid: Option<u32> },
    Name { name: String, gid: Option<u32> },
}

/// Written by the shim once the container's process has been exec'd.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Started {
    /// The shim's pid (the container's parent).
    pub shim_pid: i32,
    /// The container's first process, as the host sees it.
    pub pid: i32,
    pub started_at: SystemTime,
}

/// Written by the shim when the container's process has ended (or failed to start).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exited {
    pub exit_code: i32,
    /// `Completed`, `Error`, `OOMKilled` or `StartError`.
    pub reason: String,
    pub message: String,
    pub started_at: SystemTime,
    pub finished_at: SystemTime,
}

pub const SPEC: &str = "spec.json";
pub const STARTED: &str = "started.json";
pub const EXITED: &str = "exit.json";
pub const SANDBOX: &str = "sandbox.json";

/// Reads a record; `Ok(None)` when the file is not there.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, RuntimeError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RuntimeError::Io {
                context: format!("reading {}", path.display()),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RuntimeError::Io {
            context: format!("reading {}", path.display()),
            source,
        }),
    }
}

/// Writes a record atomically (a temporary file renamed over it).
pub fn write<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec(value).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, path)
}
