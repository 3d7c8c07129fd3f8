//! Ingresses and IngressClasses over HTTP: the bootstrapped default class, validation that
//! names the field, and status written only through the subresource.

use serde_json::{json, Value};
use skiff_control_plane::{Server, ServerConfig};

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingresses_are_validated_stored_and_have_a_default_class() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = "127.0.0.1:0".parse().expect("addr");
    let server = Server::start(ServerConfig::new("test", dir.path().to_path_buf(), listen))
        .await
        .expect("server");
    let http = reqwest::Client::new();
    let group = format!("{}/apis/networking.k8s.io/v1", server.url());

    let (code, class) = send(http.get(format!("{group}/ingressclasses/skiff"))).await;
    assert_eq!(code, 200, "{class}");
    assert_eq!(class["spec"]["controller"], "skiff.dev/ingress");
    assert_eq!(
        class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"],
        "true"
    );

    let base = format!("{group}/namespaces/default/ingresses");
    let ingress = |path_type: &str| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web"},
            "spec": {"rules": [{"host": "a.example.com", "http": {"paths": [
                {"path": "/", "pathType": path_type,
                 "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}]}}})
    };
    let (code, status) = send(http.post(&base).json(&ingress("Regex"))).await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["details"]["causes"][0]["field"],
        "spec.rules[0].http.paths[0].pathType"
    );

    let (code, created) = send(http.post(&base).json(&ingress("Prefix"))).await;
    assert_eq!(code, 201, "{created}");
    assert!(
        created["status"]["loadBalancer"]["ingress"].is_null(),
        "status is the subresource's: {created}"
    );
    let (code, list) = send(http.get(format!("{group}/ingresses"))).await;
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "IngressList");
    assert_eq!(list["items"][0]["metadata"]["name"], "web");
    server.shutdown().await;
}
