//! The contract across an agent restart: what `recover` and `list_containers` show.

use std::path::Path;
use std::sync::Arc;

use skiff_node_runtime::runtime::{ContainerRuntime, ContainerState, ImageRef};

use super::{run, sandbox};

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
