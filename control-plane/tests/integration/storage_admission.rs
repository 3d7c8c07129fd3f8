//! PersistentVolumeClaim admission over HTTP: the default StorageClass the server bootstraps,
//! a claim with no class given it, a claim naming a missing class refused on the field, and a
//! claim's spec fixed once created (re-applying the original manifest is not a change).

use serde_json::{json, Value};
use skiff_control_plane::{Server, ServerConfig};

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

fn claim(name: &str, class: Option<&str>) -> Value {
    let mut claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    if let Some(class) = class {
        claim["spec"]["storageClassName"] = json!(class);
    }
    claim
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_get_the_default_class_and_a_missing_class_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = "127.0.0.1:0".parse().expect("addr");
    let server = Server::start(ServerConfig::new("test", dir.path().to_path_buf(), listen))
        .await
        .expect("server");
    let http = reqwest::Client::new();
    let (code, class) = send(http.get(format!(
        "{}/apis/storage.k8s.io/v1/storageclasses/local-path",
        server.url()
    )))
    .await;
    assert_eq!(code, 200, "{class}");
    assert_eq!(class["provisioner"], "skiff.dev/local-path");
    assert_eq!(class["volumeBindingMode"], "WaitForFirstConsumer");
    assert_eq!(
        class["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"],
        "true"
    );

    let claims = format!(
        "{}/api/v1/namespaces/default/persistentvolumeclaims",
        server.url()
    );
    let (code, created) = send(http.post(&claims).json(&claim("data", None))).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["storageClassName"], "local-path");
    let (code, created) = send(http.post(&claims).json(&claim("plain", Some("")))).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(
        created["spec"]["storageClassName"], "",
        "\"\" asks for no class"
    );

    let (code, status) = send(
        http.post(&claims)
            .json(&claim("ghost", Some("no-such-class"))),
    )
    .await;
    assert_eq!((code, status["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(
        status["details"]["causes"][0]["field"], "spec.storageClassName",
        "{status}"
    );
    let (code, _) = send(http.get(format!("{claims}/ghost"))).await;
    assert_eq!(code, 404, "nothing created");

    // Re-applying the manifest (no class, a new label) keeps the defaulted class.
    let mut reapplied = claim("data", None);
    reapplied["metadata"]["labels"] = json!({"app": "db"});
    let (code, updated) = send(http.put(format!("{claims}/data")).json(&reapplied)).await;
    assert_eq!(code, 200, "{updated}");
    assert_eq!(updated["spec"]["storageClassName"], "local-path");
    assert_eq!(updated["metadata"]["labels"]["app"], "db");
    // The access modes are fixed.
    let mut changed = reapplied;
    changed["spec"]["accessModes"] = json!(["ReadWriteMany"]);
    let (code, status) = send(http.put(format!("{claims}/data")).json(&changed)).await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "spec");
    server.shutdown().await;
}
