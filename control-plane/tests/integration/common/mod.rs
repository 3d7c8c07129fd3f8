//! A lone member serving HTTPS with a fresh cluster CA, and clients with or without a
//! certificate from it or a join token.

use std::sync::Arc;

use serde_json::Value;
use skiff_api::join_token::{self, JoinToken};
use skiff_control_plane::pki::{
    serving_names, CertRequest, IssuedCert, ServerTls, TlsOptions, Usage,
};
use skiff_control_plane::{Server, ServerConfig, ServerHandle};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

pub struct TlsServer {
    /// Holds the server's data directory until the server is dropped.
    _dir: tempfile::TempDir,
    pub tls: Arc<ServerTls>,
    pub server: ServerHandle,
}

impl TlsServer {
    pub async fn start() -> TlsServer {
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
        TlsServer {
            _dir: dir,
            tls,
            server,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// A client presenting the admin certificate.
    pub fn admin(&self) -> reqwest::Client {
        client(self.tls.ca_pem(), Some(self.tls.admin()))
    }

    /// A client presenting a certificate for `name` in `groups`, from the cluster CA.
    pub fn user(&self, name: &str, groups: &[&str]) -> reqwest::Client {
        self.user_for(name, groups, std::time::Duration::from_secs(3600))
    }

    /// As `user`, with a certificate valid for `validity` from now.
    pub fn user_for(
        &self,
        name: &str,
        groups: &[&str],
        validity: std::time::Duration,
    ) -> reqwest::Client {
        let issued = self
            .tls
            .ca()
            .issue(&CertRequest {
                common_name: name.into(),
                organizations: groups.iter().map(|g| g.to_string()).collect(),
                sans: Vec::new(),
                usage: Usage::Client,
                validity,
            })
            .expect("issued");
        client(self.tls.ca_pem(), Some(&issued))
    }

    /// A client with no certificate.
    pub fn anonymous(&self) -> reqwest::Client {
        client(self.tls.ca_pem(), None)
    }

    /// A stored join token (the admin creates its Secret).
    pub async fn join_token(&self) -> String {
        let token = JoinToken::from_random([7; 22]);
        let response = self
            .admin()
            .post(format!(
                "{}/api/v1/namespaces/{}/secrets",
                self.url(),
                join_token::NAMESPACE
            ))
            .json(&token.to_secret(None, "test"))
            .send()
            .await
            .expect("token");
        assert_eq!(response.status(), 201);
        token.to_string()
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// A client trusting `ca_pem`, presenting `identity` if given.
pub fn client(ca_pem: &str, identity: Option<&IssuedCert>) -> reqwest::Client {
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(der.expect("ca")).expect("root");
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match identity {
        Some(id) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("chain"),
                PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).expect("key"),
            )
            .expect("client auth"),
        None => builder.with_no_client_auth(),
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .build()
        .expect("client")
}

/// The JSON body of `response`, with its status.
pub async fn json(response: reqwest::Response) -> (u16, Value) {
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}
