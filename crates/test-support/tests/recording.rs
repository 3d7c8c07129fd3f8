//! The recording fake runtime keeps the runtime contract: the conformance suite against it,
//! with containers that die with the agent and with containers that outlive it.

use std::sync::Arc;

use skiff_node_runtime::runtime::{ContainerRuntime, ImageRef, ImageService};
use skiff_test_support::{conformance, RecordingRuntime};

async fn image(runtime: &RecordingRuntime) -> ImageRef {
    runtime
        .pull_image("registry.example/app:1", None)
        .await
        .expect("pull")
}

#[tokio::test]
async fn container_lifecycle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = RecordingRuntime::default();
    conformance::container_lifecycle(&runtime, image(&runtime).await, dir.path()).await;
    let calls = runtime.calls();
    assert!(
        calls.contains(&"create_container main attempt=0 env=".to_string()),
        "every call is recorded: {calls:?}"
    );
}

#[tokio::test]
async fn log_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = RecordingRuntime::default();
    conformance::log_path(&runtime, image(&runtime).await, dir.path()).await;
}

#[tokio::test]
async fn status_describes_the_container() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = RecordingRuntime::default();
    conformance::status_describes_the_container(&runtime, image(&runtime).await, dir.path()).await;
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    conformance::unknown_ids_are_not_found(&RecordingRuntime::default()).await;
}

#[tokio::test]
async fn idempotent_stop_and_remove() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = RecordingRuntime::default();
    conformance::idempotent_stop_and_remove(&runtime, image(&runtime).await, dir.path()).await;
}

#[tokio::test]
async fn sandboxes_own_their_containers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = RecordingRuntime::default();
    conformance::sandboxes_own_their_containers(&runtime, image(&runtime).await, dir.path()).await;
}

#[tokio::test]
async fn a_restarted_runtime_starts_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = Arc::new(RecordingRuntime::default());
    let image = image(&runtime).await;
    conformance::recover_after_restart(
        runtime,
        || Arc::new(RecordingRuntime::default()),
        image,
        dir.path(),
    )
    .await;
}

#[tokio::test]
async fn containers_that_outlive_the_agent_are_recovered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = Arc::new(RecordingRuntime::default().outliving_agent());
    let image = image(&runtime).await;
    let same: Arc<dyn ContainerRuntime> = runtime.clone();
    conformance::recover_after_restart(runtime, move || same, image, dir.path()).await;
}
