//! `hostPath` types, checked (and for the `OrCreate` ones made) as the kubelet does.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use super::VolumeError;

/// Checks that `path` is what `kind` (`hostPath.type`) asks for, making it first for
/// `DirectoryOrCreate` and `FileOrCreate`. An empty or unset type checks nothing.
pub fn check(path: &Path, kind: Option<&str>) -> Result<(), VolumeError> {
    let kind = kind.unwrap_or_default();
    let fail = |expected: &'static str| VolumeError::HostPathType {
        path: path.to_path_buf(),
        expected,
    };
    let io = |source| VolumeError::Io {
        context: format!("hostPath {}", path.display()),
        source,
    };
    match kind {
        "DirectoryOrCreate" if !path.exists() => std::fs::create_dir_all(path).map_err(io)?,
        "FileOrCreate" if !path.exists() => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(io)?;
        }
        _ => {}
    }
    if kind.is_empty() {
        return Ok(());
    }
    let meta = std::fs::metadata(path);
    let file_type = meta.as_ref().map(|m| m.file_type()).ok();
    let ok = match kind {
        "DirectoryOrCreate" | "Directory" => file_type.is_some_and(|t| t.is_dir()),
        "FileOrCreate" | "File" => file_type.is_some_and(|t| t.is_file()),
        "Socket" => file_type.is_some_and(|t| t.is_socket()),
        "CharDevice" => file_type.is_some_and(|t| t.is_char_device()),
        "BlockDevice" => file_type.is_some_and(|t| t.is_block_device()),
        _ => false,
    };
    if ok {
        return Ok(());
    }
    Err(fail(match kind {
        "DirectoryOrCreate" | "Directory" => "a directory",
        "FileOrCreate" | "File" => "a file",
        "Socket" => "a socket",
        "CharDevice" => "a character device",
        "BlockDevice" => "a block device",
        _ => "of a known hostPath type",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_table() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("dir");
        let file = root.path().join("file");
        std::fs::create_dir(&dir).expect("dir");
        std::fs::write(&file, "x").expect("file");
        let absent = root.path().join("absent");
        let cases = [
            (dir.clone(), Some("Directory"), true),
            (file.clone(), Some("Directory"), false),
            (absent.clone(), Some("Directory"), false),
            (file.clone(), Some("File"), true),
            (dir.clone(), Some("File"), false),
            (absent.clone(), None, true),
            (absent.clone(), Some(""), true),
            (file.clone(), Some("Socket"), false),
            (
                Path::new("/dev/null").to_path_buf(),
                Some("CharDevice"),
                true,
            ),
            (
                root.path().join("made/dir"),
                Some("DirectoryOrCreate"),
                true,
            ),
            (root.path().join("made/file"), Some("FileOrCreate"), true),
            (file.clone(), Some("DirectoryOrCreate"), false),
        ];
        for (path, kind, ok) in cases {
            assert_eq!(
                check(&path, kind).is_ok(),
                ok,
                "{} {kind:?}",
                path.display()
            );
        }
        assert!(root.path().join("made/dir").is_dir());
        assert!(root.path().join("made/file").is_file());
        assert_eq!(
            check(&file, Some("Directory"))
                .expect_err("file")
                .to_string(),
            format!(
                "hostPath type check failed: {} is not a directory",
                file.display()
            )
        );
    }
}
