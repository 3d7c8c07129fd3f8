//! The API server over HTTP: Kubernetes REST semantics on a real store (no node agent).

use std::time::Duration;

use futures::StreamExt;
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

fn configmap(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_with_optimistic_concurrency_and_status_errors() {
    let (_dir, server, http) = start().await;
    let base = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    let (code, created) = send(http.post(&base).json(&configmap("a", json!({"app": "x"})))).await;
    assert_eq!(code, 201);
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    assert!(
        created["metadata"]["uid"].is_string()
            && created["metadata"]["creationTimestamp"].is_string()
    );

    let (code, status) = send(http.post(&base).json(&configmap("a", json!({})))).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (409, Some("AlreadyExists"))
    );

    let mut update = created.clone();
    update["data"]["k"] = json!("v2");
    let (code, updated) = send(http.put(format!("{base}/a")).json(&update)).await;
    assert_eq!(code, 200);
    assert_ne!(updated["metadata"]["resourceVersion"], json!(rv));
    // The same update again carries a stale resourceVersion.
    let (code, status) = send(http.put(format!("{base}/a")).json(&update)).await;
    assert_eq!((code, status["reason"].as_str()), (409, Some("Conflict")));

    let (code, patched) = send(
        http.patch(format!("{base}/a"))
            .header("Content-Type", "application/merge-patch+json")
            .body(r#"{"data":{"extra":"1"}}"#),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(patched["data"], json!({"k": "v2", "extra": "1"}));

    let (code, status) = send(http.get(format!("{base}/missing"))).await;
    assert_eq!(
        (code, status["kind"].as_str(), status["reason"].as_str()),
        (404, Some("Status"), Some("NotFound"))
    );
    let (code, status) = send(
        http.post(&base)
            .json(&json!({"kind": "ConfigMap", "metadata": {"name": "Bad_Name"}})),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(status["details"]["causes"][0]["field"], "metadata.name");
    let (code, _) = send(http.get(format!("{}/api/v1/widgets", server.url()))).await;
    assert_eq!(code, 404);

    // A ConfigMap gone at once is answered with Kubernetes' Status, not the object.
    let (code, status) = send(http.delete(format!("{base}/a"))).await;
    assert_eq!(code, 200);
    assert_eq!(
        (
            &status["kind"],
            &status["status"],
            &status["details"]["name"]
        ),
        (&json!("Status"), &json!("Success"), &json!("a")),
        "{status}"
    );
    assert_eq!(status["details"]["kind"], "configmaps", "{status}");
    let (code, _) = send(http.get(format!("{base}/a"))).await;
    assert_eq!(code, 404);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_patch_test_operations_compare_and_swap() {
    let (_dir, server, http) = start().await;
    let base = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    let (code, _) = send(http.post(&base).json(&configmap("reg", json!({})))).await;
    assert_eq!(code, 201);
    let cas = |expected: &str, new: &str| {
        http.patch(format!("{base}/reg"))
            .header("Content-Type", "application/json-patch+json")
            .body(
                json!([{"op": "test", "path": "/data/k", "value": expected},
                       {"op": "replace", "path": "/data/k", "value": new}])
                .to_string(),
            )
    };
    let (code, swapped) = send(cas("v", "w")).await;
    assert_eq!(code, 200);
    assert_eq!(swapped["data"]["k"], "w");
    let (code, status) = send(cas("v", "x")).await;
    assert_eq!(
        code, 422,
        "a failed test operation changes nothing: {status}"
    );
    assert_eq!(status["reason"], "Invalid");
    let (_, current) = send(http.get(format!("{base}/reg"))).await;
    assert_eq!(current["data"]["k"], "w");
    let (code, merged) = send(
        http.patch(format!("{base}/reg"))
            .header("Content-Type", "application/strategic-merge-patch+json")
            .body(json!({"data": {"k2": "v2"}}).to_string()),
    )
    .await;
    assert_eq!(code, 200, "{merged}");
    assert_eq!(merged["data"], json!({"k": "w", "k2": "v2"}));
    let (code, status) = send(
        http.patch(format!("{base}/reg"))
            .header("Content-Type", "application/xml")
            .body("<a/>"),
    )
    .await;
    assert_eq!(code, 415, "unsupported patch types are refused: {status}");
    assert_eq!(status["reason"], "UnsupportedMediaType");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_by_label_and_field_selectors() {
    let (_dir, server, http) = start().await;
    let base = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    for (name, app) in [("a", "web"), ("b", "web"), ("c", "db")] {
        send(http.post(&base).json(&configmap(name, json!({"app": app})))).await;
    }
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| {
                i["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    let (_, list) = send(http.get(format!("{base}?labelSelector=app%3Dweb"))).await;
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(names(&list), ["a", "b"]);
    let (_, list) = send(http.get(format!("{base}?labelSelector=app+notin+(web)"))).await;
    assert_eq!(names(&list), ["c"]);
    let (_, list) = send(http.get(format!("{base}?fieldSelector=metadata.name%3Db"))).await;
    assert_eq!(names(&list), ["b"]);
    let (code, _) = send(http.get(format!("{base}?fieldSelector=spec.bogus%3D1"))).await;
    assert_eq!(code, 400);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_written_only_through_the_subresource() {
    let (_dir, server, http) = start().await;
    let base = format!(
        "{}/apis/apps/v1/namespaces/default/deployments",
        server.url()
    );
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "file:/x.wasm"}]}}},
        "status": {"replicas": 99}});
    let (code, created) = send(http.post(&base).json(&deployment)).await;
    assert_eq!(code, 201);
    assert!(
        created["status"]["replicas"] != json!(99),
        "status on create is ignored"
    );
    assert_eq!(
        created["spec"]["strategy"]["type"], "RollingUpdate",
        "defaults applied"
    );
    let (_, scaled) = send(
        http.patch(format!("{base}/d"))
            .header("Content-Type", "application/merge-patch+json")
            .body(r#"{"spec":{"minReadySeconds":1}}"#),
    )
    .await;
    assert_eq!(
        scaled["metadata"]["generation"], 2,
        "a spec change bumps the generation"
    );

    // No controller writes Namespace status, so the subresource's effect is observable alone.
    let namespaces = format!("{}/api/v1/namespaces", server.url());
    send(
        http.post(&namespaces)
            .json(&json!({"metadata": {"name": "team"}})),
    )
    .await;
    let merge = |url: String, body: &'static str| {
        http.patch(url)
            .header("Content-Type", "application/merge-patch+json")
            .body(body)
    };
    let (code, ns) = send(merge(
        format!("{namespaces}/team/status"),
        r#"{"status":{"phase":"Terminating"},"metadata":{"labels":{"x":"y"}}}"#,
    ))
    .await;
    assert_eq!(code, 200);
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert!(
        ns["metadata"]["labels"].is_null(),
        "a status write changes only status"
    );
    let (_, ns) = send(merge(
        format!("{namespaces}/team"),
        r#"{"status":{"phase":"Active"},"metadata":{"labels":{"x":"y"}}}"#,
    ))
    .await;
    assert_eq!(
        ns["status"]["phase"], "Terminating",
        "the main resource ignores status"
    );
    assert_eq!(ns["metadata"]["labels"]["x"], "y");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_stream_changes_and_refuse_compacted_revisions() {
    let (_dir, server, http) = start().await;
    let base = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    let (_, first) = send(http.post(&base).json(&configmap("w1", json!({"app": "w"})))).await;
    let rv: u64 = first["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .parse()
        .expect("number");
    let response = http
        .get(format!(
            "{base}?watch=true&resourceVersion={rv}&labelSelector=app%3Dw"
        ))
        .send()
        .await
        .expect("watch");
    assert_eq!(response.status(), 200);
    send(http.post(&base).json(&configmap("w2", json!({"app": "w"})))).await;
    send(
        http.post(&base)
            .json(&configmap("other", json!({"app": "x"}))),
    )
    .await;
    send(http.delete(format!("{base}/w1"))).await;
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while text.lines().count() < 2 {
            text.push_str(&String::from_utf8_lossy(
                &body.next().await.expect("more").expect("chunk"),
            ));
        }
    })
    .await;
    assert!(read.is_ok(), "events in time: {text}");
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("event"))
        .collect();
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "w2");
    assert_eq!(events[1]["type"], "DELETED");
    assert_eq!(events[1]["object"]["metadata"]["name"], "w1");

    // Shutting down ends the open watch, so the graceful shutdown completes.
    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("shutdown with an open watch in time");
    let rest = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .expect("the watch ends");
    assert!(
        rest.is_none_or(|chunk| chunk.is_err()),
        "no events after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_below_the_retained_history_is_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(ServerConfig {
        watch_history: 10,
        ..ServerConfig::new(
            "test",
            dir.path().to_path_buf(),
            "127.0.0.1:0".parse().expect("addr"),
        )
    })
    .await
    .expect("server");
    let http = reqwest::Client::new();
    let base = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    for i in 0..1_010 {
        let (code, _) = send(
            http.post(&base)
                .json(&configmap(&format!("c{i}"), json!({}))),
        )
        .await;
        assert_eq!(code, 201);
    }
    let (code, status) = send(http.get(format!("{base}?watch=true&resourceVersion=1"))).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (410, Some("Expired")),
        "{status}"
    );
    server.shutdown().await;
}

