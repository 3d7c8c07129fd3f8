//! Tearing down everything a Linux runtime's state directory holds, synchronously and
//! without asking: every container killed, its cgroup, root filesystem and records removed,
//! every sandbox's namespaces released. For tests (a guard that cleans up also when a test
//! fails) and for wiping a node.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::spec::{self, ContainerSpec, Started};
use super::{rootfs, sandbox, LinuxConfig};

/// Removes every container and sandbox under `config.data_dir`; best effort.
pub fn teardown(config: &LinuxConfig) {
    let containers = config.data_dir.join("containers");
    for dir in entries(&containers) {
        let spec = spec::read::<ContainerSpec>(&dir.join(spec::SPEC))
            .ok()
            .flatten();
        if let Ok(Some(started)) = spec::read::<Started>(&dir.join(spec::STARTED)) {
            let _ = kill(Pid::from_raw(started.pid), Signal::SIGKILL);
            wait_gone(started.shim_pid);
        }
        if let Some(spec) = spec {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                for pid in spec.cgroup.pids() {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
                if spec.cgroup.remove().is_ok() || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = rootfs::remove(&dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
    for dir in entries(&config.data_dir.join("sandboxes")) {
        let _ = sandbox::release(&dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default()
}

/// Waits (up to 5 s) for process `pid` to exit.
fn wait_gone(pid: i32) {
    let Some(process) = super::watch::Process::open(pid) else {
        return;
    };
    let fd = process.as_fd();
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    let _ = poll(&mut fds, PollTimeout::from(5000u16));
}
