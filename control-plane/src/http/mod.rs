//! The HTTP API: Kubernetes REST paths over the registry.

mod access_review;
mod auth;
mod authorize;
mod cluster;
mod discovery;
mod exec;
mod handlers;
mod logs;
mod node_proxy;
mod path;
mod pod_container;
mod query;
mod review_protobuf;
mod table;
mod trace;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{any, delete, get, post};
use axum::{Extension, Router};
use tokio_util::sync::CancellationToken;

use crate::authz::Authorizer;
use crate::identity::UserInfo;
use crate::registry::Registry;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    /// Client for proxying to node agents (logs; exec opens its own WebSockets).
    pub http: reqwest::Client,
    /// Cancelled when the server stops: open watches and log streams end.
    pub shutdown: CancellationToken,
    /// Decides whether each request's user may make it.
    pub authorizer: Authorizer,
}

/// The API router: `/api/...`, `/apis/...`, health and version endpoints.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            post(access_review::self_review),
        )
        .route(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            post(access_review::subject_review),
        )
        .route("/api", any(handlers::resource))
        .route("/api/{*rest}", any(handlers::resource))
        .route(
            "/api/v1/nodes/{node}/proxy/images/import",
            post(node_proxy::upload),
        )
        .route(
            "/api/v1/namespaces/{namespace}/pods/{name}/exec",
            get(exec::exec).post(exec::exec),
        )
        .route("/apis", any(handlers::resource))
        .route("/apis/{*rest}", any(handlers::resource))
        .route("/healthz", get(cluster::health))
        .route("/livez", get(cluster::health))
        .route("/readyz", get(cluster::ready))
        .route("/skiff/v1/cluster", get(cluster::status))
        .route("/skiff/v1/cluster/members", post(cluster::add_member))
        .route(
            "/skiff/v1/cluster/members/{name}",
            delete(cluster::remove_member),
        )
        .route("/skiff/v1/backup", get(cluster::backup))
        .route("/version", get(handlers::version))
        .route("/version/", get(handlers::version))
        // Every request is authorized as the user the layer below (outside) found.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            authorize::authorize,
        ))
        // Until the API serves HTTPS, every request is the plain listener's (an admin).
        .layer(Extension(UserInfo::insecure()))
        .layer(DefaultBodyLimit::max(skiff_api::MAX_REQUEST_BODY_BYTES))
        .layer(trace::layer())
        .with_state(state)
}
