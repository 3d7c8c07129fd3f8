//! Typed async client for the Skiff API. It speaks Kubernetes' REST conventions, fails over
//! between servers, and turns error responses into the server's `Status`.

mod api_server_verifier;
mod authentication;
pub mod certificates;
mod cluster;
mod connections;
mod error;
mod exec;
mod identity;
mod impersonation;
mod join_tokens;
pub mod kubeconfig;
mod metrics;
mod node_proxy;
mod params;
mod port_forward;
mod tls;
mod tunnel;
mod typed;
mod verbs;
mod watch_lines;
mod websocket;

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use connections::Connections;
use futures::Stream;
use reqwest::StatusCode;
use serde_json::Value;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use skiff_api::resources::ResourceKind;

pub use authentication::{TokenReviewAnswer, TokenUser};
pub use error::ClientError;
pub use exec::{ExecEvent, ExecParams, ExecStream};
pub use identity::ClientIdentity;
pub use impersonation::{Impersonation, ReviewSubject};
pub use kubeconfig::{Credentials, Kubeconfig};
pub use params::{DeleteParams, ListParams, LogParams};
pub use port_forward::PortForwardStream;
pub use reqwest::Method;
pub use tunnel::TunnelIo;
pub use typed::{Api, TypedWatchEvent};

/// One line of a watch stream.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct WatchEvent {
    #[serde(rename = "type")]
    pub event_type: String,
    pub object: Value,
}

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, ClientError>> + Send>>;
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, ClientError>> + Send>>;

/// A client for one cluster; cheap to clone.
#[derive(Clone)]
pub struct Client {
    /// The HTTP connections, renewed after the client certificate rotates.
    http: Arc<Connections>,
    servers: Arc<Vec<String>>,
    /// Index of the server that answered last; tried first.
    preferred: Arc<AtomicUsize>,
    /// Sent as `Authorization: Bearer ...` (an agent's join token).
    token: Option<Arc<str>>,
    /// Every write carries `dryRun=All`: the server checks it and stores nothing.
    dry_run: bool,
    /// Sent as `Impersonate-User`/`Impersonate-Group` (`--as`, `--as-group`).
    impersonation: Option<Arc<Impersonation>>,
    /// The TLS configuration from the credentials (the cluster CA, a client certificate).
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    /// The client certificate, shared with `tls`.
    identity: Option<Arc<ClientIdentity>>,
}

impl Client {
    /// `servers`: base URLs such as `http://127.0.0.1:6443`; requests fail over to the next
    /// server when one cannot be reached or answers 503. `https://` servers are spoken to over
    /// rustls and must present a certificate from a public (Mozilla-trusted) authority.
    pub fn new(servers: &[String]) -> Result<Client, ClientError> {
        Client::with_credentials(servers, &Credentials::default())
    }

    /// `new`, trusting `credentials.ca_pem` alone for `https://` servers, and presenting its
    /// client certificate and bearer token.
    pub fn with_credentials(
        servers: &[String],
        credentials: &Credentials,
    ) -> Result<Client, ClientError> {
        let identity = match &credentials.identity {
            Some((cert, key)) => Some(Arc::new(ClientIdentity::from_pem(cert, key)?)),
            None => None,
        };
        let mut client = Client::with_identity(servers, credentials.ca_pem.as_deref(), identity)?;
        client.token = credentials.token.as_deref().map(Arc::from);
        Ok(client)
    }

