//! The node lifecycle controller on a real store: a node that stops heartbeating is marked
//! NotReady (`Ready=Unknown`), tainted unreachable and loses its pods; heartbeats bring it back.

use std::time::Duration;

use serde_json::{json, Value};
use skiff_api::join_token::{self, JoinToken};
use skiff_control_plane::{Server, ServerConfig};

/// Longer than a second: heartbeats carry seconds, so an agent's beat changes once a second.
const GRACE: Duration = Duration::from_millis(1500);
const DEADLINE: Duration = Duration::from_secs(15);

async fn get(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = http.get(url).send().await.expect("request");
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

/// Polls `url` until `done` holds for what it serves, failing after the deadline.
async fn wait_for(
    http: &reqwest::Client,
    url: &str,
    what: &str,
    done: impl Fn(u16, &Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    loop {
        poll.tick().await;
        let (code, body) = get(http, url).await;
        if done(code, &body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {code} {body}"
        );
    }
}

fn ready(node: &Value) -> Option<&str> {
    node["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?["status"]
        .as_str()
}

fn unreachable_taint(node: &Value) -> bool {
    node["spec"]["taints"].as_array().is_some_and(|ts| {
        ts.iter()
            .any(|t| t["key"] == "node.kubernetes.io/unreachable")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_goes_not_ready_loses_its_pods_and_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(
        "test",
        dir.path().to_path_buf(),
        "127.0.0.1:0".parse().expect("addr"),
    );
    config.node_grace = GRACE;
    let server = Server::start(config).await.expect("server");
    // Registering a node and writing its status take a join token, as an agent has.
    let token = JoinToken::from_random([7; 22]);
    let response = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/namespaces/{}/secrets",
            server.url(),
            join_token::NAMESPACE
        ))
        .json(&token.to_secret(None, "node lifecycle test"))
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), 201);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header"),
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client");
    let nodes = format!("{}/api/v1/nodes", server.url());
    let node_url = format!("{nodes}/n1");
    let heartbeat = || {
        json!({"status": {"conditions": [{"type": "Ready", "status": "True",
            "reason": "KubeletReady", "lastHeartbeatTime": skiff_api::time::now_rfc3339()}]}})
    };
    let mut node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}});
    json_patch::merge(&mut node, &heartbeat());
    let response = http.post(&nodes).json(&node).send().await.expect("node");
    assert_eq!(response.status(), 201);
    let pods = format!("{}/api/v1/namespaces/default/pods", server.url());
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "registry.example/app:1"}]}});
    let response = http.post(&pods).json(&pod).send().await.expect("pod");
    assert_eq!(response.status(), 201);

    let lost = wait_for(&http, &node_url, "NotReady and tainted", |_, n| {
        ready(n) == Some("Unknown") && unreachable_taint(n)
    })
    .await;
    let condition = lost["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .expect("Ready condition");
    assert_eq!(condition["reason"], "NodeStatusUnknown");
    assert!(condition["lastTransitionTime"].is_string());
    assert!(condition["lastHeartbeatTime"].is_string());
    // The bound pod is deleted gracefully: marked, left for its node to finish.
    wait_for(
        &http,
        &format!("{pods}/p"),
        "the pod to be deleted",
        |code, p| code == 404 || p["metadata"]["deletionTimestamp"].is_string(),
    )
    .await;

    // Heartbeats resume: the taint goes.
    let mut beat = tokio::time::interval(Duration::from_millis(250));
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        beat.tick().await;
        let response = http
            .patch(format!("{node_url}/status"))
            .header("Content-Type", "application/merge-patch+json")
            .body(heartbeat().to_string())
            .send()
            .await
            .expect("heartbeat");
        assert_eq!(response.status(), 200);
        let (_, node) = get(&http, &node_url).await;
        if ready(&node) == Some("True") && !unreachable_taint(&node) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for the taint to go: {node}"
        );
    }
    server.shutdown().await;
}
