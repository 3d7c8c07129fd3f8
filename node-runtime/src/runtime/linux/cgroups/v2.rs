//! Cgroup v2: one directory in the unified hierarchy, its controllers enabled in the
//! parents' `cgroup.subtree_control`.

use std::path::Path;

use super::{
    keyed, mkdir, number, write, Cgroup, CgroupError, CgroupLimits, CgroupUsage, CgroupVersion,
    CPU_PERIOD_US,
};

pub(super) fn create(root: &Path, parent: &str, name: &str) -> Result<Cgroup, CgroupError> {
    let parent_dir = root.join(parent);
    mkdir(&parent_dir)?;
    // The root's and the parent's children get the controllers a container needs.
    for dir in [root, parent_dir.as_path()] {
        let available = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        let wanted: Vec<String> = ["cpu", "memory", "pids"]
            .into_iter()
            .filter(|c| available.split_whitespace().any(|a| a == *c))
            .map(|c| format!("+{c}"))
            .collect();
        if !wanted.is_empty() {
            write(&dir.join("cgroup.subtree_control"), &wanted.join(" "))?;
        }
    }
    let dir = parent_dir.join(name);
    mkdir(&dir)?;
    Ok(Cgroup {
        version: CgroupVersion::V2,
        dirs: vec![dir],
    })
}

pub(super) fn apply(dir: &Path, limits: &CgroupLimits) -> Result<(), CgroupError> {
    if let Some(bytes) = limits.memory_bytes {
        write(&dir.join("memory.max"), &bytes.to_string())?;
        let swap = dir.join("memory.swap.max");
        if swap.exists() {
            write(&swap, "0")?;
        }
    }
    if let Some(millis) = limits.cpu_millis {
        let quota = (millis * CPU_PERIOD_US / 1000).max(1000);
        write(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?;
        // cgroup v2's weight from v1 shares, as runc converts them.
        let weight = 1 + ((super::shares(millis) - 2) * 9999) / 262142;
        write(&dir.join("cpu.weight"), &weight.to_string())?;
    }
    if let Some(pids) = limits.pids {
        write(&dir.join("pids.max"), &pids.to_string())?;
    }
    Ok(())
}

pub(super) fn usage(dir: &Path) -> CgroupUsage {
    let current = number(&dir.join("memory.current"));
    let stat = dir.join("memory.stat");
    CgroupUsage {
        cpu_nanos: keyed(&dir.join("cpu.stat"), "usage_usec") * 1000,
        memory_bytes: current,
        working_set_bytes: current.saturating_sub(keyed(&stat, "inactive_file")),
        rss_bytes: keyed(&stat, "anon"),
    }
}
