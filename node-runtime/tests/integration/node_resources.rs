//! What protects a node from its pods, against a real in-process control plane: pods bound
//! straight to the node (`spec.nodeName`, no scheduler) beyond what it offers fail with the
//! kubelet's reasons; when the node runs short of memory the pod furthest over its request is
//! evicted while the others keep running; a guest without a memory limit gets the node's
//! default. The recording fake runtime stands in for a runtime, except where a real Wasm guest
//! has to grow.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use skiff_api::join_token::{self, JoinToken};
use skiff_api::k8s_openapi::api::core::v1::Secret;
use skiff_api::resources;
use skiff_client::Client;
use skiff_control_plane::{Server, ServerConfig, ServerHandle};
use skiff_node_runtime::agent::{Agent, AgentBuilder, Eviction, MemorySource};
use skiff_node_runtime::runtime::wasm::WasmRuntime;
use skiff_test_support::RecordingRuntime;
use tokio::sync::oneshot;

const MIB: u64 = 1 << 20;

/// A control plane in-process, a client, and a join token for agents.
async fn control_plane(dir: &std::path::Path) -> (ServerHandle, Client, JoinToken) {
    let listen = "127.0.0.1:0".parse().expect("addr");
    let server = Server::start(ServerConfig::new("t", dir.join("server"), listen))
        .await
        .expect("server");
    let client = Client::new(&[server.url()]).expect("client");
    let token = JoinToken::from_random([3; 22]);
    client
        .api::<Secret>(Some(join_token::NAMESPACE))
        .create(&token.to_secret(None, "test"))
        .await
        .expect("join token");
    (server, client, token)
}

/// An agent for node `n1`, its data in `dir`, configured by `configure` (runtimes and the
/// rest), running until the returned sender is dropped.
fn spawn_agent(
    server: &ServerHandle,
    token: &JoinToken,
    dir: &std::path::Path,
    configure: impl FnOnce(AgentBuilder) -> AgentBuilder,
) -> oneshot::Sender<()> {
    let builder = Agent::builder()
        .servers(vec![server.url()])
        .token(token.to_string())
        .node_name("n1")
        .data_dir(dir.join("agent"));
    let agent = configure(builder).build().expect("agent");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    stop
}

/// The agent runs its pods on `runtime`, which is its image service too.
fn recording(runtime: &Arc<RecordingRuntime>) -> impl FnOnce(AgentBuilder) -> AgentBuilder {
    let runtime = runtime.clone();
    move |b| b.images(runtime.clone()).runtime(runtime)
}

/// Creates pod `name` bound straight to `n1`, its one container asking for `resources`.
async fn bound_pod(client: &Client, name: &str, resources: Value) {
    guest_pod(client, name, "registry.example/app:1", resources).await
}

/// Creates pod `name` bound straight to `n1`, never restarted, running `image`.
async fn guest_pod(client: &Client, name: &str, image: &str, resources: Value) {
    let pods = resources::by_name("pods").expect("pods");
    client
        .create(
            pods,
            Some("default"),
            &json!({"metadata": {"name": name}, "spec": {"nodeName": "n1",
                "restartPolicy": "Never", "containers": [
                    {"name": "main", "image": image, "resources": resources}
            ]}}),
        )
        .await
        .expect("create pod");
}

/// Writes a `.wat` guest into `dir` as Wasm; its `file:` image reference.
fn guest(dir: &std::path::Path, name: &str, wat: &str) -> String {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, wat::parse_str(wat).expect("valid wat")).expect("write guest");
    format!("file:{}", path.display())
}

