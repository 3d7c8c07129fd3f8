//! The OpenAPI documents and `fieldValidation` over HTTP, on a real server (no node agent).

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

/// The code, `Warning` headers and JSON body of a response.
async fn send(request: reqwest::RequestBuilder) -> (u16, Vec<String>, Value) {
    let response = request.send().await.expect("request");
    let code = response.status().as_u16();
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    (code, warnings, response.json().await.unwrap_or(Value::Null))
}

fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 0, "replicaz": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}},
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_served_by_hash_with_etags() {
    let (_dir, server, http) = start().await;
    let (code, _, index) = send(http.get(format!("{}/openapi/v3", server.url()))).await;
    assert_eq!(code, 200);
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("apps/v1 in the index");
    let response = http
        .get(format!("{}{url}", server.url()))
        .send()
        .await
        .expect("document");
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"]
        .to_str()
        .expect("etag")
        .to_string();
    assert!(response.headers()["cache-control"]
        .to_str()
        .expect("cache-control")
        .contains("immutable"));
    let document: Value = response.json().await.expect("json");
    let deployment = &document["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        deployment["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
    let again = http
        .get(format!("{}/openapi/v3/apis/apps/v1", server.url()))
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("again");
    assert_eq!(again.status(), 304);
    let (code, _, v2) = send(http.get(format!("{}/openapi/v2", server.url()))).await;
    assert_eq!((code, v2["swagger"].as_str()), (200, Some("2.0")));
    assert!(v2["definitions"]["io.k8s.api.core.v1.Pod"].is_object());
    // client-go asks for protobuf (gnostic's openapi.v2.Document): `swagger` = 1 comes first.
    let protobuf = http
        .get(format!("{}/openapi/v2", server.url()))
        .header(
            "Accept",
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        )
        .send()
        .await
        .expect("protobuf");
    assert_eq!(protobuf.status(), 200);
    assert!(protobuf.headers()["content-type"]
        .to_str()
        .expect("content-type")
        .contains("protobuf"));
    let bytes = protobuf.bytes().await.expect("body");
    assert_eq!(&bytes[..5], b"\x0a\x032.0");
    let name = b"io.k8s.api.apps.v1.Deployment";
    assert!(bytes.windows(name.len()).any(|w| w == name));
    let (code, _, _) = send(http.get(format!("{}/openapi/v3/apis/nothing/v1", server.url()))).await;
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_validation_refuses_warns_or_ignores_unknown_and_duplicate_fields() {
    let (_dir, server, http) = start().await;
    let base = format!(
        "{}/apis/apps/v1/namespaces/default/deployments",
        server.url()
    );

    // Strict: 400 naming the field, nothing stored.
    let (code, _, status) = send(
        http.post(format!("{base}?fieldValidation=Strict"))
            .json(&deployment("s")),
    )
    .await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    assert_eq!(
        status["message"],
        r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.replicaz""#
    );
    let (code, _, _) = send(http.get(format!("{base}/s"))).await;
    assert_eq!(code, 404);

    // Warn (the default): stored without the field, with a warning.
    let (code, warnings, created) = send(http.post(&base).json(&deployment("w"))).await;
    assert_eq!(code, 201);
    assert_eq!(warnings, [r#"299 - "unknown field \"spec.replicaz\"""#]);
    assert!(created["spec"].get("replicaz").is_none());
    assert_eq!(created["spec"]["replicas"], 0);

    // Ignore: the same, silently.
    let (code, warnings, _) = send(
        http.post(format!("{base}?fieldValidation=Ignore"))
            .json(&deployment("i")),
    )
    .await;
    assert_eq!((code, warnings.len()), (201, 0));

    // Duplicates: refused under Strict, the last kept with a warning under Warn.
    let duplicate = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d"},"data":{"k":"1","k":"2"}}"#;
    let configmaps = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    let (code, warnings, created) = send(
        http.post(&configmaps)
            .header("Content-Type", "application/json")
            .body(duplicate),
    )
    .await;
    assert_eq!((code, created["data"]["k"].as_str()), (201, Some("2")));
    assert_eq!(warnings, [r#"299 - "duplicate field \"data.k\"""#]);

    // Patches: the patch's unknown fields (strategic and merge), or the patched object's
    // (JSON Patch), under Strict; a strategic merge patch's directives are not fields.
    let strict = format!("{base}/w?fieldValidation=Strict");
    for (content_type, patch) in [
        (
            "application/strategic-merge-patch+json",
            json!({"spec": {"pausd": true}}),
        ),
        (
            "application/merge-patch+json",
            json!({"spec": {"pausd": true}}),
        ),
        (
            "application/json-patch+json",
            json!([{"op": "add", "path": "/spec/pausd", "value": true}]),
        ),
    ] {
        let (code, _, status) = send(
            http.patch(&strict)
                .header("Content-Type", content_type)
                .body(patch.to_string()),
        )
        .await;
        assert_eq!(code, 400, "{content_type}: {status}");
        assert!(
            status["message"]
                .as_str()
                .is_some_and(|m| m.ends_with(r#"unknown field "spec.pausd""#)),
            "{content_type}: {status}"
        );
    }
    let directives = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}],
        "containers": [{"name": "app", "image": "registry.example/app:2"}],
    }}}});
    let (code, warnings, patched) = send(
        http.patch(&strict)
            .header("Content-Type", "application/strategic-merge-patch+json")
            .body(directives.to_string()),
    )
    .await;
    assert_eq!((code, warnings.len()), (200, 0), "{patched}");
    let (code, warnings, patched) = send(
        http.patch(format!("{base}/w"))
            .header("Content-Type", "application/merge-patch+json")
            .body(json!({"spec": {"paused": true, "pausd": true}}).to_string()),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(warnings, [r#"299 - "unknown field \"spec.pausd\"""#]);
    assert_eq!(
        (
            patched["spec"]["paused"].as_bool(),
            patched["spec"].get("pausd")
        ),
        (Some(true), None)
    );

    // Update: as create; a bad directive is refused.
    let mut replacement = patched.clone();
    replacement["spec"]["replicaz"] = json!(1);
    let (code, _, status) = send(
        http.put(format!("{base}/w?fieldValidation=Strict"))
            .json(&replacement),
    )
    .await;
    assert_eq!(code, 400, "{status}");
    let (code, _, status) = send(
        http.put(format!("{base}/w?fieldValidation=strict"))
            .json(&replacement),
    )
    .await;
    assert_eq!(code, 400, "{status}");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("fieldValidation")),
        "{status}"
    );
}
