//! Cgroups of Linux containers, v1 and v2 behind one [`Cgroup`] handle, the version detected
//! at start (as youki's libcgroups does): a pure v2 host has `cgroup.controllers` at
//! `/sys/fs/cgroup`; otherwise the v1 controller hierarchies are used, which also covers
//! hybrid hosts whose cgroup2 mount (`/sys/fs/cgroup/unified`) holds no controllers.

mod v1;
mod v2;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The root of the cgroup filesystems.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// A cgroup operation that failed, with the file it touched.
#[derive(Debug, thiserror::Error)]
#[error("cgroup {}: {source}", path.display())]
pub struct CgroupError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Which cgroup layout the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CgroupVersion {
    V1,
    V2,
}

impl CgroupVersion {
    /// The layout of the host whose cgroup filesystems are mounted at `root`.
    pub fn detect(root: &Path) -> Self {
        if root.join("cgroup.controllers").exists() {
            CgroupVersion::V2
        } else {
            CgroupVersion::V1
        }
    }
}

/// The limits a container's cgroup enforces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupLimits {
    pub memory_bytes: Option<u64>,
    /// CPU limit in millicores: a CFS quota per 100 ms period, and proportional shares.
    pub cpu_millis: Option<u64>,
    pub pids: Option<u64>,
}

/// What a cgroup used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupUsage {
    pub cpu_nanos: u64,
    /// All memory charged to the cgroup (`memory.current`), page cache included.
    pub memory_bytes: u64,
    /// Charged memory less the inactive file cache the kernel reclaims first (cAdvisor's
    /// working set: what the OOM killer and the kubelet's eviction look at).
    pub working_set_bytes: u64,
    /// Anonymous memory (`anon` in v2's `memory.stat`, `total_rss` in v1's).
    pub rss_bytes: u64,
}

/// One container's cgroup: a directory per v1 controller, or one v2 directory. It is plain
/// data, so the shim (which joins it) and a restarted agent can rebuild it from the state dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    pub version: CgroupVersion,
    /// Every directory of the cgroup (one per v1 hierarchy used; one for v2).
    pub dirs: Vec<PathBuf>,
}

/// The CFS period the quota is given for, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

impl Cgroup {
    /// Creates cgroup `parent/name` under `root` with `limits`.
    pub fn create(
        root: &Path,
        parent: &str,
        name: &str,
        limits: &CgroupLimits,
    ) -> Result<Self, CgroupError> {
        let cgroup = match CgroupVersion::detect(root) {
            CgroupVersion::V2 => v2::create(root, parent, name)?,
            CgroupVersion::V1 => v1::create(root, parent, name)?,
        };
        let applied = match cgroup.version {
            CgroupVersion::V2 => v2::apply(&cgroup.dirs[0], limits),
            CgroupVersion::V1 => v1::apply(&cgroup.dirs, limits),
        };
        if let Err(e) = applied {
            let _ = cgroup.remove();
            return Err(e);
        }
        Ok(cgroup)
    }

    /// Moves the calling process into the cgroup (`0` names the writer, in v1 and v2 alike).
    pub fn join_self(&self) -> Result<(), CgroupError> {
        for dir in &self.dirs {
            write(&dir.join("cgroup.procs"), "0")?;
        }
        Ok(())
    }

    /// How many times the kernel's OOM killer killed a process of the cgroup.
    pub fn oom_kills(&self) -> u64 {
        match self.version {
            CgroupVersion::V2 => keyed(&self.dirs[0].join("memory.events"), "oom_kill"),
            CgroupVersion::V1 => self
                .dirs
                .iter()
                .map(|dir| keyed(&dir.join("memory.oom_control"), "oom_kill"))
                .sum(),
        }
    }

    /// CPU time and memory use now.
    pub fn usage(&self) -> CgroupUsage {
        match self.version {
            CgroupVersion::V2 => v2::usage(&self.dirs[0]),
            CgroupVersion::V1 => v1::usage(&self.dirs),
        }
    }

    /// The host pids of the processes in the cgroup.
    pub fn pids(&self) -> Vec<i32> {
        let Some(dir) = self.dirs.first() else {
            return Vec::new();
        };
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Removes the cgroup's directories; those already gone are fine. The cgroup must be
    /// empty (its processes exited).
    pub fn remove(&self) -> Result<(), CgroupError> {
        for dir in &self.dirs {
            match std::fs::remove_dir(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(CgroupError {
                        path: dir.clone(),
                        source: e,
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(|source| CgroupError {
        path: path.to_path_buf(),
        source,
    })
}

fn mkdir(path: &Path) -> Result<(), CgroupError> {
    std::fs::create_dir_all(path).map_err(|source| CgroupError {
        path: path.to_path_buf(),
        source,
    })
}

/// A number from a file holding one.
fn number(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// The value of `key` in a flat keyed file (`key value` lines).
fn keyed(path: &Path, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let (k, v) = line.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok()).flatten()
            })
        })
        .unwrap_or(0)
}

/// CPU shares for a limit in millicores (1024 per core, as the kubelet converts).
fn shares(millis: u64) -> u64 {
    (millis * 1024 / 1000).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_layout_and_reads_keyed_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(CgroupVersion::detect(dir.path()), CgroupVersion::V1);
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu memory pids\n").expect("w");
        assert_eq!(CgroupVersion::detect(dir.path()), CgroupVersion::V2);
        let events = dir.path().join("memory.events");
        std::fs::write(&events, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n").expect("w");
        assert_eq!(keyed(&events, "oom_kill"), 2);
        assert_eq!(keyed(&events, "oom"), 1);
        assert_eq!(shares(500), 512);
    }

    #[test]
    fn working_set_leaves_out_inactive_file_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text);
        write(
            "cpu.stat",
            "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n",
        )
        .expect("w");
        write("memory.current", "10485760\n").expect("w");
        write(
            "memory.stat",
            "anon 3145728\nfile 7340032\nactive_file 1048576\ninactive_file 6291456\n",
        )
        .expect("w");
        assert_eq!(
            v2::usage(dir.path()),
            CgroupUsage {
                cpu_nanos: 2_500_000,
                memory_bytes: 10 << 20,
                working_set_bytes: 4 << 20,
                rss_bytes: 3 << 20,
            }
        );
    }
}
