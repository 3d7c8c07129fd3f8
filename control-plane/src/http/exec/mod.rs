//! `pods/{name}/exec`: a command in a pod's container, streamed in each of the forms clients
//! speak: a WebSocket speaking `v5.channel.k8s.io` (`kubectl exec` from 1.30, `skiff exec`)
//! or `v4.channel.k8s.io` (the client libraries), or SPDY/3.1 over an HTTP upgrade (older
//! kubectl, and newer kubectl when the WebSocket is refused). The API server checks the
//! request and opens a WebSocket speaking v5 to the exec endpoint of the pod's node agent
//! before it answers the client, so that what the agent refuses (a Wasm container) reaches
//! the client as an ordinary error; then it relays (`websocket`, `spdy`).

mod spdy;
mod websocket;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use skiff_api::{remotecommand, resources};

use super::agent_socket;
use super::pod_container::{self, PickError};
use super::spdy::upgrade;
use super::AppState;
use crate::error::ApiError;

/// `GET|POST /api/v1/namespaces/{namespace}/pods/{name}/exec?command=...`.
pub async fn exec(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    request: Request,
) -> Response {
    let result = async {
        let (mut parts, _body) = request.into_parts();
        let target = resolve(&state, &namespace, &name, parts.uri.query()).await?;
        if upgrade::requested(&parts.headers) {
            let protocol = upgrade::negotiate(
                &parts.headers,
                &[remotecommand::PROTOCOL_V4],
                "pods/exec",
                &name,
            )?;
            // Nothing runs for a connection that cannot be upgraded.
            let on_upgrade = upgrade::on_upgrade(&mut parts.extensions)?;
            let agent = target.connect(&state).await?;
            let streams = target.streams;
            return upgrade::respond(on_upgrade, protocol, spdy::accept, move |opened, sender| {
                spdy::relay(opened, sender, agent, streams)
            });
        }
        let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &state)
            .await
            .map_err(|_| {
                ApiError::BadRequest(format!(
                    "pods/exec is served over a WebSocket ({} or {}) or an upgrade to SPDY/3.1 \
                     only",
                    remotecommand::PROTOCOL,
                    remotecommand::PROTOCOL_V4
                ))
            })?
            .protocols([remotecommand::PROTOCOL, remotecommand::PROTOCOL_V4]);
        let v4 = match upgrade.selected_protocol() {
            Some(protocol) => protocol == remotecommand::PROTOCOL_V4,
            None => {
                return Err(ApiError::BadRequest(format!(
                    "pods/exec speaks the WebSocket subprotocols {} and {}: the request offers \
                     none",
                    remotecommand::PROTOCOL,
                    remotecommand::PROTOCOL_V4
                )))
            }
        };
        let agent = target.connect(&state).await?;
        Ok(upgrade.on_upgrade(move |client| websocket::relay(client, agent, v4)))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Which of the command's streams the client asked for.
#[derive(Debug, Clone, Copy)]
struct Streams {
    stdin: bool,
    stdout: bool,
    /// Never with `tty` (a terminal has one output), as the kubelet bypasses it.
    stderr: bool,
    tty: bool,
}

/// Where an exec runs: the pod's node and the agent's path and query.
struct Target {
    node: String,
    path: String,
    streams: Streams,
}

impl Target {
    /// The WebSocket to the agent's exec endpoint, or its refusal.
    async fn connect(&self, state: &AppState) -> Result<agent_socket::AgentSocket, ApiError> {
        agent_socket::connect(state, &self.node, &self.path, remotecommand::PROTOCOL).await
    }
}

/// Checks the request and finds the pod's node.
async fn resolve(
    state: &AppState,
    namespace: &str,
    name: &str,
    query: Option<&str>,
) -> Result<Target, ApiError> {
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
    let tty = flag("tty");
    let streams = Streams {
        stdin: flag("stdin"),
        stdout: flag("stdout"),
        stderr: flag("stderr") && !tty,
        tty,
    };
    Ok(Target {
        node: node.to_string(),
        path,
        streams,
    })
}
