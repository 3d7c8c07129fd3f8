//! `pods/{name}/exec`: a command in a pod's container, streamed over a WebSocket speaking
//! `v5.channel.k8s.io` (what `kubectl exec` and `skiff exec` speak). The API server checks
//! the request, opens a WebSocket to the exec endpoint of the pod's node agent, and only then
//! upgrades the client's connection and passes messages both ways, so that what the agent
//! refuses (a Wasm container) reaches the client as an ordinary error.

use axum::extract::ws::{self, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use skiff_api::{remotecommand, resources};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::agent_socket::{self, AgentSocket};
use super::pod_container::{self, PickError};
use super::AppState;
use crate::error::ApiError;

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
        let agent =
            agent_socket::connect(&state, &node, &agent_path, remotecommand::PROTOCOL).await?;
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
