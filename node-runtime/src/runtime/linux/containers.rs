//! The container operations of [`LinuxRuntime`]: each reads and writes the container's
//! records (see [`spec`]) and talks to its shim by pid file and signal.

use std::time::{Duration, SystemTime};

use tokio::process::Command;

use super::cgroups::{Cgroup, CgroupLimits};
use super::spec::{self, BindMount, ContainerSpec, Exited, Started, UserSpec};
use super::watch::Process;
use super::{io, rootfs, security, LinuxRuntime};
use crate::runtime::{
    ContainerConfig, ContainerEvent, ContainerEventKind, ContainerId, ContainerState,
    ContainerStatus, ExecResult, RuntimeError, SandboxId,
};

/// Longest wait for a killed container's shim to record its exit.
const KILL_WAIT: Duration = Duration::from_secs(10);

pub(super) fn spec_of(rt: &LinuxRuntime, id: &ContainerId) -> Result<ContainerSpec, RuntimeError> {
    if id.is_empty() || id.contains('/') || id.starts_with('.') {
        return Err(RuntimeError::ContainerNotFound(id.clone()));
    }
    spec::read(&rt.container_dir(id).join(spec::SPEC))?
        .ok_or_else(|| RuntimeError::ContainerNotFound(id.clone()))
}

/// The user the process runs as: the security context's numbers over the image's `User`.
fn user(config: &ContainerConfig) -> UserSpec {
    let gid = config.security.run_as_group.map(|g| g as u32);
    if let Some(uid) = config.security.run_as_user {
        return UserSpec::Ids {
            uid: uid as u32,
            gid,
        };
    }
    let image = config.image.config.user.clone().unwrap_or_default();
    let (name, group) = image.split_once(':').unwrap_or((&image, ""));
    let gid = gid.or_else(|| group.parse().ok());
    match name.parse() {
        Ok(uid) => UserSpec::Ids { uid, gid },
        Err(_) if name.is_empty() => UserSpec::Ids { uid: 0, gid },
        Err(_) => UserSpec::Name {
            name: name.to_string(),
            gid,
        },
    }
}

/// The command line Kubernetes composes: the pod's command, else the image's entrypoint;
/// the pod's args, else (when the pod gives no command) the image's cmd.
fn argv(config: &ContainerConfig) -> Vec<String> {
    let image = &config.image.config;
    let mut argv = if config.command.is_empty() {
        image.entrypoint.clone()
    } else {
        config.command.clone()
    };
    if !config.args.is_empty() {
        argv.extend(config.args.iter().cloned());
    } else if config.command.is_empty() {
        argv.extend(image.cmd.iter().cloned());
    }
    argv
}

pub(super) async fn create(
    rt: &LinuxRuntime,
    sandbox: &SandboxId,
    config: &ContainerConfig,
) -> Result<ContainerId, RuntimeError> {
    let record = rt.sandbox_record(sandbox)?;
    let failed = |message: String| RuntimeError::CreateContainer {
        name: config.name.clone(),
        message,
    };
    if config.image.layers.is_empty() {
        return Err(failed("the image has no Linux layers".into()));
    }
    let argv = argv(config);
    if argv.is_empty() {
        return Err(failed(
            "neither the pod nor the image names a command".into(),
        ));
    }
    let hardening = security::resolve(&config.security, &rt.config.seccomp_profile_root)
        .map_err(|e| failed(e.to_string()))?;
    let id = format!("{}-{}", config.name, uuid::Uuid::new_v4().simple());
    let dir = rt.container_dir(&id);
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    let limits = CgroupLimits {
        memory_bytes: config.resources.memory_bytes,
        cpu_millis: config.resources.cpu_millis,
        pids: Some(rt.config.pids_limit),
    };
    let cgroup = match Cgroup::create(
        &rt.config.cgroup_root,
        &rt.config.cgroup_parent,
        &id,
        &limits,
    ) {
        Ok(cgroup) => cgroup,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(failed(e.to_string()));
        }
    };
    let made = async {
        let (layers, at) = (config.image.layers.clone(), dir.clone());
        tokio::task::spawn_blocking(move || rootfs::prepare(&at, &layers))
            .await
            .map_err(|e| failed(e.to_string()))?
            .map_err(|e| failed(e.to_string()))?;
        let mut env = config.image.config.env.clone();
        for (k, v) in &config.env {
            env.retain(|(key, _)| key != k);
            env.push((k.clone(), v.clone()));
        }
        let spec = ContainerSpec {
            id: id.clone(),
            sandbox: sandbox.clone(),
            name: config.name.clone(),
            attempt: config.attempt,
            image: config.image.clone(),
            log_path: record.log_directory.join(&config.log_path),
            log_limits: rt.config.log_limits,
            argv,
            env,
            cwd: config
                .working_dir
                .clone()
                .or_else(|| config.image.config.working_dir.clone())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "/".into()),
            user: user(config),
            read_only_root: config.security.read_only_root_filesystem,
            privileged: config.security.privileged,
            hardening,
            mounts: config
                .mounts
                .iter()
                .map(|m| BindMount {
                    source: m.host_path.clone(),
                    target: m.container_path.clone(),
                    read_only: m.read_only,
                })
                .collect(),
            cgroup: cgroup.clone(),
            sandbox_dir: rt.sandbox_dir(sandbox),
            rootfs: dir.join("rootfs"),
            created_at: SystemTime::now(),
        };
        spec::write(&dir.join(spec::SPEC), &spec).map_err(io(format!("writing {id}'s spec")))
    };
    if let Err(e) = made.await {
        let _ = rootfs::remove(&dir);
        let _ = cgroup.remove();
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    Ok(id)
}

