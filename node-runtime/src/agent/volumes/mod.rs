//! Pod volumes on the node, as mounts for the runtime. Each volume is a directory:
//! `emptyDir` under `<pods_dir>/<uid>/volumes/<name>` (a tmpfs for `medium: Memory`),
//! `hostPath` as named (its `type` checked), `persistentVolumeClaim` the bound
//! PersistentVolume's local or hostPath directory, and `configMap`, `secret`, `downwardAPI`
//! and `projected` files (ServiceAccount tokens included) written atomically under the pod's volumes directory and rewritten
//! when their sources change (`refresh`). A disk `emptyDir` over its `sizeLimit` gets its pod
//! evicted (`usage.rs`). All are removed with the pod.

mod atomic_writer;
mod host_path;
mod keys;
mod mounts;
mod projection;
mod service_account_token;
mod sources;
mod sub_path;
mod tmpfs;
mod usage;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use skiff_api::k8s_openapi::api::core::v1::{Pod, Volume};
use skiff_api::quantity;
use skiff_api::requests::Resources;
use skiff_client::Client;

use super::source_watch::{SourceChange, SourceKind};
use atomic_writer::Payload;
use keys::{KeyKind, Keys};
pub use mounts::mounts;
use projection::DEFAULT_MODE;
pub use service_account_token::TokenCache;
/// `$(VAR)` expansion, shared with the container's command and args.
pub(super) use sub_path::expand;
pub use usage::{limited, over_limit};

/// Why a volume could not be set up; the pod's containers wait (`ContainerCreating`) and
/// the worker retries.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{kind} \"{name}\" not found")]
    SourceNotFound { kind: &'static str, name: String },
    #[error("{kind} \"{name}\" has no key \"{key}\"")]
    KeyNotFound {
        kind: &'static str,
        name: String,
        key: String,
    },
    #[error("downwardAPI {path}: {message}")]
    Downward { path: String, message: String },
    #[error("persistentvolumeclaim \"{0}\" not found")]
    ClaimNotFound(String),
    #[error("persistentvolumeclaim \"{0}\" is not bound")]
    ClaimNotBound(String),
    #[error("persistentvolume \"{volume}\" of claim \"{claim}\" not found")]
    VolumeNotFound { claim: String, volume: String },
    #[error("persistentvolume \"{0}\" has no local or hostPath directory")]
    VolumeNotLocal(String),
    #[error("hostPath type check failed: {} is not {expected}", path.display())]
    HostPathType {
        path: PathBuf,
        expected: &'static str,
    },
    #[error("volume {volume:?}: {kind} volumes are not supported on this node")]
    Unsupported { volume: String, kind: &'static str },
    #[error("volumeMount {0:?} names no volume of the pod")]
    NoVolume(String),
    #[error("subPath {sub_path:?}: {message}")]
    SubPath { sub_path: String, message: String },
    #[error("emptyDir sizeLimit {0:?} is not a quantity")]
    SizeLimit(String),
    #[error("mounting a tmpfs on {}: {source}", dir.display())]
    Tmpfs {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the TokenRequest for serviceaccount {0} answered no token")]
    NoToken(String),
    #[error("reading {what}: {source}")]
    Api {
        what: String,
        #[source]
        source: skiff_client::ClientError,
    },
    #[error("volume setup task: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// What a volume reads from the API and the node, to set it up.
pub struct Inputs<'a> {
    pub client: &'a Client,
    pub pods_dir: &'a Path,
    /// The node's allocatable, for downward API limits a container leaves unset.
    pub allocatable: Resources,
    /// The ServiceAccount tokens of the node's pods.
    pub tokens: &'a TokenCache,
}

/// One prepared volume: its directory on the node, and whether its kind is read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub host_path: PathBuf,
    pub read_only: bool,
}

/// The pod's prepared volumes by name.
pub type Volumes = BTreeMap<String, Prepared>;

/// `<pods_dir>/<uid>/volumes`: where this pod's own volumes live.
pub fn pod_volumes_dir(pods_dir: &Path, uid: &str) -> PathBuf {
    pods_dir.join(uid).join("volumes")
}

fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

fn namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}

