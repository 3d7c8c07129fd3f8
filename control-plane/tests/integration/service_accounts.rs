//! ServiceAccounts over HTTPS: every namespace gets a `default` account and the
//! `kube-root-ca.crt` ConfigMap (made again when deleted or edited); TokenRequest issues
//! tokens that authenticate as the account, get only what RBAC grants it, and stop working
//! when the account or the pod they are bound to is gone; pod admission settles the account
//! and mounts the token volume.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use skiff_control_plane::pki::{serving_names, CertRequest, ServerTls, TlsOptions, Usage};
use skiff_control_plane::{Server, ServerConfig, ServerHandle};

use crate::common::client;

struct Cluster {
    _dir: tempfile::TempDir,
    tls: Arc<ServerTls>,
    server: ServerHandle,
    admin: reqwest::Client,
    /// A client without a certificate, for bearer tokens.
    bare: reqwest::Client,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let listen = "127.0.0.1:0".parse().expect("addr");
        let options = TlsOptions {
            serving_names: serving_names(listen, "test", None, &[]),
            ..Default::default()
        };
        let tls = Arc::new(ServerTls::prepare(dir.path(), &options).expect("tls"));
        let mut config = ServerConfig::new("test", dir.path().to_path_buf(), listen);
        config.tls = Some(tls.clone());
        let server = Server::start(config).await.expect("server");
        let admin = client(tls.ca_pem(), Some(tls.admin()));
        let bare = client(tls.ca_pem(), None);
        Cluster {
            _dir: dir,
            tls,
            server,
            admin,
            bare,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.admin.get(self.url(path)).send().await.expect("get");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .admin
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("post");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A JSON merge patch.
    async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .admin
            .patch(self.url(path))
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string())
            .send()
            .await
            .expect("patch");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn delete(&self, path: &str) -> StatusCode {
        let response = self
            .admin
            .delete(self.url(&format!("{path}?gracePeriodSeconds=0")))
            .send()
            .await
            .expect("delete");
        response.status()
    }

