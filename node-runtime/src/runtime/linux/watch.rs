//! Processes the agent did not fork (a shim that may have outlived an earlier agent, the
//! container's first process), by pidfd: awaited without polling, and signalled without
//! the risk of hitting a later process that reuses the pid.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A pidfd; readable once its process has exited.
pub struct Process {
    fd: OwnedFd,
}

impl Process {
    /// The process `pid`; None if it is already gone.
    pub fn open(pid: i32) -> Option<Self> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        // SAFETY: a non-negative result is a descriptor we now own.
        (fd >= 0).then(|| Process {
            fd: unsafe { OwnedFd::from_raw_fd(fd as i32) },
        })
    }

    /// The pidfd, for a blocking wait.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: i32) -> std::io::Result<()> {
        // SAFETY: pidfd_send_signal with a valid descriptor and no siginfo.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Waits until the process has exited.
    pub async fn exited(self) -> std::io::Result<()> {
        // SAFETY: the descriptor is owned by the AsyncFd for its whole life.
        let fd = unsafe { AsyncFd::register_with_interest(self.fd, Interest::READABLE) }
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        fd.readable().await.map(drop)
    }
}
