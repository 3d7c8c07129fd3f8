//! Streaming exec in a Linux container: the shim's `exec` (which joins the container's
//! namespaces and cgroup) with its standard streams on pipes, or on a pseudo-terminal of the
//! container's own devpts instance (so `tty` inside names `/dev/pts/N`).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

use super::containers::{exit_code, status};
use super::{spec, LinuxRuntime};
use crate::runtime::{
    ContainerId, ContainerState, ExecRequest, ExecSession, RuntimeError, TerminalSize,
};

/// The device number of a devpts instance's `ptmx` node (5, 2).
const PTMX_MAJOR: u32 = 5;
const PTMX_MINOR: u32 = 2;

/// The terminal size until the caller sends one.
const DEFAULT_SIZE: TerminalSize = TerminalSize {
    width: 80,
    height: 24,
};

pub(super) async fn exec(
    rt: &LinuxRuntime,
    id: &ContainerId,
    request: &ExecRequest,
) -> Result<ExecSession, RuntimeError> {
    if !matches!(status(rt, id)?.state, ContainerState::Running { .. }) {
        return Err(RuntimeError::ContainerNotRunning(id.clone()));
    }
    let mut command = Command::new(&rt.config.shim.program);
    command
        .args(&rt.config.shim.args)
        .arg("exec")
        .arg(rt.container_dir(id))
        .args(&request.cmd)
        .kill_on_drop(true);
    let failed = |source: io::Error| RuntimeError::Io {
        context: format!(
            "exec in {id}: running the shim {}",
            rt.config.shim.program.display()
        ),
        source,
    };
    if request.tty {
        let started: Option<spec::Started> = spec::read(&rt.container_dir(id).join(spec::STARTED))
            .ok()
            .flatten();
        let pty = match started.map(|s| container_pty(s.pid)) {
            Some(Ok(pty)) => pty,
            // A container without a devpts of its own: a terminal of the host's.
            _ => {
                let pty = nix::pty::openpty(Some(&winsize(DEFAULT_SIZE)), None)
                    .map_err(|e| failed(e.into()))?;
                (pty.master, pty.slave)
            }
        };
        on_terminal(command, pty, request.stdin).map_err(failed)
    } else {
        on_pipes(command, request.stdin).map_err(failed)
    }
}

fn on_pipes(mut command: Command, stdin: bool) -> io::Result<ExecSession> {
    command
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn()?;
    let input = child.stdin.take();
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        unreachable!("stdout and stderr are piped");
    };
    Ok(ExecSession {
        stdin: input.map(|s| Box::pin(s) as _),
        stdout: Box::pin(stdout),
        stderr: Some(Box::pin(stderr)),
        resize: None,
        exit: wait(child),
    })
}

/// A pseudo-terminal (master, slave) of the devpts instance mounted in the container whose
/// first process is `pid`: the instance's own `ptmx` node opened through `/proc/<pid>/root`
/// (`/dev` and `/dev/pts` are mount points the container cannot swap, the last component is
/// not followed if it is a link, and the node must be the ptmx device), the slave taken from
/// the master (`TIOCGPTPEER`), never by a path the container could change.
fn container_pty(pid: i32) -> io::Result<(OwnedFd, OwnedFd)> {
    let ptmx = format!("/proc/{pid}/root/dev/pts/ptmx");
    let path = CString::new(Path::new(&ptmx).as_os_str().as_bytes())?;
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: a NUL-terminated path; the descriptor returned is owned from here on.
    let master = unsafe { libc::open(path.as_ptr(), flags | libc::O_NOFOLLOW) };
    if master < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `master` was just opened and is not owned elsewhere.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let stat = nix::sys::stat::fstat(master.as_raw_fd())?;
    let is_ptmx = stat.st_mode & libc::S_IFMT == libc::S_IFCHR
        && libc::major(stat.st_rdev) == PTMX_MAJOR
        && libc::minor(stat.st_rdev) == PTMX_MINOR;
    if !is_ptmx {
        return Err(io::Error::other(format!("{ptmx} is not a ptmx device")));
    }
    // SAFETY: unlockpt and TIOCGPTPEER act on the master descriptor only.
    let slave = unsafe {
        if libc::unlockpt(master.as_raw_fd()) < 0 {
            return Err(io::Error::last_os_error());
        }
        libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags)
    };
    if slave < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: TIOCGPTPEER returned a new descriptor that nothing else owns.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    let size = winsize(DEFAULT_SIZE);
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which outlives the call.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    Ok((master, slave))
}

fn on_terminal(
    mut command: Command,
    (master, slave): (OwnedFd, OwnedFd),
    stdin: bool,
) -> io::Result<ExecSession> {
    command
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            // A session of its own with the terminal as its controlling terminal, so that
            // job control and ^C reach the command.
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    // The command now holds the only slave ends: reads see the end once it exits.
    drop(command);
    let input = stdin
        .then(|| master.try_clone())
        .transpose()?
        .map(|fd| Box::pin(tokio::fs::File::from_std(fd.into())) as _);
    let (resize, sizes) = mpsc::channel(4);
    tokio::spawn(resizer(master.try_clone()?, sizes));
    Ok(ExecSession {
        stdin: input,
        stdout: Box::pin(TerminalOutput(tokio::fs::File::from_std(master.into()))),
        stderr: None,
        resize: Some(resize),
        exit: wait(child),
    })
}

/// Waits for the shim and sends its exit code; kills it when the receiver goes away first.
fn wait(mut child: Child) -> oneshot::Receiver<i32> {
    let (mut exit, code) = oneshot::channel();
    tokio::spawn(async move {
        tokio::select! {
            status = child.wait() => {
                let _ = exit.send(status.map(exit_code).unwrap_or(126));
            }
            () = exit.closed() => {
                let _ = child.kill().await;
            }
        }
    });
    code
}

/// Sets the terminal's size each time one arrives, until the sender is dropped.
async fn resizer(master: OwnedFd, mut sizes: mpsc::Receiver<TerminalSize>) {
    while let Some(size) = sizes.recv().await {
        let size = winsize(size);
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which outlives the call.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    }
}

fn winsize(size: TerminalSize) -> nix::pty::Winsize {
    nix::pty::Winsize {
        ws_row: size.height,
        ws_col: size.width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// A terminal master's output: EIO (every slave end closed) is the end of the stream.
struct TerminalOutput(tokio::fs::File);

impl AsyncRead for TerminalOutput {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.raw_os_error() == Some(libc::EIO) => Poll::Ready(Ok(())),
            other => other,
        }
    }
}