/// Polls pod `name` (every 20 ms, at most 15 s) until `accept` holds for it.
async fn wait_named(
    client: &Client,
    name: &str,
    what: &str,
    accept: impl Fn(&Value) -> bool,
) -> Value {
    let pods = resources::by_name("pods").expect("pods");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let pod = client.get(pods, Some("default"), name).await.ok();
        if let Some(pod) = pod.as_ref().filter(|p| accept(p)) {
            return pod.clone();
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {pod:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_beyond_what_the_node_offers_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, client, token) = control_plane(dir.path()).await;
    let runtime = Arc::new(RecordingRuntime::default());
    // 1 core, 1 GiB less a 256 MiB system reserve, two pods.
    let with_runtime = recording(&runtime);
    let _agent = spawn_agent(&server, &token, dir.path(), |b| {
        with_runtime(b)
            .capacity(1000, 1 << 30, 2)
            .system_reserved(0, 256 * MIB)
    });

    bound_pod(&client, "big", json!({"requests": {"memory": "800Mi"}})).await;
    let big = wait_named(&client, "big", "big rejected", |p| phase(p) == "Failed").await;
    assert_eq!(big["status"]["reason"], "OutOfmemory", "{big}");
    let message = big["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("capacity: 768Mi"), "{message}");

    bound_pod(&client, "a", json!({"limits": {"cpu": "600m"}})).await;
    wait_named(&client, "a", "a running", |p| phase(p) == "Running").await;
    bound_pod(&client, "cpu", json!({"requests": {"cpu": "500m"}})).await;
    let cpu = wait_named(&client, "cpu", "cpu rejected", |p| phase(p) == "Failed").await;
    assert_eq!(cpu["status"]["reason"], "OutOfcpu", "{cpu}");

    bound_pod(&client, "b", json!({})).await;
    wait_named(&client, "b", "b running", |p| phase(p) == "Running").await;
    bound_pod(&client, "c", json!({})).await;
    let c = wait_named(&client, "c", "c rejected", |p| phase(p) == "Failed").await;
    assert_eq!(c["status"]["reason"], "OutOfpods", "{c}");
    assert!(c["status"]["containerStatuses"].is_null(), "{c}");

    let nodes = resources::by_name("nodes").expect("nodes");
    let node = client.get(nodes, None, "n1").await.expect("node");
    assert_eq!(node["status"]["allocatable"]["memory"], "768Mi", "{node}");
    assert_eq!(node["status"]["capacity"]["memory"], "1Gi", "{node}");
    let conditions = node["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "MemoryPressure" && c["status"] == "False"),
        "{node}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_memory_evicts_the_pod_furthest_over_its_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, client, token) = control_plane(dir.path()).await;
    let runtime = Arc::new(RecordingRuntime::default());
    let eviction = Eviction {
        threshold: 100 * MIB,
        interval: Duration::from_millis(50),
        source: MemorySource::Total(1 << 30),
    };
    let with_runtime = recording(&runtime);
    let _agent = spawn_agent(&server, &token, dir.path(), |b| {
        with_runtime(b).eviction(eviction)
    });

    bound_pod(&client, "greedy", json!({})).await;
    bound_pod(&client, "modest", json!({"requests": {"memory": "512Mi"}})).await;
    let mut uids = Vec::new();
    for name in ["greedy", "modest"] {
        let pod = wait_named(&client, name, "running", |p| phase(p) == "Running").await;
        uids.push(pod["metadata"]["uid"].as_str().expect("uid").to_string());
    }
    // 700 + 300 MiB of 1 GiB: 24 MiB left, below the threshold. Greedy is the one over its
    // request (of none).
    runtime.use_memory(&uids[1], 300 * MIB);
    runtime.use_memory(&uids[0], 700 * MIB);
    let greedy = wait_named(&client, "greedy", "greedy evicted", |p| {
        phase(p) == "Failed"
    })
    .await;
    assert_eq!(greedy["status"]["reason"], "Evicted", "{greedy}");
    let message = greedy["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("The node was low on resource: memory.")
            && message.contains("Container main was using 700Mi, request is 0"),
        "{message}"
    );
    let modest = wait_named(&client, "modest", "modest", |_| true).await;
    assert_eq!(phase(&modest), "Running", "{modest}");

    // The Event is written beside the status; wait for it too.
    let events = resources::by_name("events").expect("events");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let list = client
            .list(events, Some("default"), &Default::default())
            .await
            .expect("events");
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if items
            .iter()
            .any(|e| e["reason"] == "Evicted" && e["involvedObject"]["name"] == "greedy")
        {
            break;
        }
        assert!(Instant::now() < deadline, "no Evicted event: {list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Grows its memory 64 KiB at a time until refused, then exits 0.
const GROW_UNTIL_REFUSED: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))))"#;

/// Grows its memory to 80 MiB, then runs until stopped.
const GROW_AND_STAY: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (memory.grow (i32.const 1279)))
    (loop $forever (br $forever))))"#;

/// A real Wasm agent: the runtime in `dir`, `file:` images from `dir`.
fn wasm(dir: &std::path::Path) -> impl FnOnce(AgentBuilder) -> AgentBuilder {
    let runtime = Arc::new(WasmRuntime::new(dir.join("wasm")).expect("wasm runtime"));
    let dir = dir.to_path_buf();
    move |b| b.allow_image_dir(dir).runtime(runtime)
}

