//! `GET /skiff/v1/nodes/{node}/tunnel`, upgraded to `skiff-tunnel`: the connection a node's
//! agent opens and keeps open so that this server reaches the agent (logs, exec, node proxy)
//! with no port open on the node (see `skiff_net::tunnel`). Only the node itself opens its
//! tunnel: the caller must be `system:node:<node>` (its client certificate), or a cluster
//! admin (the plain-HTTP `--insecure-http` listener acts as one). A tunnel opened with a
//! client certificate is closed when that certificate's notAfter passes, since the server
//! checks a certificate on every request but the tunnel is one long request: the agent then
//! opens it again with its current certificate. A tunnel opened with a bearer token has no
//! such deadline.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use skiff_net::http::TlsPeer;
use skiff_net::tunnel::PROTOCOL;
use tokio::time::Instant;

use super::AppState;
use crate::authz::node;
use crate::error::ApiError;
use crate::identity::{UserInfo, MASTERS_GROUP};
use crate::pki::user_of_certificate;

/// Checks the caller, answers `101 Switching Protocols` and attaches the upgraded connection
/// as `node`'s tunnel (replacing an older one).
pub async fn open(
    State(state): State<AppState>,
    Path(node): Path<String>,
    mut request: Request,
) -> Response {
    let result = async {
        let user = request
            .extensions()
            .get::<UserInfo>()
            .cloned()
            .unwrap_or_else(UserInfo::anonymous);
        if node::node_name(&user) != Some(node.as_str()) && !user.in_group(MASTERS_GROUP) {
            return Err(ApiError::AccessDenied {
                resource: "nodes".into(),
                name: node.clone(),
                message: format!(
                    "User \"{}\" cannot open the tunnel of node \"{node}\": only the node's \
                     own credential (system:node:{node}) may",
                    user.name
                ),
            });
        }
        let upgrade = request
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok());
        if !upgrade.is_some_and(|v| v.eq_ignore_ascii_case(PROTOCOL)) {
            return Err(ApiError::BadRequest(format!(
                "a node tunnel is opened with `Connection: upgrade` and `Upgrade: {PROTOCOL}`"
            )));
        }
        let on_upgrade = request
            .extensions_mut()
            .remove::<OnUpgrade>()
            .ok_or_else(|| {
                ApiError::BadRequest("this connection cannot be upgraded to a tunnel".into())
            })?;
        let deadline = request
            .extensions()
            .get::<TlsPeer>()
            .and_then(|peer| peer.certificates.first())
            .and_then(|leaf| user_of_certificate(leaf))
            .map(|named| expiry(named.not_after));
        let tunnels = state.tunnels.clone();
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    if let Err(err) = tunnels.attach_until(&node, upgraded, deadline).await {
                        tracing::debug!(%node, %err, "node tunnel ended");
                    }
                }
                Err(err) => tracing::warn!(%node, %err, "node tunnel upgrade failed"),
            }
        });
        Ok(Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, PROTOCOL)
            .body(Body::empty())
            .expect("a static response"))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
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
    Instant::now() + std::time::Duration::from_millis(u64::try_from(left_ms).unwrap_or(0))
}
