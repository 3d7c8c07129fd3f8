//! This node's local-path storage root: the directory the control plane's local-path
//! provisioner puts this node's volumes under (reported on the Node as
//! `skiff.dev/local-path-root`), and the sweep that removes the directories of volumes that
//! are gone (a Delete-reclaim volume whose claim was deleted).
//!
//! The sweep is deliberately careful: it only looks at the root's direct children named as
//! the provisioner names them (`pvc-<uid>_<namespace>_<claim>`), and removes one only when two
//! sweeps in a row found no PersistentVolume whose path is that directory, so a volume made
//! between a listing and the directory's creation is never taken for an orphan. A directory
//! whose volume said `Retain` when last seen is marked (`<root>/.retain/<name>`) and never
//! removed: deleting a Retain volume's object leaves its data, as in Kubernetes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use skiff_api::k8s_openapi::api::core::v1::PersistentVolume;
use skiff_api::storage::volume_path;
use skiff_client::{Client, ListParams};
use tokio_util::sync::CancellationToken;

use super::AgentError;

/// Pause between two sweeps.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Whether a directory name is one the provisioner makes: `pvc-<uid>_<namespace>_<claim>`.
fn is_provisioned_name(name: &str) -> bool {
    name.starts_with("pvc-") && name.split('_').count() >= 3
}

/// Where the names of directories whose volumes are retained are marked.
const RETAIN_MARKS: &str = ".retain";

/// The provisioned directories under `root` that no volume names and none retains.
fn orphans(
    root: &Path,
    entries: &[String],
    volume_paths: &HashSet<PathBuf>,
    retained: &HashSet<String>,
) -> Vec<PathBuf> {
    entries
        .iter()
        .filter(|name| is_provisioned_name(name) && !retained.contains(*name))
        .map(|name| root.join(name))
        .filter(|dir| !volume_paths.contains(dir))
        .collect()
}

/// Makes the root and resolves it: volumes' paths are absolute, so the reported root is too.
pub fn prepare_root(root: &Path) -> Result<PathBuf, AgentError> {
    std::fs::create_dir_all(root)
        .and_then(|()| std::fs::canonicalize(root))
        .map_err(|source| AgentError::LocalPathRoot {
            path: root.to_path_buf(),
            source,
        })
}

/// Runs the sweep until `stop` is cancelled.
pub async fn sweep_loop(client: Client, root: PathBuf, stop: CancellationToken) {
    let mut suspects: HashSet<PathBuf> = HashSet::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = stop.cancelled() => return,
        }
        match sweep(&client, &root, &suspects).await {
            Ok(found) => suspects = found,
            Err(err) => tracing::warn!(%err, root = %root.display(), "local-path sweep failed"),
        }
    }
}

/// Why a sweep could not run.
#[derive(Debug, thiserror::Error)]
enum SweepError {
    #[error("listing PersistentVolumes: {0}")]
    List(#[from] skiff_client::ClientError),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One sweep: removes the orphans that were `suspects` already; returns this sweep's orphans.
async fn sweep(
    client: &Client,
    root: &Path,
    suspects: &HashSet<PathBuf>,
) -> Result<HashSet<PathBuf>, SweepError> {
    let (volumes, _) = client
        .api::<PersistentVolume>(None)
        .list(&ListParams::default())
        .await?;
    let paths: HashSet<PathBuf> = volumes
        .iter()
        .filter_map(volume_path)
        .map(PathBuf::from)
        .collect();
    let retained = mark_retained(root, &volumes)?;
    let entries = list_dirs(root).map_err(|source| SweepError::Read {
        path: root.to_path_buf(),
        source,
    })?;
    let found: HashSet<PathBuf> = orphans(root, &entries, &paths, &retained)
        .into_iter()
        .collect();
    for dir in found.intersection(suspects) {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {
                tracing::info!(dir = %dir.display(), "removed the directory of a deleted volume")
            }
            Err(err) => {
                tracing::warn!(dir = %dir.display(), %err, "could not remove a deleted volume's directory")
            }
        }
    }
    Ok(found.difference(suspects).cloned().collect())
}

/// Marks the directories under `root` of volumes that say `Retain` (unmarks those that now
/// say `Delete`); returns every marked name.
fn mark_retained(root: &Path, volumes: &[PersistentVolume]) -> Result<HashSet<String>, SweepError> {
    let marks = root.join(RETAIN_MARKS);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SweepError::Read { path, source }
    };
    for volume in volumes {
        let Some(name) = volume_path(volume)
            .map(Path::new)
            .filter(|path| path.parent() == Some(root))
            .and_then(Path::file_name)
        else {
            continue;
        };
        let mark = marks.join(name);
        let policy = volume
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref());
        if policy == Some("Delete") {
            match std::fs::remove_file(&mark) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io(&mark)(err))
                }
                _ => {}
            }
        } else if !mark.exists() {
            std::fs::create_dir_all(&marks).map_err(io(&marks))?;
            std::fs::write(&mark, b"").map_err(io(&mark))?;
        }
    }
    let mut marked = HashSet::new();
    match std::fs::read_dir(&marks) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.map_err(io(&marks))?;
                marked.extend(entry.file_name().to_str().map(str::to_string));
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(io(&marks)(err)),
    }
    Ok(marked)
}

/// The names of the directories directly under `root` (none if it does not exist).
fn list_dirs(root: &Path) -> std::io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        // Never follows a symlink out of the root.
        if entry.file_type()?.is_dir() {
            names.extend(entry.file_name().to_str().map(str::to_string));
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unnamed_provisioned_directories_are_orphans() {
        let root = Path::new("/var/skiff/storage");
        let entries = [
            "pvc-1_default_data".to_string(),
            "pvc-2_shop_db".to_string(),
            "operator-notes".to_string(),
            "pvc-loose".to_string(),
        ];
        let paths = HashSet::from([root.join("pvc-1_default_data")]);
        assert_eq!(
            orphans(root, &entries, &paths, &HashSet::new()),
            [root.join("pvc-2_shop_db")]
        );
        let retained = HashSet::from(["pvc-2_shop_db".to_string()]);
        assert!(orphans(root, &entries, &paths, &retained).is_empty());
    }

    #[test]
    fn retain_volumes_are_marked_until_they_say_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let volume = |policy: &str| -> PersistentVolume {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "pvc-1"},
                "spec": {"persistentVolumeReclaimPolicy": policy,
                         "local": {"path": root.join("pvc-1_ns_data")}}
            }))
            .expect("volume")
        };
        let marked = mark_retained(root, &[volume("Retain")]).expect("mark");
        assert_eq!(marked, HashSet::from(["pvc-1_ns_data".to_string()]));
        // The object gone, the mark stays: its directory is never swept.
        assert_eq!(mark_retained(root, &[]).expect("mark"), marked);
        assert!(mark_retained(root, &[volume("Delete")])
            .expect("unmark")
            .is_empty());
    }

    #[test]
    fn listing_a_missing_root_is_empty_and_skips_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(list_dirs(&dir.path().join("absent"))
            .expect("list")
            .is_empty());
        std::fs::create_dir(dir.path().join("pvc-1_a_b")).expect("mkdir");
        std::fs::write(dir.path().join("pvc-2_a_b"), b"file").expect("write");
        assert_eq!(list_dirs(dir.path()).expect("list"), ["pvc-1_a_b"]);
    }
}
