//! The Wasm runtime against tiny `.wat` guests and, when built, the real example guests.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;
use crate::runtime::logs::{LogReader, LogRequest};
use crate::runtime::{
    ContainerEventKind, ContainerResources, ContainerState, FileImages, ImageService, ImageStore,
    Mount,
};

struct Fixture {
    dir: tempfile::TempDir,
    images: ImageStore,
    runtime: WasmRuntime,
    sandbox: SandboxId,
}

fn config(image: ImageRef) -> ContainerConfig {
    ContainerConfig::new("main", image)
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    // Guests are written to the tempdir; the built example guests lie under wasm-examples.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm-examples");
    let files = FileImages::default()
        .allow_dir(dir.path())
        .and_then(|files| files.allow_dir(&examples))
        .expect("allow");
    let images = ImageStore::open(dir.path().join("images"))
        .expect("images")
        .with_file_images(files);
    let runtime = WasmRuntime::new(dir.path().join("runtime")).expect("runtime");
    let sandbox = runtime
        .run_pod_sandbox(&PodSandboxConfig {
            network: None,
            uid: "pod-uid".into(),
            namespace: "default".into(),
            name: "pod".into(),
            labels: Default::default(),
            log_directory: dir.path().join("logs"),
            hostname: String::new(),
            dns: None,
        })
        .await
        .expect("sandbox");
    Fixture {
        dir,
        images,
        runtime,
        sandbox,
    }
}

impl Fixture {
    /// Writes a `.wat` guest, compiled to Wasm by wasmtime's `wat` support.
    fn guest(&self, name: &str, wat: &str) -> String {
        let bytes = wat::parse_str(wat).expect("valid wat");
        let path = self.dir.path().join(format!("{name}.wasm"));
        std::fs::write(&path, bytes).expect("write guest");
        format!("file:{}", path.display())
    }

    async fn pull(&self, reference: &str) -> ImageRef {
        self.images.pull_image(reference, None).await.expect("pull")
    }

    async fn create(
        &self,
        reference: &str,
        resources: ContainerResources,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> ContainerId {
        let config = ContainerConfig {
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            resources,
            ..config(self.pull(reference).await)
        };
        self.runtime
            .create_container(&self.sandbox, &config)
            .await
            .expect("create")
    }

    async fn run_to_exit(&self, id: &ContainerId) -> (i32, String, String) {
        self.runtime.start_container(id).await.expect("start");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let ContainerState::Exited {
                exit_code,
                reason,
                message,
                ..
            } = self
                .runtime
                .container_status(id)
                .await
                .expect("status")
                .state
            {
                return (exit_code, reason, message);
            }
            assert!(Instant::now() < deadline, "guest did not exit in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What `skiff logs` would show of the container's log.
    async fn log(&self, id: &ContainerId) -> String {
        use futures::TryStreamExt;
        let path = self
            .runtime
            .container_status(id)
            .await
            .expect("status")
            .log_path;
        let Ok(reader) = LogReader::open(&path, LogRequest::default()).await else {
            return String::new();
        };
        let shown: Vec<_> = reader.stream(None).try_collect().await.expect("read log");
        String::from_utf8_lossy(&shown.concat()).into_owned()
    }
}

const EXIT_WITH: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 7))))"#;

const HELLO: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from wat\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 15))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

const TRAP: &str = r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#;

const MEMORY_BOMB: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))))"#;

/// Sleeps an hour in one host call (`poll_oneoff` on the monotonic clock), where no epoch
/// check can stop it.
const SLEEP_AN_HOUR: &str = r#"(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 3600000000000))
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))"#;

/// Creates `out.txt` in its first preopened directory (fd 3) and writes a line to it; exits
/// 100 + errno when it cannot open it.
const WRITE_TO_MOUNT: &str = r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "out.txt")
  (data (i32.const 200) "written through a mount\n")
  (func (export "_start")
    (local $err i32)
    (local.set $err (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 7)
      (i32.const 1) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 0)))
    (if (local.get $err) (then (call $exit (i32.add (i32.const 100) (local.get $err)))))
    (i32.store (i32.const 16) (i32.const 200))
    (i32.store (i32.const 20) (i32.const 24))
    (drop (call $write (i32.load (i32.const 0)) (i32.const 16) (i32.const 1) (i32.const 32)))))"#;

const SPIN: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $forever (br $forever))))"#;

#[tokio::test]
async fn exit_codes_and_output() {
    let f = fixture().await;
    let id = f
        .create(
            &f.guest("hello", HELLO),
            ContainerResources::default(),
            &[],
            &[],
        )
        .await;
    assert_eq!(
        f.run_to_exit(&id).await,
        (0, "Completed".into(), String::new())
    );
    assert_eq!(f.log(&id).await, "hello from wat\n");
    let id = f
        .create(
            &f.guest("exit7", EXIT_WITH),
            ContainerResources::default(),
            &[],
            &[],
        )
        .await;
    assert_eq!(f.run_to_exit(&id).await.0, 7);
}

