//! Disk `emptyDir` volumes with a `sizeLimit`: the kubelet evicts a pod whose volume holds more
//! than its limit (a memory emptyDir is bounded by its tmpfs instead).

use std::path::{Path, PathBuf};

use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::quantity;

use super::{pod_volumes_dir, uid, volumes};

/// One disk emptyDir with a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    pub name: String,
    pub dir: PathBuf,
    pub limit: u64,
    /// The limit as written (`1Mi`), for the message.
    pub written: String,
}

/// The pod's disk emptyDirs that have a `sizeLimit`.
pub fn limited(pod: &Pod, pods_dir: &Path) -> Vec<Limited> {
    let root = pod_volumes_dir(pods_dir, uid(pod));
    volumes(pod)
        .iter()
        .filter_map(|v| {
            let empty = v.empty_dir.as_ref()?;
            if empty.medium.as_deref() == Some("Memory") {
                return None;
            }
            let written = empty.size_limit.as_ref()?.0.clone();
            let limit = quantity::parse_bytes(&written).ok()?;
            Some(Limited {
                name: v.name.clone(),
                dir: root.join(&v.name),
                limit,
                written,
            })
        })
        .collect()
}

/// The eviction message for the first volume over its limit, as the kubelet words it.
pub fn over_limit(volumes: &[Limited]) -> Option<String> {
    volumes.iter().find_map(|v| {
        (usage(&v.dir) > v.limit).then(|| {
            format!(
                "Usage of EmptyDir volume \"{}\" exceeds the limit \"{}\".",
                v.name, v.written
            )
        })
    })
}

/// Bytes of the files under `dir` (symlinks not followed; unreadable parts count nothing).
fn usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn disk_empty_dirs_over_their_limit() {
        let root = tempfile::tempdir().expect("tempdir");
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "uid": "u1"},
            "spec": {"containers": [], "volumes": [
                {"name": "small", "emptyDir": {"sizeLimit": "1Ki"}},
                {"name": "memory", "emptyDir": {"medium": "Memory", "sizeLimit": "1Ki"}},
                {"name": "open", "emptyDir": {}}
            ]}
        }))
        .expect("pod");
        let found = limited(&pod, root.path());
        assert_eq!(
            found,
            [Limited {
                name: "small".into(),
                dir: root.path().join("u1/volumes/small"),
                limit: 1024,
                written: "1Ki".into(),
            }]
        );
        let dir = &found[0].dir;
        std::fs::create_dir_all(dir.join("sub")).expect("dir");
        std::fs::write(dir.join("a"), [0u8; 600]).expect("a");
        assert_eq!(over_limit(&found), None);
        std::fs::write(dir.join("sub/b"), [0u8; 600]).expect("b");
        assert_eq!(
            over_limit(&found).as_deref(),
            Some("Usage of EmptyDir volume \"small\" exceeds the limit \"1Ki\".")
        );
    }
}
