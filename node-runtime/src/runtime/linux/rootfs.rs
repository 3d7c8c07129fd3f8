//! A container's root filesystem from its image's layers: an overlay mount (the layers as
//! read-only lower directories, a per-container upper and work directory), or, where the
//! kernel or filesystem refuses overlay, a copy of the layers applied in order with their
//! whiteouts.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// A root filesystem could not be made or unmade.
#[derive(Debug, thiserror::Error)]
#[error("root filesystem {}: {context}: {source}", path.display())]
pub struct RootfsError {
    pub path: PathBuf,
    pub context: &'static str,
    #[source]
    pub source: std::io::Error,
}

fn err(path: &Path, context: &'static str) -> impl FnOnce(std::io::Error) -> RootfsError {
    let path = path.to_path_buf();
    move |source| RootfsError {
        path,
        context,
        source,
    }
}

/// How a root filesystem was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootfsKind {
    Overlay,
    Copy,
}

/// Makes `dir/rootfs` from `layers` (lowest first): an overlay with `dir/upper` and
/// `dir/work`, else a copy.
pub fn prepare(dir: &Path, layers: &[PathBuf]) -> Result<RootfsKind, RootfsError> {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).map_err(err(&rootfs, "creating"))?;
    if overlay(dir, layers).is_ok() {
        return Ok(RootfsKind::Overlay);
    }
    for layer in layers {
        copy_layer(layer, &rootfs)?;
    }
    Ok(RootfsKind::Copy)
}

fn overlay(dir: &Path, layers: &[PathBuf]) -> nix::Result<()> {
    let (upper, work) = (dir.join("upper"), dir.join("work"));
    for d in [&upper, &work] {
        std::fs::create_dir_all(d).map_err(|_| nix::Error::EIO)?;
    }
    // overlayfs wants the topmost lower directory first.
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|l| l.display().to_string())
        .collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        &dir.join("rootfs"),
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
}

/// Unmounts (if mounted) and deletes the container's root filesystem directories.
pub fn remove(dir: &Path) -> Result<(), RootfsError> {
    let rootfs = dir.join("rootfs");
    match umount2(&rootfs, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(err(&rootfs, "unmounting")(e.into())),
    }
    for name in ["rootfs", "upper", "work"] {
        let path = dir.join(name);
        match std::fs::remove_dir_all(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(err(&path, "removing")(e))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Applies one layer in overlayfs form onto `to`: a 0/0 character device deletes the path
/// below it, an opaque directory empties what lay there before.
fn copy_layer(from: &Path, to: &Path) -> Result<(), RootfsError> {
    let entries = std::fs::read_dir(from).map_err(err(from, "reading layer"))?;
    for entry in entries {
        let entry = entry.map_err(err(from, "reading layer"))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&src).map_err(err(&src, "reading layer"))?;
        let kind = meta.file_type();
        if kind.is_char_device() && meta.rdev() == 0 {
            remove_any(&dst)?;
        } else if kind.is_dir() {
            let existing = std::fs::symlink_metadata(&dst).ok();
            if opaque(&src) || existing.as_ref().is_some_and(|m| !m.is_dir()) {
                remove_any(&dst)?;
            }
            std::fs::create_dir_all(&dst).map_err(err(&dst, "creating directory"))?;
            std::fs::set_permissions(&dst, meta.permissions()).map_err(err(&dst, "chmod"))?;
            let _ = std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()));
            copy_layer(&src, &dst)?;
        } else {
            remove_any(&dst)?;
            if kind.is_symlink() {
                let target = std::fs::read_link(&src).map_err(err(&src, "reading link"))?;
                std::os::unix::fs::symlink(target, &dst).map_err(err(&dst, "linking"))?;
            } else if kind.is_file() {
                std::fs::copy(&src, &dst).map_err(err(&dst, "copying"))?;
            } else {
                // Devices, fifos and sockets of an image are not recreated.
                continue;
            }
            let _ = std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()));
        }
    }
    Ok(())
}

fn opaque(dir: &Path) -> bool {
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut value = [0u8; 1];
    // SAFETY: both buffers are valid for the lengths given.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    n == 1 && value[0] == b'y'
}

fn remove_any(path: &Path) -> Result<(), RootfsError> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    };
    result.map_err(err(path, "removing"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copying_applies_layers_and_whiteouts_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (low, high, to) = (
            dir.path().join("low"),
            dir.path().join("high"),
            dir.path().join("to"),
        );
        std::fs::create_dir_all(low.join("etc")).expect("mkdir");
        std::fs::write(low.join("etc/gone"), "x").expect("write");
        std::fs::write(low.join("etc/kept"), "old").expect("write");
        std::fs::create_dir_all(high.join("etc")).expect("mkdir");
        std::fs::write(high.join("etc/kept"), "new").expect("write");
        nix::sys::stat::mknod(
            &high.join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .expect("whiteout");
        std::fs::create_dir_all(&to).expect("mkdir");
        copy_layer(&low, &to).expect("low");
        copy_layer(&high, &to).expect("high");
        assert!(!to.join("etc/gone").exists());
        assert_eq!(
            std::fs::read_to_string(to.join("etc/kept")).expect("read"),
            "new"
        );
    }
}
