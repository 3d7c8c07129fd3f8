//! The container's first process, between fork and exec: it joins the pod's namespaces and
//! the container's cgroup, builds its mount namespace (root filesystem, /proc, /sys, /dev,
//! the pod's /etc files and volumes), pivots into it, and execs the program.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::{chdir, dup2, pivot_root};

use super::process::{exec_program, resolve_user};
use super::{ShimError, Step};
use crate::runtime::linux::secure_join::secure_join;
use crate::runtime::linux::spec::ContainerSpec;

/// Device nodes bound from the host into the container's /dev.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Sets the container up and execs its program; returns only the reason it could not.
pub fn run(spec: &ContainerSpec, stdout: OwnedFd, stderr: OwnedFd) -> ShimError {
    match setup(spec, stdout, stderr) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn setup(
    spec: &ContainerSpec,
    stdout: OwnedFd,
    stderr: OwnedFd,
) -> Result<std::convert::Infallible, ShimError> {
    join_namespaces(&spec.sandbox_dir)?;
    spec.cgroup.join_self().map_err(|e| ShimError {
        step: format!("joining the cgroup {}", e.path.display()),
        source: e.source,
    })?;
    unshare(CloneFlags::CLONE_NEWNS).step(|| "creating the mount namespace".into())?;
    // Nothing mounted from here on reaches the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .step(|| "making / a slave mount".into())?;
    let root = &spec.rootfs;
    bind(root, root, false)?;
    mount_system(spec, root)?;
    let (uid, gid) = resolve_user(&spec.user, &within(root, "/etc/passwd")?)?;
    let cwd = within(root, &spec.cwd)?;
    std::fs::create_dir_all(&cwd).step(|| format!("creating {}", spec.cwd))?;
    pivot(root)?;
    if spec.read_only_root {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .step(|| "making the root filesystem read-only".into())?;
    }
    let null = std::fs::File::open("/dev/null").step(|| "opening /dev/null".into())?;
    dup2(null.as_raw_fd(), 0).step(|| "stdin".into())?;
    dup2(stdout.as_raw_fd(), 1).step(|| "stdout".into())?;
    dup2(stderr.as_raw_fd(), 2).step(|| "stderr".into())?;
    exec_program(spec, &spec.argv, uid, gid, false)
}

/// Joins the sandbox's IPC, UTS and (if it has its own) network namespaces.
fn join_namespaces(sandbox: &Path) -> Result<(), ShimError> {
    for (name, kind) in [
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
    ] {
        let path = sandbox.join(name);
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        // Without a bound namespace the pod uses the node's network.
        if name == "net" && !is_nsfs(&file) {
            continue;
        }
        setns(&file, kind).step(|| format!("joining the pod's {name} namespace"))?;
    }
    Ok(())
}

fn is_nsfs(file: &std::fs::File) -> bool {
    nix::sys::statfs::fstatfs(file)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}

fn bind(source: &Path, target: &Path, read_only: bool) -> Result<(), ShimError> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .step(|| format!("binding {} to {}", source.display(), target.display()))?;
    if read_only {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .step(|| format!("making {} read-only", target.display()))?;
    }
    Ok(())
}

fn fs(target: &Path, kind: &str, flags: MsFlags, data: Option<&str>) -> Result<(), ShimError> {
    std::fs::create_dir_all(target).step(|| format!("creating {}", target.display()))?;
    mount(Some(kind), target, Some(kind), flags, data)
        .step(|| format!("mounting {kind} on {}", target.display()))
}

/// A file to bind a file onto: an existing file, else a new empty one (a symlink in the
/// image is replaced, so the bind cannot be led outside the root).
fn file_target(target: &Path) -> Result<(), ShimError> {
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).step(|| format!("creating {}", dir.display()))?;
    }
    if std::fs::symlink_metadata(target).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(target).step(|| format!("removing {}", target.display()))?;
    }
    if !target.exists() {
        std::fs::File::create(target).step(|| format!("creating {}", target.display()))?;
    }
    Ok(())
}

/// `path` (as the container names it) under `root`, its symlinks resolved inside the root.
fn within(root: &Path, path: &str) -> Result<PathBuf, ShimError> {
    secure_join(root, path).step(|| format!("resolving {path} in the root filesystem"))
}

fn mount_system(spec: &ContainerSpec, root: &Path) -> Result<(), ShimError> {
    let secure = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let proc = within(root, "/proc")?;
    fs(&proc, "proc", secure, None)?;
    let sys_flags = if spec.privileged {
        secure
    } else {
        secure | MsFlags::MS_RDONLY
    };
    let sys = within(root, "/sys")?;
    if fs(&sys, "sysfs", sys_flags, None).is_err() {
        bind(Path::new("/sys"), &sys, !spec.privileged)?;
    }
    if !spec.privileged && spec.hardening.mask_paths {
        mask(&proc, &sys)?;
    }
    let dev = within(root, "/dev")?;
    fs(
        &dev,
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for device in DEVICES {
        let target = dev.join(device);
        file_target(&target)?;
        bind(&Path::new("/dev").join(device), &target, false)?;
    }
    fs(
        &dev.join("pts"),
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    fs(
        &dev.join("shm"),
        "tmpfs",
        secure,
        Some("mode=1777,size=65536k"),
    )?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(to, dev.join(link)).step(|| format!("linking /dev/{link}"))?;
    }
    for name in ["hosts", "hostname", "resolv.conf"] {
        let target = within(root, &format!("/etc/{name}"))?;
        file_target(&target)?;
        bind(&spec.sandbox_dir.join("etc").join(name), &target, false)?;
    }
    for volume in &spec.mounts {
        let target = within(root, &volume.target)?;
        if volume.source.is_dir() {
            std::fs::create_dir_all(&target).step(|| format!("creating {}", volume.target))?;
        } else {
            file_target(&target)?;
        }
        bind(&volume.source, &target, volume.read_only)?;
    }
    Ok(())
}

/// Hides the /proc and /sys paths runc's default spec masks (a directory under an empty
/// read-only tmpfs, a file under /dev/null) and makes those it keeps read-only so; a path
/// this kernel does not have is passed over.
fn mask(proc: &Path, sys: &Path) -> Result<(), ShimError> {
    const MASKED_PROC: [&str; 8] = [
        "acpi",
        "kcore",
        "keys",
        "latency_stats",
        "timer_list",
        "timer_stats",
        "sched_debug",
        "scsi",
    ];
    const MASKED_SYS: [&str; 2] = ["firmware", "devices/virtual/powercap"];
    const READ_ONLY_PROC: [&str; 6] = ["asound", "bus", "fs", "irq", "sys", "sysrq-trigger"];
    let masked = MASKED_PROC
        .iter()
        .map(|p| proc.join(p))
        .chain(MASKED_SYS.iter().map(|p| sys.join(p)));
    for path in masked {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => mount(
                Some("tmpfs"),
                &path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .step(|| format!("masking {}", path.display()))?,
            Ok(_) => bind(Path::new("/dev/null"), &path, false)?,
            Err(_) => {}
        }
    }
    for path in READ_ONLY_PROC.iter().map(|p| proc.join(p)) {
        if path.exists() {
            bind(&path, &path, true)?;
        }
    }
    Ok(())
}

/// Makes `root` the root directory and lets go of the old one.
fn pivot(root: &Path) -> Result<(), ShimError> {
    chdir(root).step(|| format!("changing to {}", root.display()))?;
    pivot_root(".", ".").step(|| "pivot_root".into())?;
    umount2(".", MntFlags::MNT_DETACH).step(|| "detaching the old root".into())?;
    chdir("/").step(|| "changing to /".into())
}
