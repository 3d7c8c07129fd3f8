//! A Deployment rolled to a new version, and again while that rollout is under way, on a real
//! store with a simulated kubelet that makes each pod Ready a moment after it appears (there is
//! no node agent). A second watcher over the pods checks throughout that Ready pods never drop
//! below `replicas - maxUnavailable` and pods never exceed `replicas + maxSurge`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use skiff_control_plane::{Server, ServerConfig};

const REPLICAS: i64 = 10;
const MAX_SURGE: i64 = 2;
const MAX_UNAVAILABLE: i64 = 2;
/// How long the simulated kubelet takes to make a new pod Ready.
const STARTUP: Duration = Duration::from_millis(100);
/// Longest a rollout may take.
const ROLLOUT: Duration = Duration::from_secs(60);

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

/// Polls `url` every 50 ms until `done` holds for what it serves, failing after `limit`.
async fn wait_until(http: &reqwest::Client, url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + ROLLOUT;
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    loop {
        poll.tick().await;
        let (_, body) = send(http.get(url)).await;
        if done(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {ROLLOUT:?} on {url}: {:#}",
            body["status"]
        );
    }
}

/// Each watch event on `url` (a watch of pods), decoded, to `handle`.
async fn watch(
    http: &reqwest::Client,
    url: String,
    mut handle: impl FnMut(Value) + Send + 'static,
) {
    let response = http.get(url).send().await.expect("watch");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    tokio::spawn(async move {
        let mut text = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find('\n') {
                let line: String = text.drain(..=end).collect();
                handle(serde_json::from_str(&line).expect("event"));
            }
        }
    });
}

/// The simulated kubelet: marks each new pod Running and Ready after `STARTUP`.
fn make_ready(http: reqwest::Client, pods: String) -> impl FnMut(Value) + Send + 'static {
    move |event: Value| {
        let pod = &event["object"];
        if event["type"] != "ADDED" || !pod["metadata"]["deletionTimestamp"].is_null() {
            return;
        }
        let url = format!(
            "{pods}/{}/status",
            pod["metadata"]["name"].as_str().expect("name")
        );
        let http = http.clone();
        tokio::spawn(async move {
            tokio::time::sleep(STARTUP).await;
            // As a kubelet, it tries again after a conflict or a store that did not answer
            // in time (a loaded machine), a bounded number of times.
            for _ in 0..100 {
                let (code, mut pod) = send(http.get(url.trim_end_matches("/status"))).await;
                if code == 404 || !pod["metadata"]["deletionTimestamp"].is_null() {
                    return;
                }
                pod["status"] = json!({"phase": "Running", "conditions": [{
                    "type": "Ready", "status": "True",
                    "lastTransitionTime": skiff_api::time::now_rfc3339()}]});
                match send(http.put(&url).json(&pod)).await {
                    (200, _) | (404, _) => return,
                    (409, _) => continue,
                    (code, body) if code == 429 || code >= 500 => {
                        eprintln!("pod status write: {code} {body}; trying again");
                        tokio::time::sleep(STARTUP).await;
                    }
                    (code, body) => panic!("pod status write: {code} {body}"),
                }
            }
        });
    }
}

/// What the pod watcher saw: violations of the budgets once the first version was up, and
/// the fewest Ready / most pods it counted after that.
#[derive(Debug, Default)]
struct Seen {
    armed: bool,
    violations: Vec<String>,
    min_ready: Option<i64>,
    max_pods: i64,
}

