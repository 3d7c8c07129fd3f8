//! The DaemonSet controller on a real store (no node agent): it runs a daemon pod only on
//! nodes its RuntimeClass and its template's node affinity admit, and reports a class that does
//! not exist.

use std::time::Duration;

use serde_json::{json, Value};
use skiff_api::join_token::{self, JoinToken};
use skiff_control_plane::{Server, ServerConfig};

const DEADLINE: Duration = Duration::from_secs(15);

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

/// Polls `url` until `done` returns something for what it serves, failing after the deadline.
async fn wait_for<T>(
    http: &reqwest::Client,
    url: &str,
    what: &str,
    done: impl Fn(&Value) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    loop {
        poll.tick().await;
        let (_, body) = send(http.get(url)).await;
        if let Some(found) = done(&body) {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {body}"
        );
    }
}

/// The nodes the DaemonSet `app`'s pods are pinned to, sorted.
fn pinned_nodes(pods: &Value, app: &str) -> Vec<String> {
    let mut nodes: Vec<String> = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["labels"]["app"] == app)
        .filter_map(|p| {
            p.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchFields/0/values/0")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    nodes.sort();
    nodes
}

fn daemonset(name: &str, runtime_class: Option<&str>) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"runtimeClassName": runtime_class,
                    "containers": [{"name": "c", "image": "file:/x.wasm"}]}}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_pods_go_only_where_their_runtime_class_admits_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = "127.0.0.1:0".parse().expect("addr");
    let mut config = ServerConfig::new("test", dir.path().to_path_buf(), listen);
    // Nodes stay as registered, so only the RuntimeClass's arrival can move the DaemonSet.
    config.node_grace = Duration::from_secs(600);
    let server = Server::start(config).await.expect("server");
    // Registering nodes takes a join token, as an agent has.
    let token = JoinToken::from_random([7; 22]);
    let (code, _) = send(
        reqwest::Client::new()
            .post(format!(
                "{}/api/v1/namespaces/{}/secrets",
                server.url(),
                join_token::NAMESPACE
            ))
            .json(&token.to_secret(None, "daemonset test")),
    )
    .await;
    assert_eq!(code, 201);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header"),
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client");
    // `gpu` lacks the Wasm runtime and takes only pods that tolerate its taint.
    for (name, labels, taints) in [
        (
            "gpu",
            json!({"gpu": "yes"}),
            json!([{"key": "gpu", "effect": "NoSchedule"}]),
        ),
        ("wasm", json!({"runtime.skiff.dev/wasm": "true"}), json!([])),
    ] {
        let node = json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels}, "spec": {"taints": taints},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "lastHeartbeatTime": skiff_api::time::now_rfc3339()}]}});
        let (code, body) = send(
            http.post(format!("{}/api/v1/nodes", server.url()))
                .json(&node),
        )
        .await;
        assert_eq!(code, 201, "{body}");
    }
    let daemonsets = format!(
        "{}/apis/apps/v1/namespaces/default/daemonsets",
        server.url()
    );
    let pods = format!("{}/api/v1/namespaces/default/pods", server.url());

    // A Wasm image defaults to the `wasmtime` class: only the node with the Wasm runtime runs it.
    let (code, body) = send(http.post(&daemonsets).json(&daemonset("ticker", None))).await;
    assert_eq!(code, 201, "{body}");
    let status = wait_for(
        &http,
        &format!("{daemonsets}/ticker"),
        "ticker's status",
        |ds| {
            ds["status"]["observedGeneration"]
                .is_number()
                .then(|| ds["status"].clone())
        },
    )
    .await;
    assert_eq!(status["desiredNumberScheduled"], 1, "{status}");
    let (_, listed) = send(http.get(&pods)).await;
    assert_eq!(pinned_nodes(&listed, "ticker"), ["wasm"], "{listed}");

    // The template's required node affinity applies too: excluding `wasm` leaves no node.
    let mut fenced = daemonset("fenced", None);
    fenced["spec"]["template"]["spec"]["affinity"] = json!({"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["wasm"]}]}]}}});
    let (code, body) = send(http.post(&daemonsets).json(&fenced)).await;
    assert_eq!(code, 201, "{body}");
    let status = wait_for(
        &http,
        &format!("{daemonsets}/fenced"),
        "fenced's status",
        |ds| {
            ds["status"]["observedGeneration"]
                .is_number()
                .then(|| ds["status"].clone())
        },
    )
    .await;
    assert_eq!(status["desiredNumberScheduled"], 0, "{status}");
    let (_, listed) = send(http.get(&pods)).await;
    let fenced_pods = listed["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["labels"]["app"] == "fenced")
        .count();
    assert_eq!(fenced_pods, 0, "{listed}");

    // A class that does not exist: no pod anywhere, and a FailedCreate event saying why.
    let (code, body) = send(http.post(&daemonsets).json(&daemonset("lost", Some("gpu")))).await;
    assert_eq!(code, 201, "{body}");
    let message = wait_for(
        &http,
        &format!("{}/api/v1/namespaces/default/events", server.url()),
        "a FailedCreate event for lost",
        |events| {
            events["items"].as_array()?.iter().find_map(|e| {
                (e["reason"] == "FailedCreate" && e["involvedObject"]["name"] == "lost")
                    .then(|| e["message"].as_str().unwrap_or_default().to_string())
            })
        },
    )
    .await;
    assert!(
        message.contains(r#"RuntimeClass "gpu" not found"#),
        "{message}"
    );
    let status = wait_for(
        &http,
        &format!("{daemonsets}/lost"),
        "lost's status",
        |ds| {
            ds["status"]["observedGeneration"]
                .is_number()
                .then(|| ds["status"].clone())
        },
    )
    .await;
    assert_eq!(status["desiredNumberScheduled"], 0, "{status}");
    let (_, listed) = send(http.get(&pods)).await;
    assert!(pinned_nodes(&listed, "lost").is_empty(), "{listed}");

    // Once the class exists, the DaemonSet follows it, tolerations included.
    let gpu = json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
        "metadata": {"name": "gpu"}, "handler": "gpu",
        "scheduling": {"nodeSelector": {"gpu": "yes"},
            "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]}});
    let (code, body) = send(
        http.post(format!(
            "{}/apis/node.k8s.io/v1/runtimeclasses",
            server.url()
        ))
        .json(&gpu),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    wait_for(&http, &pods, "lost's pod on the gpu node", |listed| {
        (pinned_nodes(listed, "lost") == ["gpu"]).then_some(())
    })
    .await;
    server.shutdown().await;
}
