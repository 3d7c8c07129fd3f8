//! Per-user request concurrency, a small form of Kubernetes' API Priority and Fairness:
//! each user may have a few requests in flight, all users together a bounded number, and
//! over either limit a request is refused at once with a 429 and `Retry-After`.
//!
//! As APF's default flow schemas do: `system:masters` is exempt; nodes (`system:nodes`) have
//! their own pool with a larger share per node, so one user's flood never starves agents;
//! long-running requests (watch, logs, exec, proxy) are not counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::request_info::RequestInfo;
use crate::error::ApiError;
use crate::identity::{UserInfo, MASTERS_GROUP, NODES_GROUP};

/// How many times a user's share a node gets in the system pool.
const SYSTEM_SHARE: usize = 4;
/// Seconds a refused client is told to wait (Kubernetes answers 1).
const RETRY_AFTER_SECONDS: u64 = 1;

/// How many requests may be in flight at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InflightLimits {
    /// Per user (`--max-requests-inflight-per-user`).
    pub per_user: usize,
    /// All users but nodes and `system:masters` together (`--max-requests-inflight`).
    pub global: usize,
    /// All nodes together (`--max-requests-inflight-system`); each node may have
    /// four times `per_user`.
    pub system: usize,
}

impl Default for InflightLimits {
    fn default() -> Self {
        InflightLimits {
            per_user: 100,
            global: 400,
            system: 400,
        }
    }
}

/// The counters of both pools; cheap to clone.
#[derive(Clone)]
pub struct Inflight {
    workload: Arc<Pool>,
    system: Arc<Pool>,
}

struct Pool {
    name: &'static str,
    total_limit: usize,
    user_limit: usize,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_user: HashMap<String, usize>,
}

/// A counted request; dropping it frees its place.
struct Permit {
    pool: Arc<Pool>,
    user: String,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.pool.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.total -= 1;
        if let Some(n) = counts.by_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                counts.by_user.remove(&self.user);
            }
        }
    }
}

impl Pool {
    fn new(name: &'static str, total_limit: usize, user_limit: usize) -> Arc<Pool> {
        Arc::new(Pool {
            name,
            total_limit: total_limit.max(1),
            user_limit: user_limit.max(1),
            counts: Mutex::default(),
        })
    }

    fn acquire(self: &Arc<Pool>, user: &str) -> Result<Permit, ApiError> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mine = counts.by_user.get(user).copied().unwrap_or(0);
        if mine >= self.user_limit {
            return Err(too_many(
                "UserLimit",
                format!(
                    "user {user:?} has {mine} requests in flight, the limit per user is {}",
                    self.user_limit
                ),
            ));
        }
        if counts.total >= self.total_limit {
            return Err(too_many(
                "GlobalLimit",
                format!(
                    "the {} pool has {} requests in flight, its limit",
                    self.name, counts.total
                ),
            ));
        }
        counts.total += 1;
        *counts.by_user.entry(user.to_string()).or_default() += 1;
        Ok(Permit {
            pool: self.clone(),
            user: user.to_string(),
        })
    }
}

fn too_many(cause_reason: &str, cause: String) -> ApiError {
    ApiError::TooManyRequests {
        message: "Too many requests, please try again later.".into(),
        cause_reason: cause_reason.into(),
        cause,
    }
}

impl Inflight {
    pub fn new(limits: InflightLimits) -> Inflight {
        Inflight {
            workload: Pool::new("workload", limits.global, limits.per_user),
            system: Pool::new(
                "system",
                limits.system,
                limits.per_user.saturating_mul(SYSTEM_SHARE),
            ),
        }
    }

    /// The pool `user` draws from; `None` when exempt.
    fn pool_of(&self, user: &UserInfo) -> Option<&Arc<Pool>> {
        if user.in_group(MASTERS_GROUP) {
            None
        } else if user.in_group(NODES_GROUP) {
            Some(&self.system)
        } else {
            Some(&self.workload)
        }
    }
}

