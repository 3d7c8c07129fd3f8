//! The runtime conformance suite: the CRI contract every `ContainerRuntime` keeps, one
//! public check per contract, run the same way against each runtime (Wasm and hollow now;
//! linux when it lands) from that runtime's integration tests.
//!
//! Each check takes the runtime, an image it has pulled that runs until stopped, and a scratch
//! directory for logs; it panics, naming the runtime, where the contract is broken. Each uses
//! its own sandbox, so several may run against one runtime.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use skiff_node_runtime::runtime::{
    ContainerConfig, ContainerEvent, ContainerEventKind, ContainerId, ContainerRuntime,
    ContainerState, ImageRef, PodSandboxConfig, RuntimeError, SandboxId,
};
use tokio::sync::broadcast;

/// Longest wait for a pushed event.
const EVENT_WAIT: Duration = Duration::from_secs(20);

/// Grace given to a container asked to stop.
const GRACE: Duration = Duration::from_secs(5);

/// The config of a container `name` running `image`, first attempt, logging to `name/0.log`.
pub fn container_config(name: &str, image: ImageRef) -> ContainerConfig {
    ContainerConfig {
        name: name.into(),
        image,
        command: vec![],
        args: vec![],
        env: vec![],
        working_dir: None,
        resources: Default::default(),
        mounts: vec![],
        security: Default::default(),
        attempt: 0,
        log_path: format!("{name}/0.log").into(),
    }
}

/// Runs the sandbox of pod `pod` (uid `pod-uid`) with its logs under `dir/pod/logs`, and
/// checks that it is ready.
async fn sandbox(runtime: &dyn ContainerRuntime, pod: &str, dir: &Path) -> SandboxId {
    let name = runtime.name();
    let sandbox = runtime
        .run_pod_sandbox(&PodSandboxConfig {
            uid: format!("{pod}-uid"),
            namespace: "default".into(),
            name: pod.into(),
            labels: Default::default(),
            log_directory: log_directory(pod, dir),
        })
        .await
        .unwrap_or_else(|e| panic!("{name}: run_pod_sandbox {pod}: {e}"));
    let status = runtime
        .pod_sandbox_status(&sandbox)
        .await
        .unwrap_or_else(|e| panic!("{name}: pod_sandbox_status {pod}: {e}"));
    assert!(status.ready, "{name}: a new sandbox is ready");
    sandbox
}

fn log_directory(pod: &str, dir: &Path) -> std::path::PathBuf {
    dir.join(pod).join("logs")
}

/// Creates and starts container `container` of `image` in `sandbox`.
async fn run(
    runtime: &dyn ContainerRuntime,
    sandbox: &SandboxId,
    container: &str,
    image: &ImageRef,
) -> ContainerId {
    let name = runtime.name();
    let id = runtime
        .create_container(sandbox, &container_config(container, image.clone()))
        .await
        .unwrap_or_else(|e| panic!("{name}: create_container {container}: {e}"));
    runtime
        .start_container(&id)
        .await
        .unwrap_or_else(|e| panic!("{name}: start_container {container}: {e}"));
    id
}

/// Waits for the next event about container `id` and checks it is a `kind` in `sandbox`.
async fn expect_event(
    runtime: &dyn ContainerRuntime,
    events: &mut broadcast::Receiver<ContainerEvent>,
    id: &ContainerId,
    sandbox: &SandboxId,
    kind: ContainerEventKind,
) {
    let name = runtime.name();
    let event = tokio::time::timeout(EVENT_WAIT, async {
        loop {
            match events.recv().await {
                Ok(event) if event.container == *id => return event,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => {
                    panic!("{name}: the event stream closed")
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name}: no {kind:?} event for {id} in {EVENT_WAIT:?}"));
    assert_eq!(
        (event.kind, &event.container, &event.sandbox),
        (kind, id, sandbox),
        "{name}: the pushed event"
    );
}

/// A container goes Created → Running (pushing `Started`) → Exited (pushing `Exited`) when
/// stopped, and is listed in its sandbox meanwhile.
pub async fn container_lifecycle(runtime: &dyn ContainerRuntime, image: ImageRef, dir: &Path) {
    let name = runtime.name();
    let sandbox = sandbox(runtime, "lifecycle", dir).await;
    let mut events = runtime.subscribe();
    let id = runtime
        .create_container(&sandbox, &container_config("main", image))
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
        .create_container(&sandbox, &container_config("main", image))
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
        ..container_config("web", image.clone())
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

/// The ids of the containers `list_containers(sandbox)` lists, sorted.
async fn listed(runtime: &dyn ContainerRuntime, sandbox: Option<&SandboxId>) -> Vec<ContainerId> {
    let mut ids: Vec<ContainerId> = runtime
        .list_containers(sandbox)
        .await
        .expect("list_containers")
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort();
    ids
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
                .create_container(&first, &container_config("late", image))
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

/// What a runtime shows after the agent restarts: `first` runs a container, the agent stops
/// (stopping it first unless the runtime's containers outlive the agent), and `restart`
/// gives the runtime the next agent uses. If containers outlive the agent, `recover` finds
/// the sandbox and `list_containers` the running container; otherwise nothing is left.
pub async fn recover_after_restart(
    first: Arc<dyn ContainerRuntime>,
    restart: impl FnOnce() -> Arc<dyn ContainerRuntime>,
    image: ImageRef,
    dir: &Path,
) {
    let name = first.name();
    let outlives = first.outlives_agent();
    let sandbox = sandbox(first.as_ref(), "recovered", dir).await;
    let id = run(first.as_ref(), &sandbox, "main", &image).await;
    if !outlives {
        first
            .stop_pod_sandbox(&sandbox)
            .await
            .expect("stop sandbox");
    }
    drop(first);

    let next = restart();
    let recovered = next.recover().await.expect("recover");
    let listed = next.list_containers(None).await.expect("list_containers");
    if outlives {
        assert_eq!(
            recovered,
            std::slice::from_ref(&sandbox),
            "{name}: the sandbox is recovered"
        );
        let container = listed
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("{name}: {id} is listed after a restart: {listed:?}"));
        assert!(
            matches!(container.state, ContainerState::Running { .. }),
            "{name}: it runs on: {:?}",
            container.state
        );
        next.remove_pod_sandbox(&sandbox)
            .await
            .expect("remove sandbox");
    } else {
        assert!(
            recovered.is_empty(),
            "{name}: nothing to recover: {recovered:?}"
        );
        assert!(
            listed.is_empty(),
            "{name}: no container is left: {listed:?}"
        );
    }
}
