//! Cgroup v1: one directory per controller hierarchy (memory, cpu, cpuacct, pids), each
//! mounted on its own under the cgroup root (`cpu,cpuacct` when the two are co-mounted).

use std::path::{Path, PathBuf};

use super::{
    keyed, mkdir, number, shares, write, Cgroup, CgroupError, CgroupLimits, CgroupUsage,
    CgroupVersion, CPU_PERIOD_US,
};

/// The hierarchies a container joins; a host lacking one (no pids controller) skips it.
const CONTROLLERS: [&str; 4] = ["memory", "cpu", "cpuacct", "pids"];

pub(super) fn create(root: &Path, parent: &str, name: &str) -> Result<Cgroup, CgroupError> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for controller in CONTROLLERS {
        let hierarchy = root.join(controller);
        if !hierarchy.join("cgroup.procs").exists() {
            continue;
        }
        // `cpu` and `cpuacct` may be one hierarchy under two names.
        let dir = hierarchy.join(parent).join(name);
        let canonical = hierarchy.canonicalize().unwrap_or(hierarchy);
        if dirs.iter().any(|d| d.starts_with(&canonical)) {
            continue;
        }
        mkdir(&dir)?;
        dirs.push(canonical.join(parent).join(name));
    }
    Ok(Cgroup {
        version: CgroupVersion::V1,
        dirs,
    })
}

pub(super) fn apply(dirs: &[PathBuf], limits: &CgroupLimits) -> Result<(), CgroupError> {
    for dir in dirs {
        if let Some(bytes) = limits.memory_bytes {
            if dir.join("memory.limit_in_bytes").exists() {
                write(&dir.join("memory.limit_in_bytes"), &bytes.to_string())?;
                // With swap accounting, the limit holds for memory and swap together.
                let memsw = dir.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    write(&memsw, &bytes.to_string())?;
                }
            }
        }
        if let Some(millis) = limits.cpu_millis {
            if dir.join("cpu.cfs_quota_us").exists() {
                write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                let quota = (millis * CPU_PERIOD_US / 1000).max(1000);
                write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
                write(&dir.join("cpu.shares"), &shares(millis).to_string())?;
            }
        }
        if let Some(pids) = limits.pids {
            if dir.join("pids.max").exists() {
                write(&dir.join("pids.max"), &pids.to_string())?;
            }
        }
    }
    Ok(())
}

pub(super) fn usage(dirs: &[PathBuf]) -> CgroupUsage {
    let mut usage = CgroupUsage::default();
    for dir in dirs {
        if dir.join("cpuacct.usage").exists() {
            usage.cpu_nanos = number(&dir.join("cpuacct.usage"));
        }
        if dir.join("memory.usage_in_bytes").exists() {
            let stat = dir.join("memory.stat");
            usage.memory_bytes = number(&dir.join("memory.usage_in_bytes"));
            usage.working_set_bytes = usage
                .memory_bytes
                .saturating_sub(keyed(&stat, "total_inactive_file"));
            usage.rss_bytes = keyed(&stat, "total_rss");
        }
    }
    usage
}
