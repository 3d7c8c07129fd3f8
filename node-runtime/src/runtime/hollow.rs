//! The hollow runtime: a SIMULATOR for scale tests (like kubemark's hollow kubelet or kwok).
//! It runs nothing: images "pull" at once, containers "run" until stopped, and no log is
//! written. The real agent loop runs on top of it unchanged, so one process can host
//! thousands of simulated nodes against a real control plane. It is its own image service
//! too (`Agent::builder().images(hollow.clone())`), since its images exist nowhere.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use super::{
    ContainerConfig, ContainerEvent, ContainerEventKind, ContainerId, ContainerRuntime,
    ContainerState, ContainerStats, ContainerStatus, ExecResult, ImageConfig, ImageRef,
    ImageService, PodSandboxConfig, PodSandboxStatus, PullAuth, RuntimeError, SandboxId,
};

/// A simulated runtime; every container it "starts" runs until it is stopped.
pub struct HollowRuntime {
    sandboxes: Mutex<HashMap<SandboxId, PathBuf>>,
    containers: Mutex<HashMap<ContainerId, ContainerStatus>>,
    next_id: AtomicU64,
    events: broadcast::Sender<ContainerEvent>,
}

impl Default for HollowRuntime {
    fn default() -> Self {
        HollowRuntime {
            sandboxes: Mutex::default(),
            containers: Mutex::default(),
            next_id: AtomicU64::new(0),
            events: broadcast::channel(64).0,
        }
    }
}

impl HollowRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    fn emit(&self, status: &ContainerStatus, kind: ContainerEventKind) {
        let _ = self.events.send(ContainerEvent {
            container: status.id.clone(),
            sandbox: status.sandbox_id.clone(),
            kind,
        });
    }

    fn with_container<T>(
        &self,
        id: &ContainerId,
        f: impl FnOnce(&mut ContainerStatus) -> T,
    ) -> Result<T, RuntimeError> {
        let mut containers = self.containers.lock().expect("hollow containers");
        let status = containers
            .get_mut(id)
            .ok_or_else(|| RuntimeError::ContainerNotFound(id.clone()))?;
        Ok(f(status))
    }
}

/// Any reference "pulls": its digest is the hash of the reference.
fn image(reference: &str) -> ImageRef {
    ImageRef {
        reference: reference.to_string(),
        digest: format!("sha256:{:x}", Sha256::digest(reference.as_bytes())),
        size: 0,
        config: ImageConfig::default(),
        content: PathBuf::new(),
        layers: Vec::new(),
    }
}

#[async_trait]
impl ImageService for HollowRuntime {
    async fn pull_image(
        &self,
        reference: &str,
        _auth: Option<&PullAuth>,
    ) -> Result<ImageRef, RuntimeError> {
        Ok(image(reference))
    }

    async fn image_status(&self, reference: &str) -> Result<Option<ImageRef>, RuntimeError> {
        Ok(Some(image(reference)))
    }

    async fn list_images(&self) -> Result<Vec<ImageRef>, RuntimeError> {
        Ok(Vec::new())
    }

    async fn remove_image(&self, _reference: &str) -> Result<(), RuntimeError> {
        Ok(())
    }
}

