//! Pod volumes on the node, as mounts for the runtime: `emptyDir` under
//! `<pods_dir>/<uid>/volumes/<name>` (made with the sandbox, removed with the pod) and
//! `hostPath` as named. Other volume kinds are not mounted yet.

use std::path::{Path, PathBuf};

use skiff_api::k8s_openapi::api::core::v1::{Container, Pod, Volume};

use crate::runtime::Mount;

/// `<pods_dir>/<uid>/volumes`: where this pod's `emptyDir` volumes live.
pub fn pod_volumes_dir(pods_dir: &Path, uid: &str) -> PathBuf {
    pods_dir.join(uid).join("volumes")
}

fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

fn volumes(pod: &Pod) -> &[Volume] {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default()
}

/// Where `volume` lies on the node, if it is a kind the agent provides.
fn host_path(pod: &Pod, volume: &Volume, pods_dir: &Path) -> Option<PathBuf> {
    if volume.empty_dir.is_some() {
        return Some(pod_volumes_dir(pods_dir, uid(pod)).join(&volume.name));
    }
    volume.host_path.as_ref().map(|h| PathBuf::from(&h.path))
}

/// Makes the pod's `emptyDir` volumes.
pub async fn prepare(pod: &Pod, pods_dir: &Path) -> std::io::Result<()> {
    for volume in volumes(pod).iter().filter(|v| v.empty_dir.is_some()) {
        let dir = pod_volumes_dir(pods_dir, uid(pod)).join(&volume.name);
        tokio::fs::create_dir_all(&dir).await?;
    }
    Ok(())
}

/// Removes the pod's `emptyDir` volumes.
pub async fn remove(pods_dir: &Path, uid: &str) -> std::io::Result<()> {
    match tokio::fs::remove_dir_all(pod_volumes_dir(pods_dir, uid)).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The container's `volumeMounts` as runtime mounts (those of provided volume kinds).
pub fn mounts(pod: &Pod, container: &Container, pods_dir: &Path) -> Vec<Mount> {
    container
        .volume_mounts
        .iter()
        .flatten()
        .filter_map(|m| {
            let volume = volumes(pod).iter().find(|v| v.name == m.name)?;
            Some(Mount {
                container_path: m.mount_path.clone(),
                host_path: host_path(pod, volume, pods_dir)?,
                read_only: m.read_only.unwrap_or(false),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_dirs_and_host_paths_become_mounts() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "uid": "u1"},
            "spec": {
                "volumes": [
                    {"name": "scratch", "emptyDir": {}},
                    {"name": "data", "hostPath": {"path": "/srv/data"}},
                    {"name": "cfg", "configMap": {"name": "cfg"}}
                ],
                "containers": [{"name": "c", "volumeMounts": [
                    {"name": "scratch", "mountPath": "/tmp"},
                    {"name": "data", "mountPath": "/data", "readOnly": true},
                    {"name": "cfg", "mountPath": "/etc/cfg"}
                ]}]
            }
        }))
        .expect("pod");
        let container = &pod.spec.as_ref().expect("spec").containers[0];
        assert_eq!(
            mounts(&pod, container, Path::new("/pods")),
            vec![
                Mount {
                    container_path: "/tmp".into(),
                    host_path: "/pods/u1/volumes/scratch".into(),
                    read_only: false,
                },
                Mount {
                    container_path: "/data".into(),
                    host_path: "/srv/data".into(),
                    read_only: true,
                },
            ]
        );
    }
}
