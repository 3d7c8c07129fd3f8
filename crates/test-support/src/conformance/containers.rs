//! Contracts of one container: its lifecycle, its status, its log path, and idempotent
//! stop and remove.

use std::path::Path;
use std::time::Duration;

use skiff_node_runtime::runtime::{
    ContainerConfig, ContainerEventKind, ContainerId, ContainerRuntime, ContainerState, ImageRef,
    RuntimeError,
};

use super::{expect_event, log_directory, run, sandbox, GRACE};

/// A container goes Created → Running (pushing `Started`) → Exited (pushing `Exited`) when
/// stopped, and is listed in its sandbox meanwhile.
pub async fn container_lifecycle(runtime: &dyn ContainerRuntime, image: ImageRef, dir: &Path) {
    let name = runtime.name();
    let sandbox = sandbox(runtime, "lifecycle", dir).await;
    let mut events = runtime.subscribe();
    let id = runtime
        .create_container(&sandbox, &ContainerConfig::new("main", image))
        .await
        .expect("create_container");
    let status = runtime.container_status(&id).await.expect("status");
    assert_eq!(status.state, ContainerState::Created, "{name}");
    runtime.start_container(&id).await.expect("start_container");
    expect_event(
        runtime,
        &mut events,
        &id,
        &sandbox,
        ContainerEventKind::Started,
    )
    .await;
    let state = runtime.container_status(&id).await.expect("status").state;
    assert!(
        matches!(state, ContainerState::Running { .. }),
        "{name}: a started container runs: {state:?}"
    );
    let listed = runtime
        .list_containers(Some(&sandbox))
        .await
        .expect("list_containers");
    assert_eq!(listed.len(), 1, "{name}: one container in the sandbox");
    assert_eq!(listed[0].id, id, "{name}: the listed container");

    runtime
        .stop_container(&id, GRACE)
        .await
        .expect("stop_container");
    expect_event(
        runtime,
        &mut events,
        &id,
        &sandbox,
        ContainerEventKind::Exited,
    )
    .await;
    let state = runtime.container_status(&id).await.expect("status").state;
    assert!(
        matches!(state, ContainerState::Exited { .. }),
        "{name}: {state:?}"
    );
    runtime
        .remove_pod_sandbox(&sandbox)
        .await
        .expect("remove sandbox");
}

/// A container's log path is its config's `log_path` under the sandbox's log directory.
pub async fn log_path(runtime: &dyn ContainerRuntime, image: ImageRef, dir: &Path) {
    let name = runtime.name();
    let sandbox = sandbox(runtime, "logs", dir).await;
    let id = runtime
        .create_container(&sandbox, &ContainerConfig::new("main", image))
        .await
        .expect("create_container");
    let status = runtime.container_status(&id).await.expect("status");
    assert_eq!(
        status.log_path,
        log_directory("logs", dir).join("main/0.log"),
        "{name}: the log path follows the config"
    );
    runtime
        .remove_pod_sandbox(&sandbox)
        .await
        .expect("remove sandbox");
}

/// A container's status describes it as created: its name, attempt, sandbox and image, the
/// same in `container_status` and `list_containers` (what an agent re-attaching relies on).
pub async fn status_describes_the_container(
    runtime: &dyn ContainerRuntime,
    image: ImageRef,
    dir: &Path,
) {
    let name = runtime.name();
    let sandbox = sandbox(runtime, "described", dir).await;
    let config = ContainerConfig {
        attempt: 3,
        log_path: "web/3.log".into(),
        ..ContainerConfig::new("web", image.clone())
    };
    let id = runtime
        .create_container(&sandbox, &config)
        .await
        .expect("create_container");
    let status = runtime.container_status(&id).await.expect("status");
    assert_eq!(
        (
            status.id.as_str(),
            status.name.as_str(),
            status.attempt,
            status.sandbox_id.as_str(),
            status.image.reference.as_str(),
            status.image.digest.as_str(),
        ),
        (
            id.as_str(),
            "web",
            3,
            sandbox.as_str(),
            image.reference.as_str(),
            image.digest.as_str(),
        ),
        "{name}: the status describes the container"
    );
    let listed = runtime
        .list_containers(Some(&sandbox))
        .await
        .expect("list_containers");
    assert!(
        listed.len() == 1
            && listed[0].id == status.id
            && listed[0].name == status.name
            && listed[0].attempt == status.attempt
            && listed[0].state == status.state,
        "{name}: listed as its status says: {listed:?} vs {status:?}"
    );
    runtime
        .remove_pod_sandbox(&sandbox)
        .await
        .expect("remove sandbox");
}

/// Stop and remove are idempotent, as the CRI requires: for containers and sandboxes, twice,
/// and for ids the runtime never knew. A removed container is gone.
pub async fn idempotent_stop_and_remove(
    runtime: &dyn ContainerRuntime,
    image: ImageRef,
    dir: &Path,
) {
    let name = runtime.name();
    let sandbox = sandbox(runtime, "idempotent", dir).await;
    let id = run(runtime, &sandbox, "main", &image).await;
    runtime
        .stop_container(&id, GRACE)
        .await
        .expect("stop_container");
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
    let unknown: ContainerId = "never-created".into();
    runtime
        .stop_container(&unknown, Duration::ZERO)
        .await
        .unwrap_or_else(|e| panic!("{name}: stopping an unknown container: {e}"));
    runtime
        .remove_container(&unknown)
        .await
        .unwrap_or_else(|e| panic!("{name}: removing an unknown container: {e}"));
    runtime
        .stop_pod_sandbox(&sandbox)
        .await
        .expect("stop sandbox");
    runtime
        .stop_pod_sandbox(&sandbox)
        .await
        .expect("second stop sandbox");
    runtime
        .remove_pod_sandbox(&sandbox)
        .await
        .expect("remove sandbox");
    runtime
        .remove_pod_sandbox(&sandbox)
        .await
        .expect("second remove sandbox");
}