/// The middleware: counts the request against its user's pool for as long as the handler
/// runs, or answers 429 with `Retry-After`.
pub async fn limit(State(inflight): State<Inflight>, request: Request, next: Next) -> Response {
    let info = RequestInfo::of(request.method(), request.uri());
    let pool = match request.extensions().get::<UserInfo>() {
        Some(user) if !info.long_running => {
            inflight.pool_of(user).map(|pool| pool.acquire(&user.name))
        }
        _ => None,
    };
    match pool {
        None => next.run(request).await,
        Some(Ok(_permit)) => next.run(request).await,
        Some(Err(refused)) => {
            let mut response = refused.into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use axum::Router;
    use tokio::sync::{mpsc, Notify};
    use tower::ServiceExt;

    use super::*;

    /// A router whose handlers hold their place until `release` is notified, reporting each
    /// start on `started`; the user is the `x-user` header (groups: `x-group`).
    fn app(
        limits: InflightLimits,
        release: Arc<Notify>,
        started: mpsc::UnboundedSender<()>,
    ) -> Router {
        let hold = move || {
            let release = release.clone();
            let started = started.clone();
            async move {
                let _ = started.send(());
                release.notified().await;
                "done"
            }
        };
        Router::new()
            .route("/api/v1/namespaces/a/configmaps", get(hold.clone()))
            .route("/api/v1/namespaces/a/pods/web/log", get(hold))
            .layer(axum::middleware::from_fn_with_state(
                Inflight::new(limits),
                limit,
            ))
            .layer(axum::middleware::from_fn(
                |mut request: axum::extract::Request, next: Next| async move {
                    let headers = request.headers();
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    let user = UserInfo::authenticated(
                        header("x-user").unwrap_or_default(),
                        header("x-group").into_iter().collect(),
                    );
                    request.extensions_mut().insert(user);
                    next.run(request).await
                },
            ))
    }

    fn request(user: &str, group: Option<&str>, path: &str) -> Request<Body> {
        let mut builder = Request::get(path).header("x-user", user);
        if let Some(group) = group {
            builder = builder.header("x-group", group);
        }
        builder.body(Body::empty()).expect("request")
    }

    const LIST: &str = "/api/v1/namespaces/a/configmaps";

    #[tokio::test]
    async fn a_flooding_user_gets_429s_while_others_are_served() {
        let limits = InflightLimits {
            per_user: 3,
            global: 5,
            system: 2,
        };
        let release = Arc::new(Notify::new());
        let (started, mut starts) = mpsc::unbounded_channel();
        let app = app(limits, release.clone(), started);
        // Mallory fills her share.
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(tokio::spawn(
                app.clone().oneshot(request("mallory", None, LIST)),
            ));
            starts.recv().await.expect("started");
        }
        let refused = app
            .clone()
            .oneshot(request("mallory", None, LIST))
            .await
            .expect("response");
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(refused.into_body(), 1 << 16)
            .await
            .expect("body");
        let status: serde_json::Value = serde_json::from_slice(&body).expect("a Status");
        assert_eq!(status["reason"], "TooManyRequests");
        assert_eq!(status["details"]["causes"][0]["reason"], "UserLimit");
        // Alice is served; her requests and Mallory's fill the global limit.
        for _ in 0..2 {
            held.push(tokio::spawn(
                app.clone().oneshot(request("alice", None, LIST)),
            ));
            starts.recv().await.expect("started");
        }
        let full = app
            .clone()
            .oneshot(request("bob", None, LIST))
            .await
            .expect("response");
        assert_eq!(full.status(), StatusCode::TOO_MANY_REQUESTS);
        // Nodes, admins and long-running requests are not in that pool.
        held.push(tokio::spawn(app.clone().oneshot(request(
            "system:node:n1",
            Some(NODES_GROUP),
            LIST,
        ))));
        starts.recv().await.expect("a node is served");
        held.push(tokio::spawn(app.clone().oneshot(request(
            "root",
            Some(MASTERS_GROUP),
            LIST,
        ))));
        starts.recv().await.expect("an admin is served");
        held.push(tokio::spawn(app.clone().oneshot(request(
            "mallory",
            None,
            "/api/v1/namespaces/a/pods/web/log",
        ))));
        starts.recv().await.expect("a log stream is served");
        // Once the held requests end, their places are free again.
        while !held.iter().all(|h| h.is_finished()) {
            release.notify_waiters();
            tokio::task::yield_now().await;
        }
        for handle in held {
            let response = handle.await.expect("join").expect("response");
            assert_eq!(response.status(), StatusCode::OK);
        }
        let again = tokio::spawn(app.clone().oneshot(request("mallory", None, LIST)));
        starts.recv().await.expect("mallory is served again");
        release.notify_waiters();
        assert_eq!(again.await.expect("join").expect("response").status(), 200);
    }
}
