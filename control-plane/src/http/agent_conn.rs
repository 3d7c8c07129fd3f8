//! How the API server reaches a node's agent (logs, exec, node proxy): through the tunnel the
//! agent opened to this server when one is up; else by dialling the kubelet endpoint its Node
//! publishes (an agent that still listens but has no tunnel here) over HTTPS, verifying the
//! agent's serving certificate against the cluster CA and presenting this server's kubelet
//! client certificate (`pki::agent_client_config`); a node with neither is a 503 that names
//! it.

use axum::body::Body;
use axum::http::{header, Method, Request, Response};
use futures::TryStreamExt;
use serde_json::Value;
use skiff_api::resources;
use skiff_net::tunnel::Tunnel;

use super::AppState;
use crate::error::ApiError;

/// The way to one node's agent.
pub enum AgentRoute {
    /// The agent's tunnel to this server.
    Tunnel(Tunnel),
    /// The agent's own listener, `HOST:PORT`.
    Direct(String),
}

/// The way to `node`'s agent: its tunnel, else its kubelet endpoint.
pub async fn route(state: &AppState, node: &str) -> Result<AgentRoute, ApiError> {
    if let Some(tunnel) = state.tunnels.get(node) {
        return Ok(AgentRoute::Tunnel(tunnel));
    }
    let nodes = resources::by_name("nodes").expect("nodes are served");
    let object = state.registry.get(nodes, None, node).await?;
    kubelet_endpoint(&object)
        .map(AgentRoute::Direct)
        .ok_or_else(|| {
            ApiError::Unavailable(format!(
                "node {node} has no tunnel open to this server and publishes no kubelet \
                 endpoint"
            ))
        })
}

/// The URI of `path_and_query` on `node`'s agent through its tunnel (HTTP/2 wants a scheme
/// and an authority: the node's name).
pub fn tunnel_uri(node: &str, path_and_query: &str) -> String {
    format!("http://{node}{path_and_query}")
}

/// Sends a request to `node`'s agent and returns its answer, the body streamed.
pub async fn send(
    state: &AppState,
    node: &str,
    method: Method,
    path_and_query: &str,
    body: Body,
) -> Result<Response<Body>, ApiError> {
    let unreachable = |e: &dyn std::fmt::Display| {
        ApiError::Unavailable(format!("node {node} is unreachable: {e}"))
    };
    match route(state, node).await? {
        AgentRoute::Tunnel(tunnel) => {
            let request = Request::builder()
                .method(method)
                .uri(tunnel_uri(node, path_and_query))
                .body(body)
                .map_err(|e| ApiError::BadRequest(format!("node {node}: {e}")))?;
            let response = tunnel.send(request).await.map_err(|e| unreachable(&e))?;
            Ok(response.map(Body::new))
        }
        AgentRoute::Direct(endpoint) => {
            dial_config(state, node)?;
            let response = state
                .http
                .request(method, format!("https://{endpoint}{path_and_query}"))
                .body(reqwest::Body::wrap_stream(body.into_data_stream()))
                .send()
                .await
                .map_err(|e| unreachable(&e))?;
            let mut answer = Response::builder().status(response.status());
            if let Some(content_type) = response.headers().get(header::CONTENT_TYPE) {
                answer = answer.header(header::CONTENT_TYPE, content_type);
            }
            let stream = response.bytes_stream().map_err(std::io::Error::other);
            answer
                .body(Body::from_stream(stream))
                .map_err(|e| ApiError::Internal(format!("node {node}: {e}")))
        }
    }
}

/// The TLS configuration to dial `node`'s listener with, or a 503: a server without TLS has
/// no client certificate for agents.
pub fn dial_config(
    state: &AppState,
    node: &str,
) -> Result<std::sync::Arc<tokio_rustls::rustls::ClientConfig>, ApiError> {
    state.agent_tls.clone().ok_or_else(|| {
        ApiError::Unavailable(format!(
            "node {node} has no tunnel open to this server, and a server without TLS cannot \
             dial its listener"
        ))
    })
}

/// The reqwest client that dials agents' listeners with `tls` (plain reqwest without it).
pub fn agent_http(
    tls: Option<&std::sync::Arc<tokio_rustls::rustls::ClientConfig>>,
) -> Result<reqwest::Client, reqwest::Error> {
    match tls {
        Some(tls) => reqwest::Client::builder()
            .use_preconfigured_tls(tokio_rustls::rustls::ClientConfig::clone(tls))
            .build(),
        None => Ok(reqwest::Client::new()),
    }
}

/// `InternalIP:kubeletPort` of a node that publishes one.
fn kubelet_endpoint(node: &Value) -> Option<String> {
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_i64)
        .filter(|port| *port > 0)?;
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
    fn finds_the_kubelet_endpoint() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "h"}, {"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}
        }});
        assert_eq!(kubelet_endpoint(&node).as_deref(), Some("127.0.0.1:10250"));
        let listener_less = json!({"status": {
            "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}}
        }});
        assert_eq!(kubelet_endpoint(&listener_less), None);
    }
}
