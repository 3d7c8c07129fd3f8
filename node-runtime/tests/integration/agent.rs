//! The agent loop against a real in-process control plane and the recording fake runtime
//! (`skiff_test_support::RecordingRuntime`: containers run until the test makes them exit).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use skiff_api::join_token::{self, JoinToken};
use skiff_api::k8s_openapi::api::core::v1::Secret;
use skiff_api::k8s_openapi::ByteString;
use skiff_api::resources;
use skiff_client::Client;
use skiff_control_plane::{Server, ServerConfig, ServerHandle};
use skiff_node_runtime::agent::{Agent, AgentError, Backoff};
use skiff_test_support::RecordingRuntime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A restart backoff short enough for a test to watch a crash loop.
const QUICK_RESTARTS: Backoff = Backoff {
    initial: Duration::from_millis(100),
    max: Duration::from_millis(400),
    reset_after: Duration::from_secs(600),
};

/// An agent running in its own task until `stop`.
struct RunningAgent {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), AgentError>>,
}

impl RunningAgent {
    fn spawn(agent: Agent) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(agent.run(async move {
            let _ = stopped.await;
        }));
        RunningAgent { stop, task }
    }

    /// Stops the agent and waits for it to return cleanly (`what` names it if it does not).
    async fn stop(self, what: &str) {
        let _ = self.stop.send(());
        self.task.await.expect("join").expect(what);
    }
}

/// The pod `name` as the API has it now.
async fn get_named(client: &Client, name: &str) -> Option<Value> {
    let pods = resources::by_name("pods").expect("pods");
    client.get(pods, Some("default"), name).await.ok()
}

/// Polls the pod `p` (every 20 ms, at most 15 s) until `accept` holds for what it returns.
async fn wait_pod(
    client: &Client,
    what: &str,
    accept: impl Fn(Option<&Value>) -> bool,
) -> Option<Value> {
    wait_named(client, "p", what, accept).await
}

