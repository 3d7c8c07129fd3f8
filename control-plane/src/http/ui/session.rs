//! Signing in to the dashboard: a form takes a bearer token (a `--token-auth-file` token, a
//! ServiceAccount token), checks it as the API checks an `Authorization: Bearer` header, and
//! keeps it in an HttpOnly, Secure, SameSite=Strict cookie scoped to `/ui`. Every page then
//! authenticates from that cookie; a browser with a client certificate of the cluster CA needs
//! no token, and the loopback `--insecure-http` listener acts as a cluster admin, as the API
//! does there. Without a user, pages redirect to the form.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;
use skiff_net::http::TlsPeer;

use super::layout;
use crate::error::ApiError;
use crate::http::authn;
use crate::http::AppState;
use crate::identity::{UserInfo, UNAUTHENTICATED_GROUP};

/// The cookie that holds the signed-in user's token (percent-encoded).
pub const COOKIE: &str = "skiff_ui_token";
/// How long a sign-in lasts: a working day.
const MAX_AGE_SECONDS: u32 = 8 * 60 * 60;
/// Where pages send a browser without a user.
const LOGIN_PATH: &str = "/ui/login";

/// Puts the signed-in user on the request, or redirects to the login form.
pub async fn require_user(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request.extensions().get::<TlsPeer>().cloned();
    let token = cookie_token(request.headers());
    match user_of(&state, peer.as_ref(), token).await {
        Ok(Some(user)) => {
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        Ok(None) => Redirect::to(LOGIN_PATH).into_response(),
        // A token that no longer works (expired, deleted account): sign in again. Any other
        // failure (the store unavailable for a moment) keeps the sign-in.
        Err(err) if !matches!(err, ApiError::Unauthorized(..)) => err.into_response(),
        Err(err) => {
            let mut response = login_page(StatusCode::UNAUTHORIZED, Some(&err.to_string()));
            response
                .headers_mut()
                .insert(header::SET_COOKIE, cookie_header("", 0));
            response
        }
    }
}

/// The request's user: the cookie's token, else a client certificate; `None` for neither.
async fn user_of(
    state: &AppState,
    peer: Option<&TlsPeer>,
    token: Option<String>,
) -> Result<Option<UserInfo>, ApiError> {
    let Some(peer) = peer else {
        return Ok(Some(UserInfo::insecure()));
    };
    if let Some(token) = token {
        return authn::user_of_token(state, &token).await.map(Some);
    }
    let (user, _) = authn::identify(state, peer, &HeaderMap::new()).await?;
    Ok((!user.in_group(UNAUTHENTICATED_GROUP)).then_some(user))
}

/// The token in the request's dashboard cookie, if it has one.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| {
            form_urlencoded::parse(format!("t={value}").as_bytes())
                .map(|(_, v)| v.into_owned())
                .next()
                .unwrap_or_default()
        })
        .filter(|token| !token.is_empty())
}

/// `Set-Cookie` for `token` (an empty token with age 0 clears the cookie).
fn cookie_header(token: &str, max_age: u32) -> HeaderValue {
    let value: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/ui; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
    ))
    .expect("a percent-encoded cookie is a valid header value")
}

/// `GET /ui/login`.
pub async fn login_form() -> Response {
    login_page(StatusCode::OK, None)
}

/// What the login form posts.
#[derive(Deserialize)]
pub struct Login {
    token: String,
}

/// `POST /ui/login`: checks the token and keeps it in the cookie, or shows the form again
/// with the reason.
pub async fn login(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<Login>,
) -> Response {
    if !same_origin(&uri, &headers) {
        return login_page(StatusCode::FORBIDDEN, Some(CROSS_ORIGIN));
    }
    let token = form.token.trim();
    if token.is_empty() {
        return login_page(StatusCode::BAD_REQUEST, Some("token: required"));
    }
    match authn::user_of_token(&state, token).await {
        Ok(_) => {
            let mut response = Redirect::to("/ui/").into_response();
            response
                .headers_mut()
                .insert(header::SET_COOKIE, cookie_header(token, MAX_AGE_SECONDS));
            response
        }
        Err(err) => login_page(err.code(), Some(&err.to_string())),
    }
}

/// `POST /ui/logout`: forgets the token.
pub async fn logout(uri: Uri, headers: HeaderMap) -> Response {
    if !same_origin(&uri, &headers) {
        return login_page(StatusCode::FORBIDDEN, Some(CROSS_ORIGIN));
    }
    let mut response = Redirect::to(LOGIN_PATH).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie_header("", 0));
    response
}

/// Why a form posted from another site is refused.
const CROSS_ORIGIN: &str = "the form was posted from another site";

/// Whether a browser's form post comes from the dashboard's own origin: its `Origin` (which
/// browsers send with every POST) names the host the request was sent to (HTTP/1.1's `Host`,
/// HTTP/2's `:authority`). A post without `Origin` comes from no browser page.
fn same_origin(uri: &Uri, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let authority = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, authority)| authority);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    authority.is_some() && authority == host
}

fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let body = html! {
        h1 { "Sign in to Skiff" }
        @if let Some(error) = error {
            p.error { (error) }
        }
        form method="post" action=(LOGIN_PATH) {
            label for="token" { "Bearer token" }
            input #token type="password" name="token" autocomplete="off" required;
            button #sign-in type="submit" { "Sign in" }
        }
        p.hint {
            "A token from the server's --token-auth-file, or a ServiceAccount's: "
            code { "skiff create token NAME" }
        }
    };
    (status, layout::bare("Sign in", body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_secure_strict_and_scoped_to_the_dashboard() {
        let value = cookie_header("a;b c=d", 60);
        let text = value.to_str().expect("text");
        assert_eq!(
            text,
            "skiff_ui_token=a%3Bb+c%3Dd; Path=/ui; Max-Age=60; HttpOnly; Secure; SameSite=Strict"
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("other=1; skiff_ui_token=a%3Bb+c%3Dd"),
        );
        assert_eq!(cookie_token(&headers).as_deref(), Some("a;b c=d"));
        headers.insert(header::COOKIE, HeaderValue::from_static("skiff_ui_token="));
        assert_eq!(cookie_token(&headers), None);
    }

    #[test]
    fn forms_are_accepted_from_the_dashboards_own_origin_only() {
        let headers = |origin: Option<&'static str>| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:6443"));
            if let Some(origin) = origin {
                headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
            }
            headers
        };
        let path = Uri::from_static("/ui/login");
        assert!(same_origin(&path, &headers(Some("https://127.0.0.1:6443"))));
        assert!(same_origin(&path, &headers(None)));
        assert!(!same_origin(&path, &headers(Some("https://evil.example"))));
        assert!(!same_origin(&path, &headers(Some("null"))));
        // HTTP/2: no Host header, the authority is in the URI.
        let h2 = Uri::from_static("https://127.0.0.1:6443/ui/login");
        let mut origin_only = HeaderMap::new();
        origin_only.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://127.0.0.1:6443"),
        );
        assert!(same_origin(&h2, &origin_only));
        origin_only.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h2, &origin_only));
    }
}