    /// `GET path` until `done` holds for the answer, within a deadline.
    async fn wait_for(&self, path: &str, done: impl Fn(StatusCode, &Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.get(path).await;
            if done(status, &body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path}: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A token for ServiceAccount `ns/name`, with `spec`.
    async fn token(&self, ns: &str, name: &str, spec: Value) -> String {
        let (status, answer) = self
            .post(
                &format!("/api/v1/namespaces/{ns}/serviceaccounts/{name}/token"),
                json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                    "spec": spec}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answer["status"]["token"]
            .as_str()
            .expect("a token")
            .to_string()
    }

    /// Waits until `token` is refused with 401: accounts and pods are read from an informer
    /// cache, so a delete reaches authentication with its watch event (Kubernetes' bound).
    async fn until_refused(&self, token: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match self.whoami(token).await {
                Err(StatusCode::UNAUTHORIZED) => return,
                other => assert!(
                    tokio::time::Instant::now() < deadline,
                    "the token still answers {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A TokenReview's `status` for `token`.
    async fn review(&self, token: &str) -> Value {
        let (status, review) = self
            .post(
                "/apis/authentication.k8s.io/v1/tokenreviews",
                json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                    "spec": {"token": token}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{review}");
        review["status"].clone()
    }

    /// Who `token` is (SelfSubjectReview), or the refusal's code.
    async fn whoami(&self, token: &str) -> Result<Value, StatusCode> {
        let response = self
            .bare
            .post(self.url("/apis/authentication.k8s.io/v1/selfsubjectreviews"))
            .bearer_auth(token)
            .json(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}))
            .send()
            .await
            .expect("review");
        match response.status() {
            StatusCode::CREATED => {
                Ok(response.json::<Value>().await.expect("json")["status"]["userInfo"].clone())
            }
            other => Err(other),
        }
    }

    async fn list_pods_as(&self, token: &str, ns: &str) -> StatusCode {
        self.bare
            .get(self.url(&format!("/api/v1/namespaces/{ns}/pods")))
            .bearer_auth(token)
            .send()
            .await
            .expect("list")
            .status()
    }
}

fn pod(name: &str, extra: Value) -> Value {
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "app:1"}],
            "initContainers": [{"name": "i", "image": "init:1"}]}});
    if let Some(map) = extra.as_object() {
        for (k, v) in map {
            pod["spec"][k] = v.clone();
        }
    }
    pod
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_namespace_keeps_a_default_account_and_the_root_ca() {
    let cluster = Cluster::start().await;
    let exists = |s: StatusCode, _: &Value| s == StatusCode::OK;
    cluster
        .wait_for("/api/v1/namespaces/default/serviceaccounts/default", exists)
        .await;
    let (status, _) = cluster
        .post(
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "team"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let account = "/api/v1/namespaces/team/serviceaccounts/default";
    let root_ca = "/api/v1/namespaces/team/configmaps/kube-root-ca.crt";
    let first = cluster.wait_for(account, exists).await;
    let ca = cluster.tls.ca_pem().to_string();
    let holds_ca = |s: StatusCode, cm: &Value| s == StatusCode::OK && cm["data"]["ca.crt"] == ca;
    cluster.wait_for(root_ca, holds_ca).await;

    assert!(cluster.delete(account).await.is_success());
    let again = cluster.wait_for(account, exists).await;
    assert_ne!(first["metadata"]["uid"], again["metadata"]["uid"]);

    let response = cluster
        .admin
        .patch(cluster.url(root_ca))
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"data": {"ca.crt": "forged", "extra": "x"}}"#)
        .send()
        .await
        .expect("patch");
    assert!(response.status().is_success());
    let restored = cluster.wait_for(root_ca, holds_ca).await;
    assert_eq!(restored["data"].as_object().map(|d| d.len()), Some(1));
    assert!(cluster.delete(root_ca).await.is_success());
    cluster.wait_for(root_ca, holds_ca).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_its_account_with_only_what_rbac_grants_until_the_account_goes() {
    let cluster = Cluster::start().await;
    let (status, _) = cluster
        .post(
            "/api/v1/namespaces/default/serviceaccounts",
            json!({"apiVersion": "v1",
            "kind": "ServiceAccount", "metadata": {"name": "robot"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = cluster.token("default", "robot", json!({})).await;
    let me = cluster.whoami(&token).await.expect("authenticated");
    assert_eq!(me["username"], "system:serviceaccount:default:robot");
    assert_eq!(
        me["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    assert!(me["uid"].as_str().is_some_and(|u| !u.is_empty()));

    assert_eq!(
        cluster.list_pods_as(&token, "default").await,
        StatusCode::FORBIDDEN
    );
    let (status, _) = cluster
        .post("/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "robot-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "default"}]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while cluster.list_pods_as(&token, "default").await != StatusCode::OK {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the binding never took"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        cluster.list_pods_as(&token, "kube-system").await,
        StatusCode::FORBIDDEN
    );

    // Garbage, a short lifetime and an unknown account are refused.
    assert_eq!(cluster.whoami("a.b.c").await, Err(StatusCode::UNAUTHORIZED));
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        cluster.whoami(&tampered).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    let (status, _) = cluster
        .post(
            "/api/v1/namespaces/default/serviceaccounts/robot/token",
            json!({"spec": {"expirationSeconds": 60}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = cluster
        .post(
            "/api/v1/namespaces/default/serviceaccounts/ghost/token",
            json!({"spec": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An account made again under the same name is another account.
    assert!(cluster
        .delete("/api/v1/namespaces/default/serviceaccounts/robot")
        .await
        .is_success());
    cluster.until_refused(&token).await;
    let (status, _) = cluster
        .post(
            "/api/v1/namespaces/default/serviceaccounts",
            json!({"apiVersion": "v1",
            "kind": "ServiceAccount", "metadata": {"name": "robot"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(cluster.whoami(&token).await, Err(StatusCode::UNAUTHORIZED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_bound_to_a_pod_dies_with_the_pod() {
    let cluster = Cluster::start().await;
    let (status, web) = cluster
        .post("/api/v1/namespaces/default/pods", pod("web", json!({})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{web}");
    let uid = web["metadata"]["uid"].clone();
    let bound =
        json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": uid}});
    let token = cluster.token("default", "default", bound).await;
    let me = cluster.whoami(&token).await.expect("authenticated");
    assert_eq!(me["username"], "system:serviceaccount:default:default");
    assert_eq!(
        me["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["web"])
    );
    assert_eq!(
        me["extra"]["authentication.kubernetes.io/pod-uid"],
        json!([uid])
    );
    let wrong_uid = json!({"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
        "name": "web", "uid": "another"}}});
    let (status, _) = cluster
        .post(
            "/api/v1/namespaces/default/serviceaccounts/default/token",
            wrong_uid,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    assert!(cluster
        .delete("/api/v1/namespaces/default/pods/web")
        .await
        .is_success());
    cluster
        .wait_for("/api/v1/namespaces/default/pods/web", |s, _| {
            s == StatusCode::NOT_FOUND
        })
        .await;
    cluster.until_refused(&token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_run_as_an_existing_account_and_get_its_token_volume() {
    let cluster = Cluster::start().await;
    let pods = "/api/v1/namespaces/default/pods";
    let (status, web) = cluster.post(pods, pod("web", json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{web}");
    let spec = &web["spec"];
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["serviceAccount"], "default");
    let volume = &spec["volumes"][0];
    let name = volume["name"].as_str().expect("a volume");
    assert!(
        name.starts_with("kube-api-access-") && name.len() == "kube-api-access-".len() + 5,
        "{name}"
    );
    let sources = &volume["projected"]["sources"];
    assert_eq!(sources[0]["serviceAccountToken"]["path"], "token");
    assert_eq!(sources[1]["configMap"]["name"], "kube-root-ca.crt");
    for list in ["containers", "initContainers"] {
        let mount = &spec[list][0]["volumeMounts"][0];
        assert_eq!(mount["name"], name, "{list}");
        assert_eq!(
            mount["mountPath"],
            "/var/run/secrets/kubernetes.io/serviceaccount"
        );
        assert_eq!(mount["readOnly"], true);
    }

    let (status, refused) = cluster
        .post(pods, pod("ghostly", json!({"serviceAccountName": "ghost"})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("serviceaccount \"ghost\" not found"),
        "{message}"
    );

    let (status, plain) = cluster
        .post(
            pods,
            pod("plain", json!({"automountServiceAccountToken": false})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(plain["spec"].get("volumes").is_none(), "{plain}");

    let (status, _) = cluster
        .post(
            "/api/v1/namespaces/default/serviceaccounts",
            json!({"apiVersion": "v1",
            "kind": "ServiceAccount", "metadata": {"name": "quiet"},
            "automountServiceAccountToken": false}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, quiet) = cluster
        .post(pods, pod("quiet", json!({"serviceAccountName": "quiet"})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(quiet["spec"]["serviceAccountName"], "quiet");
    assert!(quiet["spec"].get("volumes").is_none(), "{quiet}");
    let (status, loud) = cluster
        .post(
            pods,
            pod(
                "loud",
                json!({"serviceAccountName": "quiet",
            "automountServiceAccountToken": true}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(
        loud["spec"]["volumes"][0]["projected"].is_object(),
        "{loud}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_gets_tokens_only_for_pods_bound_to_it() {
    let cluster = Cluster::start().await;
    let pods = "/api/v1/namespaces/default/pods";
    for (name, node) in [("here", "n1"), ("there", "n2")] {
        let (status, _) = cluster
            .post(pods, pod(name, json!({"nodeName": node})))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let node_cert = cluster
        .tls
        .ca()
        .issue(&CertRequest {
            common_name: "system:node:n1".into(),
            organizations: vec!["system:nodes".into()],
            sans: Vec::new(),
            usage: Usage::Client,
            validity: Duration::from_secs(3600),
        })
        .expect("node certificate");
    let node = client(cluster.tls.ca_pem(), Some(&node_cert));
    let ask = |bound: Value| {
        let node = node.clone();
        let url = cluster.url("/api/v1/namespaces/default/serviceaccounts/default/token");
        async move {
            let response = node
                .post(url)
                .json(&json!({"spec": bound}))
                .send()
                .await
                .expect("token request");
            response.status()
        }
    };
    let bound_to =
        |pod: &str| json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod}});
    // The node authorizer reads an informer cache: wait for it to see the pod.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = ask(bound_to("here")).await;
        if status == StatusCode::CREATED {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ask(bound_to("there")).await, StatusCode::FORBIDDEN);
    assert_eq!(ask(json!({})).await, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_bound_to_a_scheduled_pod_names_its_node_and_outlives_it() {
    let cluster = Cluster::start().await;
    let n1 = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}});
    let (status, node) = cluster.post("/api/v1/nodes", n1).await;
    assert_eq!(status, StatusCode::CREATED, "{node}");
    let pods = "/api/v1/namespaces/default/pods";
    for (name, node) in [("placed", "n1"), ("lost", "gone"), ("pending", "")] {
        let (status, _) = cluster
            .post(pods, pod(name, json!({"nodeName": node})))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    // A token bound to `pod`, and what a TokenReview finds in it.
    let token_of = |pod: &'static str| {
        let bound = json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod}});
        cluster.token("default", "default", bound)
    };
    let extra_of = |token: String| {
        let cluster = &cluster;
        async move {
            let review = cluster.review(&token).await;
            assert_eq!(review["authenticated"], true, "{review}");
            review["user"]["extra"].clone()
        }
    };
    let placed_token = token_of("placed").await;
    let placed = extra_of(placed_token.clone()).await;
    assert_eq!(
        placed["authentication.kubernetes.io/node-name"],
        json!(["n1"])
    );
    assert_eq!(
        placed["authentication.kubernetes.io/node-uid"],
        json!([node["metadata"]["uid"]])
    );
    assert_eq!(
        placed["authentication.kubernetes.io/pod-name"],
        json!(["placed"])
    );
    // A node that is gone, or none yet: the token names no node.
    for pod in ["lost", "pending"] {
        let extra = extra_of(token_of(pod).await).await;
        assert!(
            extra
                .get("authentication.kubernetes.io/node-name")
                .is_none(),
            "{extra}"
        );
        assert_eq!(extra["authentication.kubernetes.io/pod-name"], json!([pod]));
    }

    // The node is deleted (a finalizer holds it, so PodGC leaves its pod alone): a pod-bound
    // token only names its pod's node, so it lives on with the pod, as in Kubernetes.
    let (status, _) = cluster
        .patch(
            "/api/v1/nodes/n1",
            json!({"metadata": {"finalizers": ["example.com/hold"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(cluster.delete("/api/v1/nodes/n1").await.is_success());
    let review = cluster.review(&placed_token).await;
    assert_eq!(review["authenticated"], true, "{review}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_bound_to_a_secret_or_a_node_die_with_it() {
    let cluster = Cluster::start().await;
    cluster
        .wait_for(
            "/api/v1/namespaces/default/serviceaccounts/default",
            |s, _| s == StatusCode::OK,
        )
        .await;
    let (status, secret) = cluster
        .post(
            "/api/v1/namespaces/default/secrets",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "holder"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{secret}");
    let (status, node) = cluster
        .post(
            "/api/v1/nodes",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{node}");
    let bound = |kind: &str, name: &str| json!({"boundObjectRef": {"kind": kind, "apiVersion": "v1", "name": name}});
    let to_secret = cluster
        .token("default", "default", bound("Secret", "holder"))
        .await;
    let to_node = cluster
        .token("default", "default", bound("Node", "n2"))
        .await;
    for token in [&to_secret, &to_node] {
        let me = cluster.whoami(token).await.expect("authenticated");
        assert_eq!(me["username"], "system:serviceaccount:default:default");
    }
    let node_user = cluster.review(&to_node).await;
    assert_eq!(
        node_user["user"]["extra"]["authentication.kubernetes.io/node-uid"],
        json!([node["metadata"]["uid"]])
    );

    // A uid the object does not have, a kind that cannot bind, a name missing.
    let token_path = "/api/v1/namespaces/default/serviceaccounts/default/token";
    let stale = json!({"spec": {"boundObjectRef": {"kind": "Secret", "apiVersion": "v1",
        "name": "holder", "uid": "another"}}});
    let (status, _) = cluster.post(token_path, stale).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, answer) = cluster
        .post(token_path, json!({"spec": bound("ConfigMap", "c")}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer["message"], "cannot bind token to object of type /v1, Kind=ConfigMap",
        "Kubernetes' words: {answer}"
    );
    let nameless = json!({"spec": {"boundObjectRef": {"kind": "Secret"}}});
    let (status, answer) = cluster.post(token_path, nameless).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(
        answer["details"]["causes"][0]["field"], "spec.boundObjectRef.name",
        "{answer}"
    );
    let (status, _) = cluster
        .post(token_path, json!({"spec": bound("Node", "nowhere")}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    assert!(cluster
        .delete("/api/v1/namespaces/default/secrets/holder")
        .await
        .is_success());
    cluster.until_refused(&to_secret).await;
    assert!(cluster.whoami(&to_node).await.is_ok(), "another binding");
    assert!(cluster.delete("/api/v1/nodes/n2").await.is_success());
    cluster.until_refused(&to_node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_secret_gets_a_legacy_token_that_lives_with_the_secret_and_its_account() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let cluster = Cluster::start().await;
    let (status, account) = cluster
        .post(
            "/api/v1/namespaces/default/serviceaccounts",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "ci"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    let secrets = "/api/v1/namespaces/default/secrets";
    let token_secret = |name: &str, account: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": name,
                "annotations": {"kubernetes.io/service-account.name": account}}})
    };
    // What the tokens controller fills in: the token, the CA, the namespace, the account's uid.
    let filled = |name: &'static str| {
        let (cluster, account, b64) = (&cluster, &account, &b64);
        async move {
            let secret = cluster
                .wait_for(&format!("{secrets}/{name}"), |status, secret| {
                    status == StatusCode::OK && secret["data"]["token"].is_string()
                })
                .await;
            let data = |key: &str| {
                let encoded = secret["data"][key].as_str().expect("filled");
                String::from_utf8(b64.decode(encoded).expect("base64")).expect("utf-8")
            };
            assert_eq!(data("namespace"), "default");
            assert_eq!(data("ca.crt"), cluster.tls.ca_pem());
            assert_eq!(
                secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"],
                account["metadata"]["uid"]
            );
            data("token")
        }
    };
    for name in ["ci-token", "ci-token-2"] {
        let (status, answer) = cluster.post(secrets, token_secret(name, "ci")).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    let (first, second) = (filled("ci-token").await, filled("ci-token-2").await);
    let me = cluster.whoami(&first).await.expect("authenticated");
    assert_eq!(me["username"], "system:serviceaccount:default:ci");
    assert_eq!(me["uid"], account["metadata"]["uid"]);
    // Legacy tokens are for the API server alone.
    let (status, review) = cluster
        .post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": {"token": first, "audiences": ["https://vault.example"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{review}");
    assert_eq!(review["status"]["authenticated"], false, "{review}");

    // A token Secret must name its account; one naming no account that exists goes.
    let mut unnamed = token_secret("unnamed", "ci");
    unnamed["metadata"]["annotations"] = json!({});
    let (status, answer) = cluster.post(secrets, unnamed).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(
        answer["details"]["causes"][0]["field"],
        "metadata.annotations[kubernetes.io/service-account.name]"
    );
    let (status, _) = cluster
        .post(secrets, token_secret("orphan", "nobody"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    cluster
        .wait_for(&format!("{secrets}/orphan"), |status, _| {
            status == StatusCode::NOT_FOUND
        })
        .await;

    // Its Secret deleted or labelled invalid, a token is refused; its account deleted, the
    // account's token Secrets go.
    assert!(cluster
        .delete(&format!("{secrets}/ci-token"))
        .await
        .is_success());
    cluster.until_refused(&first).await;
    assert!(
        cluster.whoami(&second).await.is_ok(),
        "another Secret's token"
    );
    // Kubernetes' label that revokes a legacy token.
    let (status, _) = cluster
        .patch(
            &format!("{secrets}/ci-token-2"),
            json!({"metadata": {"labels": {"kubernetes.io/legacy-token-invalid-since": "2026-12-01"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    cluster.until_refused(&second).await;
    assert!(cluster
        .delete("/api/v1/namespaces/default/serviceaccounts/ci")
        .await
        .is_success());
    cluster
        .wait_for(&format!("{secrets}/ci-token-2"), |status, _| {
            status == StatusCode::NOT_FOUND
        })
        .await;
}
