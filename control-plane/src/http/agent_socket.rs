//! WebSockets from the API server to a node agent's streaming endpoints (exec,
//! port-forward): over the agent's tunnel when it has one here (an HTTP/2 extended CONNECT),
//! else over TLS to its listener. The agent's refusal before the upgrade becomes the error.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use skiff_net::tunnel::Tunnel;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::{client_async, WebSocketStream};

use super::agent_conn::{self, AgentRoute};
use super::AppState;
use crate::error::ApiError;

/// The connection under the agent's WebSocket: a tunnel stream or a TCP connection.
pub trait AgentIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AgentIo for T {}

/// A WebSocket to an agent.
pub type AgentSocket = WebSocketStream<Box<dyn AgentIo>>;

/// The most of an agent's refusal that is read into the error.
const MAX_REFUSAL_BYTES: usize = 64 << 10;

/// How long the agent may take to accept a WebSocket (a node that drops packets
/// would otherwise hold the client for the kernel's connect retries).
const AGENT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a WebSocket speaking `protocol` to `path` on `node`'s agent (through its tunnel,
/// else its listener); the agent's refusal becomes the answer.
pub async fn connect(
    state: &AppState,
    node: &str,
    path: &str,
    protocol: &'static str,
) -> Result<AgentSocket, ApiError> {
    let connecting = async {
        match agent_conn::route(state, node).await? {
            AgentRoute::Tunnel(tunnel) => through_tunnel(&tunnel, node, path, protocol).await,
            AgentRoute::Direct(endpoint) => {
                let tls = agent_conn::dial_config(state, node)?;
                direct(&endpoint, tls, node, path, protocol).await
            }
        }
    };
    tokio::time::timeout(AGENT_CONNECT_TIMEOUT, connecting)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::Unavailable(format!(
                "node {node} did not answer within {AGENT_CONNECT_TIMEOUT:?}"
            )))
        })
}

/// The WebSocket as an HTTP/2 extended CONNECT (RFC 8441) on a stream of the node's tunnel.
async fn through_tunnel(
    tunnel: &Tunnel,
    node: &str,
    path: &str,
    protocol: &'static str,
) -> Result<AgentSocket, ApiError> {
    let request = Request::builder()
        .method(Method::CONNECT)
        .uri(agent_conn::tunnel_uri(node, path))
        .extension(hyper::ext::Protocol::from_static("websocket"))
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_PROTOCOL, protocol)
        .body(Body::empty())
        .map_err(|e| ApiError::Internal(format!("agent request {path}: {e}")))?;
    let mut response = tunnel
        .send(request)
        .await
        .map_err(|e| unreachable_node(node, &e))?;
    if response.status() != StatusCode::OK {
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(Body::new(response.into_body()), MAX_REFUSAL_BYTES)
            .await
            .unwrap_or_default();
        return Err(refusal(node, status, &body));
    }
    let upgraded = hyper::upgrade::on(&mut response)
        .await
        .map_err(|e| unreachable_node(node, &e))?;
    let io: Box<dyn AgentIo> = Box::new(TokioIo::new(upgraded));
    Ok(WebSocketStream::from_raw_socket(io, Role::Client, None).await)
}

/// The WebSocket to the agent's own listener, `HOST:PORT`, over TLS with `tls`.
async fn direct(
    endpoint: &str,
    tls: Arc<tokio_rustls::rustls::ClientConfig>,
    node: &str,
    path: &str,
    protocol: &'static str,
) -> Result<AgentSocket, ApiError> {
    let url = format!("wss://{endpoint}{path}");
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ApiError::Internal(format!("agent request {url}: {e}")))?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
    let stream = TcpStream::connect(endpoint)
        .await
        .map_err(|e| unreachable_node(node, &e))?;
    let host = endpoint
        .rsplit_once(':')
        .map_or(endpoint, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| ApiError::Internal(format!("node {node}'s endpoint {endpoint}: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, stream)
        .await
        .map_err(|e| unreachable_node(node, &e))?;
    let io: Box<dyn AgentIo> = Box::new(stream);
    match client_async(request, io).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => Err(refusal(
            node,
            response.status().as_u16(),
            response.body().as_deref().unwrap_or_default(),
        )),
        Err(e) => Err(unreachable_node(node, &e)),
    }
}

/// The agent's refusal: what it says, as a 400 when the pod cannot serve the request (it
/// or its container is not on the node yet or not running, or its runtime cannot).
fn refusal(node: &str, status: u16, body: &[u8]) -> ApiError {
    let message = String::from_utf8_lossy(body).trim().to_string();
    match status {
        400 | 404 => ApiError::BadRequest(message),
        _ => ApiError::Unavailable(format!("node {node}: {message}")),
    }
}

fn unreachable_node(node: &str, err: &dyn std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("node {node} is unreachable: {err}"))
}
