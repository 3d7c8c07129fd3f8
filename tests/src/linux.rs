//! Linux pods end to end: the busybox test image (Debian's busybox-static) in a registry, a
//! cluster of a server and agents to run it, what the Linux runtime of an agent keeps under
//! its data dir (the started containers, their cgroups), and the guard that ends its
//! containers when a test ends, also when it fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use skiff_test_support::busybox::Teardown;
use skiff_test_support::oci_image::TestImage;

use tempfile::TempDir;

use crate::{start_agent, wait_until, DevServer, Registry, Skiff, SkiffProcess};

/// Pushes the busybox test image to `registry` as `test/busybox:1`; its reference.
pub fn push_busybox(registry: &Registry) -> anyhow::Result<String> {
    let image = TestImage::busybox(false)?;
    registry.push_image("test/busybox", "1", &image.blobs(), &image.manifest())?;
    Ok(format!("{}/test/busybox:1", registry.host()))
}

/// The records of the Linux runtime's containers under the agent data dir `data`, read as JSON:
/// `(spec.json, started.json if the process started)` per container.
fn containers(data: &Path) -> anyhow::Result<Vec<(serde_json::Value, Option<serde_json::Value>)>> {
    let mut found = Vec::new();
    let Ok(dirs) = std::fs::read_dir(data.join("linux/containers")) else {
        return Ok(found);
    };
    for dir in dirs {
        let dir = dir?.path();
        let Ok(spec) = std::fs::read(dir.join("spec.json")) else {
            continue;
        };
        let started = match std::fs::read(dir.join("started.json")) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes)?),
            Err(_) => None,
        };
        found.push((serde_json::from_slice(&spec)?, started));
    }
    Ok(found)
}

/// The (shim pid, container pid) pairs of the Linux runtime's started containers under `data`.
pub fn started(data: &Path) -> anyhow::Result<Vec<(i32, i32)>> {
    Ok(containers(data)?
        .into_iter()
        .filter_map(|(_, started)| {
            let started = started?;
            let pid = |key: &str| started[key].as_i64().unwrap_or_default() as i32;
            Some((pid("shim_pid"), pid("pid")))
        })
        .collect())
}

/// The cgroup directories (one per v1 hierarchy, or the one v2 directory) of the containers
/// under `data` whose names (the pod's container name) are `name`.
pub fn cgroup_dirs(data: &Path, name: &str) -> anyhow::Result<Vec<PathBuf>> {
    Ok(containers(data)?
        .into_iter()
        .filter(|(spec, _)| spec["name"] == name)
        .flat_map(|(spec, _)| {
            let dirs = spec["cgroup"]["dirs"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            dirs.into_iter()
                .filter_map(|d| d.as_str().map(PathBuf::from))
        })
        .collect())
}

/// Whether process `pid` is alive (exists and is not a zombie).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit(')').next().unwrap_or_default().trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        })
        .unwrap_or(false)
}

/// A control plane (no node of its own) and agents, each with its own runtimes, and the
/// busybox image in a registry on loopback. Dropped in order: agents, server, registry, then
/// the Linux runtimes' containers, then the temporary directory.
pub struct LinuxCluster {
    pub agents: Vec<SkiffProcess>,
    pub server: DevServer,
    _registry: Registry,
    /// The busybox image's reference.
    pub busybox: String,
    /// Each agent's data dir, in the order of `agents`.
    pub data: Vec<PathBuf>,
    _teardowns: Vec<Teardown>,
    pub tmp: TempDir,
}

impl LinuxCluster {
    /// Starts the registry, the server and one agent per `(node name, extra agent flags)`,
    /// and waits until every node is Ready.
    pub fn start(nodes: &[(&str, &[&str])]) -> anyhow::Result<Self> {
        let tmp = tempfile::tempdir()?;
        let registry = Registry::start(tmp.path())?;
        let busybox = push_busybox(&registry)?;
        let server = DevServer::start_with(&tmp.path().join("server"), false, &[])?;
        let token = server.join_token()?;
        let data: Vec<PathBuf> = nodes.iter().map(|(n, _)| tmp.path().join(n)).collect();
        // Declared before the agents: on an error below, they are dropped after them.
        let teardowns: Vec<Teardown> = data
            .iter()
            .map(|d| Teardown::of_agent(d, Skiff::locate()))
            .collect();
        let mut agents = Vec::new();
        for ((name, extra), dir) in nodes.iter().zip(&data) {
            agents.push(start_agent(&server.url(), &token, name, dir, extra)?);
        }
        let cli = server.cli();
        wait_until("every node Ready", Duration::from_secs(60), || {
            for agent in &mut agents {
                agent.check_running()?;
            }
            let ready = cli.ok(&["get", "nodes"])?.matches(" Ready ").count();
            Ok((ready == nodes.len()).then_some(()))
        })?;
        Ok(LinuxCluster {
            agents,
            server,
            _registry: registry,
            busybox,
            data,
            _teardowns: teardowns,
            tmp,
        })
    }

    /// A CLI bound to the server.
    pub fn cli(&self) -> Skiff {
        self.server.cli()
    }

    /// Fails if an agent has exited.
    pub fn check_agents(&mut self) -> anyhow::Result<()> {
        for agent in &mut self.agents {
            agent.check_running()?;
        }
        Ok(())
    }
}