/// Reads `count` watch events from a newline-delimited watch response.
async fn read_events(response: reqwest::Response, count: usize) -> Vec<Value> {
    let mut body = response.bytes_stream();
    let mut buffer = Vec::new();
    let mut events = Vec::new();
    while events.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("an event in time")
            .expect("stream open")
            .expect("chunk");
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            events.push(serde_json::from_slice(&line).expect("event"));
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_watches_replay_then_follow_only_their_node() {
    let (_dir, server, http) = start().await;
    let base = format!("{}/api/v1/namespaces/default/pods", server.url());
    let pod = |name: &str, node: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "file:/x.wasm"}]}})
    };
    // A first watcher starts the shared hub; history before it must still replay.
    let (_, first) = send(http.post(&base).json(&pod("p0", "n1"))).await;
    let start = first["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let early = http
        .get(format!(
            "{}/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3Dn2&resourceVersion={start}",
            server.url()
        ))
        .send()
        .await
        .expect("watch");
    for (name, node) in [("p1", "n1"), ("p2", "n2"), ("p3", "n1")] {
        let (code, _) = send(http.post(&base).json(&pod(name, node))).await;
        assert_eq!(code, 201);
    }
    // Started after p1..p3 were written, from before them: history, then live events.
    let late = http
        .get(format!(
            "{}/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3Dn1&resourceVersion={start}",
            server.url()
        ))
        .send()
        .await
        .expect("watch");
    let (code, _) = send(
        http.delete(format!("{base}/p3"))
            .query(&[("gracePeriodSeconds", "0")]),
    )
    .await;
    assert_eq!(code, 200);
    let (code, _) = send(http.post(&base).json(&pod("p4", "n1"))).await;
    assert_eq!(code, 201);
    let seen: Vec<(String, String)> = read_events(late, 4)
        .await
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let expected = [
        ("ADDED", "p1"),
        ("ADDED", "p3"),
        ("DELETED", "p3"),
        ("ADDED", "p4"),
    ];
    assert_eq!(seen, expected.map(|(t, n)| (t.to_string(), n.to_string())));
    let other = read_events(early, 1).await;
    assert_eq!(
        other[0]["object"]["metadata"]["name"], "p2",
        "n2's watch sees only n2's pod"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_class_admission_merges_refuses_and_names_conflicts() {
    let (_dir, server, http) = start().await;
    let base = format!("{}/api/v1/namespaces/default/pods", server.url());
    let pod = |name: &str, spec: Value| {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "file:/x.wasm"}]}});
        json_patch::merge(&mut pod["spec"], &spec);
        pod
    };

    // The bootstrapped class: a Wasm image defaults to it and takes on its node selector.
    let (code, class) = send(http.get(format!(
        "{}/apis/node.k8s.io/v1/runtimeclasses/wasmtime",
        server.url()
    )))
    .await;
    assert_eq!((code, class["handler"].as_str()), (200, Some("wasm")));
    let (code, created) = send(
        http.post(&base)
            .json(&pod("merged", json!({"nodeSelector": {"zone": "a"}}))),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["runtimeClassName"], "wasmtime");
    assert_eq!(
        created["spec"]["nodeSelector"],
        json!({"zone": "a", "runtime.skiff.dev/wasm": "true"})
    );

    // A class's tolerations are appended.
    let classes = format!("{}/apis/node.k8s.io/v1/runtimeclasses", server.url());
    let gpu = json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
        "metadata": {"name": "gpu"}, "handler": "gpu",
        "scheduling": {"nodeSelector": {"gpu": "yes"},
            "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]}});
    let (code, _) = send(http.post(&classes).json(&gpu)).await;
    assert_eq!(code, 201);
    let (code, created) = send(
        http.post(&base)
            .json(&pod("tolerant", json!({"runtimeClassName": "gpu"}))),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["nodeSelector"], json!({"gpu": "yes"}));
    assert_eq!(
        created["spec"]["tolerations"],
        json!([{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}])
    );

    // A class that does not exist: 403, and nothing is stored.
    let (code, status) = send(
        http.post(&base)
            .json(&pod("lost", json!({"runtimeClassName": "missing"}))),
    )
    .await;
    assert_eq!((code, status["reason"].as_str()), (403, Some("Forbidden")));
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(r#"pod rejected: RuntimeClass "missing" not found"#),
        "{message}"
    );
    let (code, _) = send(http.get(format!("{base}/lost"))).await;
    assert_eq!(code, 404);

    // A node selector that contradicts the class's: 403 naming the key.
    let (code, status) = send(http.post(&base).json(&pod(
        "conflict",
        json!({"nodeSelector": {"runtime.skiff.dev/wasm": "false"}}),
    )))
    .await;
    assert_eq!((code, status["reason"].as_str()), (403, Some("Forbidden")));
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.contains("runtime.skiff.dev/wasm"), "{message}");

    // RuntimeClasses are validated with field paths.
    let (code, status) = send(http.post(&classes).json(
        &json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": {"name": "bad"}, "handler": "Not_A_Label"}),
    ))
    .await;
    assert_eq!(code, 422);
    assert_eq!(status["details"]["causes"][0]["field"], "handler");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_references_are_validated_naming_the_field() {
    let (_dir, server, http) = start().await;
    let base = format!("{}/api/v1/namespaces/default/pods", server.url());
    let pod = |name: &str, image: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": image}]}})
    };
    for (name, image, message) in [
        (
            "zero",
            "file:/dev/zero",
            "a file: image must name a .wasm file",
        ),
        (
            "shadow",
            "file:/etc/shadow",
            "a file: image must name a .wasm file",
        ),
        (
            "up",
            "file:../x.wasm",
            "a file: image must be an absolute path",
        ),
        (
            "rel",
            "file:relative.wasm",
            "a file: image must be an absolute path",
        ),
        (
            "dots",
            "file:/srv/../etc/x.wasm",
            "a file: image must be a normalized path",
        ),
        (
            "oci",
            "Not A Reference",
            "must be a file: image or an image reference",
        ),
    ] {
        let (code, status) = send(http.post(&base).json(&pod(name, image))).await;
        assert_eq!(
            (code, status["reason"].as_str()),
            (422, Some("Invalid")),
            "{image}: {status}"
        );
        let cause = &status["details"]["causes"][0];
        assert_eq!(
            cause["field"], "spec.containers[0].image",
            "{image}: {status}"
        );
        let text = cause["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{image}: {text}");
        let (code, _) = send(http.get(format!("{base}/{name}"))).await;
        assert_eq!(code, 404, "{image} was stored");
    }
    for (name, image) in [
        ("wasm", "file:/srv/guest.wasm"),
        ("oci", "registry.example/app:1"),
    ] {
        let (code, created) = send(http.post(&base).json(&pod(name, image))).await;
        assert_eq!(code, 201, "{image}: {created}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_with_a_status() {
    let (_dir, server, http) = start().await;
    let base = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    let mut big = configmap("big", json!({}));
    big["data"]["k"] = json!("x".repeat(4 * 1024 * 1024));
    let (code, status) = send(http.post(&base).json(&big)).await;
    assert_eq!(
        (code, status["kind"].as_str(), status["reason"].as_str()),
        (413, Some("Status"), Some("RequestEntityTooLarge"))
    );
    let message = status["message"].as_str().expect("message");
    assert!(message.contains("3145728"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_json_keys_are_refused_naming_the_field() {
    let (_dir, server, http) = start().await;
    let base = format!(
        "{}/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
        server.url()
    );
    let body = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d"},"data":{"k":"1","k":"2"}}"#;
    let (code, status) = send(
        http.post(&base)
            .header("Content-Type", "application/json")
            .body(body),
    )
    .await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    let message = status["message"].as_str().expect("message");
    assert!(message.contains(r#"duplicate field "data.k""#), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_checks_every_write_and_stores_nothing() {
    let (_dir, server, http) = start().await;
    let base = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    // The namespace's ConfigMaps and their versions, but for the CA bundle a controller
    // publishes on its own (the store's revision moves with such background writes).
    let revision = || async {
        let (_, list) = send(http.get(&base)).await;
        let mut versions: Vec<(String, String)> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|cm| cm["metadata"]["name"] != "kube-root-ca.crt")
            .map(|cm| {
                let meta = &cm["metadata"];
                (
                    meta["name"].to_string(),
                    meta["resourceVersion"].to_string(),
                )
            })
            .collect();
        versions.sort();
        versions
    };

    let (code, created) = send(
        http.post(format!("{base}?dryRun=All"))
            .json(&configmap("a", json!({}))),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert!(created["metadata"]["uid"].is_string(), "{created}");
    assert!(
        created["metadata"].get("resourceVersion").is_none(),
        "{created}"
    );
    assert_eq!(send(http.get(format!("{base}/a"))).await.0, 404);

    let (code, stored) = send(http.post(&base).json(&configmap("a", json!({})))).await;
    assert_eq!(code, 201);
    let before = revision().await;

    // Admission, validation and preconditions still answer.
    let bad = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}});
    let (code, _) = send(http.post(format!("{base}?dryRun=All")).json(&bad)).await;
    assert_eq!(code, 422);
    let (code, status) = send(
        http.post(format!("{base}?dryRun=All"))
            .json(&configmap("a", json!({}))),
    )
    .await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (409, Some("AlreadyExists"))
    );

    let mut update = stored.clone();
    update["data"]["k"] = json!("changed");
    let (code, answer) = send(http.put(format!("{base}/a?dryRun=All")).json(&update)).await;
    assert_eq!((code, answer["data"]["k"].as_str()), (200, Some("changed")));
    let (code, answer) = send(
        http.patch(format!("{base}/a?dryRun=All"))
            .header("Content-Type", "application/merge-patch+json")
            .body(r#"{"data":{"k":"patched"}}"#),
    )
    .await;
    assert_eq!((code, answer["data"]["k"].as_str()), (200, Some("patched")));
    let (code, _) = send(http.delete(format!("{base}/a?dryRun=All"))).await;
    assert_eq!(code, 200);

    let (code, now) = send(http.get(format!("{base}/a"))).await;
    assert_eq!((code, now["data"]["k"].as_str()), (200, Some("v")));
    assert_eq!(
        now["metadata"]["resourceVersion"],
        stored["metadata"]["resourceVersion"]
    );
    assert_eq!(revision().await, before, "a dry run wrote a ConfigMap");

    let (code, status) = send(http.delete(format!("{base}/a?dryRun=Some"))).await;
    assert_eq!(code, 400, "{status}");
    assert_eq!(send(http.get(format!("{base}/a"))).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_string_data_is_stored_as_data_and_version_takes_a_trailing_slash() {
    let (_dir, server, http) = start().await;
    let base = format!("{}/api/v1/namespaces/default/secrets", server.url());
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"kept": "a2VwdA=="}, "stringData": {"password": "hunter2"}});
    let (code, created) = send(http.post(&base).json(&secret)).await;
    assert_eq!(code, 201, "{created}");
    let (_, stored) = send(http.get(format!("{base}/s"))).await;
    assert_eq!(
        (stored["data"].clone(), stored.get("stringData")),
        (
            json!({"kept": "a2VwdA==", "password": "aHVudGVyMg=="}),
            None
        )
    );
    for path in ["/version", "/version/"] {
        let (code, version) = send(http.get(format!("{}{path}", server.url()))).await;
        assert_eq!(
            (code, version["major"].as_str()),
            (200, Some("1")),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_is_served_with_and_without_a_trailing_slash() {
    let (_dir, server, http) = start().await;
    for (path, kind) in [
        ("/api", "APIVersions"),
        ("/api/", "APIVersions"),
        ("/api/v1/", "APIResourceList"),
        ("/apis", "APIGroupList"),
        ("/apis/", "APIGroupList"),
        ("/apis/apps/", "APIGroup"),
        ("/apis/apps/v1/", "APIResourceList"),
    ] {
        let (code, doc) = send(http.get(format!("{}{path}", server.url()))).await;
        assert_eq!(
            (code, doc["kind"].as_str()),
            (200, Some(kind)),
            "{path}: {doc}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_with_a_uid_precondition_spares_a_namesake() {
    let (_dir, server, http) = start().await;
    let base = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    let (_, created) = send(http.post(&base).json(&configmap("a", json!({})))).await;
    let uid = created["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    let other = json!({"preconditions": {"uid": "not-this-one"}});
    let (code, status) = send(http.delete(format!("{base}/a")).json(&other)).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (409, Some("Conflict")),
        "{status}"
    );
    assert!(status["message"]
        .as_str()
        .unwrap_or_default()
        .contains("Precondition failed"));
    assert_eq!(send(http.get(format!("{base}/a"))).await.0, 200);
    let this = json!({"preconditions": {"uid": uid}});
    assert_eq!(
        send(http.delete(format!("{base}/a")).json(&this)).await.0,
        200
    );
    assert_eq!(send(http.get(format!("{base}/a"))).await.0, 404);
}
