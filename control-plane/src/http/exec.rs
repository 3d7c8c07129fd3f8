//! `pods/{name}/exec`: a command in a pod's container, streamed over a WebSocket speaking
//! `v5.channel.k8s.io` (what `kubectl exec` and `skiff exec` speak). The API server checks
//! the request, opens a WebSocket to the exec endpoint of the pod's node agent, and only then
//! upgrades the client's connection and passes messages both ways, so that what the agent
//! refuses (a Wasm container) reaches the client as an ordinary error.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{self, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use skiff_api::{remotecommand, resources};
use skiff_net::tunnel::Tunnel;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{client_async, WebSocketStream};

use super::agent_conn::{self, AgentRoute};
use super::pod_container::{self, PickError};
use super::AppState;
use crate::error::ApiError;

/// The connection under the agent's WebSocket: a tunnel stream or a TCP connection.
trait AgentIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AgentIo for T {}

type AgentSocket = WebSocketStream<Box<dyn AgentIo>>;

/// The most of an agent's refusal that is read into the error.
const MAX_REFUSAL_BYTES: usize = 64 << 10;

/// `GET|POST /api/v1/namespaces/{namespace}/pods/{name}/exec?command=...`.
pub async fn exec(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    uri: Uri,
    upgrade: Result<WebSocketUpgrade, ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let result = async {
        let (node, agent_path) = resolve(&state, &namespace, &name, uri.query()).await?;
        let upgrade = upgrade.map_err(|_| {
            ApiError::BadRequest(format!(
                "pods/exec is served over a WebSocket only: upgrade the request with the \
                 {} subprotocol",
                remotecommand::PROTOCOL
            ))
        })?;
        let agent = connect(&state, &node, &agent_path).await?;
        Ok::<_, ApiError>(
            upgrade
                .protocols([remotecommand::PROTOCOL])
                .on_upgrade(move |client| relay(client, agent)),
        )
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Checks the request and finds the pod's node: the node and the agent's path and query.
async fn resolve(
    state: &AppState,
    namespace: &str,
    name: &str,
    query: Option<&str>,
) -> Result<(String, String), ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let value = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let flag = |key: &str| matches!(value(key), Some("true" | "1"));
    if !pairs.iter().any(|(k, _)| k == "command") {
        return Err(ApiError::BadRequest(
            "command: required value: name the command to run in one or more `command` \
             parameters"
                .into(),
        ));
    }
    if !(flag("stdin") || flag("stdout") || flag("stderr")) {
        return Err(ApiError::BadRequest(
            "you must specify at least 1 of stdin, stdout, stderr".into(),
        ));
    }
    let pods = resources::by_name("pods").expect("pods are served");
    let pod = state.registry.get(pods, Some(namespace), name).await?;
    let container =
        pod_container::pick(&pod, name, value("container")).map_err(|err| match err {
            PickError::Unknown { pod, container } => ApiError::NotFound {
                resource: format!("pod {pod}: container"),
                name: container,
            },
            ambiguous @ PickError::Ambiguous { .. } => ApiError::BadRequest(ambiguous.to_string()),
        })?;
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "pod {name} is not scheduled to a node yet: it runs no container to exec in"
            ))
        })?;
    let mut passed_on = form_urlencoded::Serializer::new(String::new());
    for (key, value) in &pairs {
        if matches!(
            key.as_str(),
            "command" | "stdin" | "stdout" | "stderr" | "tty"
        ) {
            passed_on.append_pair(key, value);
        }
    }
    let path = format!(
        "/exec/{namespace}/{name}/{container}?{}",
        passed_on.finish()
    );
    Ok((node.to_string(), path))
}

/// How long the agent may take to accept the exec's WebSocket (a node that drops packets
/// would otherwise hold the client for the kernel's connect retries).
const AGENT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the WebSocket to `node`'s exec endpoint (through its tunnel, else its listener);
/// the agent's refusal becomes the answer.
async fn connect(state: &AppState, node: &str, path: &str) -> Result<AgentSocket, ApiError> {
    let connecting = async {
        match agent_conn::route(state, node).await? {
            AgentRoute::Tunnel(tunnel) => through_tunnel(&tunnel, node, path).await,
            AgentRoute::Direct(endpoint) => {
                let tls = agent_conn::dial_config(state, node)?;
                direct(&endpoint, tls, node, path).await
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
async fn through_tunnel(tunnel: &Tunnel, node: &str, path: &str) -> Result<AgentSocket, ApiError> {
    let request = Request::builder()
        .method(Method::CONNECT)
        .uri(agent_conn::tunnel_uri(node, path))
        .extension(hyper::ext::Protocol::from_static("websocket"))
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_PROTOCOL, remotecommand::PROTOCOL)
        .body(Body::empty())
        .map_err(|e| ApiError::Internal(format!("exec request {path}: {e}")))?;
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
) -> Result<AgentSocket, ApiError> {
    let url = format!("wss://{endpoint}{path}");
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ApiError::Internal(format!("exec request {url}: {e}")))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(remotecommand::PROTOCOL),
    );
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

/// The agent's refusal of an exec: what it says, as a 400 when the container cannot run the
/// command (no such container on the node yet, not running, a runtime without exec).
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

/// Passes messages between the client and the agent until either side closes, passing the
/// close (and its code) on too.
async fn relay(client: WebSocket, agent: AgentSocket) {
    let (mut to_client, mut from_client) = client.split();
    let (mut to_agent, mut from_agent) = agent.split();
    let upstream = async {
        while let Some(Ok(message)) = from_client.next().await {
            let (message, last) = match message {
                ws::Message::Binary(data) => (Message::Binary(data), false),
                ws::Message::Text(text) => (Message::text(text.as_str()), false),
                ws::Message::Close(frame) => (Message::Close(frame.map(to_agent_frame)), true),
                ws::Message::Ping(_) | ws::Message::Pong(_) => continue,
            };
            if to_agent.send(message).await.is_err() || last {
                return;
            }
        }
    };
    let downstream = async {
        while let Some(Ok(message)) = from_agent.next().await {
            let (message, last) = match message {
                Message::Binary(data) => (ws::Message::Binary(data), false),
                Message::Text(text) => (ws::Message::Text(text.as_str().into()), false),
                Message::Close(frame) => (ws::Message::Close(frame.map(to_client_frame)), true),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            if to_client.send(message).await.is_err() || last {
                return;
            }
        }
    };
    // The agent closes after the exit status; the client may close first (it went away).
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}

fn to_agent_frame(frame: ws::CloseFrame) -> CloseFrame {
    CloseFrame {
        code: CloseCode::from(frame.code),
        reason: frame.reason.as_str().into(),
    }
}

fn to_client_frame(frame: CloseFrame) -> ws::CloseFrame {
    ws::CloseFrame {
        code: u16::from(frame.code),
        reason: frame.reason.as_str().into(),
    }
}
