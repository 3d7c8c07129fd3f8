//! Paths inside a container's root filesystem, resolved as runc's securejoin does: symlinks
//! in the image are followed as the container would see them (an absolute link starts again
//! at the root, `..` stops at the root), so a volume target such as `/data` that the image
//! makes a link to `/etc` (or to any host path) lands under the root, never outside it.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Links followed before giving up (the kernel's limit for a path is 40; runc's is 255).
const MAX_LINKS: usize = 255;

/// `path` (as the container names it) resolved under `root`; the parts that do not exist yet
/// are appended as they are.
pub fn secure_join(root: &Path, path: &str) -> std::io::Result<PathBuf> {
    let mut pending: Vec<OsString> = parts(Path::new(path));
    pending.reverse();
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let full = root.join(&candidate);
        match std::fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("too many symbolic links in {path}"),
                    ));
                }
                let target = std::fs::read_link(&full)?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                pending.extend(parts(&target).into_iter().rev());
            }
            _ => resolved = candidate,
        }
    }
    Ok(root.join(resolved))
}

/// The names and `..`s of a path (`/` and `.` dropped).
fn parts(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn links_resolve_inside_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (root, host) = (dir.path().join("root"), dir.path().join("host"));
        std::fs::create_dir_all(root.join("etc/app")).expect("mkdir");
        std::fs::create_dir_all(&host).expect("mkdir");
        symlink(&host, root.join("abs")).expect("link");
        symlink("/etc", root.join("data")).expect("link");
        symlink("../../../..", root.join("etc/up")).expect("link");
        symlink("app", root.join("etc/rel")).expect("link");
        symlink("loop", root.join("loop")).expect("link");
        let join = |p: &str| secure_join(&root, p).expect(p);
        assert_eq!(join("/data/x"), root.join("etc/x"));
        assert_eq!(
            join("/abs/x"),
            root.join(host.strip_prefix("/").expect("abs")).join("x")
        );
        assert_eq!(join("/etc/up/x"), root.join("x"));
        assert_eq!(join("/../../x"), root.join("x"));
        assert_eq!(join("/etc/rel/y"), root.join("etc/app/y"));
        assert_eq!(join("new/dir"), root.join("new/dir"));
        assert!(secure_join(&root, "/loop/x").is_err());
    }
}