#[tokio::test]
async fn a_trap_is_reported_not_fatal() {
    let f = fixture().await;
    let id = f
        .create(
            &f.guest("trap", TRAP),
            ContainerResources::default(),
            &[],
            &[],
        )
        .await;
    let (code, reason, message) = f.run_to_exit(&id).await;
    assert_eq!((code, reason.as_str()), (134, "Error"));
    assert!(message.contains("wasm trap"), "{message}");
}

#[tokio::test]
async fn memory_limit_is_oom_killed() {
    let f = fixture().await;
    let limits = ContainerResources {
        cpu_millis: None,
        memory_bytes: Some(4 << 20),
    };
    let id = f
        .create(&f.guest("bomb", MEMORY_BOMB), limits, &[], &[])
        .await;
    let (code, reason, message) = f.run_to_exit(&id).await;
    assert_eq!((code, reason.as_str()), (137, "OOMKilled"), "{message}");
}

/// A guest with `count` linear memories that grows each by `pages` of 64 KiB, then exits 0.
fn many_memories(count: usize, pages: u32) -> String {
    let memories: String = (1..count).map(|i| format!("(memory $m{i} 1)")).collect();
    let grows: String = (1..count)
        .map(|i| format!("(drop (memory.grow $m{i} (i32.const {pages})))"))
        .collect();
    format!(
        r#"(module (memory (export "memory") 1) {memories}
  (func (export "_start") (drop (memory.grow 0 (i32.const {pages}))) {grows}))"#
    )
}

/// Grows a table by 64 Mi elements (512 MiB of pointers), then exits 0.
const TABLE_BOMB: &str = r#"(module
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (func (export "_start") (drop (table.grow $t (ref.null func) (i32.const 67108864)))))"#;

const LIMIT_64MI: ContainerResources = ContainerResources {
    cpu_millis: None,
    memory_bytes: Some(64 << 20),
};

#[tokio::test]
async fn all_memories_of_a_guest_count_against_its_limit() {
    let f = fixture().await;
    // Eight memories of 56 MiB each: every one under the 64 MiB limit, together far over it.
    let id = f
        .create(
            &f.guest("memories", &many_memories(8, 900)),
            LIMIT_64MI,
            &[],
            &[],
        )
        .await;
    let (code, reason, message) = f.run_to_exit(&id).await;
    assert_eq!((code, reason.as_str()), (137, "OOMKilled"), "{message}");
}

#[tokio::test]
async fn table_growth_counts_against_the_memory_limit() {
    let f = fixture().await;
    let id = f
        .create(&f.guest("table", TABLE_BOMB), LIMIT_64MI, &[], &[])
        .await;
    let (code, reason, message) = f.run_to_exit(&id).await;
    assert_eq!((code, reason.as_str()), (137, "OOMKilled"), "{message}");
}

#[tokio::test]
async fn memories_per_guest_are_capped() {
    let f = fixture().await;
    let id = f
        .create(&f.guest("few", &many_memories(4, 1)), LIMIT_64MI, &[], &[])
        .await;
    assert_eq!(f.run_to_exit(&id).await.0, 0);
    let id = f
        .create(
            &f.guest("many", &many_memories(40, 0)),
            LIMIT_64MI,
            &[],
            &[],
        )
        .await;
    let (code, reason, message) = f.run_to_exit(&id).await;
    assert_ne!(code, 0);
    assert_eq!(reason, "Error");
    assert!(message.contains("memor"), "{message}");
}

#[tokio::test]
async fn stop_ends_an_infinite_loop() {
    let f = fixture().await;
    let id = f
        .create(
            &f.guest("spin", SPIN),
            ContainerResources::default(),
            &[],
            &[],
        )
        .await;
    f.runtime.start_container(&id).await.expect("start");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(matches!(
        f.runtime.container_status(&id).await.expect("status").state,
        ContainerState::Running { .. }
    ));
    let started = Instant::now();
    f.runtime
        .stop_container(&id, Duration::from_secs(5))
        .await
        .expect("stop");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        started.elapsed()
    );
    match f.runtime.container_status(&id).await.expect("status").state {
        ContainerState::Exited { exit_code, .. } => assert_eq!(exit_code, 137),
        other => panic!("expected Exited, got {other:?}"),
    }
    // Stop and remove are idempotent.
    f.runtime
        .stop_container(&id, Duration::ZERO)
        .await
        .expect("second stop");
    f.runtime.remove_container(&id).await.expect("remove");
    f.runtime
        .remove_container(&id)
        .await
        .expect("second remove");
}

