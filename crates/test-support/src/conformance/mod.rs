//! The runtime conformance suite: the CRI contract every `ContainerRuntime` keeps, one
//! public check per contract, run the same way against each runtime (Wasm and hollow now;
//! linux when it lands) from that runtime's integration tests.
//!
//! Each check takes the runtime, an image it has pulled that runs until stopped, and a scratch
//! directory for logs; it panics, naming the runtime, where the contract is broken. Each uses
//! its own sandbox, so several may run against one runtime. The checks live by subject:
//! `containers` (lifecycle, status, log path, idempotent stop and remove), `sandboxes`
//! (ownership, unknown ids) and `restart` (recovery after an agent restart); this module
//! holds the helpers they share.

mod containers;
mod restart;
mod sandboxes;

use std::path::{Path, PathBuf};
use std::time::Duration;

use skiff_node_runtime::runtime::{
    ContainerConfig, ContainerEvent, ContainerEventKind, ContainerId, ContainerRuntime, ImageRef,
    PodSandboxConfig, SandboxId,
};
use tokio::sync::broadcast;

pub use containers::{
    container_lifecycle, idempotent_stop_and_remove, log_path, status_describes_the_container,
};
pub use restart::recover_after_restart;
pub use sandboxes::{sandboxes_own_their_containers, unknown_ids_are_not_found};

/// Longest wait for a pushed event.
const EVENT_WAIT: Duration = Duration::from_secs(20);

/// Grace given to a container asked to stop.
const GRACE: Duration = Duration::from_secs(5);

/// Runs the sandbox of pod `pod` (uid `{pod}-uid`) with its logs under `dir/pod/logs`, and
/// checks that it is ready.
async fn sandbox(runtime: &dyn ContainerRuntime, pod: &str, dir: &Path) -> SandboxId {
    let name = runtime.name();
    let sandbox = runtime
        .run_pod_sandbox(&PodSandboxConfig {
            network: None,
            uid: format!("{pod}-uid"),
            namespace: "default".into(),
            name: pod.into(),
            labels: Default::default(),
            log_directory: log_directory(pod, dir),
            hostname: String::new(),
            dns: None,
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

/// Where the sandbox of pod `pod` keeps its logs.
fn log_directory(pod: &str, dir: &Path) -> PathBuf {
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
        .create_container(sandbox, &ContainerConfig::new(container, image.clone()))
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
