//! Files of a configMap, secret, downwardAPI or projected volume, written as the kubelet's
//! AtomicWriter does: the payload goes into a fresh timestamped directory `..<nanos>`, the
//! `..data` symlink is swapped to it with one rename, and each top-level name is a symlink
//! through `..data`; a reader sees the old set of files or the new one, never a mix.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The symlink to the current payload directory.
const DATA: &str = "..data";
/// Made next to `..data`, then renamed over it.
const DATA_TMP: &str = "..data_tmp";

/// One file of a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// Relative path (already checked to stay inside the volume) → file.
pub type Payload = BTreeMap<String, File>;

/// Makes `dir` show exactly `payload`; false when it already did (nothing written).
pub fn write(dir: &Path, payload: &Payload) -> io::Result<bool> {
    std::fs::create_dir_all(dir)?;
    let old = std::fs::read_link(dir.join(DATA)).ok();
    if let Some(old) = &old {
        if read_payload(&dir.join(old))? == *payload {
            return Ok(false);
        }
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut name = format!("..{nanos}");
    while dir.join(&name).exists() {
        name.push('_');
    }
    let fresh = dir.join(&name);
    std::fs::create_dir(&fresh)?;
    for (path, file) in payload {
        let target = fresh.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, &file.data)?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(file.mode))?;
    }
    let tmp = dir.join(DATA_TMP);
    let _ = std::fs::remove_file(&tmp);
    symlink(&name, &tmp)?;
    std::fs::rename(&tmp, dir.join(DATA))?;
    let top: Vec<&str> = payload.keys().filter_map(|p| p.split('/').next()).collect();
    for name in &top {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(Path::new(DATA).join(name), &link)?;
        }
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let entry_name = entry.file_name().to_string_lossy().into_owned();
        if entry_name.starts_with("..") {
            if entry_name != DATA && entry_name != name {
                std::fs::remove_dir_all(entry.path())?;
            }
        } else if !top.contains(&entry_name.as_str()) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(true)
}

/// The files under a payload directory (empty when it is missing).
fn read_payload(dir: &Path) -> io::Result<Payload> {
    let mut payload = Payload::new();
    let mut pending = vec![String::new()];
    while let Some(prefix) = pending.pop() {
        let entries = match std::fs::read_dir(dir.join(&prefix)) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        for entry in entries {
            let entry = entry?;
            let path = if prefix.is_empty() {
                entry.file_name().to_string_lossy().into_owned()
            } else {
                format!("{prefix}/{}", entry.file_name().to_string_lossy())
            };
            let meta = entry.metadata()?;
            if meta.is_dir() {
                pending.push(path);
            } else {
                let data = std::fs::read(entry.path())?;
                let mode = meta.permissions().mode() & 0o7777;
                payload.insert(path, File { data, mode });
            }
        }
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(files: &[(&str, &str, u32)]) -> Payload {
        files
            .iter()
            .map(|(p, d, m)| {
                let file = File {
                    data: d.as_bytes().to_vec(),
                    mode: *m,
                };
                (p.to_string(), file)
            })
            .collect()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("..") || n == DATA)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_swaps_and_prunes() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("vol");
        let first = payload(&[("a", "1", 0o644), ("sub/b", "2", 0o600)]);
        assert!(write(&dir, &first).expect("write"));
        assert_eq!(names(&dir), ["..data", "a", "sub"]);
        assert_eq!(std::fs::read_to_string(dir.join("a")).expect("a"), "1");
        assert_eq!(std::fs::read_to_string(dir.join("sub/b")).expect("b"), "2");
        let mode = std::fs::metadata(dir.join("sub/b"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(std::fs::symlink_metadata(dir.join("a"))
            .expect("link")
            .is_symlink());

        assert!(
            !write(&dir, &first).expect("same payload"),
            "unchanged payload rewritten"
        );

        let second = payload(&[("a", "changed", 0o644), ("c", "3", 0o644)]);
        assert!(write(&dir, &second).expect("update"));
        assert_eq!(names(&dir), ["..data", "a", "c"]);
        assert_eq!(
            std::fs::read_to_string(dir.join("a")).expect("a"),
            "changed"
        );
        let dirs = std::fs::read_dir(&dir)
            .expect("list")
            .filter(|e| {
                let name = e.as_ref().expect("entry").file_name();
                let name = name.to_string_lossy();
                name.starts_with("..") && name != DATA
            })
            .count();
        assert_eq!(dirs, 1, "the old payload directory is removed");

        assert!(write(&dir, &Payload::new()).expect("empty"));
        assert_eq!(names(&dir), ["..data"]);
    }
}
