//! Garbage collection of `DATA_DIR/pods/<uid>` directories whose pods no longer exist (their
//! tmpfs volumes unmounted first).

use std::path::Path;

use super::volumes;

/// Removes every directory under `pods_dir` whose name (a pod uid) is not in `keep`; returns
/// how many were removed. A missing `pods_dir` has nothing to collect.
pub async fn collect_garbage(pods_dir: &Path, keep: &[String]) -> usize {
    let mut entries = match tokio::fs::read_dir(pods_dir).await {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return 0,
        Err(err) => {
            tracing::warn!(dir = %pods_dir.display(), %err, "listing pod directories failed");
            return 0;
        }
    };
    let mut removed = 0;
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name().to_string_lossy().into_owned();
        if keep.contains(&name) {
            continue;
        }
        let dir = entry.path();
        let _ = tokio::task::spawn_blocking(move || volumes::unmount_pod_dir(&dir)).await;
        match tokio::fs::remove_dir_all(entry.path()).await {
            Ok(()) => {
                tracing::info!(uid = %name, "removed the directory of a pod that is gone");
                removed += 1;
            }
            Err(err) => tracing::warn!(uid = %name, %err, "removing a pod directory failed"),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn removes_only_the_directories_of_pods_not_kept() {
        let root = tempfile::tempdir().expect("tempdir");
        for uid in ["live", "gone-1", "gone-2"] {
            std::fs::create_dir_all(root.path().join(uid).join("logs")).expect("mkdir");
        }
        let removed = collect_garbage(root.path(), &["live".to_string()]).await;
        assert_eq!(removed, 2);
        let left: Vec<_> = std::fs::read_dir(root.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left, ["live"]);
        assert_eq!(collect_garbage(&root.path().join("absent"), &[]).await, 0);
    }
}
