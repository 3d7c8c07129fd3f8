//! The agent loop against a real in-process control plane and a recording fake runtime
//! (a test double, clearly not a runtime: containers run until the test makes them exit).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde_json::{json, Value};
use skiff_api::join_token::{self, JoinToken};
use skiff_api::k8s_openapi::api::core::v1::Secret;
use skiff_api::resources;
use skiff_client::Client;
use skiff_control_plane::{Server, ServerConfig};
use skiff_node_runtime::agent::{Agent, AgentError, Backoff};
use skiff_node_runtime::runtime::{
    ContainerConfig, ContainerId, ContainerRuntime, ContainerState, ContainerStats,
    ContainerStatus, ExecResult, ImageRef, ImageService, PodSandboxConfig, RuntimeError, SandboxId,
};

/// Records every call; containers stay Running until `exit_all` is called.
#[derive(Default)]
struct RecordingRuntime {
    calls: Mutex<Vec<String>>,
    containers: Mutex<HashMap<ContainerId, ContainerStatus>>,
}

impl RecordingRuntime {
    fn record(&self, call: String) {
        self.calls.lock().expect("calls").push(call);
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("calls").clone()
    }

    /// Makes every running container exit with `code`.
    fn exit_all(&self, code: i32) {
        for status in self.containers.lock().expect("containers").values_mut() {
            if let ContainerState::Running { started_at } = status.state {
                status.state = ContainerState::Exited {
                    started_at,
                    finished_at: SystemTime::now(),
                    exit_code: code,
                    reason: "Error".into(),
                    message: String::new(),
                };
            }
        }
    }
}

#[async_trait]
impl ImageService for RecordingRuntime {
    async fn pull_image(&self, reference: &str) -> Result<ImageRef, RuntimeError> {
        self.record(format!("pull {reference}"));
        Ok(ImageRef {
            reference: reference.into(),
            digest: "sha256:fake".into(),
            size: 1,
        })
    }
    async fn image_status(&self, _reference: &str) -> Result<Option<ImageRef>, RuntimeError> {
        Ok(None)
    }
    async fn list_images(&self) -> Result<Vec<ImageRef>, RuntimeError> {
        Ok(Vec::new())
    }
    async fn remove_image(&self, _reference: &str) -> Result<(), RuntimeError> {
        Ok(())
    }
}

#[async_trait]
impl ContainerRuntime for RecordingRuntime {
    fn name(&self) -> &'static str {
        "recording"
    }
    fn can_handle(&self, _config: &ContainerConfig) -> bool {
        true
    }
    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<SandboxId, RuntimeError> {
        self.record(format!("run_pod_sandbox {}", config.name));
        Ok(config.uid.clone())
    }
    async fn stop_pod_sandbox(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.record(format!("stop_pod_sandbox {id}"));
        Ok(())
    }
    async fn remove_pod_sandbox(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.record("remove_pod_sandbox".into());
        self.containers
            .lock()
            .expect("containers")
            .retain(|_, c| c.sandbox_id != *id);
        Ok(())
    }
    async fn create_container(
        &self,
        sandbox: &SandboxId,
        config: &ContainerConfig,
    ) -> Result<ContainerId, RuntimeError> {
        let env: Vec<String> = config.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.record(format!(
            "create_container {} attempt={} env={}",
            config.name,
            config.attempt,
            env.join(",")
        ));
        let id = format!("c{}", self.calls().len());
        self.containers.lock().expect("containers").insert(
            id.clone(),
            ContainerStatus {
                id: id.clone(),
                sandbox_id: sandbox.clone(),
                name: config.name.clone(),
                image: config.image.clone(),
                attempt: config.attempt,
                state: ContainerState::Created,
                log_path: "/dev/null".into(),
            },
        );
        Ok(id)
    }
    async fn start_container(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        self.record("start_container".into());
        let mut containers = self.containers.lock().expect("containers");
        let status = containers
            .get_mut(id)
            .ok_or_else(|| RuntimeError::ContainerNotFound(id.clone()))?;
        status.state = ContainerState::Running {
            started_at: SystemTime::now(),
        };
        Ok(())
    }
    async fn stop_container(&self, id: &ContainerId, _grace: Duration) -> Result<(), RuntimeError> {
        self.record("stop_container".into());
        if let Some(status) = self.containers.lock().expect("containers").get_mut(id) {
            if let ContainerState::Running { started_at } = status.state {
                status.state = ContainerState::Exited {
                    started_at,
                    finished_at: SystemTime::now(),
                    exit_code: 137,
                    reason: "Error".into(),
                    message: String::new(),
                };
            }
        }
        Ok(())
    }
    async fn remove_container(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        self.record("remove_container".into());
        self.containers.lock().expect("containers").remove(id);
        Ok(())
    }
    async fn container_status(&self, id: &ContainerId) -> Result<ContainerStatus, RuntimeError> {
        self.containers
            .lock()
            .expect("containers")
            .get(id)
            .cloned()
            .ok_or_else(|| RuntimeError::ContainerNotFound(id.clone()))
    }
    async fn list_containers(
        &self,
        _sandbox: Option<&SandboxId>,
    ) -> Result<Vec<ContainerStatus>, RuntimeError> {
        Ok(self
            .containers
            .lock()
            .expect("containers")
            .values()
            .cloned()
            .collect())
    }
    async fn container_stats(&self, _id: &ContainerId) -> Result<ContainerStats, RuntimeError> {
        Ok(ContainerStats::default())
    }
    async fn exec_sync(
        &self,
        _id: &ContainerId,
        _cmd: &[String],
        _timeout: Duration,
    ) -> Result<ExecResult, RuntimeError> {
        Err(RuntimeError::Unsupported {
            runtime: "recording",
            operation: "exec",
        })
    }
    async fn recover(&self) -> Result<Vec<SandboxId>, RuntimeError> {
        Ok(Vec::new())
    }
}

/// The pod `p` as the API has it now.
async fn get_pod(client: &Client) -> Option<Value> {
    let pods = resources::by_name("pods").expect("pods");
    client.get(pods, Some("default"), "p").await.ok()
}

/// Polls the pod (every 20 ms, at most 15 s) until `accept` holds for what it returns.
async fn wait_pod(
    client: &Client,
    what: &str,
    accept: impl Fn(Option<&Value>) -> bool,
) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let pod = get_pod(client).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_restarts_and_deletes_a_pod() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = "127.0.0.1:0".parse().expect("addr");
    let server = Server::start(ServerConfig::new("t", dir.path().join("server"), listen))
        .await
        .expect("server");
    let runtime = Arc::new(RecordingRuntime::default());
    let client = Client::new(&[server.url()]).expect("client");
    let token = JoinToken::from_random([3; 22]);
    client
        .api::<Secret>(Some(join_token::NAMESPACE))
        .create(&token.to_secret(None, "test"))
        .await
        .expect("join token");
    let agent = Agent::builder()
        .servers(vec![server.url()])
        .token(token.to_string())
        .node_name("n1")
        .data_dir(dir.path().join("agent"))
        .runtime(runtime.clone())
        .backoff(Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(400),
            reset_after: Duration::from_secs(600),
        })
        .build()
        .expect("agent");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent_task = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));

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
    let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "file:/guest.wasm",
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
            .any(|c| c == "create_container c attempt=0 env=G=hi"),
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
            && calls.contains(&"remove_pod_sandbox".to_string()),
        "{calls:?}"
    );

    let _ = stop.send(());
    agent_task.await.expect("join").expect("agent");
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
