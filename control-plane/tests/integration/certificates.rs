//! CertificateSigningRequests on a real API server: a request that is not a PEM certificate
//! request is refused naming `spec.request`; a new node's request, made with the join token,
//! is approved and signed, and the certificate then speaks as `system:node:<name>` under the
//! node authorizer; a user's request waits for `/approval`, which only those allowed to
//! approve for its signer may write; a denied request is never signed.

use std::time::Duration;

use base64::Engine;
use rcgen::{CertificateParams, DnType, KeyPair};
use serde_json::{json, Value};
use skiff_control_plane::pki::IssuedCert;

use crate::common;
use crate::common::{json, TlsServer};

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
const DEADLINE: Duration = Duration::from_secs(15);

struct Request {
    key_pem: String,
    body: Value,
}

fn request(name: &str, cn: &str, orgs: &[&str], signer: &str) -> Request {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    for o in orgs {
        params.distinguished_name.push(DnType::OrganizationName, *o);
    }
    let pem = params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    Request {
        key_pem: key.serialize_pem(),
        body: json!({
            "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": name},
            "spec": {"request": base64::engine::general_purpose::STANDARD.encode(pem),
                     "signerName": signer, "usages": ["digital signature", "client auth"]},
        }),
    }
}

/// Reads CSR `name` until `done` accepts it.
async fn wait_for(server: &TlsServer, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let admin = server.admin();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    loop {
        poll.tick().await;
        let (_, csr) = json(
            admin
                .get(format!("{}{CSRS}/{name}", server.url()))
                .send()
                .await
                .expect("get"),
        )
        .await;
        if done(&csr) {
            return csr;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting on {name}: {csr}"
        );
    }
}

fn certificate(csr: &Value) -> Option<String> {
    let b64 = csr["status"]["certificate"].as_str()?;
    let pem = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(pem).ok()
}

fn condition(csr: &Value, kind: &str) -> bool {
    csr["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_gets_a_certificate_that_speaks_for_it_alone() {
    let server = TlsServer::start().await;
    let url = server.url();
    let token = server.join_token().await;
    let bootstrap = server.anonymous();

    let mut bad = request("bad", "system:node:n1", &["system:nodes"], "x/y").body;
    bad["spec"]["request"] = json!(base64::engine::general_purpose::STANDARD.encode("hello"));
    let (code, status) = json(
        bootstrap
            .post(format!("{url}{CSRS}"))
            .bearer_auth(&token)
            .json(&bad)
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["details"]["causes"][0]["field"], "spec.request",
        "{status}"
    );

    let asked = request(
        "node-csr-n1",
        "system:node:n1",
        &["system:nodes"],
        "kubernetes.io/kube-apiserver-client-kubelet",
    );
    let (code, created) = json(
        bootstrap
            .post(format!("{url}{CSRS}"))
            .bearer_auth(&token)
            .json(&asked.body)
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert!(created["spec"]["username"]
        .as_str()
        .is_some_and(|u| u.starts_with("system:bootstrap:")));
    // The bootstrapper may not approve its own request: the approver does.
    let (code, _) = json(
        bootstrap
            .put(format!("{url}{CSRS}/node-csr-n1/approval"))
            .bearer_auth(&token)
            .json(&created)
            .send()
            .await
            .expect("put"),
    )
    .await;
    assert_eq!(code, 403);
    let issued = wait_for(&server, "node-csr-n1", |c| certificate(c).is_some()).await;
    assert!(condition(&issued, "Approved"), "{issued}");

    let identity = IssuedCert {
        cert_pem: certificate(&issued).expect("certificate"),
        key_pem: asked.key_pem,
    };
    let node = common::client(server.tls.ca_pem(), Some(&identity));
    let own = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}});
    let other = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}});
    let post = |body: &Value| node.post(format!("{url}/api/v1/nodes")).json(body).send();
    assert_eq!(post(&own).await.expect("post").status(), 201);
    assert_eq!(post(&other).await.expect("post").status(), 403);
    let (code, _) = json(
        server
            .admin()
            .post(format!("{url}/api/v1/nodes"))
            .json(&other)
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(code, 201);
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let patch = |name: &str| {
        node.patch(format!("{url}/api/v1/nodes/{name}/status"))
            .header("Content-Type", "application/merge-patch+json")
            .json(&status)
            .send()
    };
    assert_eq!(patch("n1").await.expect("patch").status(), 200);
    assert_eq!(patch("n2").await.expect("patch").status(), 403);
    let secret = node
        .get(format!("{url}/api/v1/namespaces/kube-system/secrets"))
        .send()
        .await
        .expect("get");
    assert_eq!(secret.status(), 403);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_requests_wait_for_approval_and_denied_ones_are_never_signed() {
    let server = TlsServer::start().await;
    let url = server.url();
    let admin = server.admin();
    let client_signer = "kubernetes.io/kube-apiserver-client";
    for name in ["bob", "eve"] {
        let asked = request(name, name, &["devs"], client_signer);
        let response = admin
            .post(format!("{url}{CSRS}"))
            .json(&asked.body)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 201);
    }
    let masters = request("mallory", "mallory", &["system:masters"], client_signer);
    let response = admin
        .post(format!("{url}{CSRS}"))
        .json(&masters.body)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 403, "no system:masters through a CSR");

    // A user without the approve permission may not decide.
    let bob_now = server.user("bob", &["devs"]);
    let (_, pending) = json(
        admin
            .get(format!("{url}{CSRS}/bob"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert!(!condition(&pending, "Approved"));
    let decide = |client: &reqwest::Client, name: &str, kind: &str, mut csr: Value| {
        csr["status"]["conditions"] = json!([{"type": kind, "status": "True", "reason": "Test"}]);
        client
            .put(format!("{url}{CSRS}/{name}/approval"))
            .json(&csr)
            .send()
    };
    let refused = decide(&bob_now, "bob", "Approved", pending.clone())
        .await
        .expect("put");
    assert_eq!(refused.status(), 403);

    let (_, eve) = json(
        admin
            .get(format!("{url}{CSRS}/eve"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    let denied = decide(&admin, "eve", "Denied", eve).await.expect("put");
    assert_eq!(denied.status(), 200);
    let approved = decide(&admin, "bob", "Approved", pending)
        .await
        .expect("put");
    assert_eq!(approved.status(), 200);
    let bob = wait_for(&server, "bob", |c| certificate(c).is_some()).await;
    assert!(certificate(&bob).is_some_and(|pem| pem.contains("BEGIN CERTIFICATE")));
    // The signer has seen both: the denied one stays unsigned.
    let eve = wait_for(&server, "eve", |c| condition(c, "Denied")).await;
    assert!(certificate(&eve).is_none(), "{eve}");
    server.shutdown().await;
}
