//! The web dashboard at `/ui`: server-rendered pages (maud escapes every value it inserts)
//! over the same registry the API serves, each read authorized with RBAC as the signed-in
//! user (`reader`). A browser signs in with a bearer token (`session`), kept in an HttpOnly,
//! Secure, SameSite=Strict cookie that only `/ui` reads; the API itself never does, so a page
//! elsewhere cannot make the browser act on the API. The only script is `app.js`, which
//! appends the events `/ui/events/stream` sends as server-sent events.

mod layout;
mod overview;
mod pod;
mod reader;
mod session;
mod tables;
mod workloads;

use axum::http::{header, HeaderValue};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::AppState;

/// The dashboard's script: live events only.
const APP_JS: &str = include_str!("app.js");
/// The dashboard's style sheet.
const STYLE_CSS: &str = include_str!("style.css");

/// The `/ui` routes: the login form and the static files answer anyone; every page needs a
/// signed-in user.
pub fn routes(state: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/ui", get(overview::page))
        .route("/ui/", get(overview::page))
        .route("/ui/nodes", get(overview::nodes))
        .route("/ui/workloads", get(workloads::page))
        .route("/ui/pods", get(workloads::pods))
        .route("/ui/namespaces/{namespace}/pods/{name}", get(pod::page))
        .route("/ui/events", get(workloads::events))
        .route("/ui/events/stream", get(workloads::event_stream))
        // Audited and limited as API requests are, as the signed-in user.
        .layer(middleware::from_fn_with_state(
            state.inflight.clone(),
            super::inflight::limit,
        ))
        .layer(middleware::from_fn_with_state(
            state.audit.clone(),
            super::audit::record,
        ))
        .layer(middleware::from_fn_with_state(state, session::require_user));
    Router::new()
        .route("/ui/login", get(session::login_form).post(session::login))
        .route("/ui/logout", axum::routing::post(session::logout))
        .route("/ui/static/app.js", get(app_js))
        .route("/ui/static/style.css", get(style_css))
        .merge(pages)
        .layer(middleware::map_response(guard_headers))
}

/// Scripts, styles and forms from `/ui` only, no framing, no caching of pages that show
/// cluster state, no referrer to other sites (`same-origin`: with `no-referrer` browsers send
/// `Origin: null` on the login form, which `session` refuses).
async fn guard_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn app_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
}

async fn style_css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLE_CSS,
    )
}