#[async_trait]
impl ContainerRuntime for HollowRuntime {
    fn name(&self) -> &'static str {
        "hollow"
    }

    fn version(&self) -> String {
        "hollow://skiff".into()
    }

    fn node_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn can_handle(&self, _image: &ImageRef) -> bool {
        true
    }

    fn subscribe(&self) -> broadcast::Receiver<ContainerEvent> {
        self.events.subscribe()
    }

    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<SandboxId, RuntimeError> {
        self.sandboxes
            .lock()
            .expect("hollow sandboxes")
            .insert(config.uid.clone(), config.log_directory.clone());
        Ok(config.uid.clone())
    }

    async fn stop_pod_sandbox(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        let now = SystemTime::now();
        for status in self
            .containers
            .lock()
            .expect("hollow containers")
            .values_mut()
            .filter(|c| &c.sandbox_id == id)
        {
            if stop(status, now) {
                self.emit(status, ContainerEventKind::Exited);
            }
        }
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.sandboxes.lock().expect("hollow sandboxes").remove(id);
        self.containers
            .lock()
            .expect("hollow containers")
            .retain(|_, c| &c.sandbox_id != id);
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &SandboxId) -> Result<PodSandboxStatus, RuntimeError> {
        if !self
            .sandboxes
            .lock()
            .expect("hollow sandboxes")
            .contains_key(id)
        {
            return Err(RuntimeError::SandboxNotFound(id.clone()));
        }
        Ok(PodSandboxStatus {
            id: id.clone(),
            ready: true,
            ip: None,
        })
    }

    async fn create_container(
        &self,
        sandbox: &SandboxId,
        config: &ContainerConfig,
    ) -> Result<ContainerId, RuntimeError> {
        let log_dir = self
            .sandboxes
            .lock()
            .expect("hollow sandboxes")
            .get(sandbox)
            .cloned()
            .ok_or_else(|| RuntimeError::SandboxNotFound(sandbox.clone()))?;
        let id = format!("hollow-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let status = ContainerStatus {
            id: id.clone(),
            sandbox_id: sandbox.clone(),
            name: config.name.clone(),
            image: config.image.clone(),
            attempt: config.attempt,
            state: ContainerState::Created,
            log_path: log_dir.join(&config.log_path),
        };
        self.containers
            .lock()
            .expect("hollow containers")
            .insert(id.clone(), status);
        Ok(id)
    }

    async fn start_container(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        let status = self.with_container(id, |c| {
            c.state = ContainerState::Running {
                started_at: SystemTime::now(),
            };
            c.clone()
        })?;
        self.emit(&status, ContainerEventKind::Started);
        Ok(())
    }

    async fn stop_container(&self, id: &ContainerId, _grace: Duration) -> Result<(), RuntimeError> {
        match self.with_container(id, |c| stop(c, SystemTime::now()).then(|| c.clone())) {
            Ok(Some(status)) => {
                self.emit(&status, ContainerEventKind::Exited);
                Ok(())
            }
            Err(RuntimeError::ContainerNotFound(_)) | Ok(None) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn remove_container(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        self.containers
            .lock()
            .expect("hollow containers")
            .remove(id);
        Ok(())
    }

    async fn container_status(&self, id: &ContainerId) -> Result<ContainerStatus, RuntimeError> {
        self.with_container(id, |c| c.clone())
    }

    async fn list_containers(
        &self,
        sandbox: Option<&SandboxId>,
    ) -> Result<Vec<ContainerStatus>, RuntimeError> {
        Ok(self
            .containers
            .lock()
            .expect("hollow containers")
            .values()
            .filter(|c| sandbox.is_none_or(|s| &c.sandbox_id == s))
            .cloned()
            .collect())
    }

    async fn container_stats(&self, id: &ContainerId) -> Result<ContainerStats, RuntimeError> {
        self.with_container(id, |_| ContainerStats::default())
    }

    async fn exec_sync(
        &self,
        _id: &ContainerId,
        _cmd: &[String],
        _timeout: Duration,
    ) -> Result<ExecResult, RuntimeError> {
        Err(RuntimeError::Unsupported {
            runtime: "hollow",
            operation: "exec",
        })
    }

    /// A simulator keeps nothing across restarts.
    async fn recover(&self) -> Result<Vec<SandboxId>, RuntimeError> {
        Ok(Vec::new())
    }
}

/// A graceful stop: exit code 0, as a container that honours SIGTERM. Says whether it ran.
fn stop(status: &mut ContainerStatus, now: SystemTime) -> bool {
    let ContainerState::Running { started_at } = status.state else {
        return false;
    };
    status.state = ContainerState::Exited {
        started_at,
        finished_at: now,
        exit_code: 0,
        reason: "Completed".into(),
        message: String::new(),
    };
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn containers_run_until_stopped() {
        let runtime = HollowRuntime::new();
        let sandbox = runtime
            .run_pod_sandbox(&PodSandboxConfig {
                network: None,
                uid: "u1".into(),
                namespace: "default".into(),
                name: "p".into(),
                labels: Default::default(),
                log_directory: "/nonexistent".into(),
                hostname: String::new(),
                dns: None,
            })
            .await
            .expect("sandbox");
        let image = runtime
            .pull_image("anything:latest", None)
            .await
            .expect("pull");
        let config = ContainerConfig::new("c", image);
        let mut events = runtime.subscribe();
        let id = runtime
            .create_container(&sandbox, &config)
            .await
            .expect("create");
        runtime.start_container(&id).await.expect("start");
        assert_eq!(
            events.recv().await.expect("event").kind,
            ContainerEventKind::Started
        );
        let state = runtime.container_status(&id).await.expect("status").state;
        assert!(matches!(state, ContainerState::Running { .. }), "{state:?}");
        runtime.stop_pod_sandbox(&sandbox).await.expect("stop");
        assert_eq!(
            events.recv().await.expect("event"),
            ContainerEvent {
                container: id.clone(),
                sandbox: sandbox.clone(),
                kind: ContainerEventKind::Exited
            }
        );
        let state = runtime.container_status(&id).await.expect("status").state;
        assert!(
            matches!(state, ContainerState::Exited { exit_code: 0, .. }),
            "{state:?}"
        );
        runtime.remove_pod_sandbox(&sandbox).await.expect("remove");
        assert!(runtime
            .list_containers(None)
            .await
            .expect("list")
            .is_empty());
    }
}
