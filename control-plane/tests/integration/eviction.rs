//! The eviction subresource over HTTP with the disruption controller running: a budget's
//! allowance is spent by exactly one of two concurrent evictions, the other gets 429; pods
//! no budget guards are evicted at once; two budgets over one pod are a 500.

use std::time::Duration;

use serde_json::{json, Value};
use skiff_control_plane::{Server, ServerConfig, ServerHandle};

async fn start() -> (tempfile::TempDir, ServerHandle, reqwest::Client) {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = "127.0.0.1:0".parse().expect("addr");
    let server = Server::start(ServerConfig::new("test", dir.path().to_path_buf(), listen))
        .await
        .expect("server");
    (dir, server, reqwest::Client::new())
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

/// A running, ready pod labelled `app` on node n1 (never registered: the pod GC's
/// quarantine outlasts the test), as its agent would report it.
async fn running_pod(http: &reqwest::Client, base: &str, name: &str, app: &str) {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "file:/x.wasm"}]}});
    let (code, created) = send(http.post(format!("{base}/pods")).json(&pod)).await;
    assert_eq!(code, 201, "{created}");
    let mut ready = created;
    ready["status"] =
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]});
    let (code, body) = send(http.put(format!("{base}/pods/{name}/status")).json(&ready)).await;
    assert_eq!(code, 200, "{body}");
}

fn eviction(name: &str) -> Value {
    json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name},
        "deleteOptions": {"gracePeriodSeconds": 0}})
}

async fn wait_allowed(http: &reqwest::Client, url: &str, allowed: i64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, pdb) = send(http.get(url)).await;
        if pdb["status"]["disruptionsAllowed"] == allowed
            && pdb["status"]["observedGeneration"] == pdb["metadata"]["generation"]
        {
            return pdb;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "budget never allowed {allowed}: {pdb}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_spend_the_budget_once_and_refuse_with_429() {
    let (_dir, server, http) = start().await;
    let base = format!("{}/api/v1/namespaces/default", server.url());
    let pdbs = format!(
        "{}/apis/policy/v1/namespaces/default/poddisruptionbudgets",
        server.url()
    );
    for name in ["web-0", "web-1", "web-2"] {
        running_pod(&http, &base, name, "web").await;
    }
    let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}});
    let (code, body) = send(http.post(&pdbs).json(&pdb)).await;
    assert_eq!(code, 201, "{body}");
    let status = wait_allowed(&http, &format!("{pdbs}/web"), 1).await;
    assert_eq!(status["status"]["currentHealthy"], 3, "{status}");
    assert_eq!(status["status"]["desiredHealthy"], 2, "{status}");
    assert_eq!(status["status"]["expectedPods"], 3, "{status}");
    assert_eq!(
        status["status"]["conditions"][0]["type"],
        "DisruptionAllowed"
    );
    assert_eq!(status["status"]["conditions"][0]["status"], "True");

    // Two evictions at once: one allowance, so exactly one passes.
    let first = send(
        http.post(format!("{base}/pods/web-0/eviction"))
            .json(&eviction("web-0")),
    );
    let second = send(
        http.post(format!("{base}/pods/web-1/eviction"))
            .json(&eviction("web-1")),
    );
    let (a, b) = tokio::join!(first, second);
    let mut codes = [a.0, b.0];
    codes.sort();
    assert_eq!(codes, [201, 429], "{a:?} {b:?}");
    let refused = if a.0 == 429 { &a.1 } else { &b.1 };
    assert_eq!(refused["reason"], "TooManyRequests", "{refused}");
    assert_eq!(
        refused["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(
        refused["details"]["causes"][0]["reason"],
        "DisruptionBudget"
    );
    let evicted = if a.0 == 201 { "web-0" } else { "web-1" };
    let (code, _) = send(http.get(format!("{base}/pods/{evicted}"))).await;
    assert_eq!(code, 404, "the evicted pod is deleted");
    // The budget stays spent while the pod is gone and not replaced.
    wait_allowed(&http, &format!("{pdbs}/web"), 0).await;

    // A pod no budget selects goes at once; a missing pod is a 404.
    running_pod(&http, &base, "lonely", "other").await;
    let (code, body) = send(
        http.post(format!("{base}/pods/lonely/eviction"))
            .json(&eviction("lonely")),
    )
    .await;
    assert_eq!(
        (code, body["status"].as_str()),
        (201, Some("Success")),
        "{body}"
    );
    let (code, _) = send(
        http.post(format!("{base}/pods/lonely/eviction"))
            .json(&eviction("lonely")),
    )
    .await;
    assert_eq!(code, 404);

    // Two budgets over one pod: the eviction subresource refuses with 500, as Kubernetes.
    let second_pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web-too"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}});
    let (code, _) = send(http.post(&pdbs).json(&second_pdb)).await;
    assert_eq!(code, 201);
    let (code, body) = send(
        http.post(format!("{base}/pods/web-2/eviction"))
            .json(&eviction("web-2")),
    )
    .await;
    assert_eq!(code, 500, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("more than one PodDisruptionBudget"),
        "{body}"
    );
}
