//! `pods/{name}/portforward`: connections to a pod's ports, in each of the forms clients
//! speak: SPDY/3.1 tunnelled in a WebSocket (kubectl 1.31 and later), SPDY/3.1 over an HTTP
//! upgrade (older kubectl), and the channel WebSocket `v4.channel.k8s.io` (client libraries)
//! or `v5.channel.k8s.io` (`skiff port-forward`, with half closes). Each connection reaches
//! the pod through a WebSocket to its node's agent (`forward`). The pod must be Running on a
//! node: anything else is refused before the upgrade, with a Status that says why.

mod channels;
#[cfg(test)]
mod echo;
mod forward;
mod spdy;

use axum::extract::ws::{self, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use skiff_api::portforward::{
    ports_in_query, SPDY_OVER_WEBSOCKET, SPDY_PROTOCOL, WEBSOCKET_PROTOCOL, WEBSOCKET_PROTOCOL_V5,
};
use skiff_api::resources;

use self::channels::Incoming;
use self::forward::PodForwarder;
use super::spdy::upgrade::{self, SPDY_UPGRADE};
use super::AppState;
use crate::error::ApiError;

/// `GET|POST /api/v1/namespaces/{namespace}/pods/{name}/portforward[?ports=P]`.
pub async fn portforward(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    request: Request,
) -> Response {
    let result = async {
        let forwarder = resolve(&state, namespace, name).await?;
        let (mut parts, _body) = request.into_parts();
        if upgrade::requested(&parts.headers) {
            let protocol = upgrade::negotiate(
                &parts.headers,
                &[SPDY_PROTOCOL],
                "pods/portforward",
                &forwarder.pod,
            )?;
            return upgrade::respond(
                upgrade::on_upgrade(&mut parts.extensions)?,
                protocol,
                spdy::accept,
                |streams, sender| spdy::forward_streams(streams, sender, forwarder),
            );
        }
        let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &state)
            .await
            .map_err(|_| {
                ApiError::BadRequest(format!(
                    "pods/portforward is served over a WebSocket ({SPDY_OVER_WEBSOCKET}, \
                     {WEBSOCKET_PROTOCOL_V5} or {WEBSOCKET_PROTOCOL}) or an upgrade to \
                     {SPDY_UPGRADE} only"
                ))
            })?
            .protocols([
                SPDY_OVER_WEBSOCKET,
                WEBSOCKET_PROTOCOL_V5,
                WEBSOCKET_PROTOCOL,
            ]);
        if upgrade
            .selected_protocol()
            .is_some_and(|p| p == SPDY_OVER_WEBSOCKET)
        {
            return Ok(upgrade.on_upgrade(move |socket| spdy_over_websocket(socket, forwarder)));
        }
        if upgrade.selected_protocol().is_none() {
            return Err(ApiError::BadRequest(format!(
                "pods/portforward speaks the WebSocket subprotocols {SPDY_OVER_WEBSOCKET}, \
                 {WEBSOCKET_PROTOCOL_V5} and {WEBSOCKET_PROTOCOL}: the request offers none"
            )));
        }
        let query = parts.uri.query().unwrap_or_default();
        let ports = ports_in_query(query, "ports").map_err(ApiError::BadRequest)?;
        Ok(upgrade.on_upgrade(move |socket| channel_socket(socket, ports, forwarder)))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The pod's node, once the pod is known to be Running there.
async fn resolve(
    state: &AppState,
    namespace: String,
    name: String,
) -> Result<PodForwarder, ApiError> {
    let pods = resources::by_name("pods").expect("pods are served");
    let pod = state.registry.get(pods, Some(&namespace), &name).await?;
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending");
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty());
    let Some(node) = node.filter(|_| phase == "Running") else {
        return Err(ApiError::BadRequest(format!(
            "unable to forward a port of pod {name}: it is not running (phase {phase})"
        )));
    };
    Ok(PodForwarder {
        state: state.clone(),
        node: node.to_string(),
        namespace,
        pod: name,
    })
}

/// SPDY carried in the binary messages of a WebSocket.
async fn spdy_over_websocket(socket: WebSocket, forwarder: PodForwarder) {
    let (sink, stream) = socket.split();
    let incoming = stream
        .take_while(|m| {
            std::future::ready(matches!(m, Ok(m) if !matches!(m, ws::Message::Close(_))))
        })
        .filter_map(|m| {
            std::future::ready(match m {
                Ok(ws::Message::Binary(data)) => Some(data),
                _ => None,
            })
        });
    let outgoing = sink
        .with(|data: Bytes| std::future::ready(Ok::<_, axum::Error>(ws::Message::Binary(data))));
    spdy::serve(Box::pin(incoming), Box::pin(outgoing), forwarder).await;
}

/// The channel protocol on a WebSocket.
async fn channel_socket(socket: WebSocket, ports: Vec<u16>, forwarder: PodForwarder) {
    let (sink, stream) = socket.split();
    let incoming = stream
        .map(|m| match m {
            Ok(ws::Message::Binary(data)) => Some(Incoming::Binary(data)),
            Ok(ws::Message::Close(_)) | Err(_) => Some(Incoming::Closed),
            Ok(_) => None,
        })
        .filter_map(std::future::ready)
        .chain(futures::stream::once(std::future::ready(Incoming::Closed)));
    let outgoing = sink.with(|message: Option<Bytes>| {
        std::future::ready(Ok::<_, axum::Error>(match message {
            Some(data) => ws::Message::Binary(data),
            None => ws::Message::Close(Some(ws::CloseFrame {
                code: ws::close_code::NORMAL,
                reason: "".into(),
            })),
        }))
    });
    channels::serve(Box::pin(incoming), Box::pin(outgoing), ports, forwarder).await;
}
