//! `GET /skiff/v1/nodes/{node}/tunnel`, upgraded to `skiff-tunnel`: the connection a node's
//! agent opens and keeps open so that this server reaches the agent (logs, exec, node proxy)
//! with no port open on the node (see `skiff_net::tunnel`). Only the node itself opens its
//! tunnel: the caller must be `system:node:<node>` (its client certificate), or a cluster
//! admin (the plain-HTTP `--insecure-http` listener acts as one). The tunnel closes when the
//! credential that opened it ends (`tunnel_credential`).

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use skiff_net::tunnel::PROTOCOL;

use super::tunnel_credential::{may_open, Credential};
use super::AppState;
use crate::error::ApiError;
use crate::identity::UserInfo;

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
        if !may_open(&user, &node) {
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
        let credential = Credential::of(&request);
        let tunnels = state.tunnels.clone();
        let ending = credential.ending(state, node.clone());
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    if let Err(err) = tunnels.attach_until(&node, upgraded, ending).await {
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
