//! A container's `volumeMounts` as the runtime's mounts.

use std::path::Path;

use skiff_api::k8s_openapi::api::core::v1::{Container, Pod};

use super::{blocking, sub_path, uid, VolumeError, Volumes};
use crate::runtime::Mount;

/// The container's `volumeMounts` as runtime mounts; `env` is the container's resolved
/// environment (for `subPathExpr`). Single files (a subPath naming a file, a hostPath
/// file) are staged under `<pods_dir>/<uid>/files/<container>/<index>`.
pub async fn mounts(
    pod: &Pod,
    container: &Container,
    prepared: &Volumes,
    env: &[(String, String)],
    pods_dir: &Path,
) -> Result<Vec<Mount>, VolumeError> {
    let stage_root = pods_dir.join(uid(pod)).join("files").join(&container.name);
    let mut mounts = Vec::new();
    for (i, mount) in container.volume_mounts.iter().flatten().enumerate() {
        let volume = prepared
            .get(&mount.name)
            .ok_or_else(|| VolumeError::NoVolume(mount.name.clone()))?;
        let read_only = volume.read_only || mount.read_only.unwrap_or(false);
        let sub = match (mount.sub_path.as_deref(), mount.sub_path_expr.as_deref()) {
            (Some(sub), _) if !sub.is_empty() => Some(sub.to_string()),
            (_, Some(expr)) if !expr.is_empty() => Some(sub_path::expand(expr, env)),
            _ => None,
        };
        let base = volume.host_path.clone();
        let stage = stage_root.join(i.to_string());
        let mount_path = mount.mount_path.clone();
        let (host_path, container_path) = blocking(move || {
            let host = match sub {
                Some(sub) => sub_path::resolve(&base, &sub)?,
                None => base,
            };
            if host.is_dir() {
                return Ok((host, mount_path));
            }
            sub_path::stage_file(&stage, &host, &mount_path)
        })
        .await?;
        mounts.push(Mount {
            container_path,
            host_path,
            read_only,
        });
    }
    Ok(mounts)
}
