//! Unpacking one layer's tar stream into a directory in overlayfs form: an OCI whiteout
//! `.wh.NAME` becomes a 0/0 character device `NAME`, an opaque marker `.wh..wh..opq` the
//! `trusted.overlay.opaque=y` xattr on its directory. Owners, modes, mtimes and xattrs are
//! kept (overlay xattrs from the tar excepted, so a layer cannot forge overlay metadata).
//!
//! A layer is hostile until proven otherwise: no entry may write outside the directory. An
//! entry path with `..`, an entry written through a symlink (wherever that symlink points),
//! and a hard link to anything but a file of the layer itself fail the unpack; a leading `/`
//! is read as the layer's root, as tar does; device nodes other than whiteouts are skipped.

use std::ffi::{CString, OsStr};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;

/// The prefix of an OCI whiteout entry.
const WHITEOUT: &str = ".wh.";
/// The name of an OCI opaque-directory marker.
const OPAQUE: &str = ".wh..wh..opq";
/// The xattr overlayfs reads as "this directory hides the lower ones".
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The PAX prefix of an entry's xattrs.
const PAX_XATTR: &str = "SCHILY.xattr.";

/// Why a layer cannot be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("entry {path:?} climbs out of the layer with `..`")]
    ParentDir { path: String },
    #[error("entry {path:?} goes through the symlink {link:?}, which may lead outside the layer")]
    ThroughSymlink { path: String, link: String },
    #[error("entry {path:?} goes through {parent:?}, which is not a directory")]
    NotDirectory { path: String, parent: String },
    #[error("hard link {path:?} points to {target:?}, which is not a file of the layer")]
    HardLink { path: String, target: String },
    #[error("is not a readable tar stream: {source}")]
    Read {
        #[source]
        source: std::io::Error,
    },
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A layer blob (or an archive) as a tar stream: gzip and zstd are recognized by their magic
/// bytes, anything else is read as a plain tar.
pub fn decompressed(blob: impl Read + 'static) -> Result<Box<dyn Read>, UnpackError> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(blob);
    let magic = reader
        .fill_buf()
        .map_err(|source| UnpackError::Read { source })?;
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(reader))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(
            zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(|source| UnpackError::Read { source })?,
        )
    } else {
        Box::new(reader)
    })
}

/// The entry's path relative to the layer's root: `.` and a leading `/` dropped, `..` refused.
fn relative(path: &Path) -> Result<PathBuf, UnpackError> {
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                return Err(UnpackError::ParentDir {
                    path: path.display().to_string(),
                })
            }
        }
    }
    Ok(relative)
}

/// Unpacks `tar` into `root` (an empty directory only this unpack writes to).
pub fn unpack_into(tar: impl Read, root: &Path) -> Result<(), UnpackError> {
    let read = |source| UnpackError::Read { source };
    let mut archive = tar::Archive::new(tar);
    // Directory mtimes are set last: creating their entries changes them.
    let mut dir_times = Vec::new();
    for entry in archive.entries().map_err(read)? {
        let mut entry = entry.map_err(read)?;
        let shown = entry.path().map_err(read)?.display().to_string();
        let rel = relative(&entry.path().map_err(read)?)?;
        let Some(name) = rel.file_name().map(OsStr::to_os_string) else {
            // The layer's root itself (`./`).
            if entry.header().entry_type().is_dir() {
                set_metadata(root, &mut entry, false)?;
                dir_times.push((root.to_path_buf(), mtime(&entry)));
            }
            continue;
        };
        let parent = root.join(rel.parent().unwrap_or(Path::new("")));
        make_parents(root, &rel, &shown)?;
        let name_bytes = name.as_bytes();
        if name_bytes == OPAQUE.as_bytes() {
            set_xattr(&parent, OPAQUE_XATTR, b"y")?;
            continue;
        }
        if let Some(hidden) = name_bytes.strip_prefix(WHITEOUT.as_bytes()) {
            // `.wh..wh.*` other than the opaque marker is aufs bookkeeping: nothing to make.
            if !hidden.starts_with(WHITEOUT.as_bytes()) && !hidden.is_empty() {
                let target = parent.join(OsStr::from_bytes(hidden));
                clear(&target, false)?;
                nix::sys::stat::mknod(
                    &target,
                    SFlag::S_IFCHR,
                    Mode::empty(),
                    nix::sys::stat::makedev(0, 0),
                )
                .map_err(|errno| write_error(&target, errno.into()))?;
            }
            continue;
        }
        let target = root.join(&rel);
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Directory => {
                clear(&target, true)?;
                if !target.is_dir() {
                    std::fs::create_dir(&target).map_err(|e| write_error(&target, e))?;
                }
                set_metadata(&target, &mut entry, false)?;
                dir_times.push((target, mtime(&entry)));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                clear(&target, false)?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(|e| write_error(&target, e))?;
                std::io::copy(&mut entry, &mut file).map_err(read)?;
                drop(file);
                set_metadata(&target, &mut entry, false)?;
                set_mtime(&target, mtime(&entry))?;
            }
            tar::EntryType::Symlink => {
                let link = entry.link_name().map_err(read)?.unwrap_or_default();
                clear(&target, false)?;
                std::os::unix::fs::symlink(&link, &target).map_err(|e| write_error(&target, e))?;
                set_metadata(&target, &mut entry, true)?;
                set_mtime(&target, mtime(&entry))?;
            }
            tar::EntryType::Link => {
                let link = entry.link_name().map_err(read)?.unwrap_or_default();
                let bad = || UnpackError::HardLink {
                    path: shown.clone(),
                    target: link.display().to_string(),
                };
                let source_rel = relative(&link).map_err(|_| bad())?;
                let source = root.join(&source_rel);
                inside(root, &source_rel, &shown).map_err(|_| bad())?;
                let is_file = std::fs::symlink_metadata(&source)
                    .is_ok_and(|m| !m.is_dir() && source_rel.file_name().is_some());
                if !is_file {
                    return Err(bad());
                }
                if source != target {
                    clear(&target, false)?;
                    std::fs::hard_link(&source, &target).map_err(|e| write_error(&target, e))?;
                }
            }
            tar::EntryType::Fifo => {
                clear(&target, false)?;
                nix::unistd::mkfifo(&target, Mode::from_bits_truncate(0o600))
                    .map_err(|errno| write_error(&target, errno.into()))?;
                set_metadata(&target, &mut entry, false)?;
                set_mtime(&target, mtime(&entry))?;
            }
            // Device nodes would hand a container the host's devices; the runtime makes /dev.
            // PAX and GNU headers the tar crate did not fold into an entry carry nothing.
            _ => tracing::debug!(entry = %shown, ?kind, "skipping a layer entry"),
        }
    }
    for (dir, time) in dir_times.into_iter().rev() {
        set_mtime(&dir, time)?;
    }
    Ok(())
}

