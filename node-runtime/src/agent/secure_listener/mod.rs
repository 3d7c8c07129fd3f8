//! The agent's own listener (the kubelet's port), served over HTTPS only and authenticated
//! and authorized as the kubelet's (`--authentication-token-webhook=false`,
//! `--client-ca-file`, `--authorization-mode=Webhook`):
//! - its serving certificate comes from the cluster CA through the CSR API
//!   (`serving_cert`), and is renewed while the listener serves (`rotation`);
//! - a client presents a certificate chained to the cluster CA (x509 authentication: its CN
//!   is the user, each O a group) or an `Authorization: Bearer` token, which the API
//!   authenticates with a TokenReview (`authenticator`, `--authentication-token-webhook`);
//!   anyone else gets 401;
//! - each user's access (`access`: verb on `nodes/proxy|log|stats|metrics`) is a
//!   SubjectAccessReview to the API (`authorizer`); denied is a 403 that names the user and
//!   the subresource.
//!
//! The tunnels to the servers carry the same router without this layer: only the server
//! that authorized the request at the API is at their other end.

mod access;
mod authenticator;
mod authorizer;
mod rotation;
mod serving_cert;
mod ttl_cache;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use skiff_api::backoff::Backoff;
use skiff_client::{Client, ReviewSubject};
use skiff_net::http::TlsPeer;
use skiff_net::tls::ServerCert;
use skiff_net::ConnLimits;
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_util::sync::CancellationToken;
use x509_parser::prelude::{FromDer, X509Certificate};

use authenticator::TokenAuthenticator;
use authorizer::Authorizer;

/// Pauses between attempts to obtain the serving certificate (a request not approved within
/// its wait, a server unreachable): each attempt is a new CertificateSigningRequest, so they
/// grow to minutes.
const OBTAIN_RETRY: Backoff = Backoff {
    initial: Duration::from_secs(5),
    max: Duration::from_secs(300),
    reset_after: Duration::from_secs(3600),
};

/// What the listener needs besides its socket and router.
pub struct Setup {
    /// The node's own API client (its `system:node:NAME` certificate): asks for the serving
    /// certificate, the TokenReviews and the SubjectAccessReviews.
    pub client: Client,
    /// The cluster CA (PEM) client certificates must chain to.
    pub ca_pem: Vec<u8>,
    /// The node's name.
    pub node: String,
    /// The names the serving certificate is for: the node's addresses.
    pub names: Vec<String>,
    /// The agent's data dir, whose `pki/` keeps the serving certificate.
    pub data_dir: PathBuf,
    pub limits: ConnLimits,
}

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    #[error("the serving certificate: {0}")]
    Certificate(#[from] super::credentials::CredentialError),
    #[error("the TLS configuration: {0}")]
    Tls(String),
}

/// Gets the serving certificate, then serves `app` on `listener` over HTTPS, authenticated
/// and authorized, until `stop` is cancelled.
pub async fn serve(
    setup: Setup,
    listener: TcpListener,
    app: Router,
    stop: CancellationToken,
) -> Result<(), ListenerError> {
    let mut failures = 0u32;
    let cert = loop {
        let obtained = stop
            .run_until_cancelled(serving_cert::obtain(
                &setup.client,
                &setup.node,
                &setup.names,
                &setup.data_dir,
            ))
            .await;
        match obtained {
            None => return Ok(()),
            Some(Ok(cert)) => break cert,
            Some(Err(err)) => {
                failures = failures.saturating_add(1);
                let pause = OBTAIN_RETRY.delay(failures);
                tracing::warn!(%err, retry = ?pause, "no serving certificate for the node's listener yet");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = stop.cancelled() => return Ok(()),
                }
            }
        }
    };
    let served = Arc::new(
        ServerCert::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())
            .map_err(|e| ListenerError::Tls(e.to_string()))?,
    );
    let tls = server_config(&setup.ca_pem, served.clone())?;
    let renewing = {
        let (client, node, names, data_dir) = (
            setup.client.clone(),
            setup.node.clone(),
            setup.names.clone(),
            setup.data_dir.clone(),
        );
        tokio::spawn(rotation::keep_renewed(
            served,
            move || {
                let (client, node, names, data_dir) = (
                    client.clone(),
                    node.clone(),
                    names.clone(),
                    data_dir.clone(),
                );
                async move { serving_cert::request(&client, &node, &names, &data_dir).await }
            },
            stop.clone(),
        ))
    };
    let checks = Arc::new(Checks {
        tokens: TokenAuthenticator::new(setup.client.clone()),
        access: Authorizer::new(setup.client, setup.node),
    });
    let app = app.layer(axum::middleware::from_fn_with_state(checks, guard));
    tracing::info!(addr = ?listener.local_addr().ok(), "serving the node's listener over HTTPS");
    skiff_net::http::serve_tls(listener, app, tls, setup.limits, stop).await;
    let _ = renewing.await;
    Ok(())
}

/// Serving the certificate `served` holds at each handshake; client certificates optional at
/// the handshake (a request without one gets a 401 rather than a closed connection), and
/// chained to `ca_pem` when sent.
fn server_config(
    ca_pem: &[u8],
    served: Arc<ServerCert>,
) -> Result<Arc<ServerConfig>, ListenerError> {
    let bad = |e: &dyn std::fmt::Display| ListenerError::Tls(e.to_string());
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(der.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| bad(&e))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(served);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Who a request is from, and what they may do.
struct Checks {
    tokens: TokenAuthenticator,
    access: Authorizer,
}

/// 401 without a valid client certificate or a bearer token the API authenticates, 403 when
/// the API denies the access, else the request goes on.
async fn guard(State(checks): State<Arc<Checks>>, request: Request, next: Next) -> Response {
    let unauthorized = || (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
    let who = match certificate_user(&request) {
        Some(who) => who,
        None => match bearer_token(&request) {
            None => return unauthorized(),
            Some(token) => match checks.tokens.authenticate(&token).await {
                Ok(Some(who)) => who,
                Ok(None) => return unauthorized(),
                // As the kubelet: a review that could not be asked authenticates no one.
                Err(err) => {
                    tracing::warn!(%err, "could not ask the API to review a bearer token");
                    return unauthorized();
                }
            },
        },
    };
    let access = access::of(request.method(), request.uri().path());
    match checks.access.allows(&who, &access).await {
        Ok(true) => next.run(request).await,
        Ok(false) => (
            StatusCode::FORBIDDEN,
            format!(
                "Forbidden (user={}, verb={}, resource=nodes, subresource={})\n",
                who.user, access.verb, access.subresource
            ),
        )
            .into_response(),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "Authorization error (user={}, verb={}, resource=nodes, subresource={}): {err}\n",
                who.user, access.verb, access.subresource
            ),
        )
            .into_response(),
    }
}

/// The request's `Authorization: Bearer` token, if it sent one.
fn bearer_token(request: &Request) -> Option<String> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    (!token.is_empty()).then(|| token.to_string())
}

/// The user of the request's client certificate (verified against the cluster CA at the
/// handshake), if it sent one that is still valid and names a user.
fn certificate_user(request: &Request) -> Option<ReviewSubject> {
    let peer = request.extensions().get::<TlsPeer>()?;
    let (_, cert) = X509Certificate::from_der(peer.certificates.first()?).ok()?;
    let now = jiff::Timestamp::now().as_second();
    if now > cert.validity().not_after.timestamp() {
        return None;
    }
    let subject = cert.subject();
    let user = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    (!user.is_empty()).then_some(ReviewSubject {
        user,
        groups,
        ..Default::default()
    })
}