/// The state the pod's one container ended in.
fn terminated(pod: &Value) -> &Value {
    &pod["status"]["containerStatuses"][0]["state"]["terminated"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_without_a_limit_gets_the_node_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, client, token) = control_plane(dir.path()).await;
    let with_runtime = wasm(dir.path());
    let _agent = spawn_agent(&server, &token, dir.path(), |b| {
        with_runtime(b).default_container_memory(Some(4 * MIB))
    });
    let image = guest(dir.path(), "grow", GROW_UNTIL_REFUSED);
    guest_pod(&client, "unlimited", &image, json!({})).await;
    let pod = wait_named(&client, "unlimited", "ended", |p| terminated(p).is_object()).await;
    assert_eq!(terminated(&pod)["reason"], "OOMKilled", "{pod}");
    // Its own limit wins over the default.
    guest_pod(
        &client,
        "limited",
        &image,
        json!({"limits": {"memory": "8Mi"}}),
    )
    .await;
    let pod = wait_named(&client, "limited", "ended", |p| terminated(p).is_object()).await;
    let message = terminated(&pod)["message"].as_str().unwrap_or_default();
    assert!(message.contains("its limit is 8388608"), "{pod}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growing_guests_without_limits_are_evicted_and_the_agent_stays_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, client, token) = control_plane(dir.path()).await;
    let with_runtime = wasm(dir.path());
    // A node of 128 MiB that must keep 64 MiB free, and guests of 80 MiB without a limit.
    let eviction = Eviction {
        threshold: 64 * MIB,
        interval: Duration::from_millis(50),
        source: MemorySource::Total(128 * MIB),
    };
    let _agent = spawn_agent(&server, &token, dir.path(), |b| {
        with_runtime(b).eviction(eviction)
    });
    let image = guest(dir.path(), "stay", GROW_AND_STAY);
    for name in ["first", "second"] {
        guest_pod(&client, name, &image, json!({})).await;
        let pod = wait_named(&client, name, "evicted", |p| phase(p) == "Failed").await;
        assert_eq!(pod["status"]["reason"], "Evicted", "{pod}");
        assert_eq!(terminated(&pod)["exitCode"], 137, "{pod}");
    }
    // The agent is still serving: a guest within the node's means runs.
    guest_pod(
        &client,
        "small",
        &guest(
            dir.path(),
            "ok",
            r#"(module
  (memory (export "memory") 1) (func (export "_start")))"#,
        ),
        json!({}),
    )
    .await;
    wait_named(&client, "small", "completed", |p| phase(p) == "Succeeded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_refused_before_the_process_runs_out_of_mappings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, client, token) = control_plane(dir.path()).await;
    let with_runtime = wasm(dir.path());
    // A mapping limit this process is already past: no pod may start.
    let _agent = spawn_agent(&server, &token, dir.path(), |b| {
        with_runtime(b).max_map_count(1)
    });
    let image = guest(
        dir.path(),
        "ok",
        r#"(module (memory (export "memory") 1) (func (export "_start")))"#,
    );
    guest_pod(&client, "refused", &image, json!({})).await;
    let pod = wait_named(&client, "refused", "refused", |p| phase(p) == "Failed").await;
    assert_eq!(pod["status"]["reason"], "OutOfmappings", "{pod}");
    let message = pod["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("vm.max_map_count 1;"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_cannot_be_instantiated_fails_and_others_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, client, token) = control_plane(dir.path()).await;
    let with_runtime = wasm(dir.path());
    let _agent = spawn_agent(&server, &token, dir.path(), with_runtime);
    // 1,000 pages (62.5 MiB) of initial memory under an 8 MiB limit: no instance.
    let huge = guest(
        dir.path(),
        "huge",
        r#"(module (memory (export "memory") 1000) (func (export "_start")))"#,
    );
    guest_pod(&client, "huge", &huge, json!({"limits": {"memory": "8Mi"}})).await;
    let pod = wait_named(&client, "huge", "failed", |p| phase(p) == "Failed").await;
    assert_eq!(terminated(&pod)["reason"], "OOMKilled", "{pod}");
    let message = terminated(&pod)["message"].as_str().unwrap_or_default();
    assert!(message.contains("its limit is 8388608"), "{pod}");
    let small = guest(
        dir.path(),
        "small",
        r#"(module (memory (export "memory") 1) (func (export "_start")))"#,
    );
    guest_pod(
        &client,
        "small",
        &small,
        json!({"limits": {"memory": "8Mi"}}),
    )
    .await;
    wait_named(&client, "small", "completed", |p| phase(p) == "Succeeded").await;
}
