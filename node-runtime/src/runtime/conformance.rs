//! The start of a runtime conformance suite: the CRI contract every runtime keeps, checked
//! the same way against each (Wasm and hollow here; linux when it lands).

use std::path::Path;
use std::time::Duration;

use super::{
    ContainerConfig, ContainerEventKind, ContainerRuntime, ContainerState, ImageRef,
    PodSandboxConfig, RuntimeError,
};

/// Longest wait for a pushed event.
const EVENT_WAIT: Duration = Duration::from_secs(20);

/// Runs one container of `image` (which must run until stopped) through its whole life on
/// `runtime`, with its logs under `dir`, checking states, events, paths and idempotence.
pub async fn container_lifecycle(runtime: &dyn ContainerRuntime, image: ImageRef, dir: &Path) {
    let name = runtime.name();
    let log_directory = dir.join("logs");
    let sandbox = runtime
        .run_pod_sandbox(&PodSandboxConfig {
            uid: "conformance-uid".into(),
            namespace: "default".into(),
            name: "conformance".into(),
            labels: Default::default(),
            log_directory: log_directory.clone(),
        })
        .await
        .expect("run_pod_sandbox");
    assert!(
        runtime
            .pod_sandbox_status(&sandbox)
            .await
            .expect("pod_sandbox_status")
            .ready,
        "{name}: a new sandbox is ready"
    );
    let mut events = runtime.subscribe();
    let config = ContainerConfig {
        name: "main".into(),
        image,
        command: vec![],
        args: vec![],
        env: vec![],
        working_dir: None,
        resources: Default::default(),
        mounts: vec![],
        security: Default::default(),
        attempt: 0,
        log_path: "main/0.log".into(),
    };
    let id = runtime
        .create_container(&sandbox, &config)
        .await
        .expect("create_container");
    let status = runtime.container_status(&id).await.expect("status");
    assert_eq!(status.state, ContainerState::Created, "{name}");
    assert_eq!(
        status.log_path,
        log_directory.join("main/0.log"),
        "{name}: the log path follows the config"
    );
    runtime.start_container(&id).await.expect("start_container");
    let started = tokio::time::timeout(EVENT_WAIT, events.recv())
        .await
        .expect("a Started event in time")
        .expect("event");
    assert_eq!(
        (started.kind, &started.container, &started.sandbox),
        (ContainerEventKind::Started, &id, &sandbox),
        "{name}"
    );
    let listed = runtime
        .list_containers(Some(&sandbox))
        .await
        .expect("list_containers");
    assert_eq!(listed.len(), 1, "{name}: one container in the sandbox");

    runtime
        .stop_container(&id, Duration::from_secs(5))
        .await
        .expect("stop_container");
    let exited = tokio::time::timeout(EVENT_WAIT, events.recv())
        .await
        .expect("an Exited event in time")
        .expect("event");
    assert_eq!(exited.kind, ContainerEventKind::Exited, "{name}");
    let state = runtime.container_status(&id).await.expect("status").state;
    assert!(
        matches!(state, ContainerState::Exited { .. }),
        "{name}: {state:?}"
    );

    // Stop and remove are idempotent, as the CRI requires.
    runtime
        .stop_container(&id, Duration::ZERO)
        .await
        .expect("second stop");
    runtime.remove_container(&id).await.expect("remove");
    runtime.remove_container(&id).await.expect("second remove");
    assert!(
        matches!(
            runtime.container_status(&id).await,
            Err(RuntimeError::ContainerNotFound(_))
        ),
        "{name}: a removed container is gone"
    );
    runtime
        .stop_pod_sandbox(&sandbox)
        .await
        .expect("stop sandbox");
    runtime
        .remove_pod_sandbox(&sandbox)
        .await
        .expect("remove sandbox");
    runtime
        .remove_pod_sandbox(&sandbox)
        .await
        .expect("second remove sandbox");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::hollow::HollowRuntime;
    use crate::runtime::wasm::WasmRuntime;
    use crate::runtime::{FileImages, ImageService, ImageStore};

    #[tokio::test]
    async fn wasm_runtime() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spin = wat::parse_str(
            r#"(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))"#,
        )
        .expect("wat");
        let guest = dir.path().join("spin.wasm");
        std::fs::write(&guest, spin).expect("write");
        let files = FileImages::default().allow_dir(dir.path()).expect("allow");
        let images = ImageStore::open(dir.path().join("images"))
            .expect("images")
            .with_file_images(files);
        let image = images
            .pull_image(&format!("file:{}", guest.display()), None)
            .await
            .expect("pull");
        let runtime = WasmRuntime::new(dir.path().join("wasm")).expect("runtime");
        container_lifecycle(&runtime, image, dir.path()).await;
    }

    #[tokio::test]
    async fn hollow_runtime() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = HollowRuntime::new();
        let image = runtime
            .pull_image("registry.example/pause:1", None)
            .await
            .expect("pull");
        container_lifecycle(&runtime, image, dir.path()).await;
    }
}