fn write_error(path: &Path, source: std::io::Error) -> UnpackError {
    UnpackError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Fails unless every existing directory on the way to `rel` under `root` is a real directory
/// (no symlink), so nothing written at `rel` can land outside `root`.
fn inside(root: &Path, rel: &Path, shown: &str) -> Result<(), UnpackError> {
    let mut at = root.to_path_buf();
    let parents: Vec<_> = rel
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    for part in parents {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(UnpackError::ThroughSymlink {
                    path: shown.to_string(),
                    link: at.strip_prefix(root).unwrap_or(&at).display().to_string(),
                })
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(UnpackError::NotDirectory {
                    path: shown.to_string(),
                    parent: at.strip_prefix(root).unwrap_or(&at).display().to_string(),
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(write_error(&at, e)),
        }
    }
    Ok(())
}

/// Checks the way to `rel` (see [`inside`]) and creates its missing parent directories, as
/// tar does for entries whose directories the archive does not list.
fn make_parents(root: &Path, rel: &Path, shown: &str) -> Result<(), UnpackError> {
    inside(root, rel, shown)?;
    if let Some(parent) = rel.parent() {
        let parent = root.join(parent);
        std::fs::create_dir_all(&parent).map_err(|e| write_error(&parent, e))?;
    }
    Ok(())
}

/// Removes what is at `path` so a new entry can take its place; a directory stays when the new
/// entry is one too (tar merges them).
fn clear(path: &Path, keep_dir: bool) -> Result<(), UnpackError> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() && keep_dir => Ok(()),
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|e| write_error(path, e))
}

fn mtime<R: Read>(entry: &tar::Entry<'_, R>) -> i64 {
    entry
        .header()
        .mtime()
        .ok()
        .and_then(|t| i64::try_from(t).ok())
        .unwrap_or(0)
}

fn set_mtime(path: &Path, seconds: i64) -> Result<(), UnpackError> {
    let time = TimeSpec::new(seconds, 0);
    nix::sys::stat::utimensat(
        None,
        path,
        &time,
        &time,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|errno| write_error(path, errno.into()))
}

/// Owner, then mode (chown clears set-id bits), then the entry's xattrs. Changing owners
/// needs root: without it files stay the unpacker's.
fn set_metadata<R: Read>(
    path: &Path,
    entry: &mut tar::Entry<'_, R>,
    symlink: bool,
) -> Result<(), UnpackError> {
    let header = entry.header();
    let (uid, gid) = (header.uid().ok(), header.gid().ok());
    let owner = |id: Option<u64>| id.and_then(|id| u32::try_from(id).ok());
    match std::os::unix::fs::lchown(path, owner(uid), owner(gid)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {}
        Err(e) => return Err(write_error(path, e)),
    }
    if !symlink {
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(|e| write_error(path, e))?;
    }
    let Ok(Some(extensions)) = entry.pax_extensions() else {
        return Ok(());
    };
    let xattrs: Vec<(String, Vec<u8>)> = extensions
        .filter_map(Result::ok)
        .filter_map(|ext| {
            let name = ext.key().ok()?.strip_prefix(PAX_XATTR)?.to_string();
            Some((name, ext.value_bytes().to_vec()))
        })
        .filter(|(name, _)| !name.starts_with("trusted.overlay."))
        .collect();
    for (name, value) in xattrs {
        // A filesystem without xattrs (or a name it refuses) loses them, as tar does.
        if let Err(err) = set_xattr(path, &name, &value) {
            tracing::debug!(%err, xattr = %name, "dropping a layer entry's xattr");
        }
    }
    Ok(())
}

/// Sets an xattr on `path` itself, never on what a symlink there points to.
fn set_xattr(path: &Path, name: &str, value: &[u8]) -> Result<(), UnpackError> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| write_error(path, std::io::Error::other(e)))?;
    let c_name = CString::new(name).map_err(|e| write_error(path, std::io::Error::other(e)))?;
    // SAFETY: both strings are NUL-terminated and outlive the call; the value's pointer and
    // length come from one slice.
    let result = unsafe {
        libc::lsetxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(write_error(path, std::io::Error::last_os_error()))
    }
}

#[cfg(test)]
mod tests;
