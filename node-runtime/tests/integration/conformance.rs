//! The runtime conformance suite (`skiff_test_support::conformance`) against every runtime
//! here: the Wasm runtime with a `.wat` guest and the real `ticker` example guest, the Linux
//! runtime with a busybox image, and the hollow runtime. Each contract is its own test per
//! runtime.

use std::path::Path;
use std::sync::Arc;

use skiff_node_runtime::runtime::hollow::HollowRuntime;
use skiff_node_runtime::runtime::linux::{LinuxConfig, LinuxRuntime, ShimCommand};
use skiff_node_runtime::runtime::wasm::WasmRuntime;
use skiff_node_runtime::runtime::{
    ContainerRuntime, ExecRequest, FileImages, ImageRef, ImageService, ImageStore,
};
use skiff_test_support::busybox::{self, Teardown};
use skiff_test_support::conformance;
use tempfile::TempDir;

/// A runtime to check, an image of it that runs until stopped, and how to restart it.
struct Subject {
    /// Cleans up what a runtime leaves on the host, before `dir` goes.
    _teardown: Option<Teardown>,
    dir: TempDir,
    runtime: Arc<dyn ContainerRuntime>,
    /// The runtime the next agent gets after a restart.
    restart: Box<dyn FnOnce() -> Arc<dyn ContainerRuntime>>,
    image: ImageRef,
}

/// The Wasm runtime on a scratch directory, running the guest at `guest` (a file, which the
/// image store is allowed to read).
async fn wasm(dir: TempDir, guest: &Path) -> Subject {
    let files = FileImages::default()
        .allow_dir(guest.parent().expect("guest's directory"))
        .expect("allow the guest's directory");
    let images = ImageStore::open(dir.path().join("images"))
        .expect("images")
        .with_file_images(files);
    let image = images
        .pull_image(&format!("file:{}", guest.display()), None)
        .await
        .expect("pull");
    let data = dir.path().join("wasm");
    let runtime = Arc::new(WasmRuntime::new(data.clone()).expect("runtime"));
    Subject {
        _teardown: None,
        dir,
        runtime,
        restart: Box::new(move || Arc::new(WasmRuntime::new(data).expect("restarted runtime"))),
        image,
    }
}

/// The Wasm runtime running a `.wat` guest that spins until stopped.
async fn wasm_spin() -> Subject {
    let dir = tempfile::tempdir().expect("tempdir");
    let spin = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))"#,
    )
    .expect("wat");
    let guest = dir.path().join("spin.wasm");
    std::fs::write(&guest, spin).expect("write");
    wasm(dir, &guest).await
}

/// The Wasm runtime running the real `ticker` example guest (a WASI preview 1 module that
/// prints and sleeps until stopped). scripts/build-guests.sh builds it (scripts/test.sh runs
/// it first); without it these tests fail.
async fn wasm_ticker() -> Subject {
    let guest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../wasm-examples/target/wasm32-wasip1/release/ticker.wasm");
    assert!(
        guest.exists(),
        "build the example guests with scripts/build-guests.sh first; missing: {}",
        guest.display()
    );
    let guest = guest.canonicalize().expect("path");
    wasm(tempfile::tempdir().expect("tempdir"), &guest).await
}

/// The hollow runtime, its own image service; a restart is a new simulator.
async fn hollow() -> Subject {
    let runtime = Arc::new(HollowRuntime::new());
    let image = runtime
        .pull_image("registry.example/pause:1", None)
        .await
        .expect("pull");
    Subject {
        _teardown: None,
        dir: tempfile::tempdir().expect("tempdir"),
        runtime,
        restart: Box::new(|| Arc::new(HollowRuntime::new())),
        image,
    }
}

/// The Linux runtime running a busybox shell that runs until SIGTERM; its shims are the
/// `skiff-container-shim` binary and its cgroups go under `skiff-test`.
async fn linux() -> Subject {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = busybox::image(dir.path(), "trap 'exit 0' TERM; sleep 3600 & wait");
    let shim = ShimCommand {
        program: env!("CARGO_BIN_EXE_skiff-container-shim").into(),
        args: vec![],
    };
    let config = LinuxConfig {
        cgroup_parent: "skiff-test".into(),
        ..LinuxConfig::new(dir.path().join("linux"), shim)
    };
    let runtime = Arc::new(LinuxRuntime::new(config.clone()).expect("the Linux runtime"));
    Subject {
        _teardown: Some(Teardown(config.clone())),
        dir,
        runtime,
        restart: Box::new(move || Arc::new(LinuxRuntime::new(config).expect("restarted runtime"))),
        image,
    }
}

/// One test per contract for the runtime `subject` gives.
macro_rules! conformance_tests {
    ($module:ident, $subject:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn container_lifecycle() {
                let s = $subject.await;
                conformance::container_lifecycle(s.runtime.as_ref(), s.image, s.dir.path()).await;
            }

            #[tokio::test]
            async fn log_path() {
                let s = $subject.await;
                conformance::log_path(s.runtime.as_ref(), s.image, s.dir.path()).await;
            }

            #[tokio::test]
            async fn status_describes_the_container() {
                let s = $subject.await;
                conformance::status_describes_the_container(
                    s.runtime.as_ref(),
                    s.image,
                    s.dir.path(),
                )
                .await;
            }

            #[tokio::test]
            async fn unknown_ids_are_not_found() {
                let s = $subject.await;
                conformance::unknown_ids_are_not_found(s.runtime.as_ref()).await;
            }

            #[tokio::test]
            async fn idempotent_stop_and_remove() {
                let s = $subject.await;
                conformance::idempotent_stop_and_remove(s.runtime.as_ref(), s.image, s.dir.path())
                    .await;
            }

            #[tokio::test]
            async fn sandboxes_own_their_containers() {
                let s = $subject.await;
                conformance::sandboxes_own_their_containers(
                    s.runtime.as_ref(),
                    s.image,
                    s.dir.path(),
                )
                .await;
            }

            #[tokio::test]
            async fn recover_after_restart() {
                let s = $subject.await;
                conformance::recover_after_restart(s.runtime, s.restart, s.image, s.dir.path())
                    .await;
            }
        }
    };
}

conformance_tests!(wasm_wat_guest, wasm_spin());
conformance_tests!(wasm_ticker_guest, wasm_ticker());
conformance_tests!(hollow_runtime, hollow());
conformance_tests!(linux_runtime, linux());

/// Only the Linux runtime runs commands in its containers: the others say so by name.
#[tokio::test]
async fn exec_is_unsupported_outside_linux() {
    let request = ExecRequest {
        cmd: vec!["sh".into()],
        tty: false,
        stdin: false,
    };
    for (subject, name) in [(wasm_spin().await, "wasm"), (hollow().await, "hollow")] {
        let err = subject
            .runtime
            .exec(&format!("{name}://any"), &request)
            .await
            .expect_err("exec");
        assert_eq!(
            err.to_string(),
            format!("exec is not supported by the {name} runtime")
        );
    }
}
