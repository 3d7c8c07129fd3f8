//! The endpoints controller over HTTP: a Service's core v1 Endpoints lists its selected pods,
//! ready ones in `addresses` and the others in `notReadyAddresses`, follows readiness and goes
//! with the Service; a selector-less Service's hand-written Endpoints is left as written; the
//! `kubernetes` Service's Endpoints lists the API server.

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

/// GET `url` until `done` holds for (status, body) (20 s at most).
async fn until(
    http: &reqwest::Client,
    url: &str,
    what: &str,
    done: impl Fn(u16, &Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = send(http.get(url)).await;
        if done(code, &body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} never showed {what}: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The IPs of one address list of the first subset.
fn ips(endpoints: &Value, list: &str) -> Vec<String> {
    endpoints["subsets"][0][list]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["ip"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_follow_pods_and_services_and_hand_written_ones_stay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = "127.0.0.1:0".parse().expect("addr");
    let server = Server::start(ServerConfig::new("test", dir.path().to_path_buf(), listen))
        .await
        .expect("server");
    let http = reqwest::Client::new();
    let base = format!("{}/api/v1/namespaces/default", server.url());

    // A Service without a selector and the Endpoints its owner wrote for it.
    let external = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
        "spec": {"ports": [{"name": "https", "port": 443}]}});
    let (code, body) = send(http.post(format!("{base}/services")).json(&external)).await;
    assert_eq!(code, 201, "{body}");
    let written = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext"},
        "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"name": "https", "port": 443}]}]});
    let (code, written) = send(http.post(format!("{base}/endpoints")).json(&written)).await;
    assert_eq!(code, 201, "{written}");
    assert_eq!(written["subsets"][0]["ports"][0]["protocol"], "TCP");

    pod(&http, &base, "web-0", "10.1.0.1", true).await;
    pod(&http, &base, "web-1", "10.1.0.2", false).await;
    let service = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}});
    let (code, body) = send(http.post(format!("{base}/services")).json(&service)).await;
    assert_eq!(code, 201, "{body}");

    let web = format!("{base}/endpoints/web");
    let found = until(
        &http,
        &web,
        "one ready and one not-ready address",
        |code, e| {
            code == 200
                && ips(e, "addresses") == ["10.1.0.1"]
                && ips(e, "notReadyAddresses") == ["10.1.0.2"]
        },
    )
    .await;
    let subset = &found["subsets"][0];
    assert_eq!(
        subset["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    assert_eq!(subset["addresses"][0]["nodeName"], "n1");
    assert_eq!(subset["addresses"][0]["targetRef"]["kind"], "Pod");
    assert_eq!(subset["addresses"][0]["targetRef"]["name"], "web-0");
    let labels = &found["metadata"]["labels"];
    assert_eq!(labels["endpointslice.kubernetes.io/skip-mirror"], "true");
    assert_eq!(labels["tier"], "front");

    // Readiness moves an address; a deleted pod leaves.
    let (_, unready) = send(http.get(format!("{base}/pods/web-1"))).await;
    set_ready(&http, &base, unready, "10.1.0.2", true).await;
    until(&http, &web, "both ready", |_, e| {
        ips(e, "addresses") == ["10.1.0.1", "10.1.0.2"] && ips(e, "notReadyAddresses").is_empty()
    })
    .await;
    let (code, _) = send(http.delete(format!("{base}/pods/web-0"))).await;
    assert_eq!(code, 200);
    until(&http, &web, "web-0 gone", |_, e| {
        ips(e, "addresses") == ["10.1.0.2"]
    })
    .await;

    // A change to the selector-less Service is seen, and its Endpoints is not touched.
    let (code, _) = send(
        http.patch(format!("{base}/services/ext"))
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"metadata": {"labels": {"touched": "yes"}}}"#),
    )
    .await;
    assert_eq!(code, 200);
    let (_, web_before) = send(http.get(&web)).await;
    let (code, _) = send(http.delete(format!("{base}/pods/web-1"))).await;
    assert_eq!(code, 200);
    until(&http, &web, "no ready address", |_, e| {
        e["metadata"]["resourceVersion"] != web_before["metadata"]["resourceVersion"]
            && ips(e, "addresses").is_empty()
    })
    .await;
    let (code, ext) = send(http.get(format!("{base}/endpoints/ext"))).await;
    assert_eq!(code, 200, "{ext}");
    assert_eq!(
        ext["metadata"]["resourceVersion"],
        written["metadata"]["resourceVersion"]
    );
    assert_eq!(ips(&ext, "addresses"), ["192.0.2.10"]);

    // The Endpoints goes with its Service.
    let (code, _) = send(http.delete(format!("{base}/services/web"))).await;
    assert_eq!(code, 200);
    until(&http, &web, "a 404", |code, _| code == 404).await;

    // The `kubernetes` Service's Endpoints lists this API server, from its lease.
    let port = server.url().rsplit(':').next().unwrap().to_string();
    let kubernetes = until(
        &http,
        &format!("{base}/endpoints/kubernetes"),
        "the API server",
        |code, e| code == 200 && !ips(e, "addresses").is_empty(),
    )
    .await;
    assert_eq!(kubernetes["subsets"][0]["ports"][0]["name"], "https");
    assert_eq!(
        kubernetes["subsets"][0]["ports"][0]["port"].to_string(),
        port
    );

    // Bad input names the field, and nothing is written.
    let bad = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "bad"},
        "subsets": [{"addresses": [{"ip": "not-an-ip"}]}]});
    let (code, body) = send(http.post(format!("{base}/endpoints")).json(&bad)).await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("subsets[0].addresses[0].ip"),
        "{body}"
    );
    let (code, _) = send(http.get(format!("{base}/endpoints/bad"))).await;
    assert_eq!(code, 404);
    server.shutdown().await;
}
