//! `exec`: runs a command in a running container (probes' `exec`, `skiff exec`): joins the
//! namespaces and cgroup of the container's first process, forks into its pid namespace and
//! execs there as the container's user; the shim's output and exit code are the command's,
//! and killing the shim (an exec past its timeout) kills the command.

use std::convert::Infallible;
use std::path::Path;

use libseccomp::ScmpFilterContext;
use nix::sched::{setns, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

use super::process::{exec_program, resolve_user};
use super::{seccomp, ShimError, Step};
use crate::runtime::linux::spec::{self, ContainerSpec, Started};

/// Runs `argv` in the container of `dir`; returns its exit code (126 when it cannot run).
pub fn exec(dir: &Path, argv: &[String]) -> i32 {
    match enter(dir).and_then(|spec| Ok((seccomp::prepare(&spec)?, spec))) {
        Ok((filter, spec)) => {
            // SAFETY: the shim is single-threaded.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    let err = run(&spec, filter.as_ref(), argv).unwrap_err();
                    eprintln!("{err}");
                    // SAFETY: ends the forked child without the parent's exit handlers.
                    unsafe { libc::_exit(127) }
                }
                Ok(ForkResult::Parent { child }) => loop {
                    match waitpid(child, None) {
                        Err(nix::Error::EINTR) => continue,
                        Ok(WaitStatus::Exited(_, code)) => return code,
                        Ok(WaitStatus::Signaled(_, signal, _)) => return 128 + signal as i32,
                        _ => return 126,
                    }
                },
                Err(e) => {
                    eprintln!("fork: {e}");
                    126
                }
            }
        }
        Err(e) => {
            eprintln!("{e}");
            126
        }
    }
}

/// Joins the container's cgroup and namespaces (the pid namespace takes effect for children).
fn enter(dir: &Path) -> Result<ContainerSpec, ShimError> {
    let missing = |what: &str| ShimError {
        step: format!("{what} of {}", dir.display()),
        source: std::io::ErrorKind::NotFound.into(),
    };
    let spec: ContainerSpec = spec::read(&dir.join(spec::SPEC))
        .ok()
        .flatten()
        .ok_or_else(|| missing("the spec"))?;
    let started: Started = spec::read(&dir.join(spec::STARTED))
        .ok()
        .flatten()
        .ok_or_else(|| missing("the running process"))?;
    // Opened before any is joined: the mount namespace changes what /proc is.
    let kinds = [
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ];
    let mut files = Vec::new();
    for (name, kind) in kinds {
        let path = format!("/proc/{}/ns/{name}", started.pid);
        files.push((
            std::fs::File::open(&path).step(|| format!("opening {path}"))?,
            kind,
            name,
        ));
    }
    spec.cgroup.join_self().map_err(|e| ShimError {
        step: format!("joining the cgroup {}", e.path.display()),
        source: e.source,
    })?;
    for (file, kind, name) in files {
        setns(&file, kind).step(|| format!("joining the container's {name} namespace"))?;
    }
    Ok(spec)
}

fn run(
    spec: &ContainerSpec,
    filter: Option<&ScmpFilterContext>,
    argv: &[String],
) -> Result<Infallible, ShimError> {
    let user = resolve_user(&spec.user, Path::new("/etc/passwd"))?;
    exec_program(spec, argv, user, filter, true)
}
