//! `start`: the shim proper. The first process forks the shim and waits only until the
//! shim reports that the container's program runs (or why it does not); the shim starts a
//! new session, becomes the container's parent in a new pid namespace, pumps its output into
//! the log, and records its exit.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::SystemTime;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{dup2, fork, pipe2, setsid, ForkResult, Pid};

use super::{init, seccomp};
use crate::runtime::linux::spec::{self, ContainerSpec, Exited, Started};
use crate::runtime::logs::{LogWriter, Stream};

/// Runs the container of `dir`; the exit code says whether it started (0) or not (1).
pub fn start(dir: &Path) -> i32 {
    let spec: ContainerSpec = match spec::read(&dir.join(spec::SPEC)) {
        Ok(Some(spec)) => spec,
        Ok(None) => {
            eprintln!("no container spec in {}", dir.display());
            return 1;
        }
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    // Close-on-exec: the container's program must not hold the report open.
    let (report_r, report_w) = match pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pipe: {e}");
            return 1;
        }
    };
    // SAFETY: the shim is single-threaded.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(report_r);
            std::process::exit(shim(dir, &spec, report_w));
        }
        Ok(ForkResult::Parent { .. }) => {
            drop(report_w);
            let mut report = String::new();
            let _ = std::fs::File::from(report_r).read_to_string(&mut report);
            if report == "ok" {
                0
            } else if report.is_empty() {
                eprintln!("the shim ended before the container started");
                1
            } else {
                eprintln!("{report}");
                1
            }
        }
        Err(e) => {
            eprintln!("fork: {e}");
            1
        }
    }
}

/// The shim: runs the container, reports to the first process through `report`, and waits.
fn shim(dir: &Path, spec: &ContainerSpec, report: OwnedFd) -> i32 {
    let mut report = std::fs::File::from(report);
    let started_at = SystemTime::now();
    let child = match spawn(spec) {
        Ok(child) => child,
        Err(message) => {
            let exited = Exited {
                exit_code: 128,
                reason: "StartError".into(),
                message: message.clone(),
                started_at,
                finished_at: SystemTime::now(),
            };
            let _ = spec::write(&dir.join(spec::EXITED), &exited);
            let _ = report.write_all(message.as_bytes());
            return 1;
        }
    };
    let started = Started {
        shim_pid: std::process::id() as i32,
        pid: child.pid.as_raw(),
        started_at,
    };
    if let Err(e) = spec::write(&dir.join(spec::STARTED), &started) {
        let _ = report.write_all(format!("recording the start: {e}").as_bytes());
    } else {
        let _ = report.write_all(b"ok");
    }
    drop(report);
    pump(spec, child.stdout, child.stderr);
    let status = loop {
        match waitpid(child.pid, None) {
            Err(nix::Error::EINTR) => continue,
            other => break other,
        }
    };
    let exit_code = match status {
        Ok(WaitStatus::Exited(_, code)) => code,
        Ok(WaitStatus::Signaled(_, signal, _)) => 128 + signal as i32,
        _ => 255,
    };
    let (reason, message) = if spec.cgroup.oom_kills() > 0 {
        (
            "OOMKilled",
            "the container passed its memory limit".to_string(),
        )
    } else if exit_code == 0 {
        ("Completed", String::new())
    } else {
        ("Error", String::new())
    };
    let exited = Exited {
        exit_code,
        reason: reason.into(),
        message,
        started_at,
        finished_at: SystemTime::now(),
    };
    let _ = spec::write(&dir.join(spec::EXITED), &exited);
    0
}

struct Child {
    pid: Pid,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

/// Leaves the agent's session, then forks the container's first process into a new pid
/// namespace; returns once it has exec'd its program, or why it could not.
fn spawn(spec: &ContainerSpec) -> Result<Child, String> {
    let fail = |what: &str, e: nix::Error| format!("{what}: {e}");
    let filter = seccomp::prepare(spec).map_err(|e| e.to_string())?;
    setsid().map_err(|e| fail("setsid", e))?;
    // The agent waits for the first process's output to end: the shim lets go of it.
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("opening /dev/null: {e}"))?;
    for fd in 0..=2 {
        dup2(null.as_raw_fd(), fd).map_err(|e| fail("redirecting the shim's output", e))?;
    }
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let (out_r, out_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail("pipe", e))?;
    let (err_r, err_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail("pipe", e))?;
    // Closed by the exec: an empty read means the program runs.
    let (exec_r, exec_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail("pipe", e))?;
    unshare(CloneFlags::CLONE_NEWPID).map_err(|e| fail("creating the pid namespace", e))?;
    // SAFETY: the shim is single-threaded.
    match unsafe { fork() }.map_err(|e| fail("fork", e))? {
        ForkResult::Child => {
            drop((out_r, err_r, exec_r));
            let err = init::run(spec, filter.as_ref(), out_w, err_w);
            let _ = std::fs::File::from(exec_w).write_all(err.to_string().as_bytes());
            // SAFETY: ends the forked child without running the parent's exit handlers.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => {
            drop((out_w, err_w, exec_w));
            let mut message = String::new();
            let _ = std::fs::File::from(exec_r).read_to_string(&mut message);
            if message.is_empty() {
                return Ok(Child {
                    pid: child,
                    stdout: out_r,
                    stderr: err_r,
                });
            }
            let _ = waitpid(child, None);
            Err(message)
        }
    }
}

/// Copies the container's stdout and stderr into its log until both are closed.
fn pump(spec: &ContainerSpec, stdout: OwnedFd, stderr: OwnedFd) {
    let log = LogWriter::open(spec.log_path.clone(), spec.log_limits).ok();
    let mut open = [Some(stdout), Some(stderr)];
    let mut buf = vec![0u8; 64 * 1024];
    while open.iter().any(Option::is_some) {
        let (streams, mut fds): (Vec<usize>, Vec<PollFd>) = open
            .iter()
            .enumerate()
            .filter_map(|(i, fd)| Some((i, PollFd::new(fd.as_ref()?.as_fd(), PollFlags::POLLIN))))
            .unzip();
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            Err(_) => return,
            Ok(_) => {}
        }
        let ready: Vec<usize> = fds
            .iter()
            .zip(&streams)
            .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, i)| *i)
            .collect();
        drop(fds);
        for i in ready {
            let Some(fd) = &open[i] else { continue };
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => open[i] = None,
                Ok(n) => {
                    let stream = if i == 0 {
                        Stream::Stdout
                    } else {
                        Stream::Stderr
                    };
                    if let Some(log) = &log {
                        let _ = log.write(stream, &buf[..n]);
                    }
                }
            }
        }
    }
}
