//! The API over HTTPS: client certificates from the cluster CA authenticate, anonymous
//! requests get 401 and write nothing, foreign and expired certificates are refused (also one
//! that expires on an open connection), plain HTTP is served only on loopback
//! (`--insecure-http`), and the user's own serving certificate (`--tls-cert-file`) is
//! reloaded when its files change.

use std::sync::Arc;

use serde_json::{json, Value};
use skiff_control_plane::pki::{
    serving_names, user_of_certificate, CertRequest, ClusterCa, IssuedCert, ServerTls, TlsOptions,
    Usage, CA_CERT, CA_KEY, TLS_DIR,
};
use skiff_control_plane::{Server, ServerConfig, ServerError, ServerHandle};

use crate::common::client;

async fn start(insecure_http: Option<&str>) -> (tempfile::TempDir, Arc<ServerTls>, ServerHandle) {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = "127.0.0.1:0".parse().expect("addr");
    let options = TlsOptions {
        serving_names: serving_names(listen, "test", None, &[]),
        ..Default::default()
    };
    let tls = Arc::new(ServerTls::prepare(dir.path(), &options).expect("tls"));
    let mut config = ServerConfig::new("test", dir.path().to_path_buf(), listen);
    config.tls = Some(tls.clone());
    config.insecure_http = insecure_http.map(|a| a.parse().expect("addr"));
    let server = Server::start(config).await.expect("server");
    (dir, tls, server)
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

fn user(name: &str, groups: &[&str]) -> CertRequest {
    CertRequest {
        common_name: name.into(),
        organizations: groups.iter().map(|g| g.to_string()).collect(),
        sans: Vec::new(),
        usage: Usage::Client,
        validity: std::time::Duration::from_secs(3600),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_certificate_works_and_anonymous_requests_get_401_and_write_nothing() {
    let (_dir, tls, server) = start(None).await;
    let url = server.url();
    assert!(url.starts_with("https://"), "{url}");
    let admin = client(tls.ca_pem(), Some(tls.admin()));
    let anonymous = client(tls.ca_pem(), None);
    let configmaps = format!("{url}/api/v1/namespaces/default/configmaps");

    let refused = anonymous
        .post(&configmaps)
        .json(&configmap("anon"))
        .send()
        .await
        .expect("anonymous POST");
    assert_eq!(refused.status().as_u16(), 401);
    let status: Value = refused.json().await.expect("a Status");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Unauthorized");
    let read = anonymous.get(&configmaps).send().await.expect("GET");
    assert_eq!(read.status().as_u16(), 401);

    let missing = admin
        .get(format!("{configmaps}/anon"))
        .send()
        .await
        .expect("admin GET");
    assert_eq!(
        missing.status().as_u16(),
        404,
        "the anonymous POST wrote nothing"
    );
    let created = admin
        .post(&configmaps)
        .json(&configmap("mine"))
        .send()
        .await
        .expect("admin POST");
    assert_eq!(created.status().as_u16(), 201);

    for open in ["/healthz", "/readyz", "/version"] {
        let answer = anonymous
            .get(format!("{url}{open}"))
            .send()
            .await
            .expect(open);
        assert!(answer.status().is_success(), "{open}: {}", answer.status());
    }
    let ca = anonymous
        .get(format!("{url}/cacerts"))
        .send()
        .await
        .expect("cacerts")
        .text()
        .await
        .expect("text");
    assert_eq!(ca, tls.ca_pem());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_from_another_ca_or_expired_ones_are_refused() {
    let (dir, tls, server) = start(None).await;
    let url = format!("{}/api/v1/namespaces", server.url());

    let other = ClusterCa::create().expect("another CA");
    let foreign = other
        .issue(&user("admin", &["system:masters"]))
        .expect("cert");
    let answer = client(tls.ca_pem(), Some(&foreign)).get(&url).send().await;
    assert!(
        answer.is_err() || answer.as_ref().is_ok_and(|r| r.status().as_u16() == 401),
        "a certificate from another CA: {answer:?}"
    );

    // Signed by the cluster CA, but expired yesterday.
    let tls_dir = dir.path().join(TLS_DIR);
    let ca_key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(tls_dir.join(CA_KEY)).unwrap())
        .expect("ca key");
    let issuer = rcgen::Issuer::from_ca_cert_pem(
        &std::fs::read_to_string(tls_dir.join(CA_CERT)).unwrap(),
        ca_key,
    )
    .expect("issuer");
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "admin");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:masters");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(2);
    params.not_after = now - time::Duration::days(1);
    let expired = IssuedCert {
        cert_pem: params.signed_by(&key, &issuer).expect("sign").pem(),
        key_pem: key.serialize_pem(),
    };
    let answer = client(tls.ca_pem(), Some(&expired)).get(&url).send().await;
    assert!(answer.is_err(), "an expired certificate: {answer:?}");

    // Plain HTTP to the HTTPS port gets no answer.
    let plain = format!("http://{}/api/v1/namespaces", server.local_addr);
    let answer = reqwest::Client::new().get(&plain).send().await;
    assert!(
        answer.as_ref().map_or(true, |r| !r.status().is_success()),
        "plain HTTP to the HTTPS port: {answer:?}"
    );
    server.shutdown().await;
}

/// A certificate that expires while its keep-alive connection stays open stops
/// authenticating on that connection: each request checks the validity again, as Kubernetes'
/// x509 authenticator does, not only the handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_expires_on_an_open_connection_is_refused_there() {
    let (_dir, tls, server) = start(None).await;
    let url = format!("{}/api/v1/namespaces", server.url());
    let mut short = user("admin", &["system:masters"]);
    short.validity = std::time::Duration::from_secs(8);
    let cert = tls.ca().issue(&short).expect("a short certificate");
    // One connection, kept open: a new handshake would fail outright, not answer 401.
    let http = client(tls.ca_pem(), Some(&cert));
    let first = http.get(&url).send().await.expect("a first GET");
    assert_eq!(first.status().as_u16(), 200, "valid at first");

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let refused = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the expired certificate still authenticates on its open connection"
        );
        let answer = http
            .get(&url)
            .send()
            .await
            .expect("the open connection answers (not a new handshake)");
        match answer.status().as_u16() {
            200 => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
            401 => break answer,
            other => panic!("unexpected status {other}"),
        }
    };
    let status: Value = refused.json().await.expect("a Status");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.contains("expired"), "{status}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_served_on_loopback_only_and_acts_as_admin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = Arc::new(ServerTls::prepare(dir.path(), &TlsOptions::default()).expect("tls"));
    let mut config = ServerConfig::new(
        "test",
        dir.path().to_path_buf(),
        "127.0.0.1:0".parse().unwrap(),
    );
    config.tls = Some(tls);
    config.insecure_http = Some("0.0.0.0:0".parse().unwrap());
    match Server::start(config).await {
        Err(ServerError::NotLoopback { .. }) => {}
        Err(other) => panic!("expected NotLoopback, got {other}"),
        Ok(_) => panic!("--insecure-http 0.0.0.0 was accepted"),
    }

    let (_dir, _tls, server) = start(Some("127.0.0.1:0")).await;
    let insecure = server.insecure_addr.expect("insecure listener");
    let created = reqwest::Client::new()
        .post(format!(
            "http://{insecure}/api/v1/namespaces/default/configmaps"
        ))
        .json(&configmap("plain"))
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status().as_u16(), 201);
    server.shutdown().await;
}

