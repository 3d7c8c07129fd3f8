//! Raft messages over TCP: prost-encoded, length-delimited frames over one connection per
//! peer and direction, each opened by a `Hello` naming the cluster and both members. Each
//! peer has a bounded queue drained by its own task (`sender`), which reconnects with
//! back-off; a full queue drops messages (Raft retransmits) and reports the peer
//! unreachable, so a slow peer never stalls the driver. `listener` accepts the peers'
//! connections; the only frame it ever writes back is a `Refusal` to a removed member.
//! With a `PeerTls`, both run over mutual TLS (`tls`); without one, over plain TCP.

mod listener;
mod sender;
mod tls;

pub use listener::MAX_PEER_CONNECTIONS;
pub use tls::{PeerTls, PeerTlsError};

use std::collections::HashMap;

use raft::eraftpb::Message;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::codec::LengthDelimitedCodec;
use tokio_util::sync::CancellationToken;

use super::{Links, Transport};
use crate::member::{Member, SharedCluster};

/// Messages queued per peer before new ones are dropped.
const PEER_QUEUE: usize = 4096;
/// The largest frame accepted (a snapshot of the whole state machine travels as one).
const MAX_FRAME: usize = 1 << 30;

/// The first frame on every connection: which cluster and member it comes from and is for.
#[derive(Clone, PartialEq, prost::Message)]
struct Hello {
    #[prost(string, tag = "1")]
    cluster_id: String,
    #[prost(uint64, tag = "2")]
    from: u64,
    #[prost(uint64, tag = "3")]
    to: u64,
}

/// What a listener answers a member that membership changes removed, before it closes the
/// connection: the sender then reports that its own member was removed.
#[derive(Clone, PartialEq, prost::Message)]
struct Refusal {
    /// The id of the removed member the refusal is for.
    #[prost(uint64, tag = "1")]
    removed: u64,
}

/// The framing on the wire: a 4-byte big-endian length, then the prost-encoded body.
fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

/// A member's TCP transport: one sender task per peer; each ends when its peer is removed
/// or `stop` is cancelled.
pub struct TcpTransport {
    peers: HashMap<u64, (mpsc::Sender<Message>, CancellationToken)>,
    links: Links,
    cluster_id: String,
    local: u64,
    tls: Option<PeerTls>,
    stop: CancellationToken,
}

/// Accepts peers on `listener` (if this member has one) and starts a sender per peer of
/// `membership`, over mutual TLS if `tls` is given; everything stops when `stop` is
/// cancelled.
pub fn start(
    listener: Option<TcpListener>,
    membership: &SharedCluster,
    links: Links,
    tls: Option<PeerTls>,
    stop: CancellationToken,
) -> TcpTransport {
    if let Some(listener) = listener {
        listener::serve(
            listener,
            membership,
            links.inbox.clone(),
            tls.clone(),
            stop.clone(),
        );
    }
    let cluster = membership.read().expect("cluster").clone();
    let mut transport = TcpTransport {
        peers: HashMap::new(),
        links,
        cluster_id: cluster.cluster_id.clone(),
        local: cluster.local,
        tls,
        stop,
    };
    for peer in cluster.peers() {
        transport.add_peer(peer);
    }
    transport
}

impl Transport for TcpTransport {
    fn add_peer(&mut self, peer: &Member) {
        if peer.id == self.local || self.peers.contains_key(&peer.id) {
            return;
        }
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        let stop = self.stop.child_token();
        let hello = Hello {
            cluster_id: self.cluster_id.clone(),
            from: self.local,
            to: peer.id,
        };
        let tls = match &self.tls {
            None => None,
            Some(tls) => match tls.connector(peer) {
                Ok(connector) => Some((connector, tls::server_name(peer))),
                Err(err) => {
                    // Built from the same inputs as the listener's side, which worked.
                    tracing::error!(peer = peer.id, %err, "cannot secure connections to a peer");
                    return;
                }
            },
        };
        let sender =
            sender::PeerSender::new(peer.peer_addr.clone(), hello, rx, self.links.clone(), tls);
        tokio::spawn(sender.run(stop.clone()));
        self.peers.insert(peer.id, (tx, stop));
    }

    fn remove_peer(&mut self, id: u64) {
        if let Some((_, stop)) = self.peers.remove(&id) {
            stop.cancel();
        }
    }

    fn send(&mut self, messages: Vec<Message>) {
        for message in messages {
            let to = message.to;
            let Some((queue, _)) = self.peers.get(&to) else {
                tracing::warn!(to, "dropping a raft message for an unknown member");
                continue;
            };
            let message_type = message.get_msg_type();
            if queue.try_send(message).is_err() {
                self.links.undelivered(to, message_type);
            }
        }
    }
}
