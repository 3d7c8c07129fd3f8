//! The audit log (`--audit-log-path`): one JSON line per request in the shape of Kubernetes'
//! `audit.k8s.io/v1` `Event` at level `Metadata`: who (and whom they impersonated), from where,
//! which verb on which object, and the response code. Request and response bodies are never
//! logged (they hold Secrets).
//!
//! Lines are written off the request path: requests hand their event to a bounded channel
//! and a writer task appends them; when the channel is full the event is dropped and counted,
//! so a slow disk never holds up a request.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{json, Value};
use skiff_api::k8s_openapi::jiff::Timestamp;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::authorize::Impersonated;
use super::request_info::RequestInfo;
use super::service_account_authn::StaleToken;
use crate::identity::UserInfo;

/// Events waiting for the writer; more are dropped (and counted).
const QUEUE: usize = 4096;

/// The audit log could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the audit log {path}: {source}")]
pub struct AuditLogError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The sending side of the audit log; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    events: mpsc::Sender<Value>,
    dropped: Arc<AtomicU64>,
}

impl AuditLog {
    /// Opens (appends to) `path`, mode 0600, and starts its writer task, which ends when
    /// every `AuditLog` is dropped and what was queued is written.
    pub async fn open(path: &Path) -> Result<AuditLog, AuditLogError> {
        let error = |source| AuditLogError {
            path: path.to_path_buf(),
            source,
        };
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .await
            .map_err(error)?;
        let (events, queue) = mpsc::channel(QUEUE);
        tokio::spawn(write(file, queue, path.to_path_buf()));
        Ok(AuditLog {
            events,
            dropped: Arc::default(),
        })
    }

    /// Queues `event`; drops it (counting) when the writer is behind.
    fn record(&self, event: Value) {
        if self.events.try_send(event).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "audit log behind: events dropped");
            }
        }
    }
}

/// Appends queued events as lines, flushing whenever the queue runs empty.
async fn write(file: tokio::fs::File, mut queue: mpsc::Receiver<Value>, path: PathBuf) {
    let mut out = tokio::io::BufWriter::new(file);
    while let Some(event) = queue.recv().await {
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        let mut result = out.write_all(&line).await;
        if result.is_ok() && queue.is_empty() {
            result = out.flush().await;
        }
        if let Err(err) = result {
            tracing::warn!(path = %path.display(), %err, "cannot write the audit log");
        }
    }
    let _ = out.flush().await;
}

/// The middleware: records the request's event once the handler answered (for watches and
/// other long-running requests, once the answer started).
pub async fn record(State(log): State<Option<AuditLog>>, request: Request, next: Next) -> Response {
    let Some(log) = log else {
        return next.run(request).await;
    };
    let received = now();
    let id = uuid::Uuid::new_v4().to_string();
    let info = RequestInfo::of(request.method(), request.uri());
    let uri = request.uri().to_string();
    let user = request.extensions().get::<UserInfo>().cloned();
    let stale = request.extensions().get::<StaleToken>().cloned();
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    let agent = request
        .headers()
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut response = next.run(request).await;
    let mut event = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": id,
        "stage": if info.long_running { "ResponseStarted" } else { "ResponseComplete" },
        "requestURI": uri,
        "verb": info.verb,
        "user": user.map(|u| u.to_json()),
        "sourceIPs": source.into_iter().collect::<Vec<_>>(),
        "userAgent": agent,
        "responseStatus": {"metadata": {}, "code": response.status().as_u16()},
        "requestReceivedTimestamp": received,
        "stageTimestamp": now(),
    });
    if let Some(StaleToken(stale)) = stale {
        event["annotations"] = json!({ StaleToken::ANNOTATION: stale });
    }
    if let Some(Impersonated(user)) = response.extensions().get() {
        event["impersonatedUser"] = user.to_json();
    }
    if let Some(object) = info.object {
        event["objectRef"] = json!({
            "resource": object.resource,
            "namespace": object.namespace,
            "name": object.name,
            "apiGroup": object.api_group,
            "apiVersion": object.api_version,
            "subresource": object.subresource,
        });
    }
    strip_nulls(&mut event);
    log.record(event);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("audit-id", value);
    }
    response
}

/// Microsecond RFC 3339, as Kubernetes' audit events carry.
fn now() -> String {
    format!("{:.6}", Timestamp::now())
}

/// Absent fields are left out, as Kubernetes' `omitempty` does.
fn strip_nulls(value: &mut Value) {
    if let Value::Object(map) = value {
        map.retain(|_, v| !v.is_null());
        map.values_mut().for_each(strip_nulls);
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    #[test]
    fn timestamps_have_microseconds() {
        let now = super::now();
        let fraction = now.split('.').nth(1).expect("a fraction");
        assert_eq!(fraction.len(), "123456Z".len(), "{now}");
    }

    /// The `count` events written to `path` (the writer appends them off the request path;
    /// bounded wait).
    async fn written(path: &Path, count: usize) -> Vec<Value> {
        for _ in 0..500 {
            let text = tokio::fs::read_to_string(path).await.unwrap_or_default();
            if text.lines().count() >= count {
                return text
                    .lines()
                    .map(|line| serde_json::from_str(line).expect("a JSON line"))
                    .collect();
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("{count} events were not written to {}", path.display());
    }

    #[tokio::test]
    async fn a_stale_token_is_noted_in_its_requests_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path).await.expect("open");
        // As authentication leaves the request: its user, and a stale token on the second.
        let app = Router::new()
            .route("/api/v1/namespaces/a/pods", get(|| async { "[]" }))
            .layer(axum::middleware::from_fn_with_state(Some(log), record))
            .layer(axum::middleware::from_fn(
                |mut request: Request, next: Next| async move {
                    let user = UserInfo::authenticated(
                        "system:serviceaccount:a:bot",
                        Vec::new(),
                    );
                    request.extensions_mut().insert(user);
                    if request.headers().contains_key("x-stale") {
                        let note = "subject: system:serviceaccount:a:bot, seconds after warning threshold: 93";
                        request.extensions_mut().insert(StaleToken(note.into()));
                    }
                    next.run(request).await
                },
            ));
        let fresh = axum::http::Request::get("/api/v1/namespaces/a/pods").body(Body::empty());
        let stale = axum::http::Request::get("/api/v1/namespaces/a/pods")
            .header("x-stale", "1")
            .body(Body::empty());
        for request in [fresh, stale] {
            let response = app.clone().oneshot(request.expect("request")).await;
            assert_eq!(response.expect("answered").status(), 200);
        }
        let events = written(&path, 2).await;
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events[0].get("annotations").is_none(), "{}", events[0]);
        assert_eq!(
            events[1]["annotations"][StaleToken::ANNOTATION],
            "subject: system:serviceaccount:a:bot, seconds after warning threshold: 93"
        );
    }
}