/// The CN of the serving certificate a new connection to `url` is shown, trusting `ca_pem`.
async fn served_name(url: &str, ca_pem: &str) -> String {
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("ca"))
        .tls_info(true)
        .build()
        .expect("client");
    let response = client
        .get(format!("{url}/healthz"))
        .send()
        .await
        .expect("healthz");
    let der = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("the server's certificate")
        .to_vec();
    user_of_certificate(&der).expect("a CN").user.name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_own_serving_certificate_is_reloaded_when_its_files_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let users_ca = ClusterCa::create().expect("the user's CA");
    let issue = |name: &str| {
        users_ca
            .issue(&CertRequest {
                common_name: name.into(),
                organizations: Vec::new(),
                sans: vec!["127.0.0.1".into()],
                usage: Usage::Server,
                validity: std::time::Duration::from_secs(3600),
            })
            .expect("issued")
    };
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let install = |issued: &IssuedCert| {
        for (file, pem) in [(&cert_file, &issued.cert_pem), (&key_file, &issued.key_pem)] {
            let staged = file.with_extension("new");
            std::fs::write(&staged, pem).expect("write");
            std::fs::rename(&staged, file).expect("rename");
        }
    };
    install(&issue("first"));
    let listen = "127.0.0.1:0".parse().expect("addr");
    let options = TlsOptions {
        serving_names: serving_names(listen, "test", None, &[]),
        cert_file: Some(cert_file.clone()),
        key_file: Some(key_file.clone()),
        ..Default::default()
    };
    let data = dir.path().join("data");
    let tls = Arc::new(ServerTls::prepare(&data, &options).expect("tls"));
    let mut config = ServerConfig::new("test", data, listen);
    config.tls = Some(tls);
    let server = Server::start(config).await.expect("server");
    let url = server.url();
    assert_eq!(served_name(&url, users_ca.cert_pem()).await, "first");

    install(&issue("second"));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if served_name(&url, users_ca.cert_pem()).await == "second" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate is not served"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    server.shutdown().await;
}