/// A guest that does not come back to Wasm code in time is killed when the grace period
/// ends (paused time: the grace passes at once, the guest's hour never).
#[tokio::test(start_paused = true)]
async fn stop_kills_a_blocked_guest_after_the_grace_period() {
    let f = fixture().await;
    let id = f
        .create(
            &f.guest("sleeper", SLEEP_AN_HOUR),
            ContainerResources::default(),
            &[],
            &[],
        )
        .await;
    f.runtime.start_container(&id).await.expect("start");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(matches!(
        f.runtime.container_status(&id).await.expect("status").state,
        ContainerState::Running { .. }
    ));
    let asked = tokio::time::Instant::now();
    f.runtime
        .stop_container(&id, Duration::from_secs(10))
        .await
        .expect("stop");
    assert_eq!(asked.elapsed(), Duration::from_secs(10));
    match f.runtime.container_status(&id).await.expect("status").state {
        ContainerState::Exited {
            exit_code, message, ..
        } => {
            assert_eq!(exit_code, 137);
            assert!(message.contains("grace period"), "{message}");
        }
        other => panic!("expected Exited, got {other:?}"),
    }
}

#[tokio::test]
async fn cpu_limit_throttles() {
    let f = fixture().await;
    let limited = f
        .create(
            &f.guest("spin", SPIN),
            ContainerResources {
                cpu_millis: Some(100),
                memory_bytes: None,
            },
            &[],
            &[],
        )
        .await;
    let free = f
        .create(
            &f.guest("spin2", SPIN),
            ContainerResources::default(),
            &[],
            &[],
        )
        .await;
    f.runtime.start_container(&limited).await.expect("start");
    f.runtime.start_container(&free).await.expect("start");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let limited_ticks = f
        .runtime
        .container_stats(&limited)
        .await
        .expect("stats")
        .cpu_usage_nanos;
    let free_ticks = f
        .runtime
        .container_stats(&free)
        .await
        .expect("stats")
        .cpu_usage_nanos;
    f.runtime
        .stop_container(&limited, Duration::ZERO)
        .await
        .expect("stop");
    f.runtime
        .stop_container(&free, Duration::ZERO)
        .await
        .expect("stop");
    // 100m is a tenth of a core: the limited guest must run far less than the free one.
    assert!(
        limited_ticks * 3 < free_ticks,
        "limited {limited_ticks} vs free {free_ticks}"
    );
}

#[tokio::test]
async fn compiled_modules_are_cached_in_memory_and_on_disk() {
    let f = fixture().await;
    let reference = f.guest("hello", HELLO);
    f.create(&reference, ContainerResources::default(), &[], &[])
        .await;
    f.create(&reference, ContainerResources::default(), &[], &[])
        .await;
    assert_eq!(
        f.runtime.cache_stats(),
        CacheStats {
            compiled: 1,
            loaded: 0,
            hits: 1
        }
    );
    // A new runtime on the same data directory (an agent restart) loads the artifact.
    let restarted = WasmRuntime::new(f.dir.path().join("runtime")).expect("runtime");
    let sandbox = restarted
        .run_pod_sandbox(&PodSandboxConfig {
            network: None,
            uid: "u2".into(),
            namespace: "default".into(),
            name: "p2".into(),
            labels: Default::default(),
            log_directory: f.dir.path().join("logs2"),
            hostname: String::new(),
            dns: None,
        })
        .await
        .expect("sandbox");
    let image = f.pull(&reference).await;
    restarted
        .create_container(&sandbox, &config(image))
        .await
        .expect("create");
    assert_eq!(
        restarted.cache_stats(),
        CacheStats {
            compiled: 0,
            loaded: 1,
            hits: 0
        }
    );
}

#[tokio::test]
async fn tells_wasm_images_and_names_bad_ones() {
    let f = fixture().await;
    let wasm = f.pull(&f.guest("hello", HELLO)).await;
    assert!(f.runtime.can_handle(&wasm));
    // The image store refuses files without the Wasm magic; a Wasm layer this runtime does
    // not know gets through it and is refused here.
    let future = f.dir.path().join("future.wasm");
    std::fs::write(&future, b"\0asm\x02\0\0\0").expect("write");
    let future = f.pull(&format!("file:{}", future.display())).await;
    assert!(!f.runtime.can_handle(&future));
    let err = f
        .runtime
        .create_container(&f.sandbox, &config(future))
        .await
        .expect_err("not wasm");
    assert!(
        matches!(err, RuntimeError::InvalidImage { .. })
            && err.to_string().contains("future.wasm")
            && err.to_string().contains("version"),
        "{err}"
    );
}