/// Polls the pod `name` (every 20 ms, at most 15 s) until `accept` holds for what it returns.
async fn wait_named(
    client: &Client,
    name: &str,
    what: &str,
    accept: impl Fn(Option<&Value>) -> bool,
) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let pod = get_named(client, name).await;
        if accept(pod.as_ref()) {
            return pod;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {pod:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

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

/// Creates a RuntimeClass `name` whose handler is `handler`.
async fn runtime_class(client: &Client, name: &str, handler: &str) {
    let classes = resources::by_name("runtimeclasses").expect("runtimeclasses");
    client
        .create(
            classes,
            None,
            &json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                "metadata": {"name": name}, "handler": handler}),
        )
        .await
        .expect("runtime class");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_restarts_and_deletes_a_pod() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, client, token) = control_plane(dir.path()).await;
    let runtime = Arc::new(RecordingRuntime::default());
    runtime_class(&client, "recorded", "recording").await;
    let agent = Agent::builder()
        .servers(vec![server.url()])
        .token(token.to_string())
        .node_name("n1")
        .data_dir(dir.path().join("agent"))
        .images(runtime.clone())
        .runtime(runtime.clone())
        .backoff(QUICK_RESTARTS)
        .build()
        .expect("agent");
    let agent = RunningAgent::spawn(agent);

    let pods = resources::by_name("pods").expect("pods");
    let configmaps = resources::by_name("configmaps").expect("configmaps");
    client
        .create(
            configmaps,
            Some("default"),
            &json!({"metadata": {"name": "cfg"}, "data": {"greeting": "hi"}}),
        )
        .await
        .expect("configmap");
    let pod = json!({"metadata": {"name": "p"}, "spec": {"runtimeClassName": "recorded",
        "containers": [{"name": "c", "image": "file:/guest.wasm",
        "env": [{"name": "G", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}}]}]}});
    client
        .create(pods, Some("default"), &pod)
        .await
        .expect("pod");

    wait_pod(&client, "the pod to run", |p| {
        p.is_some_and(|p| p["status"]["phase"] == "Running")
    })
    .await;
    assert!(
        runtime
            .calls()
            .iter()
            // The pod's own variables, then the default `kubernetes` Service's.
            .any(|c| c.starts_with(
                "create_container c attempt=0 env=G=hi,KUBERNETES_SERVICE_HOST=10.43.0.1,"
            )),
        "{:?}",
        runtime.calls()
    );

    // A crash is restarted after the backoff, with the attempt counted and the last state kept.
    runtime.exit_all(1);
    let restarted = wait_pod(&client, "a restart", |p| {
        p.is_some_and(|p| {
            p["status"]["containerStatuses"][0]["restartCount"] == 1
                && p["status"]["phase"] == "Running"
        })
    })
    .await
    .expect("pod");
    assert_eq!(
        restarted["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"],
        1
    );
    assert!(runtime
        .calls()
        .iter()
        .any(|c| c.starts_with("create_container c attempt=1")));

    // Deleting the pod stops it on the node, which then removes it from the API for good.
    client
        .delete(pods, Some("default"), "p", &Default::default())
        .await
        .expect("delete");
    wait_pod(&client, "the pod to be gone", |p| p.is_none()).await;
    let calls = runtime.calls();
    assert!(
        calls.contains(&"stop_container".to_string())
            && calls.iter().any(|c| c.starts_with("remove_pod_sandbox")),
        "{calls:?}"
    );

    agent.stop("agent").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_join_token_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = "127.0.0.1:0".parse().expect("addr");
    let server = Server::start(ServerConfig::new("t", dir.path().join("server"), listen))
        .await
        .expect("server");
    let join = |token: Option<&str>| {
        let mut builder = Agent::builder()
            .servers(vec![server.url()])
            .node_name("intruder")
            .data_dir(dir.path().join("agent"))
            .runtime(Arc::new(RecordingRuntime::default()));
        if let Some(token) = token {
            builder = builder.token(token);
        }
        builder.build().expect("agent").run(std::future::pending())
    };
    let outcome = |token| async move {
        tokio::time::timeout(Duration::from_secs(10), join(token))
            .await
            .expect("refused at once, not retried")
    };
    match outcome(Some("abcdef.0123456789abcdef")).await {
        Err(AgentError::Refused(msg)) => assert!(msg.contains("wrong join token"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    match outcome(None).await {
        Err(AgentError::Refused(msg)) => assert!(msg.contains("skiff token create"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let client = Client::new(&[server.url()]).expect("client");
    let nodes = client
        .list(
            resources::by_name("nodes").expect("nodes"),
            None,
            &Default::default(),
        )
        .await
        .expect("list");
    assert!(
        nodes["items"].as_array().is_some_and(Vec::is_empty),
        "no node registered: {nodes}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn picks_a_runtime_per_pod_by_class_then_by_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, client, token) = control_plane(dir.path()).await;
    let alpha = Arc::new(RecordingRuntime::named("alpha", "alpha/"));
    let beta = Arc::new(RecordingRuntime::named("beta", ""));
    runtime_class(&client, "beta-class", "beta").await;
    runtime_class(&client, "gamma-class", "gamma").await;
    let agent = Agent::builder()
        .servers(vec![server.url()])
        .token(token.to_string())
        .node_name("n2")
        .data_dir(dir.path().join("agent"))
        .images(alpha.clone())
        .runtime(alpha.clone())
        .runtime(beta.clone())
        .build()
        .expect("agent");
    let agent = RunningAgent::spawn(agent);

    let pods = resources::by_name("pods").expect("pods");
    let docker_config =
        br#"{"auths": {"registry.example": {"username": "puller", "password": "pw"}}}"#;
    let encoded = serde_json::to_value(ByteString(docker_config.to_vec())).expect("base64");
    client
        .create(
            resources::by_name("secrets").expect("secrets"),
            Some("default"),
            &json!({"metadata": {"name": "regcred"}, "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": encoded}}),
        )
        .await
        .expect("pull secret");
    let pod = |name: &str, image: &str, class: Option<&str>| {
        let mut spec = json!({"containers": [{"name": "c", "image": image}],
            "imagePullSecrets": [{"name": "regcred"}]});
        if let Some(class) = class {
            spec["runtimeClassName"] = json!(class);
        }
        json!({"metadata": {"name": name}, "spec": spec})
    };
    for manifest in [
        pod("by-image-alpha", "registry.example/alpha/app:1", None),
        pod("by-image-beta", "registry.example/other/app:1", None),
        pod(
            "by-class",
            "registry.example/alpha/app:1",
            Some("beta-class"),
        ),
        pod(
            "no-handler",
            "registry.example/alpha/app:1",
            Some("gamma-class"),
        ),
    ] {
        client
            .create(pods, Some("default"), &manifest)
            .await
            .expect("pod");
    }
    // A class that does not exist may be refused at admission already; if the pod gets
    // through, the node must say why it cannot run it.
    let unknown = client
        .create(
            pods,
            Some("default"),
            &pod("no-class", "registry.example/alpha/app:1", Some("delta")),
        )
        .await;
    let container_id = |pod: Option<&Value>| {
        pod.and_then(|p| p["status"]["containerStatuses"][0]["containerID"].as_str())
            .map(str::to_string)
    };
    for (name, scheme) in [
        ("by-image-alpha", "alpha://"),
        ("by-image-beta", "beta://"),
        ("by-class", "beta://"),
    ] {
        let running = wait_named(&client, name, "the pod to run", |p| {
            p.is_some_and(|p| p["status"]["phase"] == "Running")
        })
        .await;
        let id = container_id(running.as_ref()).unwrap_or_default();
        assert!(id.starts_with(scheme), "{name}: {id}");
        let status = &running.as_ref().expect("pod")["status"];
        assert_eq!(status["podIP"], "10.1.2.3", "{name}: the sandbox's IP");
    }
    // A handler the node lacks: the runtime is unavailable here (and retried with back-off);
    // a class that does not exist is the pod's configuration.
    let mut refused = vec![("no-handler", "gamma", "RuntimeUnavailable")];
    if unknown.is_ok() {
        refused.push(("no-class", "\"delta\"", "CreateContainerConfigError"));
    }
    for (name, names, reason) in refused {
        let waiting = wait_named(&client, name, "a clear waiting reason", |p| {
            p.is_some_and(|p| {
                p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == reason
            })
        })
        .await;
        let message = waiting.as_ref().expect("pod")["status"]["containerStatuses"][0]["state"]
            ["waiting"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(message.contains(names), "{name}: {message}");
    }
    assert!(
        !alpha
            .calls()
            .iter()
            .chain(beta.calls().iter())
            .any(|c| c.contains("no-handler") || c.contains("no-class")),
        "no sandbox for pods without a runtime"
    );
    assert!(
        alpha
            .calls()
            .contains(&"pull registry.example/other/app:1 as puller".to_string()),
        "images are pulled with the pod's pull secret: {:?}",
        alpha.calls()
    );

    let nodes = resources::by_name("nodes").expect("nodes");
    let node = client.get(nodes, None, "n2").await.expect("node");
    let labels = &node["metadata"]["labels"];
    assert_eq!(labels["runtime.skiff.dev/alpha"], "true", "{labels}");
    assert_eq!(labels["runtime.skiff.dev/beta"], "true", "{labels}");
    assert_eq!(
        node["status"]["nodeInfo"]["containerRuntimeVersion"],
        "alpha://test,beta://test"
    );
    assert_eq!(
        node["status"]["runtimeHandlers"],
        json!([{"name": "alpha"}, {"name": "beta"}])
    );
    assert_eq!(node["status"]["conditions"][0]["type"], "Ready");

    agent.stop("agent").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_attaches_to_containers_that_outlived_the_agent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, client, token) = control_plane(dir.path()).await;
    let runtime = Arc::new(RecordingRuntime::default());
    let pods = resources::by_name("pods").expect("pods");
    // The pod was bound to n3 and ran there before this agent (re)started.
    let created = client
        .create(
            pods,
            Some("default"),
            &json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n3",
                "containers": [{"name": "c", "image": "registry.example/app:1"}]}}),
        )
        .await
        .expect("pod");
    let uid = created["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    runtime.preload(&uid, "old-0", "c", 0);
    runtime.preload(&uid, "old-1", "c", 1);
    runtime.preload("ghost-uid", "ghost-0", "c", 0);

    let agent = Agent::builder()
        .servers(vec![server.url()])
        .token(token.to_string())
        .node_name("n3")
        .data_dir(dir.path().join("agent"))
        .images(runtime.clone())
        .runtime(runtime.clone())
        .build()
        .expect("agent");
    let agent = RunningAgent::spawn(agent);

    let running = wait_pod(&client, "the adopted pod to run", |p| {
        p.is_some_and(|p| p["status"]["phase"] == "Running")
    })
    .await
    .expect("pod");
    let container = &running["status"]["containerStatuses"][0];
    assert_eq!(container["containerID"], "recording://old-1", "{container}");
    assert_eq!(container["restartCount"], 1, "{container}");
    let calls = runtime.calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("create_container") || c.starts_with("run_pod_sandbox")),
        "the running container is re-attached, not started twice: {calls:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while !runtime
        .calls()
        .contains(&"remove_pod_sandbox ghost-uid".to_string())
    {
        assert!(
            Instant::now() < deadline,
            "the sandbox of a pod that is gone is removed: {:?}",
            runtime.calls()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    agent.stop("agent").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_that_outlive_the_agent_are_not_started_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, client, token) = control_plane(dir.path()).await;
    let runtime = Arc::new(RecordingRuntime::default().outliving_agent());
    let agent = || {
        Agent::builder()
            .servers(vec![server.url()])
            .token(token.to_string())
            .node_name("n4")
            .data_dir(dir.path().join("agent"))
            .images(runtime.clone())
            .runtime(runtime.clone())
            .backoff(QUICK_RESTARTS)
            .build()
            .expect("agent")
    };
    let first = RunningAgent::spawn(agent());
    let pods = resources::by_name("pods").expect("pods");
    client
        .create(
            pods,
            Some("default"),
            &json!({"metadata": {"name": "p"}, "spec": {
                "containers": [{"name": "c", "image": "registry.example/app:1"}]}}),
        )
        .await
        .expect("pod");
    wait_pod(&client, "the pod to run", |p| {
        p.is_some_and(|p| p["status"]["phase"] == "Running")
    })
    .await;
    first.stop("first agent").await;
    assert!(
        !runtime.calls().iter().any(|c| c.starts_with("stop")),
        "the stopping agent leaves the container running: {:?}",
        runtime.calls()
    );

    // The next agent re-attaches: it sees the container exit and restarts it as attempt 1.
    let second = RunningAgent::spawn(agent());
    runtime.exit_all(1);
    wait_pod(&client, "a restart by the second agent", |p| {
        p.is_some_and(|p| p["status"]["containerStatuses"][0]["restartCount"] == 1)
    })
    .await;
    let creates: Vec<String> = runtime
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("create_container"))
        .map(|c| c.split(" env=").next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        creates,
        [
            "create_container c attempt=0",
            "create_container c attempt=1"
        ],
        "{:?}",
        runtime.calls()
    );
    let sandboxes = runtime
        .calls()
        .iter()
        .filter(|c| c.starts_with("run_pod_sandbox"))
        .count();
    assert_eq!(
        sandboxes,
        1,
        "the sandbox is re-attached, not made again: {:?}",
        runtime.calls()
    );
    second.stop("second agent").await;
    server.shutdown().await;
}

/// A deleted pod's preStop hook runs before its container is asked to stop: the hook's
/// request reaches the test's server while the runtime has had no `stop_container`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pods_pre_stop_hook_runs_before_its_container_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, client, token) = control_plane(dir.path()).await;
    let runtime = Arc::new(RecordingRuntime::default());
    runtime_class(&client, "recorded", "recording").await;
    let agent = Agent::builder()
        .servers(vec![server.url()])
        .token(token.to_string())
        .node_name("n1")
        .data_dir(dir.path().join("agent"))
        .images(runtime.clone())
        .runtime(runtime.clone())
        .build()
        .expect("agent");
    let agent = RunningAgent::spawn(agent);

    // The hook's target: records what the runtime had been told when the hook arrived.
    let hook = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = hook.local_addr().expect("addr").port();
    let seen = {
        let runtime = runtime.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut conn, _) = hook.accept().await.expect("the hook's request");
            let calls = runtime.calls();
            let mut request = vec![0; 1024];
            let n = conn.read(&mut request).await.expect("read");
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await
                .expect("answer");
            (String::from_utf8_lossy(&request[..n]).into_owned(), calls)
        })
    };
    let pods = resources::by_name("pods").expect("pods");
    let pod = json!({"metadata": {"name": "p"}, "spec": {"runtimeClassName": "recorded",
        "containers": [{"name": "c", "image": "file:/guest.wasm", "lifecycle": {"preStop":
            {"httpGet": {"host": "127.0.0.1", "port": port, "path": "/drain"}}}}]}});
    client
        .create(pods, Some("default"), &pod)
        .await
        .expect("pod");
    wait_pod(&client, "the pod to run", |p| {
        p.is_some_and(|p| p["status"]["phase"] == "Running")
    })
    .await;

    client
        .delete(pods, Some("default"), "p", &Default::default())
        .await
        .expect("delete");
    wait_pod(&client, "the pod to be gone", |p| p.is_none()).await;
    let (request, calls_at_hook) = tokio::time::timeout(Duration::from_secs(5), seen)
        .await
        .expect("the hook's request came")
        .expect("hook task");
    assert!(request.starts_with("GET /drain "), "{request}");
    assert!(
        !calls_at_hook.iter().any(|c| c == "stop_container"),
        "the container was stopped before its hook: {calls_at_hook:?}"
    );
    assert!(
        runtime.calls().iter().any(|c| c == "stop_container"),
        "{:?}",
        runtime.calls()
    );

    agent.stop("agent").await;
    server.shutdown().await;
}
