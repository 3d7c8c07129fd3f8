//! Limits that keep one client from hurting the others: a body over the request limit is
//! refused after no more than the limit was read, and an object over the store's limit is
//! refused naming it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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

/// 100 MB in 64 KiB chunks, counting what the server pulled.
fn hundred_megabytes(pulled: Arc<AtomicUsize>) -> reqwest::Body {
    const CHUNK: usize = 64 * 1024;
    let chunk = axum::body::Bytes::from(vec![b' '; CHUNK]);
    let chunks = (0..100 * 1024 * 1024 / CHUNK).map(move |_| {
        pulled.fetch_add(CHUNK, Ordering::Relaxed);
        Ok::<_, std::io::Error>(chunk.clone())
    });
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_streamed_body_is_a_413_after_reading_little_more_than_the_limit() {
    let (_dir, server, http) = start().await;
    let url = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    let pulled = Arc::new(AtomicUsize::new(0));
    let response = http
        .post(&url)
        .header("content-type", "application/json")
        .body(hundred_megabytes(pulled.clone()))
        .send()
        .await
        .expect("the server answers before the body ends");
    assert_eq!(response.status(), 413);
    let status: Value = response.json().await.expect("a Status");
    assert_eq!(status["reason"], "RequestEntityTooLarge", "{status}");
    // The limit, plus what socket buffers and the closing connection's drain take in.
    let pulled = pulled.load(Ordering::Relaxed);
    assert!(
        pulled < skiff_api::MAX_REQUEST_BODY_BYTES + 32 * 1024 * 1024,
        "the client sent {pulled} bytes"
    );
    // The server goes on serving.
    let (code, _) = create(&http, &url, "after", "small").await;
    assert_eq!(code, 201);
}

async fn create(http: &reqwest::Client, url: &str, name: &str, data: &str) -> (u16, Value) {
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": name}, "data": {"k": data}});
    let response = http.post(url).json(&body).send().await.expect("request");
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_over_the_store_limit_is_a_413_naming_it() {
    let (_dir, server, http) = start().await;
    let url = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    // Under the request limit, over the object limit.
    let (code, status) = create(&http, &url, "huge", &"x".repeat(2 * 1024 * 1024)).await;
    assert_eq!(code, 413, "{status}");
    assert_eq!(status["reason"], "RequestEntityTooLarge");
    assert_eq!(status["details"]["name"], "huge");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.contains("ConfigMap \"huge\""), "{message}");
    assert!(
        message.contains(&skiff_api::MAX_OBJECT_BYTES.to_string()),
        "{message}"
    );
    let (code, _) = http
        .get(format!("{url}/huge"))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .expect("get");
    assert_eq!(code, 404, "nothing was stored");
    // An update that grows an object past the limit is refused the same way.
    let (code, _) = create(&http, &url, "grows", "small").await;
    assert_eq!(code, 201);
    let grown = json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "grows"}, "data": {"k": "y".repeat(2 * 1024 * 1024)}});
    let response = http
        .put(format!("{url}/grows"))
        .json(&grown)
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), 413);
}
