//! The HTTP listener end to end in-process: a request routed to a backend arrives with the
//! `X-Forwarded-*` headers, requests in turn reuse one backend connection, and a path no rule
//! matches is a 404.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use skiff_api::k8s_openapi::api::core::v1::Service;
use skiff_api::k8s_openapi::api::discovery::v1::EndpointSlice;
use skiff_api::k8s_openapi::api::networking::v1::Ingress;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::routes::{Endpoints, Routes};
use super::server::{self, Shared};
use crate::agent::proxy::balancer::Failures;

/// A backend answering with the forwarded headers it got; counts its connections.
async fn backend(connections: Arc<AtomicUsize>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            connections.fetch_add(1, Ordering::SeqCst);
            let service = service_fn(|request: Request<hyper::body::Incoming>| async move {
                let header = |name: &str| {
                    request
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                let body = format!(
                    "{} for={} proto={} host={}",
                    request.uri().path(),
                    header("x-forwarded-for"),
                    header("x-forwarded-proto"),
                    header("x-forwarded-host")
                );
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    addr
}

fn routes_to(backend: std::net::SocketAddr) -> Routes {
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"clusterIP": "10.43.0.9", "ports": [{"name": "http", "port": 80}]}}))
    .unwrap();
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "web-x", "namespace": "default",
            "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": backend.port()}],
        "endpoints": [{"addresses": [backend.ip().to_string()]}]}))
    .unwrap();
    let ingress: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"rules": [{"host": "a.example.com", "http": {"paths": [
            {"path": "/app", "pathType": "Prefix",
             "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}))
    .unwrap();
    let services = BTreeMap::from([("default/web".to_string(), service)]);
    let endpoints = Endpoints {
        services: &services,
        slices: vec![&slice],
    };
    Routes::build([&ingress], &endpoints)
}

#[tokio::test]
async fn requests_are_forwarded_with_headers_on_a_kept_connection() {
    let connections = Arc::new(AtomicUsize::new(0));
    let backend = backend(connections.clone()).await;
    let (_routes_tx, routes) = watch::channel(Arc::new(routes_to(backend)));
    let shared = Shared {
        routes,
        failures: Arc::new(Failures::default()),
        pool: Arc::default(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(server::serve(listener, None, shared, stop.clone()));

    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut get = async |host: &str, path: &str| {
        let request = Request::get(path)
            .header("host", host)
            .header("x-forwarded-for", "192.0.2.1")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = client.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).to_string())
    };
    const REQUESTS: usize = 5;
    for _ in 0..REQUESTS {
        let (status, body) = get("a.example.com:8000", "/app/x").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            "/app/x for=192.0.2.1, 127.0.0.1 proto=http host=a.example.com:8000"
        );
    }
    // Usually one; a request may open a second when it comes before the kept connection
    // has taken in the end of the previous response.
    let opened = connections.load(Ordering::SeqCst);
    assert!(
        opened < REQUESTS,
        "{opened} backend connections for {REQUESTS} requests in turn: none was reused"
    );
    let (status, _) = get("a.example.com", "/other").await;
    assert_eq!(status, 404);
    let (status, _) = get("b.example.com", "/app").await;
    assert_eq!(status, 404);
    stop.cancel();
}
