//! One forwarded connection, whatever protocol its client speaks: the client's bytes go to
//! the pod's port through a WebSocket to the pod's node agent, and the pod's bytes and any
//! error come back as [`Event`]s.
//!
//! The agent's endpoint is `/portForward/{namespace}/{pod}?port=P`, a channel WebSocket
//! speaking `v5.channel.k8s.io` for one port (see `skiff_api::portforward`): the port first
//! on channels 0 and 1, then data on channel 0 both ways, an error as text on channel 1, and
//! the close signal for a half close; the agent closes the socket once the pod's side ended.

use std::future::Future;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use skiff_api::portforward::{close_message, data_message, CLOSE_CHANNEL, WEBSOCKET_PROTOCOL_V5};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::super::agent_socket;
use super::super::AppState;

/// What a forwarded connection tells its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Bytes the pod sent.
    Data(Bytes),
    /// Why the connection failed (it ends after this).
    Error(String),
}

/// Forwards connections to ports of one pod.
pub trait Forwarder: Clone + Send + Sync + 'static {
    /// Forwards one connection to `port`: bytes from `from_client` (its end is the client's
    /// half close) go to the pod; what the pod sends goes to `to_client`. Returns once the
    /// pod's side has ended or failed.
    fn forward(
        &self,
        port: u16,
        from_client: mpsc::Receiver<Bytes>,
        to_client: mpsc::Sender<Event>,
    ) -> impl Future<Output = ()> + Send;
}

/// A pod on a node, reached through its node's agent.
#[derive(Clone)]
pub struct PodForwarder {
    pub state: AppState,
    /// The node the pod is bound to.
    pub node: String,
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
}

impl Forwarder for PodForwarder {
    async fn forward(
        &self,
        port: u16,
        from_client: mpsc::Receiver<Bytes>,
        to_client: mpsc::Sender<Event>,
    ) {
        let path = format!("/portForward/{}/{}?port={port}", self.namespace, self.pod);
        match agent_socket::connect(&self.state, &self.node, &path, WEBSOCKET_PROTOCOL_V5).await {
            Ok(agent) => relay(agent, from_client, to_client).await,
            Err(err) => {
                let message = format!(
                    "error forwarding port {port} to pod {}/{}: {}",
                    self.namespace, self.pod, err
                );
                let _ = to_client.send(Event::Error(message)).await;
            }
        }
    }
}

/// Passes one connection's bytes between its client and the agent's socket, each direction
/// in a loop of its own (neither waits on the other's sends). The client's half close ends
/// only its direction; the agent's socket ending (or the client going away) ends both.
async fn relay(
    agent: agent_socket::AgentSocket,
    mut from_client: mpsc::Receiver<Bytes>,
    to_client: mpsc::Sender<Event>,
) {
    let (mut sink, mut stream) = agent.split();
    let upstream = async {
        while let Some(data) = from_client.recv().await {
            // An agent that stopped reading (the pod refused the connection) still has its
            // error to say: the downstream reads on.
            if sink.send(binary(data_message(0, &data))).await.is_err() {
                return std::future::pending().await;
            }
        }
        let _ = sink.send(binary(close_message(0))).await;
        std::future::pending::<()>().await
    };
    let downstream = async {
        let mut port_seen = [false, false];
        while let Some(Ok(message)) = stream.next().await {
            let data = match message {
                Message::Binary(data) => data,
                Message::Close(_) => return,
                _ => continue,
            };
            let event = match data.first().copied() {
                Some(channel @ (0 | 1)) if !port_seen[usize::from(channel)] => {
                    port_seen[usize::from(channel)] = true;
                    continue;
                }
                Some(0) => Event::Data(data.slice(1..)),
                Some(1) => Event::Error(String::from_utf8_lossy(&data[1..]).into_owned()),
                Some(CLOSE_CHANNEL) | None | Some(_) => continue,
            };
            if to_client.send(event).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
    let _ = sink.send(Message::Close(None)).await;
}

fn binary(data: Vec<u8>) -> Message {
    Message::Binary(data.into())
}
