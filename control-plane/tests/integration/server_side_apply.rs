//! Server-side apply over HTTP: `PATCH` with `application/apply-patch+yaml`, managedFields,
//! conflicts with other managers and `force`, and dry runs.

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

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

fn apply(http: &reqwest::Client, url: String, body: &str) -> reqwest::RequestBuilder {
    http.patch(url)
        .header("Content-Type", "application/apply-patch+yaml")
        .body(body.to_string())
}

/// The managers of `obj` with the operation of each.
fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["manager"].as_str().unwrap_or_default().to_string(),
                e["operation"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

const CONFIG: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  labels:
    app: web
data:
  a: \"1\"
  b: \"2\"
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_conflicts_forces_and_prunes() {
    let (_dir, server, http) = start().await;
    let base = format!("{}/api/v1/namespaces/default/configmaps", server.url());

    let (code, status) = send(apply(&http, format!("{base}/cfg"), CONFIG)).await;
    assert_eq!(code, 422, "an apply names its manager: {status}");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("fieldManager: Required value")),
        "{status}"
    );

    let (code, created) = send(apply(&http, format!("{base}/cfg?fieldManager=ops"), CONFIG)).await;
    assert_eq!(code, 201, "an apply creates a missing object: {created}");
    assert_eq!(created["data"], json!({"a": "1", "b": "2"}));
    assert_eq!(managers(&created), vec![("ops".into(), "Apply".into())]);
    let fields = &created["metadata"]["managedFields"][0]["fieldsV1"];
    assert_eq!(fields["f:data"], json!({"f:a": {}, "f:b": {}}), "{fields}");

    // Another writer changes `a` with a merge patch and owns it from then on.
    let (code, patched) = send(
        http.patch(format!("{base}/cfg?fieldManager=editor"))
            .header("Content-Type", "application/merge-patch+json")
            .body(json!({"data": {"a": "9"}}).to_string()),
    )
    .await;
    assert_eq!(code, 200, "{patched}");
    assert!(managers(&patched).contains(&("editor".into(), "Update".into())));

    let changed = CONFIG.replace("a: \"1\"", "a: \"3\"");
    let (code, status) = send(apply(
        &http,
        format!("{base}/cfg?fieldManager=ops"),
        &changed,
    ))
    .await;
    assert_eq!(code, 409, "{status}");
    assert_eq!(status["reason"], "Conflict");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Apply failed with 1 conflict: conflict with \"editor\" using v1")
            && message.ends_with(": .data.a"),
        "{message}"
    );
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "FieldManagerConflict"
    );
    assert_eq!(status["details"]["causes"][0]["field"], ".data.a");

    // A dry run of the forced apply changes nothing.
    let url = format!("{base}/cfg?fieldManager=ops&force=true");
    let (code, _) = send(apply(&http, format!("{url}&dryRun=All"), &changed)).await;
    assert_eq!(code, 200);
    let (_, current) = send(http.get(format!("{base}/cfg"))).await;
    assert_eq!(current["data"]["a"], "9");

    let (code, forced) = send(apply(&http, url, &changed)).await;
    assert_eq!(code, 200, "{forced}");
    assert_eq!(forced["data"]["a"], "3");
    assert!(
        !managers(&forced).contains(&("editor".into(), "Update".into())),
        "the editor lost its only field: {forced}"
    );

    // Dropping `b` and the label from the configuration removes them.
    let pruned = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: \"3\"\n";
    let (code, after) = send(apply(&http, format!("{base}/cfg?fieldManager=ops"), pruned)).await;
    assert_eq!(code, 200, "{after}");
    assert_eq!(after["data"], json!({"a": "3"}));
    assert!(after["metadata"]["labels"].get("app").is_none(), "{after}");

    // force belongs to apply only.
    let (code, status) = send(
        http.patch(format!("{base}/cfg?force=true"))
            .header("Content-Type", "application/merge-patch+json")
            .body("{}"),
    )
    .await;
    assert_eq!(code, 422, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_recorded_under_the_user_agent_and_cleared_on_request() {
    let (_dir, server, http) = start().await;
    let base = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    let (code, dry) = send(apply(
        &http,
        format!("{base}/dry?fieldManager=ops&dryRun=All"),
        &CONFIG.replace("cfg", "dry"),
    ))
    .await;
    assert_eq!(code, 201, "{dry}");
    assert!(
        dry["metadata"].get("resourceVersion").is_none(),
        "nothing stored, no version: {dry}"
    );
    let (code, _) = send(http.get(format!("{base}/dry"))).await;
    assert_eq!(code, 404, "a dry-run apply stores nothing");

    // A CertificateSigningRequest names its requester, which only a POST stamps.
    let csr = "apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata:
  name: forged
spec:
  signerName: kubernetes.io/kube-apiserver-client-kubelet
  groups: [system:nodes]
  request: AAAA
  usages: [client auth]
";
    let csrs = format!(
        "{}/apis/certificates.k8s.io/v1/certificatesigningrequests",
        server.url()
    );
    let (code, refused) = send(apply(&http, format!("{csrs}/forged?fieldManager=x"), csr)).await;
    assert_eq!(code, 415, "{refused}");
    let (code, _) = send(http.get(format!("{csrs}/forged"))).await;
    assert_eq!(code, 404, "nothing created");

    // Applying the same configuration again writes nothing.
    let (_, first) = send(apply(
        &http,
        format!("{base}/same?fieldManager=ops"),
        &CONFIG.replace("cfg", "same"),
    ))
    .await;
    let (code, again) = send(apply(
        &http,
        format!("{base}/same?fieldManager=ops"),
        &CONFIG.replace("cfg", "same"),
    ))
    .await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(
        again["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"],
        "an unchanged apply is no write"
    );

    let object = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "ua"}, "data": {"k": "v"}});
    let (code, created) = send(
        http.post(&base)
            .header(
                "User-Agent",
                "kubectl-create/v1.32.0 (linux/amd64) kubernetes/abc",
            )
            .json(&object),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(
        managers(&created),
        vec![("kubectl-create".into(), "Update".into())]
    );

    let mut cleared = created.clone();
    cleared["metadata"]["managedFields"] = json!([{}]);
    let (code, updated) = send(http.put(format!("{base}/ua")).json(&cleared)).await;
    assert_eq!(code, 200, "{updated}");
    assert!(
        updated["metadata"].get("managedFields").is_none(),
        "{updated}"
    );
}