fn volumes(pod: &Pod) -> &[Volume] {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default()
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> VolumeError {
    move |source| VolumeError::Io { context, source }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, VolumeError> + Send + 'static,
) -> Result<T, VolumeError> {
    tokio::task::spawn_blocking(work).await?
}

/// Sets up every volume of the pod (idempotent: a second call finds them made); the pod's
/// directory and its volumes directory are private to the node (0750).
pub async fn prepare(inputs: &Inputs<'_>, pod: &Pod) -> Result<Volumes, VolumeError> {
    if volumes(pod).is_empty() {
        return Ok(Volumes::new());
    }
    let root = pod_volumes_dir(inputs.pods_dir, uid(pod));
    let pod_dir = inputs.pods_dir.join(uid(pod));
    let made = root.clone();
    blocking(move || {
        std::fs::create_dir_all(&made).map_err(io(format!("making {}", made.display())))?;
        for dir in [&pod_dir, &made] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))
                .map_err(io(format!("securing {}", dir.display())))?;
        }
        Ok(())
    })
    .await?;
    let mut prepared = Volumes::new();
    for volume in volumes(pod) {
        let own = root.join(&volume.name);
        let (host_path, read_only) = if let Some(empty) = volume.empty_dir.as_ref() {
            let size = match empty.size_limit.as_ref() {
                Some(q) => Some(
                    quantity::parse_bytes(&q.0).map_err(|_| VolumeError::SizeLimit(q.0.clone()))?,
                ),
                None => None,
            };
            let memory = empty.medium.as_deref() == Some("Memory");
            let dir = own.clone();
            blocking(move || {
                std::fs::create_dir_all(&dir).map_err(io(format!("making {}", dir.display())))?;
                if memory {
                    tmpfs::mount_on(&dir, size)?;
                }
                Ok(())
            })
            .await?;
            (own, false)
        } else if let Some(host) = volume.host_path.as_ref() {
            let path = PathBuf::from(&host.path);
            let (checked, kind) = (path.clone(), host.type_.clone());
            blocking(move || host_path::check(&checked, kind.as_deref())).await?;
            (path, false)
        } else if let Some(claim) = volume.persistent_volume_claim.as_ref() {
            let path =
                sources::claim_path(inputs.client, namespace(pod), &claim.claim_name).await?;
            let made = path.clone();
            blocking(move || {
                std::fs::create_dir_all(&made).map_err(io(format!("making {}", made.display())))
            })
            .await?;
            (path, claim.read_only.unwrap_or(false))
        } else if let Some(payload) = project(inputs, pod, volume).await? {
            let dir = own.clone();
            blocking(move || {
                atomic_writer::write(&dir, &payload)
                    .map_err(io(format!("writing {}", dir.display())))
            })
            .await?;
            (own, true)
        } else {
            return Err(VolumeError::Unsupported {
                volume: volume.name.clone(),
                kind: kind_name(volume),
            });
        };
        prepared.insert(
            volume.name.clone(),
            Prepared {
                host_path,
                read_only,
            },
        );
    }
    Ok(prepared)
}

/// Rewrites the pod's configMap, secret, downwardAPI and projected volumes from their
/// sources now; true if any file changed.
pub async fn refresh(inputs: &Inputs<'_>, pod: &Pod) -> Result<bool, VolumeError> {
    let root = pod_volumes_dir(inputs.pods_dir, uid(pod));
    let mut changed = false;
    for volume in volumes(pod) {
        let Some(payload) = project(inputs, pod, volume).await? else {
            continue;
        };
        let dir = root.join(&volume.name);
        changed |= blocking(move || {
            atomic_writer::write(&dir, &payload).map_err(io(format!("writing {}", dir.display())))
        })
        .await?;
    }
    Ok(changed)
}