#[tokio::test]
async fn pushes_start_and_exit_events() {
    let f = fixture().await;
    let mut events = f.runtime.subscribe();
    let id = f
        .create(
            &f.guest("exit7", EXIT_WITH),
            ContainerResources::default(),
            &[],
            &[],
        )
        .await;
    f.runtime.start_container(&id).await.expect("start");
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("an event in time")
            .expect("event");
        assert_eq!((&event.container, &event.sandbox), (&id, &f.sandbox));
        kinds.push(event.kind);
    }
    kinds.sort_by_key(|k| *k == ContainerEventKind::Exited);
    assert_eq!(
        kinds,
        [ContainerEventKind::Started, ContainerEventKind::Exited]
    );
    assert!(matches!(
        f.runtime.container_status(&id).await.expect("status").state,
        ContainerState::Exited { exit_code: 7, .. }
    ));
    let status = f
        .runtime
        .pod_sandbox_status(&f.sandbox)
        .await
        .expect("sandbox status");
    assert_eq!((status.ready, status.ip), (true, None));
}

#[tokio::test]
async fn mounts_are_preopened_directories() {
    let f = fixture().await;
    let image = f.pull(&f.guest("writer", WRITE_TO_MOUNT)).await;
    for (read_only, dir) in [(false, "rw"), (true, "ro")] {
        let host_path = f.dir.path().join(dir);
        std::fs::create_dir(&host_path).expect("mkdir");
        let config = ContainerConfig {
            mounts: vec![Mount {
                container_path: "/data".into(),
                host_path: host_path.clone(),
                read_only,
            }],
            ..config(image.clone())
        };
        let id = f
            .runtime
            .create_container(&f.sandbox, &config)
            .await
            .expect("create");
        let (code, _, message) = f.run_to_exit(&id).await;
        let written = std::fs::read_to_string(host_path.join("out.txt"));
        if read_only {
            assert!(
                code > 100,
                "a read-only mount refuses the write: {code} {message}"
            );
            assert!(written.is_err(), "nothing written: {written:?}");
        } else {
            assert_eq!(code, 0, "{message}");
            assert_eq!(written.expect("out.txt"), "written through a mount\n");
        }
    }
}

#[tokio::test]
async fn a_mount_that_is_not_a_directory_is_refused() {
    let f = fixture().await;
    let image = f.pull(&f.guest("hello", HELLO)).await;
    let config = ContainerConfig {
        mounts: vec![Mount {
            container_path: "/data".into(),
            host_path: f.dir.path().join("absent"),
            read_only: true,
        }],
        ..config(image)
    };
    let err = f
        .runtime
        .create_container(&f.sandbox, &config)
        .await
        .expect_err("no such directory");
    assert!(err.to_string().contains("/data"), "{err}");
}

/// The example guests run for real: a preview 1 module with args and env, and the same
/// program as a preview 2 component. scripts/build-guests.sh builds them (scripts/test.sh
/// runs it first); without them this test fails.
#[tokio::test]
async fn example_guests_run_as_module_and_component() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm-examples/target");
    let guests: Vec<PathBuf> = [
        "wasm32-wasip1/release/hello.wasm",
        "wasm32-wasip2/release/hello.wasm",
    ]
    .iter()
    .map(|p| root.join(p))
    .collect();
    let missing: Vec<String> = guests
        .iter()
        .filter(|g| !g.exists())
        .map(|g| g.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "build the example guests with scripts/build-guests.sh first; missing: {missing:?}"
    );
    let f = fixture().await;
    for guest in guests {
        let reference = format!("file:{}", guest.canonicalize().expect("path").display());
        let id = f
            .create(
                &reference,
                ContainerResources::default(),
                &["a1", "a2"],
                &[("GREETING_TARGET", "tests")],
            )
            .await;
        let (code, reason, _) = f.run_to_exit(&id).await;
        assert_eq!(
            (code, reason.as_str()),
            (0, "Completed"),
            "{}",
            guest.display()
        );
        let log = f.log(&id).await;
        assert!(
            log.contains("Hello, tests!") && log.contains("args: a1 a2"),
            "{}: {log}",
            guest.display()
        );
    }
}

#[tokio::test]
async fn a_log_flood_is_rotated_within_the_default_caps() {
    let f = fixture().await;
    let id = f
        .create(
            &f.guest("flood", &skiff_test_support::flood::log_flood_wat(1024, 64)),
            ContainerResources::default(),
            &[],
            &[],
        )
        .await;
    assert_eq!(f.run_to_exit(&id).await.0, 0);
    // The kubelet's defaults, which the runtime's are: 5 files of 10Mi.
    let cap = 5 * 10 * 1024 * 1024;
    let used = skiff_test_support::flood::disk_use(&f.dir.path().join("logs"));
    assert!(
        used > cap / 2 && used <= cap,
        "{used} bytes of logs for a 64 MiB flood (cap {cap})"
    );
}

mod name_lookup;
mod net;
