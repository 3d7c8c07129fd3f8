//! The agent's admission and memory eviction against a real in-process control plane and the
//! recording fake runtime: pods bound straight to the node (`spec.nodeName`, no scheduler)
//! beyond what it offers fail with the kubelet's reasons, and when the node runs short of
//! memory the pod furthest over its request is evicted while the others keep running.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use skiff_api::join_token::{self, JoinToken};
use skiff_api::k8s_openapi::api::core::v1::Secret;
use skiff_api::resources;
use skiff_client::Client;
use skiff_control_plane::{Server, ServerConfig, ServerHandle};
use skiff_node_runtime::agent::{Agent, AgentBuilder, Eviction, MemorySource};
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

/// An agent for node `n1` on the recording runtime, configured further by `configure`,
/// running until the returned sender is dropped.
fn spawn_agent(
    server: &ServerHandle,
    token: &JoinToken,
    dir: &std::path::Path,
    runtime: Arc<RecordingRuntime>,
    configure: impl FnOnce(AgentBuilder) -> AgentBuilder,
) -> oneshot::Sender<()> {
    let builder = Agent::builder()
        .servers(vec![server.url()])
        .token(token.to_string())
        .node_name("n1")
        .data_dir(dir.join("agent"))
        .images(runtime.clone())
        .runtime(runtime);
    let agent = configure(builder).build().expect("agent");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    stop
}

/// Creates pod `name` bound straight to `n1`, its one container asking for `resources`.
async fn bound_pod(client: &Client, name: &str, resources: Value) {
    let pods = resources::by_name("pods").expect("pods");
    client
        .create(
            pods,
            Some("default"),
            &json!({"metadata": {"name": name}, "spec": {"nodeName": "n1", "containers": [
                {"name": "main", "image": "registry.example/app:1", "resources": resources}
            ]}}),
        )
        .await
        .expect("create pod");
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
    let _agent = spawn_agent(&server, &token, dir.path(), runtime, |b| {
        b.capacity(1000, 1 << 30, 2).system_reserved(0, 256 * MIB)
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

    let nodes = resources::by_name("nodes").expect("nodes");
    let node = client.get(nodes, None, "n1").await.expect("node");
    assert_eq!(node["status"]["allocatable"]["memory"], "768Mi", "{node}");
    assert_eq!(node["status"]["capacity"]["memory"], "1Gi", "{node}");
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
    let _agent = spawn_agent(&server, &token, dir.path(), runtime.clone(), |b| {
        b.eviction(eviction)
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
