//! `nodes/{name}/proxy/{path}`: a request passed on to the node's agent, as Kubernetes' node
//! proxy passes it to the kubelet (`skiff image ls|pull|rm --node` use it). Uploads to
//! `nodes/{name}/proxy/images/import` are streamed, whatever their size, rather than read
//! whole under the API's body limit.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde_json::Value;
use skiff_api::resources;

use super::path::ApiPath;
use super::{auth, AppState};
use crate::error::ApiError;

/// The agent path uploads are streamed to (`skiff image import`).
pub const IMPORT_PATH: &str = "/images/import";

/// `POST /api/v1/nodes/{node}/proxy/images/import`: the body streamed on to the agent.
pub async fn upload(
    State(state): State<AppState>,
    Path(node): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let target = ApiPath {
        kind: resources::by_name("nodes").expect("nodes are served"),
        namespace: None,
        name: Some(node.clone()),
        subresource: Some("proxy".into()),
    };
    let result = async {
        auth::authorize(&state.registry, &Method::POST, &target, &headers).await?;
        let body = reqwest::Body::wrap_stream(body.into_data_stream());
        forward(&state, &Method::POST, &node, IMPORT_PATH, None, body).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The node and the agent path of `/api/v1/nodes/{node}/proxy[/{path}]`.
pub fn split(path: &str) -> Option<(&str, &str)> {
    let (node, rest) = path.strip_prefix("/api/v1/nodes/")?.split_once('/')?;
    let rest = rest.strip_prefix("proxy")?;
    match rest {
        "" => Some((node, "/")),
        _ if rest.starts_with('/') => Some((node, rest)),
        _ => None,
    }
}

/// Sends the request on to `node`'s agent and streams its answer back.
pub async fn forward(
    state: &AppState,
    method: &Method,
    node: &str,
    path: &str,
    query: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Result<Response, ApiError> {
    let endpoint = agent_endpoint(state, node).await?;
    let url = match query {
        Some(query) => format!("http://{endpoint}{path}?{query}"),
        None => format!("http://{endpoint}{path}"),
    };
    let response = state
        .http
        .request(method.clone(), &url)
        .body(body)
        .send()
        .await
        .map_err(|e| ApiError::Unavailable(format!("node {node} is unreachable: {e}")))?;
    let status = StatusCode::from_u16(response.status().as_u16())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/plain")
        .to_string();
    let stream = response.bytes_stream().map_err(std::io::Error::other);
    Ok((
        status,
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Where `node`'s agent listens, as its Node publishes it.
pub async fn agent_endpoint(state: &AppState, node: &str) -> Result<String, ApiError> {
    let nodes = resources::by_name("nodes").expect("nodes are served");
    let object = state.registry.get(nodes, None, node).await?;
    kubelet_endpoint(&object).ok_or_else(|| {
        ApiError::Unavailable(format!("node {node} does not publish a kubelet endpoint"))
    })
}

/// `InternalIP:kubeletPort` of a node.
fn kubelet_endpoint(node: &Value) -> Option<String> {
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_i64)?;
    let ip = node
        .pointer("/status/addresses")?
        .as_array()?
        .iter()
        .find(|a| a.get("type").and_then(Value::as_str) == Some("InternalIP"))?
        .get("address")?
        .as_str()?;
    if ip.contains(':') {
        Some(format!("[{ip}]:{port}"))
    } else {
        Some(format!("{ip}:{port}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn splits_node_proxy_paths() {
        assert_eq!(
            split("/api/v1/nodes/n1/proxy/images"),
            Some(("n1", "/images"))
        );
        assert_eq!(split("/api/v1/nodes/n1/proxy"), Some(("n1", "/")));
        assert_eq!(split("/api/v1/nodes/n1/proxyfoo"), None);
        assert_eq!(split("/api/v1/nodes/n1/status"), None);
        assert_eq!(split("/api/v1/namespaces/default/pods"), None);
    }

    #[test]
    fn finds_the_kubelet_endpoint() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "h"}, {"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}
        }});
        assert_eq!(kubelet_endpoint(&node).as_deref(), Some("127.0.0.1:10250"));
    }
}
