//! Accepting peers' connections: with peer TLS, each must first complete a mutual TLS
//! handshake with a certificate from the peer CA; then it must open with a `Hello` for this
//! cluster and this member, from a member its certificate names; its messages then go to the
//! driver's inbox, until the membership says its sender was removed: then it gets a
//! `Refusal` and the connection closes. At most `MAX_PEER_CONNECTIONS` are held at once, a
//! connection must finish its handshake and say `Hello` within `HELLO_TIMEOUT` (both run in
//! the connection's own task, never in the accept loop), and running out of descriptors
//! pauses accepting: a flood of connections to the peer port can delay peers, never break
//! the store.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use prost::Message as _;
use raft::eraftpb::Message;
use skiff_net::accept::{Accepted, Acceptor};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::tls::{self, PeerTls};
use super::{codec, Hello, Refusal};
use crate::member::SharedCluster;

/// Peer connections held at once (each member opens one; reconnects may overlap).
pub const MAX_PEER_CONNECTIONS: usize = 64;
/// How long an accepted connection may take to finish its TLS handshake and send its `Hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a refused removed member has to read its refusal and close.
const REFUSAL_LINGER: Duration = Duration::from_secs(5);

/// Accepts peer connections on `listener` and feeds their messages to `inbox` until `stop`
/// is cancelled; a connection from another cluster, or meant for another member, is refused
/// with an error in the log. With `tls`, only peers with a certificate from its CA that
/// names the member they say they are get as far as a `Hello`. Waiting on a full inbox stops
/// reading the socket, which back-pressures the sender.
pub fn serve(
    listener: TcpListener,
    membership: &SharedCluster,
    inbox: mpsc::Sender<Message>,
    tls: Option<PeerTls>,
    stop: CancellationToken,
) {
    let (cluster_id, local) = {
        let cluster = membership.read().expect("cluster");
        (cluster.cluster_id.clone(), cluster.local)
    };
    let membership = membership.clone();
    let mut acceptor = Acceptor::new(listener, MAX_PEER_CONNECTIONS);
    tokio::spawn(async move {
        while let Some(accepted) = stop.run_until_cancelled(acceptor.accept()).await {
            let Accepted {
                stream,
                from,
                permit,
            } = accepted;
            let peer = Peer {
                from,
                cluster_id: cluster_id.clone(),
                local,
                membership: membership.clone(),
                inbox: inbox.clone(),
                tls: tls.clone(),
            };
            let receive = peer.receive(stream);
            tokio::spawn(stop.clone().run_until_cancelled_owned(async move {
                receive.await;
                drop(permit);
            }));
        }
    });
}

/// One accepted connection.
struct Peer {
    from: SocketAddr,
    cluster_id: String,
    local: u64,
    membership: SharedCluster,
    inbox: mpsc::Sender<Message>,
    tls: Option<PeerTls>,
}

impl Peer {
    async fn receive(self, stream: TcpStream) {
        if let Err(err) = self.relay(stream).await {
            tracing::debug!(from = %self.from, %err, "peer connection ended");
        }
    }

    /// Completes the TLS handshake (if this member has peer TLS) before reading anything,
    /// then relays.
    async fn relay(&self, stream: TcpStream) -> std::io::Result<()> {
        let deadline = Instant::now() + HELLO_TIMEOUT;
        let Some(tls) = &self.tls else {
            return self.relay_on(stream, None, deadline).await;
        };
        let Ok(handshake) = tokio::time::timeout_at(deadline, tls.acceptor().accept(stream)).await
        else {
            tracing::debug!(from = %self.from, "closing a peer connection that did not finish its TLS handshake");
            return Ok(());
        };
        let stream = match handshake {
            Ok(stream) => stream,
            Err(err) => {
                tracing::warn!(from = %self.from, %err, "refusing a peer connection without a valid peer certificate");
                return Ok(());
            }
        };
        let cert = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .cloned();
        self.relay_on(stream, cert, deadline).await
    }

    /// Checks the `Hello` (and that `cert`, the peer's verified certificate, names its
    /// sender), then relays messages until the connection or the inbox closes, or the sender
    /// turns out to be a removed member.
    async fn relay_on(
        &self,
        stream: impl AsyncRead + AsyncWrite + Unpin,
        cert: Option<CertificateDer<'static>>,
        deadline: Instant,
    ) -> std::io::Result<()> {
        let mut frames = Framed::new(stream, codec());
        let Ok(Some(frame)) = tokio::time::timeout_at(deadline, frames.next()).await else {
            tracing::debug!(from = %self.from, "closing a peer connection that sent no hello");
            return Ok(());
        };
        let hello = Hello::decode(frame?)?;
        if self.tls.is_some() && !self.certified(cert.as_ref(), hello.from) {
            tracing::error!(
                from = %self.from,
                member = hello.from,
                "refusing a peer connection whose certificate does not name the member it \
                 says it is (a SAN with the member's name or peer host)"
            );
            return Ok(());
        }
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
            if self.was_removed(hello.from) {
                tracing::info!(from = %self.from, member = hello.from, "telling a removed member that it was removed");
                let refusal = Refusal {
                    removed: hello.from,
                };
                frames.send(Bytes::from(refusal.encode_to_vec())).await?;
                // The sender closes once it has read the refusal; closing first could reset
                // the connection before it does.
                let drain = async { while let Some(Ok(_)) = frames.next().await {} };
                let _ = tokio::time::timeout(REFUSAL_LINGER, drain).await;
                return Ok(());
            }
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

    /// Whether `cert` names member `id`. A removed member need not be named: all it can
    /// get is its `Refusal`.
    fn certified(&self, cert: Option<&CertificateDer<'_>>, id: u64) -> bool {
        let cluster = self.membership.read().expect("cluster");
        if cluster.was_removed(id) {
            return true;
        }
        match (cert, cluster.member(id)) {
            (Some(cert), Some(member)) => tls::names(cert, member),
            _ => false,
        }
    }

    fn was_removed(&self, id: u64) -> bool {
        self.membership.read().expect("cluster").was_removed(id)
    }
}