    /// `new`, trusting `ca_pem` alone for `https://` servers and presenting `identity`, which
    /// may be replaced while the client runs (see `identity`).
    pub fn with_identity(
        servers: &[String],
        ca_pem: Option<&[u8]>,
        identity: Option<Arc<ClientIdentity>>,
    ) -> Result<Client, ClientError> {
        let servers: Vec<String> = servers
            .iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().trim_end_matches('/').to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if servers.is_empty() {
            return Err(ClientError::NoServers);
        }
        for url in &servers {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ClientError::BadUrl {
                    url: url.clone(),
                    reason: "must start with http:// or https://".into(),
                });
            }
        }
        let tls = tls::client_config(ca_pem, identity.as_ref())?;
        let http = Connections::new(tls.clone(), identity.clone()).map_err(|source| {
            ClientError::Transport {
                url: servers[0].clone(),
                source,
            }
        })?;
        Ok(Client {
            http: Arc::new(http),
            servers: Arc::new(servers),
            preferred: Arc::new(AtomicUsize::new(0)),
            token: None,
            dry_run: false,
            impersonation: None,
            tls,
            identity,
        })
    }

    /// The client certificate this client (and every clone of it) presents: replacing it
    /// rotates the certificate for connections made from then on.
    pub fn identity(&self) -> Option<&Arc<ClientIdentity>> {
        self.identity.as_ref()
    }

    /// Sends `token` as a bearer token with every request (agents use their join token).
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(Arc::from(token));
        self
    }

    /// The server URLs, in the order given.
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// This client with every write sent as a server-side dry run (`dryRun=All`, as
    /// `kubectl --dry-run=server`): checked by admission and validation, never stored.
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }

    /// `path` with `dryRun=All` added when this client dry-runs `method`.
    fn with_dry_run(&self, method: &Method, path: &str) -> String {
        if !self.dry_run || *method == Method::GET {
            return path.to_string();
        }
        let separator = if path.contains('?') { '&' } else { '?' };
        format!("{path}{separator}dryRun=All")
    }

    /// Sends a request to the first server that answers.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<reqwest::Response, ClientError> {
        let limit = skiff_api::MAX_REQUEST_BODY_BYTES;
        if let Some((_, bytes)) = &body {
            if bytes.len() > limit {
                return Err(ClientError::TooLarge {
                    bytes: bytes.len(),
                    limit,
                });
            }
        }
        let path = self.with_dry_run(&method, path);
        let start = self.preferred.load(Ordering::Relaxed);
        let count = self.servers.len();
        let mut last_error = None;
        let http = self.http.current();
        for attempt in 0..count {
            let index = (start + attempt) % count;
            let url = format!("{}{path}", self.servers[index]);
            let mut request = http.request(method.clone(), &url);
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            for (name, value) in self.impersonation.iter().flat_map(|i| i.headers()) {
                request = request.header(name, value);
            }
            if let Some((content_type, bytes)) = body.clone() {
                request = request.header("Content-Type", content_type).body(bytes);
            }
            match request.send().await {
                Ok(response)
                    if response.status() == StatusCode::SERVICE_UNAVAILABLE
                        && attempt + 1 < count =>
                {
                    tracing::debug!(%url, "server unavailable; trying the next one");
                }
                Ok(response) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(response);
                }
                Err(source) if source.is_connect() || source.is_timeout() => {
                    tracing::debug!(%url, %source, "server unreachable; trying the next one");
                    last_error = Some(ClientError::Transport { url, source });
                }
                Err(source) => return Err(ClientError::Transport { url, source }),
            }
        }
        Err(last_error.unwrap_or(ClientError::NoServers))
    }

    /// Sends a request and decodes a JSON answer, or the `Status` of a failure.
    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Value, ClientError> {
        let response = self.checked(method, path, body).await?;
        Self::decode(response).await
    }

    /// The JSON body of a checked answer.
    async fn decode(response: reqwest::Response) -> Result<Value, ClientError> {
        let url = response.url().to_string();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
        serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode { url, source })
    }

    /// Sends a request; a non-2xx answer becomes `ClientError::Api`.
    async fn checked(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<reqwest::Response, ClientError> {
        let response = self.send(method, path, body).await?;
        Self::check(response).await
    }

    /// A 2xx answer as it is; any other becomes `ClientError::Api` with its `Status`.
    async fn check(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        if response.status().is_success() {
            return Ok(response);
        }
        let code = response.status();
        let url = response.url().to_string();
        let text = response
            .text()
            .await
            .map_err(|source| ClientError::Transport { url, source })?;
        Err(api_error(code.as_u16(), code, &text))
    }

    fn body(obj: &Value) -> Option<(&'static str, Vec<u8>)> {
        Some((
            "application/json",
            serde_json::to_vec(obj).unwrap_or_default(),
        ))
    }

    fn merge_patch_body(patch: &Value) -> Option<(&'static str, Vec<u8>)> {
        Some((
            "application/merge-patch+json",
            serde_json::to_vec(patch).unwrap_or_default(),
        ))
    }

    fn status_path(kind: &ResourceKind, namespace: Option<&str>, name: &str) -> String {
        format!("{}/status", kind.object_path(namespace, name))
    }

    /// This client (credentials and connection pool) for `server` alone.
    pub fn for_server(&self, server: &str) -> Client {
        Client {
            servers: Arc::new(vec![server.trim_end_matches('/').to_string()]),
            preferred: Arc::new(AtomicUsize::new(0)),
            ..self.clone()
        }
    }

    /// A typed view of one kind in one namespace (all namespaces or cluster scope with `None`).
    pub fn api<K>(&self, namespace: Option<&str>) -> Api<K>
    where
        K: skiff_api::k8s_openapi::Resource + serde::de::DeserializeOwned + serde::Serialize,
    {
        Api::new(self.clone(), namespace)
    }
}

/// The error of a refused request: the server's `Status` when the body is one, else a
/// `Status` made of the HTTP code (`shown` as it prints) and the body's text.
pub(crate) fn api_error(code: u16, shown: impl std::fmt::Display, text: &str) -> ClientError {
    let status = serde_json::from_str::<Status>(text)
        .ok()
        .filter(|s| s.message.is_some())
        .unwrap_or_else(|| Status {
            code: Some(i32::from(code)),
            message: Some(format!("{shown}: {}", text.trim())),
            status: Some("Failure".into()),
            ..Default::default()
        });
    ClientError::Api {
        status: Box::new(status),
    }
}

#[cfg(test)]
mod tests;