pub(super) async fn start(rt: &LinuxRuntime, id: &ContainerId) -> Result<(), RuntimeError> {
    let spec = spec_of(rt, id)?;
    let dir = rt.container_dir(id);
    if dir.join(spec::STARTED).exists() || dir.join(spec::EXITED).exists() {
        return Ok(());
    }
    let output = Command::new(&rt.config.shim.program)
        .args(&rt.config.shim.args)
        .arg("start")
        .arg(&dir)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(io(format!(
            "running the shim {}",
            rt.config.shim.program.display()
        )))?;
    if !output.status.success() {
        return Err(RuntimeError::StartContainer {
            id: id.clone(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    let _ = rt.events.send(ContainerEvent {
        container: id.clone(),
        sandbox: spec.sandbox.clone(),
        kind: ContainerEventKind::Started,
    });
    watch(rt, id, true);
    Ok(())
}

/// Pushes `Exited` once container `id`'s shim ends, unless that is being awaited already;
/// `just_started` pushes it also when the container has ended already (a short-lived one).
pub(super) fn watch(rt: &LinuxRuntime, id: &ContainerId, just_started: bool) {
    let dir = rt.container_dir(id);
    let (Ok(Some(spec)), Ok(Some(started))) = (
        spec::read::<ContainerSpec>(&dir.join(spec::SPEC)),
        spec::read::<Started>(&dir.join(spec::STARTED)),
    ) else {
        return;
    };
    if (!just_started && dir.join(spec::EXITED).exists())
        || !rt.watched.lock().expect("watched").insert(id.clone())
    {
        return;
    }
    let (events, watched, id) = (rt.events.clone(), rt.watched.clone(), id.clone());
    let shim = Process::open(started.shim_pid);
    tokio::spawn(async move {
        if let Some(shim) = shim {
            if let Err(e) = shim.exited().await {
                tracing::warn!("cannot wait for the shim of {id}: {e}");
            }
        }
        watched.lock().expect("watched").remove(&id);
        let _ = events.send(ContainerEvent {
            container: id,
            sandbox: spec.sandbox,
            kind: ContainerEventKind::Exited,
        });
    });
}

pub(super) async fn stop(
    rt: &LinuxRuntime,
    id: &ContainerId,
    grace: Duration,
) -> Result<(), RuntimeError> {
    let Ok(_) = spec_of(rt, id) else {
        return Ok(());
    };
    let dir = rt.container_dir(id);
    let Some(started) = spec::read::<Started>(&dir.join(spec::STARTED))? else {
        return Ok(());
    };
    if dir.join(spec::EXITED).exists() {
        return Ok(());
    }
    let (Some(shim), Some(init)) = (Process::open(started.shim_pid), Process::open(started.pid))
    else {
        return Ok(());
    };
    let exited = shim.exited();
    tokio::pin!(exited);
    if !grace.is_zero() {
        let _ = init.signal(libc::SIGTERM);
        if tokio::time::timeout(grace, &mut exited).await.is_ok() {
            return Ok(());
        }
    }
    // Killing the pid namespace's first process kills every process in it.
    let _ = init.signal(libc::SIGKILL);
    tokio::time::timeout(KILL_WAIT, exited)
        .await
        .map_err(|_| RuntimeError::Io {
            context: format!("container {id} did not end after SIGKILL"),
            source: std::io::ErrorKind::TimedOut.into(),
        })?
        .map_err(io("waiting on a shim"))?;
    Ok(())
}

pub(super) async fn remove(rt: &LinuxRuntime, id: &ContainerId) -> Result<(), RuntimeError> {
    let Ok(spec) = spec_of(rt, id) else {
        return Ok(());
    };
    stop(rt, id, Duration::ZERO).await?;
    let dir = rt.container_dir(id);
    // Exec'd processes may linger a moment after the first process died.
    for pid in spec.cgroup.pids() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }
    let mut removed = spec.cgroup.remove();
    for _ in 0..50 {
        if removed.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        removed = spec.cgroup.remove();
    }
    removed.map_err(|e| RuntimeError::Io {
        context: format!("removing {id}'s cgroup {}", e.path.display()),
        source: e.source,
    })?;
    let at = dir.clone();
    tokio::task::spawn_blocking(move || rootfs::remove(&at))
        .await
        .map_err(|e| RuntimeError::Io {
            context: format!("removing {id}'s root filesystem"),
            source: std::io::Error::other(e),
        })?
        .map_err(|e| RuntimeError::Io {
            context: e.to_string(),
            source: e.source,
        })?;
    std::fs::remove_dir_all(&dir).map_err(io(format!("removing {}", dir.display())))
}

pub(super) fn status(rt: &LinuxRuntime, id: &ContainerId) -> Result<ContainerStatus, RuntimeError> {
    let spec = spec_of(rt, id)?;
    let dir = rt.container_dir(id);
    let started = spec::read::<Started>(&dir.join(spec::STARTED))?;
    let state = match spec::read::<Exited>(&dir.join(spec::EXITED))? {
        Some(exited) => ContainerState::Exited {
            started_at: exited.started_at,
            finished_at: exited.finished_at,
            exit_code: exited.exit_code,
            reason: exited.reason,
            message: exited.message,
        },
        None => match started {
            None => ContainerState::Created,
            Some(started) if Process::open(started.shim_pid).is_some() => ContainerState::Running {
                started_at: started.started_at,
            },
            // The shim died without recording the exit (killed, or the node rebooted).
            Some(_) => ContainerState::Unknown,
        },
    };
    Ok(ContainerStatus {
        id: spec.id,
        sandbox_id: spec.sandbox,
        name: spec.name,
        image: spec.image,
        attempt: spec.attempt,
        state,
        log_path: spec.log_path,
    })
}

pub(super) async fn exec(
    rt: &LinuxRuntime,
    id: &ContainerId,
    cmd: &[String],
    timeout: Duration,
) -> Result<ExecResult, RuntimeError> {
    let status = status(rt, id)?;
    if !matches!(status.state, ContainerState::Running { .. }) {
        return Err(RuntimeError::ContainerNotRunning(id.clone()));
    }
    let child = Command::new(&rt.config.shim.program)
        .args(&rt.config.shim.args)
        .arg("exec")
        .arg(rt.container_dir(id))
        .args(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(io(format!(
            "running the shim {}",
            rt.config.shim.program.display()
        )))?;
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| RuntimeError::Io {
            context: format!("exec in {id} ran past {timeout:?}"),
            source: std::io::ErrorKind::TimedOut.into(),
        })?
        .map_err(io(format!("exec in {id}")))?;
    Ok(ExecResult {
        exit_code: exit_code(output.status),
        stdout: output.stdout,
        stderr: output.stderr,
    })
}

/// A process's exit code as a shell reports it: 128 + the signal for one killed by a signal
/// (as the shim reports its command's).
pub(super) fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(126)
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    #[test]
    fn a_signal_is_128_plus_its_number() {
        assert_eq!(super::exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(super::exit_code(ExitStatus::from_raw(libc::SIGKILL)), 137);
        assert_eq!(super::exit_code(ExitStatus::from_raw(libc::SIGTERM)), 143);
    }
}
