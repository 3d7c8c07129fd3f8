//! One huge ReplicaSet on a real store (no node agent): it creates and deletes pods at most a
//! burst per sync, and a small ReplicaSet created after it still gets its pods promptly.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use skiff_control_plane::{Server, ServerConfig};

/// Kubernetes' `BurstReplicas`: most pods one sync creates or deletes.
const BURST: i64 = 500;
/// How long the small set may take to get its pods while the big one floods.
const PROMPT: Duration = Duration::from_secs(10);
/// How long scaling the big set to 0 may take.
const DRAIN: Duration = Duration::from_secs(120);
/// Pods the big set is allowed to reach before the test scales it down.
const ENOUGH: i64 = 1500;

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

/// Polls `url` every 50 ms until `done` holds for what it serves, failing after `limit`.
async fn wait_until(
    http: &reqwest::Client,
    url: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    loop {
        poll.tick().await;
        let (_, body) = send(http.get(url)).await;
        if done(&body) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} on {url}: {}",
            body["status"]
        );
    }
}

fn replicaset(name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "file:/x.wasm"}]}}}})
}

/// Records every `status.replicas` the watch on `url` reports, in order.
async fn record_status(http: &reqwest::Client, url: String) -> Arc<Mutex<Vec<i64>>> {
    let seen: Arc<Mutex<Vec<i64>>> = Arc::default();
    let response = http.get(url).send().await.expect("watch");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let record = seen.clone();
    tokio::spawn(async move {
        let mut text = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find('\n') {
                let line: String = text.drain(..=end).collect();
                let event: Value = serde_json::from_str(&line).expect("event");
                if let Some(n) = event["object"]["status"]["replicas"].as_i64() {
                    record.lock().expect("seen").push(n);
                }
            }
        }
    });
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_replicaset_neither_floods_nor_starves_a_small_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = "127.0.0.1:0".parse().expect("addr");
    let server = Server::start(ServerConfig::new("test", dir.path().to_path_buf(), listen))
        .await
        .expect("server");
    let http = reqwest::Client::new();
    let sets = format!(
        "{}/apis/apps/v1/namespaces/default/replicasets",
        server.url()
    );
    let pods = format!("{}/api/v1/namespaces/default/pods", server.url());
    let statuses = record_status(&http, format!("{sets}?watch=true&labelSelector=app%3Dbig")).await;

    let (code, body) = send(http.post(&sets).json(&replicaset("big", 100_000))).await;
    assert_eq!(code, 201, "{body}");
    // Let the flood start before the small set arrives.
    wait_until(&http, &format!("{sets}/big"), PROMPT, |rs| {
        rs["status"]["replicas"].as_i64() > Some(0)
    })
    .await;
    let (code, body) = send(http.post(&sets).json(&replicaset("small", 3))).await;
    assert_eq!(code, 201, "{body}");
    let started = tokio::time::Instant::now();
    wait_until(&http, &format!("{sets}/small"), PROMPT, |rs| {
        rs["status"]["replicas"] == 3
    })
    .await;
    eprintln!("small set had its 3 pods after {:?}", started.elapsed());

    wait_until(&http, &format!("{sets}/big"), DRAIN, |rs| {
        rs["status"]["replicas"].as_i64() >= Some(ENOUGH)
    })
    .await;
    let (code, body) = send(
        http.patch(format!("{sets}/big"))
            .header("content-type", "application/merge-patch+json")
            .json(&json!({"spec": {"replicas": 0}})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let drained = tokio::time::Instant::now();
    wait_until(&http, &format!("{sets}/big"), DRAIN, |rs| {
        rs["status"]["replicas"] == 0
    })
    .await;
    eprintln!("big set drained after {:?}", drained.elapsed());
    let (_, listed) = send(http.get(format!("{pods}?labelSelector=app%3Dbig"))).await;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(0),
        "big's pods are gone"
    );

    // A status write follows each sync and may come before that sync's pods are all seen, so
    // two writes are at most the end of one sync and one whole sync apart.
    let seen = statuses.lock().expect("seen").clone();
    let steps: Vec<i64> = seen.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!(
        "big set status: {} writes, largest step up {:?}, down {:?}",
        seen.len(),
        steps.iter().max(),
        steps.iter().min()
    );
    assert!(seen.iter().any(|&n| n >= ENOUGH), "{seen:?}");
    assert!(
        steps.iter().all(|s| s.abs() <= 2 * BURST),
        "steps between status writes: {steps:?}"
    );

    for name in ["big", "small"] {
        let (code, body) = send(http.delete(format!("{sets}/{name}"))).await;
        assert_eq!(code, 200, "{body}");
    }
}
