//! Exec over a WebSocket: the client's messages pass to the agent's v5 socket and back as
//! they are. A v4 client gets no close signals (that protocol has none).

use axum::extract::ws::{self, WebSocket};
use futures::{SinkExt, StreamExt};
use skiff_api::remotecommand::Channel;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::super::agent_socket::AgentSocket;

/// Passes messages between the client and the agent until either side closes, passing the
/// close (and its code) on too; `v4`: the client speaks v4.
pub async fn relay(client: WebSocket, agent: AgentSocket, v4: bool) {
    let (mut to_client, mut from_client) = client.split();
    let (mut to_agent, mut from_agent) = agent.split();
    let upstream = async {
        while let Some(Ok(message)) = from_client.next().await {
            let (message, last) = match message {
                ws::Message::Binary(data) => (Message::Binary(data), false),
                // Clients that write stdin as text (the Python client) mean the same bytes.
                ws::Message::Text(text) => {
                    (Message::Binary(text.as_bytes().to_vec().into()), false)
                }
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
                Message::Binary(data) if v4 && data.first() == Some(&Channel::Close.byte()) => {
                    continue
                }
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
