//! Accepting peers' connections: each must open with a `Hello` for this cluster and this
//! member; its messages then go to the driver's inbox.

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use prost::Message as _;
use raft::eraftpb::Message;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::{codec, Hello};
use crate::member::Cluster;

/// How long to wait before accepting again after `accept` failed (out of descriptors).
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Accepts peer connections on `listener` and feeds their messages to `inbox` until `stop`
/// is cancelled; a connection from another cluster, or meant for another member, is refused
/// with an error in the log. Waiting on a full inbox stops reading the socket, which
/// back-pressures the sender.
pub fn serve(
    listener: TcpListener,
    cluster: &Cluster,
    inbox: mpsc::Sender<Message>,
    stop: CancellationToken,
) {
    let cluster_id = cluster.cluster_id.clone();
    let local = cluster.local;
    tokio::spawn(async move {
        loop {
            let Some(accepted) = stop.run_until_cancelled(listener.accept()).await else {
                return;
            };
            let (stream, from) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(%err, "accepting a peer connection failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            };
            let peer = Peer {
                from,
                cluster_id: cluster_id.clone(),
                local,
                inbox: inbox.clone(),
            };
            tokio::spawn(stop.clone().run_until_cancelled_owned(peer.receive(stream)));
        }
    });
}

/// One accepted connection.
struct Peer {
    from: SocketAddr,
    cluster_id: String,
    local: u64,
    inbox: mpsc::Sender<Message>,
}

impl Peer {
    async fn receive(self, stream: TcpStream) {
        if let Err(err) = self.relay(stream).await {
            tracing::debug!(from = %self.from, %err, "peer connection ended");
        }
    }

    /// Checks the `Hello`, then relays messages until the connection or the inbox closes.
    async fn relay(&self, stream: TcpStream) -> std::io::Result<()> {
        let mut frames = FramedRead::new(stream, codec());
        let Some(frame) = frames.next().await else {
            return Ok(());
        };
        let hello = Hello::decode(frame?)?;
        if hello.cluster_id != self.cluster_id || hello.to != self.local {
            tracing::error!(
                from = %self.from,
                their_cluster = %hello.cluster_id,
                our_cluster = %self.cluster_id,
                to = hello.to,
                local = self.local,
                "refusing a peer connection from another cluster or for another member: \
                 check that every server has the same --initial-cluster"
            );
            return Ok(());
        }
        while let Some(frame) = frames.next().await {
            let message = Message::decode(frame?)?;
            if message.from != hello.from || message.to != self.local {
                tracing::warn!(from = %self.from, "dropping a raft message with mismatched from/to");
                continue;
            }
            if self.inbox.send(message).await.is_err() {
                return Ok(());
            }
        }
        Ok(())
    }
}
