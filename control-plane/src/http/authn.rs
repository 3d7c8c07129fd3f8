//! Authentication: who sent a request. Over TLS, a client certificate the handshake verified
//! against the cluster CA names the user (CN) and groups (O); else a bearer token from
//! `--token-auth-file` names its user; else a bearer JWT is a ServiceAccount token
//! (`service_account_authn`); else a join token sent as a bearer token makes the request
//! `system:bootstrap:<token id>`'s (group `system:bootstrappers`: it may only ask for a node
//! certificate); else it is anonymous, and only health, version and `/cacerts` answer it
//! (others get 401). A request not over TLS came through the loopback `--insecure-http`
//! listener and acts as a cluster admin (`UserInfo::insecure`), unless it carries a join token
//! that does not verify (`auth::check_insecure_token`).

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use skiff_api::join_token::JoinToken;
use skiff_net::http::TlsPeer;

use super::service_account_authn::{Authenticated, StaleToken};
use super::AppState;
use crate::error::ApiError;
use crate::identity::{UserInfo, BOOTSTRAPPERS_GROUP, UNAUTHENTICATED_GROUP};
use crate::pki::{user_of_certificate, CertificateUser};
use crate::serviceaccount::DEFAULT_ISSUER;

/// Paths anyone may read without a credential.
const PUBLIC_PATHS: [&str; 6] = [
    "/healthz",
    "/livez",
    "/readyz",
    "/version",
    "/version/",
    "/cacerts",
];

/// Puts the request's `UserInfo` on it, or answers 401.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let user = match request.extensions().get::<TlsPeer>() {
        None => super::auth::check_insecure_token(&state.registry, request.headers())
            .await
            .map(|()| (UserInfo::insecure(), None)),
        Some(peer) => identify(&state, peer, request.headers()).await,
    };
    let (user, stale) = match user {
        Ok(user) => user,
        Err(err) => return err.into_response(),
    };
    let anonymous = user.in_group(UNAUTHENTICATED_GROUP);
    if anonymous && !PUBLIC_PATHS.contains(&request.uri().path()) {
        return ApiError::Unauthorized(
            "no credential: use a client certificate from the cluster CA (see the \
             admin.kubeconfig in the server's data dir) or a token"
                .into(),
        )
        .into_response();
    }
    request.extensions_mut().insert(user);
    if let Some(stale) = stale {
        request.extensions_mut().insert(stale);
    }
    next.run(request).await
}

/// The user of a request's client certificate or bearer token (anonymous with neither), and
/// whether the token was a stale one.
pub(super) async fn identify(
    state: &AppState,
    peer: &TlsPeer,
    headers: &HeaderMap,
) -> Result<(UserInfo, Option<StaleToken>), ApiError> {
    if let Some(leaf) = peer.certificates.first() {
        // Parsed on the connection's first request only.
        let named = peer
            .identity
            .get_or_init(|| Box::new(user_of_certificate(leaf)))
            .downcast_ref::<Option<CertificateUser>>()
            .and_then(Option::as_ref)
            .ok_or_else(|| {
                ApiError::Unauthorized("the client certificate names no user (CN)".into())
            })?;
        if named.expired_at(jiff::Timestamp::now().as_second()) {
            let at = jiff::Timestamp::from_second(named.not_after)
                .map_or_else(|_| named.not_after.to_string(), |t| t.to_string());
            return Err(ApiError::Unauthorized(format!(
                "the client certificate expired at {at}"
            )));
        }
        return Ok((named.user.clone(), None));
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok((UserInfo::anonymous(), None));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::Unauthorized("expected `Authorization: Bearer <token>`".into()))?;
    let authenticated = authenticate_token(state, token, &[]).await?;
    Ok((authenticated.user, authenticated.stale))
}

/// The user a bearer token names: a `--token-auth-file` token, a ServiceAccount JWT or a join
/// token (the dashboard's login form checks its token here too).
pub(super) async fn user_of_token(state: &AppState, token: &str) -> Result<UserInfo, ApiError> {
    Ok(authenticate_token(state, token, &[]).await?.user)
}

/// What a bearer token authenticates for one of `audiences` (empty: the API server's), as
/// Kubernetes' audience-aware authenticators answer: a ServiceAccount token is good for the
/// audiences it was issued for; a static or join token knows none, so it is good only for
/// the API server's, and only when `audiences` names one of them.
pub(super) async fn authenticate_token(
    state: &AppState,
    token: &str,
    audiences: &[String],
) -> Result<Authenticated, ApiError> {
    let api: Vec<String> = state.registry.tokens().map_or_else(
        || vec![DEFAULT_ISSUER.to_string()],
        |t| t.audiences().to_vec(),
    );
    let wanted: &[String] = if audiences.is_empty() {
        &api
    } else {
        audiences
    };
    let agnostic = |user| {
        let common: Vec<String> = api
            .iter()
            .filter(|a| wanted.contains(*a))
            .cloned()
            .collect();
        if common.is_empty() {
            return Err(ApiError::Unauthorized(format!(
                "the token is good only for the API server's audiences ({}), not for {}",
                api.join(", "),
                wanted.join(", ")
            )));
        }
        Ok(Authenticated {
            user,
            audiences: common,
            stale: None,
        })
    };
    if let Some(user) = state.static_tokens.authenticate(token) {
        return agnostic(user);
    }
    if super::service_account_authn::is_jwt(token) {
        return super::service_account_authn::authenticate(
            &state.registry,
            &state.authorizer,
            token,
            Some(wanted),
            &state.metrics.api.stale_tokens,
        )
        .await;
    }
    let token = JoinToken::parse(token).map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    super::auth::verify(&state.registry, &token).await?;
    agnostic(UserInfo::authenticated(
        format!("system:bootstrap:{}", token.id),
        vec![BOOTSTRAPPERS_GROUP.into()],
    ))
}

/// `GET /cacerts`: the cluster CA, for agents checking it against their token's hash.
pub async fn cacerts(State(state): State<AppState>) -> Response {
    match &state.cluster_ca {
        Some(pem) => (
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            pem.to_string(),
        )
            .into_response(),
        None => ApiError::UnknownResource("/cacerts (this server does not serve TLS)".into())
            .into_response(),
    }
}
