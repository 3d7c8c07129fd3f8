//! `pods/{name}/log`: logs stay on the node; the API server proxies to its agent.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde_json::Value;
use skiff_api::resources;

use super::query::Query;
use super::AppState;
use super::{node_proxy, pod_container};
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
    let endpoint = node_proxy::agent_endpoint(state, node_name).await?;
    let url = format!("http://{endpoint}/containerLogs/{namespace}/{pod_name}/{container}");
    let params: Vec<(&str, &str)> = PASSED_ON
        .iter()
        .filter_map(|param| Some((*param, query.get(param)?)))
        .collect();
    let response = state
        .http
        .get(&url)
        .query(&params)
        .send()
        .await
        .map_err(|e| ApiError::Unavailable(format!("node {node_name} is unreachable: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        let message = response.text().await.unwrap_or_default();
        return Err(match status {
            reqwest::StatusCode::NOT_FOUND => ApiError::BadRequest(format!(
                "container {container:?} in pod {pod_name:?} has no logs yet: {}",
                message.trim()
            )),
            _ => ApiError::Unavailable(format!("node {node_name}: {}", message.trim())),
        });
    }
    let stream = response.bytes_stream().map_err(std::io::Error::other);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(stream),
    )
        .into_response())
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
