//! The EndpointSlice controller over HTTP: a Service's slice lists its selected pods that have
//! an address, with ready/serving/terminating conditions and the named targetPort resolved;
//! it follows readiness and deletion, and goes with the Service; a managed slice of no Service
//! is removed.

use std::time::Duration;

use serde_json::{json, Value};
use skiff_control_plane::{Server, ServerConfig};

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

/// A running pod on node n1 with `ip`, as its agent would report it.
async fn pod(http: &reqwest::Client, base: &str, name: &str, ip: &str, ready: bool) {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "file:/x.wasm",
            "ports": [{"name": "http", "containerPort": 8080}]}]}});
    let (code, created) = send(http.post(format!("{base}/pods")).json(&pod)).await;
    assert_eq!(code, 201, "{created}");
    set_ready(http, base, created, ip, ready).await;
}

async fn set_ready(http: &reqwest::Client, base: &str, mut pod: Value, ip: &str, ready: bool) {
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    pod["status"] = json!({"phase": "Running", "podIP": ip, "conditions": [
        {"type": "Ready", "status": if ready { "True" } else { "False" }}]});
    let (code, body) = send(http.put(format!("{base}/pods/{name}/status")).json(&pod)).await;
    assert_eq!(code, 200, "{body}");
}

/// The Service's slices once `done` holds for them (20 s at most).
async fn slices_until(
    http: &reqwest::Client,
    url: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, list) = send(http.get(url)).await;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if done(&items) {
            return items;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "slices never showed {what}: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (address, ready, serving, terminating) of each endpoint of the slices.
fn endpoints(slices: &[Value]) -> Vec<(String, bool, bool, bool)> {
    let mut found: Vec<_> = slices
        .iter()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            let c = &e["conditions"];
            (
                e["addresses"][0].as_str().unwrap_or_default().to_string(),
                c["ready"] == true,
                c["serving"] == true,
                c["terminating"] == true,
            )
        })
        .collect();
    found.sort();
    found
}

fn row(ip: &str, ready: bool, serving: bool, terminating: bool) -> (String, bool, bool, bool) {
    (ip.to_string(), ready, serving, terminating)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slices_follow_the_selected_pods_and_go_with_the_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = "127.0.0.1:0".parse().expect("addr");
    let server = Server::start(ServerConfig::new("test", dir.path().to_path_buf(), listen))
        .await
        .expect("server");
    let http = reqwest::Client::new();
    let base = format!("{}/api/v1/namespaces/default", server.url());
    let slices = format!(
        "{}/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io/service-name=web",
        server.url()
    );
    pod(&http, &base, "web-0", "10.1.0.1", true).await;
    pod(&http, &base, "web-1", "10.1.0.2", true).await;
    pod(&http, &base, "web-2", "10.1.0.3", false).await;
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}});
    let (code, service) = send(http.post(format!("{base}/services")).json(&service)).await;
    assert_eq!(code, 201, "{service}");

    let found = slices_until(&http, &slices, "three endpoints", |s| {
        endpoints(s).len() == 3
    })
    .await;
    assert_eq!(
        endpoints(&found),
        [
            row("10.1.0.1", true, true, false),
            row("10.1.0.2", true, true, false),
            row("10.1.0.3", false, false, false),
        ]
    );
    let slice = &found[0];
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    let owner = &slice["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Service");
    assert_eq!(owner["uid"], service["metadata"]["uid"]);
    assert_eq!(slice["endpoints"][0]["nodeName"], "n1");
    assert_eq!(slice["endpoints"][0]["targetRef"]["name"], "web-0");

    // Readiness turns an endpoint ready; a deleted pod stays, terminating and not ready.
    let (_, unready) = send(http.get(format!("{base}/pods/web-2"))).await;
    set_ready(&http, &base, unready, "10.1.0.3", true).await;
    let (code, _) = send(http.delete(format!("{base}/pods/web-0"))).await;
    assert_eq!(code, 200);
    let expected = [
        row("10.1.0.1", false, true, true),
        row("10.1.0.2", true, true, false),
        row("10.1.0.3", true, true, false),
    ];
    slices_until(&http, &slices, "web-2 ready and web-0 terminating", |s| {
        endpoints(s) == expected
    })
    .await;

    let (code, _) = send(http.delete(format!("{base}/services/web"))).await;
    assert_eq!(code, 200);
    slices_until(&http, &slices, "no slice", <[Value]>::is_empty).await;

    // A managed slice whose Service does not exist is removed; a bad address type is a 422.
    let all = format!(
        "{}/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
        server.url()
    );
    let ghost = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "ghost-1", "labels": {
            "kubernetes.io/service-name": "ghost",
            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4", "endpoints": [{"addresses": ["10.1.0.9"]}]});
    let (code, body) = send(http.post(&all).json(&ghost)).await;
    assert_eq!(code, 201, "{body}");
    let ghosts = format!("{all}?labelSelector=kubernetes.io/service-name=ghost");
    slices_until(&http, &ghosts, "the orphan removed", <[Value]>::is_empty).await;
    let mut bad = ghost.clone();
    bad["addressType"] = json!("IPv7");
    let (code, status) = send(http.post(&all).json(&bad)).await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "addressType");
    server.shutdown().await;
}
