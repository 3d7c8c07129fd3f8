//! `--token-auth-file`: a static token authenticates as its user, whom RBAC then decides for;
//! a wrong token gets 401; a malformed file stops the server with the file and line named.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use skiff_control_plane::pki::{serving_names, ServerTls, TlsOptions};
use skiff_control_plane::{Server, ServerConfig, ServerError};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

const TOKENS: &str = "# token,user,uid,groups\nbob-token,bob,u-1,\"devs,qa\"\n";

fn config(dir: &std::path::Path, tokens: &str) -> (ServerConfig, Arc<ServerTls>) {
    let listen = "127.0.0.1:0".parse().expect("addr");
    let options = TlsOptions {
        serving_names: serving_names(listen, "test", None, &[]),
        ..Default::default()
    };
    let tls = Arc::new(ServerTls::prepare(dir, &options).expect("tls"));
    let token_file = dir.join("tokens.csv");
    std::fs::write(&token_file, tokens).expect("token file");
    let mut config = ServerConfig::new("test", dir.to_path_buf(), listen);
    config.tls = Some(tls.clone());
    config.token_auth_file = Some(token_file);
    (config, tls)
}

/// A client trusting the cluster CA, with the admin certificate or none.
fn client(tls: &ServerTls, admin: bool) -> reqwest::Client {
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(tls.ca_pem().as_bytes()) {
        roots.add(der.expect("ca")).expect("root");
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = if admin {
        let id = tls.admin();
        builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("chain"),
                PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).expect("key"),
            )
            .expect("client auth")
    } else {
        builder.with_no_client_auth()
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_token_user_is_refused_until_a_binding_allows_it_and_a_wrong_token_gets_401() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, tls) = config(dir.path(), TOKENS);
    let server = Server::start(config).await.expect("server");
    let url = server.url();
    let admin = client(&tls, true);
    let bearer = client(&tls, false);
    let configmaps = format!("{url}/api/v1/namespaces/default/configmaps");
    let configmap = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});

    let wrong = bearer
        .get(&configmaps)
        .bearer_auth("bob-tokem")
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status().as_u16(), 401);

    let refused = bearer
        .post(&configmaps)
        .bearer_auth("bob-token")
        .json(&configmap)
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status().as_u16(), 403);
    let status: Value = refused.json().await.expect("Status");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.contains("User \"bob\""), "{message}");

    // bob's group, from the file, is what the binding names.
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "devs-edit", "namespace": "default"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "devs"}],
    });
    let bound = admin
        .post(format!(
            "{url}/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings"
        ))
        .json(&binding)
        .send()
        .await
        .expect("binding");
    assert_eq!(bound.status().as_u16(), 201);

    // The authorizer's cache sees the binding shortly after it is written.
    let deadline = Instant::now() + Duration::from_secs(10);
    let created = loop {
        let answer = bearer
            .post(&configmaps)
            .bearer_auth("bob-token")
            .json(&configmap)
            .send()
            .await
            .expect("POST");
        if answer.status().as_u16() != 403 || Instant::now() > deadline {
            let code = answer.status().as_u16();
            break (code, answer.text().await.expect("body"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(created.0, 201, "{}", created.1);
    // `edit` reaches `view`'s read rules one aggregation pass later on a fresh server.
    let read = loop {
        let answer = bearer
            .get(format!("{configmaps}/c"))
            .bearer_auth("bob-token")
            .send()
            .await
            .expect("GET");
        if answer.status().as_u16() != 403 || Instant::now() > deadline {
            break answer.status().as_u16();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(read, 200);
    // The binding is in `default` only.
    let elsewhere = bearer
        .get(format!("{url}/api/v1/namespaces/kube-system/configmaps"))
        .bearer_auth("bob-token")
        .send()
        .await
        .expect("GET");
    assert_eq!(elsewhere.status().as_u16(), 403);
    server.shutdown().await;
}

#[tokio::test]
async fn a_malformed_token_file_stops_the_server_naming_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, _) = config(dir.path(), "ok,alice,1\n\nno-user-or-uid\n");
    let err = match Server::start(config).await {
        Ok(_) => panic!("a malformed token file was accepted"),
        Err(err) => err,
    };
    assert!(matches!(err, ServerError::TokenFile(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("tokens.csv") && text.contains("line 3"),
        "{text}"
    );
}
