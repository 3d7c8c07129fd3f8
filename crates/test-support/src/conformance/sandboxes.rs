//! Contracts of sandboxes: they own their containers, and unknown ids are not found.

use std::path::Path;

use skiff_node_runtime::runtime::{
    ContainerConfig, ContainerEventKind, ContainerId, ContainerRuntime, ContainerState, ImageRef,
    RuntimeError, SandboxId,
};

use super::{expect_event, listed, run, sandbox};

/// Asking about a container or sandbox the runtime does not know is a not-found error
/// naming it, not a made-up answer.
pub async fn unknown_ids_are_not_found(runtime: &dyn ContainerRuntime) {
    let name = runtime.name();
    let container: ContainerId = "never-created".into();
    let sandbox: SandboxId = "never-run".into();
    let status = runtime.container_status(&container).await;
    assert!(
        matches!(&status, Err(RuntimeError::ContainerNotFound(id)) if *id == container),
        "{name}: container_status: {status:?}"
    );
    let stats = runtime.container_stats(&container).await;
    assert!(
        matches!(&stats, Err(RuntimeError::ContainerNotFound(id)) if *id == container),
        "{name}: container_stats: {stats:?}"
    );
    let start = runtime.start_container(&container).await;
    assert!(
        matches!(&start, Err(RuntimeError::ContainerNotFound(id)) if *id == container),
        "{name}: start_container: {start:?}"
    );
    let sandbox_status = runtime.pod_sandbox_status(&sandbox).await;
    assert!(
        matches!(&sandbox_status, Err(RuntimeError::SandboxNotFound(id)) if *id == sandbox),
        "{name}: pod_sandbox_status: {sandbox_status:?}"
    );
    let listed = runtime
        .list_containers(Some(&sandbox))
        .await
        .expect("list_containers");
    assert!(listed.is_empty(), "{name}: {listed:?}");
}

/// Containers belong to their sandbox: `list_containers` filters by it, stopping a sandbox
/// stops its containers, and removing it removes them; a removed sandbox is gone and no
/// container can be created in it.
pub async fn sandboxes_own_their_containers(
    runtime: &dyn ContainerRuntime,
    image: ImageRef,
    dir: &Path,
) {
    let name = runtime.name();
    let first = sandbox(runtime, "first", dir).await;
    let second = sandbox(runtime, "second", dir).await;
    let a = run(runtime, &first, "a", &image).await;
    let b = run(runtime, &second, "b", &image).await;
    assert_eq!(
        listed(runtime, Some(&first)).await,
        std::slice::from_ref(&a),
        "{name}: first sandbox"
    );
    assert_eq!(
        listed(runtime, Some(&second)).await,
        std::slice::from_ref(&b),
        "{name}: second sandbox"
    );
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(listed(runtime, None).await, both, "{name}: all containers");

    let mut events = runtime.subscribe();
    runtime
        .stop_pod_sandbox(&first)
        .await
        .expect("stop sandbox");
    expect_event(runtime, &mut events, &a, &first, ContainerEventKind::Exited).await;
    let state = runtime.container_status(&a).await.expect("status").state;
    assert!(
        matches!(state, ContainerState::Exited { .. }),
        "{name}: a stopped sandbox's container has exited: {state:?}"
    );
    let state = runtime.container_status(&b).await.expect("status").state;
    assert!(
        matches!(state, ContainerState::Running { .. }),
        "{name}: another sandbox's container runs on: {state:?}"
    );

    runtime
        .remove_pod_sandbox(&first)
        .await
        .expect("remove sandbox");
    assert_eq!(
        listed(runtime, Some(&first)).await,
        Vec::<ContainerId>::new(),
        "{name}"
    );
    assert!(
        matches!(
            runtime.container_status(&a).await,
            Err(RuntimeError::ContainerNotFound(_))
        ),
        "{name}: removing a sandbox removes its containers"
    );
    assert!(
        matches!(
            runtime.pod_sandbox_status(&first).await,
            Err(RuntimeError::SandboxNotFound(_))
        ),
        "{name}: a removed sandbox is gone"
    );
    assert!(
        matches!(
            runtime
                .create_container(&first, &ContainerConfig::new("late", image))
                .await,
            Err(RuntimeError::SandboxNotFound(_))
        ),
        "{name}: no container in a removed sandbox"
    );
    runtime
        .remove_pod_sandbox(&second)
        .await
        .expect("remove sandbox");
}
