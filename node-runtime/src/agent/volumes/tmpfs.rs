//! `emptyDir` with `medium: Memory`: a tmpfs mounted on the volume's directory, its size
//! the volume's `sizeLimit`; unmounted before the pod's directory is removed.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::VolumeError;

/// Mounts a tmpfs of `size` bytes (the kernel's default, half the RAM, when `None`) on `dir`,
/// unless one is mounted there already.
pub fn mount_on(dir: &Path, size: Option<u64>) -> Result<(), VolumeError> {
    if mount_points().iter().any(|m| m == dir) {
        return Ok(());
    }
    let options = match size {
        Some(bytes) => format!("mode=0777,size={bytes}"),
        None => "mode=0777".to_string(),
    };
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(|errno| VolumeError::Tmpfs {
        dir: dir.to_path_buf(),
        source: errno.into(),
    })
}

/// Unmounts every mount at or below `root` (deepest first).
pub fn unmount_under(root: &Path) {
    let mut points: Vec<PathBuf> = mount_points()
        .into_iter()
        .filter(|m| m.starts_with(root))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for point in points {
        if let Err(err) = umount2(&point, MntFlags::MNT_DETACH) {
            tracing::warn!(dir = %point.display(), %err, "unmounting a volume failed");
        }
    }
}

/// The mount points of this process's mount namespace.
fn mount_points() -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root, as the agent does (the test suite runs as root).
    #[test]
    fn mounts_a_sized_tmpfs_and_unmounts_it() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("mem");
        std::fs::create_dir(&dir).expect("dir");
        mount_on(&dir, Some(1 << 20)).expect("mount");
        mount_on(&dir, Some(1 << 20)).expect("second mount is a no-op");
        assert!(mount_points().contains(&dir));
        let stat = nix::sys::statvfs::statvfs(&dir).expect("statvfs");
        assert_eq!(stat.blocks() * stat.fragment_size(), 1 << 20);
        std::fs::write(dir.join("f"), "x").expect("write");
        unmount_under(root.path());
        assert!(!mount_points().contains(&dir));
        assert!(!dir.join("f").exists(), "the tmpfs's files went with it");
    }
}