/// The files of a configMap, secret, downwardAPI or projected volume; `None` for other kinds.
async fn project(
    inputs: &Inputs<'_>,
    pod: &Pod,
    volume: &Volume,
) -> Result<Option<Payload>, VolumeError> {
    let ns = namespace(pod);
    let mut payload = Payload::new();
    let mode = |m: Option<i32>| m.map_or(DEFAULT_MODE, |m| m as u32);
    if let Some(cm) = volume.config_map.as_ref() {
        let keys = Keys::new(
            KeyKind::ConfigMap,
            &cm.name,
            cm.items.as_deref(),
            cm.optional,
        );
        keys.add(inputs, ns, mode(cm.default_mode), &mut payload)
            .await?;
    } else if let Some(secret) = volume.secret.as_ref() {
        let name = secret.secret_name.clone().unwrap_or_default();
        let keys = Keys::new(
            KeyKind::Secret,
            &name,
            secret.items.as_deref(),
            secret.optional,
        );
        keys.add(inputs, ns, mode(secret.default_mode), &mut payload)
            .await?;
    } else if let Some(downward) = volume.downward_api.as_ref() {
        let items = downward.items.as_deref().unwrap_or_default();
        let default_mode = mode(downward.default_mode);
        projection::downward(pod, items, default_mode, &inputs.allocatable, &mut payload)?;
    } else if let Some(projected) = volume.projected.as_ref() {
        let default_mode = mode(projected.default_mode);
        for source in projected.sources.iter().flatten() {
            if let Some(cm) = source.config_map.as_ref() {
                let keys = Keys::new(
                    KeyKind::ConfigMap,
                    &cm.name,
                    cm.items.as_deref(),
                    cm.optional,
                );
                keys.add(inputs, ns, default_mode, &mut payload).await?;
            }
            if let Some(secret) = source.secret.as_ref() {
                let keys = Keys::new(
                    KeyKind::Secret,
                    &secret.name,
                    secret.items.as_deref(),
                    secret.optional,
                );
                keys.add(inputs, ns, default_mode, &mut payload).await?;
            }
            if let Some(downward) = source.downward_api.as_ref() {
                let items = downward.items.as_deref().unwrap_or_default();
                projection::downward(pod, items, default_mode, &inputs.allocatable, &mut payload)?;
            }
            if let Some(token) = source.service_account_token.as_ref() {
                let jwt = inputs.tokens.token(inputs.client, pod, token).await?;
                let file = atomic_writer::File {
                    data: jwt.into_bytes(),
                    mode: default_mode,
                };
                payload.insert(token.path.clone(), file);
            }
        }
    } else {
        return Ok(None);
    }
    Ok(Some(payload))
}

/// The volume's source kind, for messages.
fn kind_name(volume: &Volume) -> &'static str {
    let kinds = [
        (volume.nfs.is_some(), "nfs"),
        (volume.csi.is_some(), "csi"),
        (volume.ephemeral.is_some(), "ephemeral"),
        (volume.iscsi.is_some(), "iscsi"),
        (volume.cephfs.is_some(), "cephfs"),
        (volume.git_repo.is_some(), "gitRepo"),
    ];
    kinds
        .into_iter()
        .find_map(|(set, kind)| set.then_some(kind))
        .unwrap_or("such")
}

/// True if the pod has volumes that project files (and so need `refresh`).
pub fn projects_files(pod: &Pod) -> bool {
    volumes(pod).iter().any(|v| {
        v.config_map.is_some()
            || v.secret.is_some()
            || v.downward_api.is_some()
            || v.projected.is_some()
    })
}

/// The ConfigMaps and Secrets (in the pod's namespace) whose files the pod's volumes project.
pub fn sources(pod: &Pod) -> Vec<(SourceKind, String)> {
    let mut found = Vec::new();
    for v in volumes(pod) {
        if let Some(c) = &v.config_map {
            found.push((SourceKind::ConfigMap, c.name.clone()));
        }
        if let Some(name) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            found.push((SourceKind::Secret, name));
        }
        for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(c) = &source.config_map {
                found.push((SourceKind::ConfigMap, c.name.clone()));
            }
            if let Some(s) = &source.secret {
                found.push((SourceKind::Secret, s.name.clone()));
            }
        }
    }
    found.sort_by(|a, b| (a.0 as u8, &a.1).cmp(&(b.0 as u8, &b.1)));
    found.dedup();
    found
}

/// True if a volume of the pod projects the changed ConfigMap or Secret.
pub fn references(pod: &Pod, change: &SourceChange) -> bool {
    namespace(pod) == change.namespace
        && sources(pod)
            .iter()
            .any(|(kind, name)| *kind == change.kind && *name == change.name)
}

/// Removes the pod's own volumes (unmounting its tmpfs volumes first) and staged files.
pub async fn remove(pods_dir: &Path, uid: &str) -> std::io::Result<()> {
    let pod_dir = pods_dir.join(uid);
    let dirs = [pod_volumes_dir(pods_dir, uid), pod_dir.join("files")];
    let result = tokio::task::spawn_blocking(move || {
        tmpfs::unmount_under(&pod_dir);
        for dir in dirs {
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    })
    .await;
    result.unwrap_or_else(|err| Err(std::io::Error::other(err.to_string())))
}

/// Unmounts whatever the agent mounted under a pod directory (before the orphan sweep
/// removes it).
pub fn unmount_pod_dir(pod_dir: &Path) {
    tmpfs::unmount_under(pod_dir);
}

#[cfg(test)]
mod tests;
