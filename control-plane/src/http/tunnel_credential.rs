//! How long a node tunnel stays open: while the credential that opened it is good (and the
//! server runs). The server checks a credential on every request, but a tunnel is one long
//! request, so it is closed when its credential ends: a client certificate when its notAfter
//! passes; a bearer token at the first check that refuses it, checks running every `RECHECK`
//! (how long kube-apiserver caches a token's success). In practice that is the join token an
//! agent sends to the plain-HTTP `--insecure-http` listener, closed within `RECHECK` of its
//! expiry or deletion; a static token over TLS lasts until the server restarts (the token
//! file is read at start), and other tokens cannot open a tunnel. Authentication checked the
//! credential when the tunnel opened. The agent then opens its tunnel again with its current
//! credential.

use std::time::Duration;

use axum::extract::Request;
use axum::http::header;
use futures::future::BoxFuture;
use futures::FutureExt;
use skiff_api::join_token::JoinToken;
use skiff_net::http::TlsPeer;
use tokio::time::Instant;

use super::AppState;
use crate::authz::node;
use crate::error::ApiError;
use crate::identity::{UserInfo, MASTERS_GROUP};
use crate::pki::user_of_certificate;

/// How often a bearer token that opened a tunnel is checked again.
pub const RECHECK: Duration = Duration::from_secs(10);

/// What opened a tunnel.
pub enum Credential {
    /// A client certificate valid until `not_after` (Unix seconds).
    Certificate { not_after: i64 },
    /// A bearer token; `tls`: sent over TLS (else to the plain-HTTP listener).
    Token { token: String, tls: bool },
    /// Nothing: a request to the plain-HTTP listener without a token.
    Absent,
}

/// Whether `user` may open `node`'s tunnel: the node's own credential, or a cluster admin's.
pub fn may_open(user: &UserInfo, node: &str) -> bool {
    node::node_name(user) == Some(node) || user.in_group(MASTERS_GROUP)
}

impl Credential {
    /// The credential `request` carries.
    pub fn of(request: &Request) -> Credential {
        let peer = request.extensions().get::<TlsPeer>();
        if let Some(named) = peer
            .and_then(|peer| peer.certificates.first())
            .and_then(|leaf| user_of_certificate(leaf))
        {
            return Credential::Certificate {
                not_after: named.not_after,
            };
        }
        let token = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match token {
            Some(token) => Credential::Token {
                token: token.to_string(),
                tls: peer.is_some(),
            },
            None => Credential::Absent,
        }
    }

    /// Refuses a bearer token that no longer opens `node`'s tunnel: one that does not
    /// authenticate (expired, deleted) or whose user may not open it. A join token sent to
    /// the plain-HTTP listener is checked against its Secret (the listener acts as an admin).
    async fn check(&self, state: &AppState, node: &str) -> Result<(), ApiError> {
        match self {
            Credential::Token { token, tls: true } => {
                let user = super::authn::user_of_token(state, token).await?;
                if may_open(&user, node) {
                    Ok(())
                } else {
                    Err(ApiError::Unauthorized(format!(
                        "user \"{}\" may no longer open the tunnel of node \"{node}\"",
                        user.name
                    )))
                }
            }
            Credential::Token { token, tls: false } => {
                let token =
                    JoinToken::parse(token).map_err(|e| ApiError::Unauthorized(e.to_string()))?;
                super::auth::verify(&state.registry, &token).await
            }
            Credential::Certificate { .. } | Credential::Absent => Ok(()),
        }
    }

    /// Resolves when the tunnel `self` opened for `node` must close, to why: the credential's
    /// end, or the server's shutdown.
    pub fn ending(self, state: AppState, node: String) -> BoxFuture<'static, String> {
        let shutdown = state.shutdown.clone();
        let ending = match self {
            Credential::Certificate { not_after } => tokio::time::sleep_until(expiry(not_after))
                .map(|()| "the certificate that opened it expired".to_string())
                .boxed(),
            Credential::Token { .. } => async move {
                let mut recheck = tokio::time::interval_at(Instant::now() + RECHECK, RECHECK);
                loop {
                    recheck.tick().await;
                    match self.check(&state, &node).await {
                        Ok(()) => {}
                        Err(err @ (ApiError::Unauthorized(_) | ApiError::AccessDenied { .. })) => {
                            return format!("the token that opened it is refused now: {err}")
                        }
                        // The store cannot answer (no leader yet): the token is not refused.
                        Err(err) => tracing::debug!(%node, %err, "node tunnel token recheck"),
                    }
                }
            }
            .boxed(),
            Credential::Absent => std::future::pending().boxed(),
        };
        async move {
            tokio::select! {
                why = ending => why,
                () = shutdown.cancelled() => "the server is shutting down".to_string(),
            }
        }
        .boxed()
    }
}

/// The moment a certificate whose notAfter is `not_after` (Unix seconds) has expired, as the
/// authenticator judges it (`CertificateUser::expired_at`: past that second), on the tokio
/// clock.
fn expiry(not_after: i64) -> Instant {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let left_ms = (not_after + 1)
        .saturating_mul(1000)
        .saturating_sub(now_ms)
        .max(0);
    Instant::now() + Duration::from_millis(u64::try_from(left_ms).unwrap_or(0))
}
