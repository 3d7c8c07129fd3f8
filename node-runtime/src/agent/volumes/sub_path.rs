//! `subPath` and `subPathExpr`: a directory or single file inside a volume, mounted alone.
//! A Wasm guest can only be given directories (WASI preopens), so a single file is hard
//! linked (or copied) into a directory of its own, preopened at the mountPath's parent.

use std::path::{Component, Path, PathBuf};

use skiff_api::validation::check_relative;

use super::VolumeError;

/// `$(VAR)` replaced from the container's environment, as Kubernetes expands it: an unknown
/// variable stays as written and `$$` is a literal `$`.
pub fn expand(expr: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some((name, after)) = tail.strip_prefix("$(").and_then(|t| t.split_once(')'))
        {
            match env.iter().rev().find(|(n, _)| n == name) {
                Some((_, value)) => out.push_str(value),
                None => out.push_str(&tail[..name.len() + 3]),
            }
            rest = after;
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// `base/sub`, made as a directory if it does not exist yet (as the kubelet does); refused
/// when `sub` is absolute, has a `..`, or resolves (through symlinks) outside `base`. The path
/// is walked one component at a time: what exists is resolved and checked before anything
/// below it is made, so a symlink a container left in the volume never gets a directory made
/// outside it.
pub fn resolve(base: &Path, sub: &str) -> Result<PathBuf, VolumeError> {
    let refuse = |message: &str| VolumeError::SubPath {
        sub_path: sub.to_string(),
        message: message.to_string(),
    };
    check_relative(sub).map_err(refuse)?;
    let io = |source| VolumeError::Io {
        context: format!("subPath {sub:?}"),
        source,
    };
    let real_base = base.canonicalize().map_err(io)?;
    let mut current = real_base.clone();
    for part in Path::new(sub).components() {
        let Component::Normal(part) = part else {
            continue;
        };
        let next = current.join(part);
        match std::fs::symlink_metadata(&next) {
            Ok(_) => {
                let real = next.canonicalize().map_err(io)?;
                if !real.starts_with(&real_base) {
                    return Err(refuse("resolves outside the volume"));
                }
                current = real;
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                // `current` is real and inside the volume, and `part` a plain name.
                std::fs::create_dir(&next).map_err(io)?;
                current = next;
            }
            Err(err) => return Err(io(err)),
        }
    }
    Ok(current)
}

/// Makes `stage` a directory holding only `file`, named as the last part of `mount_path`;
/// returns the directory to preopen at the mountPath's parent and that parent.
pub fn stage_file(
    stage: &Path,
    file: &Path,
    mount_path: &str,
) -> Result<(PathBuf, String), VolumeError> {
    let mount = Path::new(mount_path);
    let (Some(parent), Some(name)) = (mount.parent(), mount.file_name()) else {
        return Err(VolumeError::SubPath {
            sub_path: mount_path.to_string(),
            message: "a single file needs a mountPath with a parent directory".into(),
        });
    };
    let io = |source| VolumeError::Io {
        context: format!("staging {} for {mount_path}", file.display()),
        source,
    };
    let file = file.canonicalize().map_err(io)?;
    let _ = std::fs::remove_dir_all(stage);
    std::fs::create_dir_all(stage).map_err(io)?;
    let target = stage.join(name);
    if std::fs::hard_link(&file, &target).is_err() {
        std::fs::copy(&file, &target).map_err(io)?;
    }
    Ok((stage.to_path_buf(), parent.to_string_lossy().into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_table() {
        let env = vec![("POD".to_string(), "web-0".to_string())];
        let cases = [
            ("logs/$(POD)", "logs/web-0"),
            ("$(POD)/$(MISSING)", "web-0/$(MISSING)"),
            ("a$$b", "a$b"),
            ("plain", "plain"),
            ("end$", "end$"),
        ];
        for (expr, want) in cases {
            assert_eq!(expand(expr, &env), want, "{expr}");
        }
    }

    #[test]
    fn resolves_inside_the_volume_only() {
        let root = tempfile::tempdir().expect("tempdir");
        let base = root.path().join("vol");
        std::fs::create_dir_all(&base).expect("base");
        let made = resolve(&base, "a/b").expect("made");
        assert!(made.is_dir());
        assert!(resolve(&base, "../x").is_err());
        assert!(resolve(&base, "/etc").is_err());
        std::os::unix::fs::symlink("/etc", base.join("escape")).expect("symlink");
        let err = resolve(&base, "escape").expect_err("escape");
        assert!(err.to_string().contains("outside the volume"), "{err}");
        // Nothing is made through a symlink that leads out, not even on the way to a refusal.
        let outside = root.path().join("outside");
        std::fs::create_dir(&outside).expect("outside");
        std::os::unix::fs::symlink(&outside, base.join("link")).expect("symlink");
        let err = resolve(&base, "link/new/deeper").expect_err("escape");
        assert!(err.to_string().contains("outside the volume"), "{err}");
        assert!(
            !outside.join("new").exists(),
            "a directory was made outside the volume"
        );
        // A symlink that stays inside is followed.
        std::os::unix::fs::symlink(base.join("a"), base.join("inner")).expect("symlink");
        assert_eq!(
            resolve(&base, "inner/b").expect("inside"),
            made.canonicalize().expect("real")
        );
    }

    #[test]
    fn single_files_are_staged_alone() {
        let root = tempfile::tempdir().expect("tempdir");
        let file = root.path().join("key");
        std::fs::write(&file, "v").expect("file");
        let stage = root.path().join("stage");
        let (dir, parent) = stage_file(&stage, &file, "/etc/app.conf").expect("stage");
        assert_eq!(parent, "/etc");
        assert_eq!(
            std::fs::read_to_string(dir.join("app.conf")).expect("read"),
            "v"
        );
        assert_eq!(std::fs::read_dir(&dir).expect("list").count(), 1);
    }
}
