//! The HTTP API: Kubernetes REST paths over the registry.

mod auth;
mod authn;
mod cluster;
mod discovery;
mod exec;
mod handlers;
mod logs;
mod node_proxy;
mod path;
mod pod_container;
mod query;
mod table;
mod trace;

use axum::extract::DefaultBodyLimit;
use axum::routing::{any, delete, get, post};
use axum::Router;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::registry::Registry;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    /// Client for proxying to node agents (logs; exec opens its own WebSockets).
    pub http: reqwest::Client,
    /// Cancelled when the server stops: open watches and log streams end.
    pub shutdown: CancellationToken,
    /// The cluster CA (PEM) that `/cacerts` serves, when the API serves TLS.
    pub cluster_ca: Option<Arc<str>>,
}

/// The API router: `/api/...`, `/apis/...`, health and version endpoints.
pub fn router(state: AppState) -> Router {
    Router::new()
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
        .route("/cacerts", get(authn::cacerts))
        .route("/version", get(handlers::version))
        .route("/version/", get(handlers::version))
        // Every request carries its `UserInfo` from here on (or was refused with 401).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authn::authenticate,
        ))
        .layer(DefaultBodyLimit::max(skiff_api::MAX_REQUEST_BODY_BYTES))
        .layer(trace::layer())
        .with_state(state)
}
