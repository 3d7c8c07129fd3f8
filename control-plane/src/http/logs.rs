//! `pods/{name}/log`: logs stay on the node; the API server proxies to its agent.

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use skiff_api::resources;

use super::query::Query;
use super::AppState;
use super::{agent_conn, pod_container};
use crate::error::ApiError;

/// The `PodLogOptions` the agent's log server answers, passed on as they came.
const PASSED_ON: [&str; 7] = [
    "follow",
    "tailLines",
    "previous",
    "timestamps",
    "limitBytes",
    "sinceSeconds",
    "sinceTime",
];

/// The most of an agent's refusal that is read into the error.
const MAX_REFUSAL_BYTES: usize = 64 << 10;

/// Streams a container's log from the node agent that runs the pod.
pub async fn proxy(
    state: &AppState,
    namespace: &str,
    pod_name: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    validate(query)?;
    let pods = resources::by_name("pods").expect("pods are served");
    let pod = state.registry.get(pods, Some(namespace), pod_name).await?;
    let container = pod_container::pick(&pod, pod_name, query.get("container"))
        .map_err(|err| ApiError::BadRequest(err.to_string()))?;
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "pod {pod_name} is not scheduled to a node yet, so it has no logs"
            ))
        })?;
    let path = format!(
        "/containerLogs/{namespace}/{pod_name}/{container}?{}",
        passed_on(query)
    );
    let response = agent_conn::send(state, node_name, Method::GET, &path, Body::empty()).await?;
    let status = response.status();
    if !status.is_success() {
        let message = axum::body::to_bytes(response.into_body(), MAX_REFUSAL_BYTES)
            .await
            .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
            .unwrap_or_default();
        return Err(match status {
            StatusCode::NOT_FOUND => ApiError::BadRequest(format!(
                "container {container:?} in pod {pod_name:?} has no logs yet: {message}"
            )),
            _ => ApiError::Unavailable(format!("node {node_name}: {message}")),
        });
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        response.into_body(),
    )
        .into_response())
}

/// The query the agent gets: the options it reads, as they came.
fn passed_on(query: &Query) -> String {
    let mut passed_on = form_urlencoded::Serializer::new(String::new());
    for param in PASSED_ON {
        if let Some(value) = query.get(param) {
            passed_on.append_pair(param, value);
        }
    }
    passed_on.finish()
}

/// Refuses what the agent could not read, as the API server validates `PodLogOptions`.
fn validate(query: &Query) -> Result<(), ApiError> {
    for param in ["tailLines", "limitBytes", "sinceSeconds"] {
        if let Some(value) = query.get(param) {
            let valid = value
                .parse::<u64>()
                .is_ok_and(|n| param == "tailLines" || n > 0);
            if !valid {
                return Err(ApiError::BadRequest(format!(
                    "{param}: {value:?} must be a {} integer",
                    if param == "tailLines" {
                        "non-negative"
                    } else {
                        "positive"
                    }
                )));
            }
        }
    }
    if let Some(time) = query.get("sinceTime") {
        if time.parse::<jiff::Timestamp>().is_err() {
            return Err(ApiError::BadRequest(format!(
                "sinceTime: {time:?} is not an RFC 3339 time"
            )));
        }
        if query.get("sinceSeconds").is_some() {
            return Err(ApiError::BadRequest(
                "at most one of sinceTime or sinceSeconds may be specified".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_log_options() {
        let ok = |raw: &str| validate(&Query::parse(Some(raw))).is_ok();
        assert!(ok(
            "tailLines=0&limitBytes=10&sinceSeconds=300&timestamps=true"
        ));
        assert!(ok("sinceTime=2026-01-01T00:00:00Z"));
        assert!(!ok("tailLines=-1"));
        assert!(!ok("limitBytes=0"));
        assert!(!ok("sinceSeconds=soon"));
        assert!(!ok("sinceTime=yesterday"));
        assert!(!ok("sinceTime=2026-01-01T00:00:00Z&sinceSeconds=5"));
    }
}
