//! `nodes/{name}/proxy/{path}`: a request passed on to the node's agent, as Kubernetes' node
//! proxy passes it to the kubelet (`skiff image ls|pull|rm --node` use it). Uploads to
//! `nodes/{name}/proxy/images/import` are streamed, whatever their size, rather than read
//! whole under the API's body limit.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};

use super::{agent_conn, AppState};
use crate::error::ApiError;

/// The agent path uploads are streamed to (`skiff image import`).
pub const IMPORT_PATH: &str = "/images/import";

/// `POST /api/v1/nodes/{node}/proxy/images/import`: the body streamed on to the agent.
pub async fn upload(
    State(state): State<AppState>,
    Path(node): Path<String>,
    body: Body,
) -> Response {
    let result =
        async { forward(&state, &Method::POST, &node, IMPORT_PATH, None, body).await }.await;
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
    body: Body,
) -> Result<Response, ApiError> {
    let path_and_query = match query {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    let response = agent_conn::send(state, node, method.clone(), &path_and_query, body).await?;
    let (parts, body) = response.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/plain")
        .to_string();
    Ok((parts.status, [(header::CONTENT_TYPE, content_type)], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