fn check_budgets(seen: Arc<Mutex<Seen>>) -> impl FnMut(Value) + Send + 'static {
    let mut pods: HashMap<String, bool> = HashMap::new();
    move |event: Value| {
        let pod = &event["object"];
        let name = pod["metadata"]["name"].as_str().expect("name").to_string();
        if event["type"] == "DELETED" || !pod["metadata"]["deletionTimestamp"].is_null() {
            pods.remove(&name);
        } else {
            let ready = pod["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            pods.insert(name, ready);
        }
        let ready = pods.values().filter(|r| **r).count() as i64;
        let total = pods.len() as i64;
        let mut seen = seen.lock().expect("seen");
        seen.armed |= ready == REPLICAS;
        if !seen.armed {
            return;
        }
        seen.min_ready = Some(seen.min_ready.map_or(ready, |m| m.min(ready)));
        seen.max_pods = seen.max_pods.max(total);
        if ready < REPLICAS - MAX_UNAVAILABLE || total > REPLICAS + MAX_SURGE {
            let at = pod["metadata"]["resourceVersion"].clone();
            seen.violations
                .push(format!("{ready} ready of {total} pods at {at}"));
        }
    }
}

fn template(version: &str) -> Value {
    json!({"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "file:/x.wasm",
            "env": [{"name": "VERSION", "value": version}]}]}})
}

fn rolled_out(d: &Value) -> bool {
    let status = &d["status"];
    status["observedGeneration"] == d["metadata"]["generation"]
        && status["updatedReplicas"] == REPLICAS
        && status["replicas"] == REPLICAS
        && status["availableReplicas"] == REPLICAS
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_keep_within_max_unavailable_and_max_surge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = "127.0.0.1:0".parse().expect("addr");
    let server = Server::start(ServerConfig::new("test", dir.path().to_path_buf(), listen))
        .await
        .expect("server");
    let http = reqwest::Client::new();
    let pods = format!("{}/api/v1/namespaces/default/pods", server.url());
    let deployments = format!(
        "{}/apis/apps/v1/namespaces/default/deployments",
        server.url()
    );
    let web = format!("{deployments}/web");
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let selector = "watch=true&labelSelector=app%3Dweb";
    watch(
        &http,
        format!("{pods}?{selector}"),
        make_ready(http.clone(), pods.clone()),
    )
    .await;
    watch(
        &http,
        format!("{pods}?{selector}"),
        check_budgets(seen.clone()),
    )
    .await;

    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": MAX_SURGE, "maxUnavailable": "20%"}},
            "template": template("v1")}});
    let (code, body) = send(http.post(&deployments).json(&deployment)).await;
    assert_eq!(code, 201, "{body}");
    wait_until(&http, &web, rolled_out).await;

    let patch = |version: &str| {
        http.patch(&web)
            .header("content-type", "application/merge-patch+json")
            .json(&json!({"spec": {"template": template(version)}}))
    };
    let (code, body) = send(patch("v2")).await;
    assert_eq!(code, 200, "{body}");
    // Change the template again while v2 is part-way out.
    wait_until(&http, &web, |d| {
        d["status"]["observedGeneration"] == d["metadata"]["generation"]
            && d["status"]["updatedReplicas"].as_i64() >= Some(3)
    })
    .await;
    let (code, body) = send(patch("v3")).await;
    assert_eq!(code, 200, "{body}");
    let done = wait_until(&http, &web, rolled_out).await;
    assert_eq!(
        done["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );

    let (_, sets) = send(http.get(format!(
        "{}/apis/apps/v1/namespaces/default/replicasets",
        server.url()
    )))
    .await;
    let sets = sets["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(sets.len(), 3, "one ReplicaSet per revision");
    for rs in &sets {
        let version = &rs["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"];
        let want = if version == "v3" { REPLICAS } else { 0 };
        assert_eq!(rs["spec"]["replicas"], want, "{version}");
    }
    let seen = seen.lock().expect("seen");
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    // The watcher did watch a rollout: it saw the surge and the unavailable budget used.
    assert!(seen.max_pods > REPLICAS, "{seen:?}");
    assert!(
        seen.min_ready.is_some_and(|m| m < REPLICAS + MAX_SURGE),
        "{seen:?}"
    );
    eprintln!(
        "fewest Ready pods {:?}, most pods {} (budgets {} and {})",
        seen.min_ready,
        seen.max_pods,
        REPLICAS - MAX_UNAVAILABLE,
        REPLICAS + MAX_SURGE
    );
}
