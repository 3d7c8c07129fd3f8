//! The HTTP API: Kubernetes REST paths over the registry.

mod access_review;
pub(crate) mod agent_conn;
mod agent_socket;
mod apply;
pub mod audit;
mod auth;
mod authn;
mod authorize;
mod certificate_requests;
mod cluster;
mod delete_answer;
mod discovery;
mod exec;
mod field_validation;
mod handlers;
pub mod inflight;
mod logs;
mod metrics;
mod metrics_api;
mod node_proxy;
mod openapi;
mod path;
mod pod_container;
mod portforward;
mod protobuf_response;
mod query;
mod request_body;
mod request_info;
mod rules_review;
mod secrets;
mod self_subject_review;
mod service_account_authn;
mod spdy;
mod table;
mod token_review;
mod trace;
mod tunnel;
mod tunnel_credential;
mod ui;
mod version;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{any, delete, get, post};
use axum::Router;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::authz::Authorizer;
use crate::registry::Registry;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    /// Client for proxying to node agents that have no tunnel here, over HTTPS with
    /// `agent_tls` (exec opens its own WebSockets with it).
    pub http: reqwest::Client,
    /// How this server dials agents' listeners (`pki::agent_client_config`); `None`: a
    /// server without TLS, which reaches agents through their tunnels only.
    pub agent_tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    /// The tunnels node agents keep open to this server (logs, exec and node proxy use them).
    pub tunnels: skiff_net::tunnel::Tunnels,
    /// Cancelled when the server stops: open watches and log streams end.
    pub shutdown: CancellationToken,
    /// Requests in flight per user and in all (429 over the limits).
    pub inflight: inflight::Inflight,
    /// Where each request's audit event goes (`--audit-log-path`), if anywhere.
    pub audit: Option<audit::AuditLog>,
    /// Decides whether each request's user may make it.
    pub authorizer: Authorizer,
    /// The cluster CA (PEM) that `/cacerts` serves, when the API serves TLS.
    pub cluster_ca: Option<Arc<str>>,
    /// The users of `--token-auth-file`'s bearer tokens.
    pub static_tokens: Arc<crate::token_file::StaticTokens>,
    /// What `/metrics` serves; every request is counted into it.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The API router: `/api/...`, `/apis/...`, health, version and metrics endpoints.
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
        .route(
            "/apis/authorization.k8s.io/v1/namespaces/{namespace}/localsubjectaccessreviews",
            post(access_review::local_review),
        )
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            post(rules_review::create),
        )
        .route(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            post(self_subject_review::create),
        )
        .route(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            post(token_review::create),
        )
        .route("/api", any(handlers::resource))
        // Kubernetes serves discovery roots with a trailing slash too (the Python client
        // asks for `/api/` and `/apis/`).
        .route("/api/", any(handlers::resource))
        .route("/api/{*rest}", any(handlers::resource))
        .route(
            "/api/v1/nodes/{node}/proxy/images/import",
            post(node_proxy::upload),
        )
        .route(
            "/api/v1/namespaces/{namespace}/pods/{name}/exec",
            get(exec::exec).post(exec::exec),
        )
        .route(
            "/api/v1/namespaces/{namespace}/pods/{name}/portforward",
            get(portforward::portforward).post(portforward::portforward),
        )
        .route(
            "/apis/metrics.k8s.io/v1beta1/{*rest}",
            get(metrics_api::get),
        )
        .route("/apis", any(handlers::resource))
        .route("/apis/", any(handlers::resource))
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
        .route("/skiff/v1/secrets/rotate-key", post(secrets::rotate_key))
        .route("/skiff/v1/nodes/{node}/tunnel", get(tunnel::open))
        .route("/cacerts", get(authn::cacerts))
        .route("/metrics", get(metrics::serve))
        .route("/openapi/v2", get(openapi::v2))
        .route("/openapi/v3", get(openapi::index))
        .route("/openapi/v3/{*rest}", get(openapi::group_version))
        .route("/version", get(version::version))
        .route("/version/", get(version::version))
        // Every request is authorized as the user the layer below (outside) found.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            authorize::authorize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.inflight.clone(),
            inflight::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.audit.clone(),
            audit::record,
        ))
        // Every request carries its `UserInfo` from here on (or was refused with 401).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authn::authenticate,
        ))
        // Clients that accept only protobuf get it, refusals included.
        .layer(middleware::from_fn(protobuf_response::negotiate))
        // The dashboard authenticates from its own cookie (`ui::session`), never the API.
        .merge(ui::routes(state.clone()))
        .layer(DefaultBodyLimit::max(skiff_api::MAX_REQUEST_BODY_BYTES))
        // Every request is counted, refused ones too.
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::instrument,
        ))
        .layer(trace::layer())
        .with_state(state)
}
