//! The client against small axum servers bound to 127.0.0.1:0 in the test.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use serde_json::json;
use skiff_api::resources::by_name;

use super::*;

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{addr}")
}

/// A URL nothing listens on (a port bound and released).
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn fails_over_to_a_live_server() {
    let live = serve(Router::new().route(
        "/api/v1/namespaces/default/pods/p",
        get(|| async { axum::Json(json!({"kind": "Pod", "metadata": {"name": "p"}})) }),
    ))
    .await;
    let client = Client::new(&[dead_url().await, live]).expect("client");
    let pod = client
        .get(by_name("pods").expect("kind"), Some("default"), "p")
        .await
        .expect("get");
    assert_eq!(pod["metadata"]["name"], "p");
}

#[tokio::test]
async fn decodes_status_errors() {
    let url = serve(Router::new().route(
        "/api/v1/namespaces/default/pods/missing",
        get(|| async {
            (
                StatusCode::NOT_FOUND,
                axum::Json(
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": "pods \"missing\" not found", "reason": "NotFound", "code": 404}),
                ),
            )
                .into_response()
        }),
    ))
    .await;
    let client = Client::new(&[url]).expect("client");
    let err = client
        .get(by_name("pods").expect("kind"), Some("default"), "missing")
        .await
        .expect_err("404");
    assert!(err.is_not_found());
    assert_eq!(err.to_string(), "pods \"missing\" not found");
}

#[tokio::test]
async fn parses_watch_lines_split_across_chunks() {
    let url = serve(Router::new().route(
        "/api/v1/namespaces/default/pods",
        get(|| async {
            let chunks = vec![
                Ok::<_, std::io::Error>(
                    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"na".to_string(),
                ),
                Ok("me\":\"a\"}}}\n{\"type\":\"DELETED\",".to_string()),
                Ok("\"object\":{\"metadata\":{\"name\":\"a\"}}}\n".to_string()),
            ];
            axum::body::Body::from_stream(futures::stream::iter(chunks))
        }),
    ))
    .await;
    let client = Client::new(&[url]).expect("client");
    let events: Vec<_> = client
        .watch(
            by_name("pods").expect("kind"),
            Some("default"),
            &ListParams::default(),
            "5",
        )
        .await
        .expect("watch")
        .collect()
        .await;
    let types: Vec<String> = events
        .into_iter()
        .map(|e| e.expect("event").event_type)
        .collect();
    assert_eq!(types, ["ADDED", "DELETED"]);
}

#[tokio::test]
async fn a_watch_cut_mid_line_ends_after_its_last_whole_event() {
    let url = serve(Router::new().route(
        "/api/v1/namespaces/default/pods",
        get(|| async { "\n{\"type\":\"ADDED\",\"object\":{}}\n{\"type\":\"MODIF" }),
    ))
    .await;
    let client = Client::new(&[url]).expect("client");
    let events: Vec<_> = client
        .watch(
            by_name("pods").expect("kind"),
            Some("default"),
            &ListParams::default(),
            "5",
        )
        .await
        .expect("watch")
        .collect()
        .await;
    let types: Vec<String> = events
        .into_iter()
        .map(|e| e.expect("event").event_type)
        .collect();
    assert_eq!(types, ["ADDED"]);
}

#[test]
fn rejects_bad_urls() {
    assert!(matches!(Client::new(&[]), Err(ClientError::NoServers)));
    assert!(matches!(
        Client::new(&["localhost:6443".into()]),
        Err(ClientError::BadUrl { .. })
    ));
    let client = Client::new(&["http://a:1, http://b:2/".into()]).expect("comma list");
    assert_eq!(client.servers(), ["http://a:1", "http://b:2"]);
}

#[tokio::test]
async fn speaks_tls_to_https_servers() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client = Client::new(&[format!("https://{addr}")]).expect("client");
    let request = client.get(by_name("pods").expect("kind"), Some("default"), "p");
    let first_bytes = async {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut first = [0u8; 2];
        socket.read_exact(&mut first).await.expect("read");
        first
    };
    tokio::select! {
        // A TLS record of type handshake (22), protocol major version 3: the ClientHello.
        first = first_bytes => assert_eq!(first, [0x16, 0x03], "not a TLS handshake"),
        result = request => panic!("the request ended without connecting: {:?}", result.err()),
    }
}

#[tokio::test]
async fn refuses_a_body_over_the_server_limit_before_sending() {
    let url = serve(Router::new().route(
        "/api/v1/namespaces/default/configmaps",
        axum::routing::post(|_: axum::body::Bytes| async { StatusCode::CREATED }),
    ))
    .await;
    let client = Client::new(&[url]).expect("client");
    let big = json!({"kind": "ConfigMap", "metadata": {"name": "big"},
        "data": {"k": "x".repeat(50 * 1024 * 1024)}});
    let err = client
        .create(by_name("configmaps").expect("kind"), Some("default"), &big)
        .await
        .expect_err("too large");
    let message = err.to_string();
    assert!(
        message.contains("3145728") && !message.contains("cannot reach"),
        "{message}"
    );
}
