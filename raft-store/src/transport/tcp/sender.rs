//! One peer's sender task: connects (with back-off; with peer TLS, a mutual TLS handshake
//! that checks the peer's certificate names it), writes the `Hello`, then drains the
//! peer's queue into length-delimited frames, batching what is waiting into one flush. The
//! only frame that comes back is a `Refusal` telling this member it was removed.

use std::time::Duration;

use bytes::Bytes;
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use prost::Message as _;
use raft::eraftpb::Message;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use super::{codec, Hello, Refusal};
use crate::transport::{Links, PeerReport};

/// Reconnect back-off bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a TLS handshake may take once connected.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages written before one flush.
const BATCH: usize = 256;

/// A connection to the peer: plain TCP, or TLS over it.
trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> PeerStream for S {}

/// The two directions of a connection to the peer.
type Frames = Framed<Box<dyn PeerStream>, LengthDelimitedCodec>;

/// How the sender secures its connections: the connector and the name it sends the peer.
pub type PeerConnector = (TlsConnector, ServerName<'static>);

/// Sends one peer's queue over TCP.
pub struct PeerSender {
    addr: String,
    hello: Hello,
    queue: mpsc::Receiver<Message>,
    links: Links,
    tls: Option<PeerConnector>,
}

impl PeerSender {
    pub fn new(
        addr: String,
        hello: Hello,
        queue: mpsc::Receiver<Message>,
        links: Links,
        tls: Option<PeerConnector>,
    ) -> Self {
        PeerSender {
            addr,
            hello,
            queue,
            links,
            tls,
        }
    }

    /// Sends until the peer is removed (its queue closes), the peer says this member was
    /// removed, or `stop` is cancelled.
    pub async fn run(mut self, stop: CancellationToken) {
        stop.run_until_cancelled(self.deliver()).await;
    }

    async fn deliver(&mut self) {
        let mut backoff = BACKOFF_MIN;
        while !self.queue.is_closed() {
            let result = match self.connect().await {
                Ok(stream) => {
                    backoff = BACKOFF_MIN;
                    self.pump(stream).await
                }
                Err(err) => Err(err),
            };
            let Err(err) = result else { return };
            tracing::debug!(peer = self.hello.to, addr = %self.addr, %err, "peer connection failed");
            let _ = self
                .links
                .reports
                .send(PeerReport::Unreachable(self.hello.to));
            // Whatever queued while the peer was away is stale: Raft resends what matters.
            while let Ok(message) = self.queue.try_recv() {
                self.links
                    .snapshot_failed(message.to, message.get_msg_type());
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn connect(&self) -> std::io::Result<Box<dyn PeerStream>> {
        let stream =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.addr)).await??;
        stream.set_nodelay(true)?;
        let Some((connector, name)) = &self.tls else {
            return Ok(Box::new(stream));
        };
        let handshake = connector.connect(name.clone(), stream);
        Ok(Box::new(
            tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await??,
        ))
    }

    /// Writes queued messages until the queue closes or the peer refuses this member (Ok),
    /// or the connection fails.
    async fn pump(&mut self, stream: Box<dyn PeerStream>) -> std::io::Result<()> {
        let (mut frames, mut replies) = Framed::new(stream, codec()).split();
        frames.send(Bytes::from(self.hello.encode_to_vec())).await?;
        loop {
            let message = tokio::select! {
                message = self.queue.recv() => match message {
                    Some(message) => message,
                    None => return Ok(()),
                },
                reply = replies.next() => return self.refused(reply),
            };
            let mut sent = vec![message];
            while sent.len() < BATCH {
                match self.queue.try_recv() {
                    Ok(more) => sent.push(more),
                    Err(_) => break,
                }
            }
            if let Err(err) = write_batch(&mut frames, &sent).await {
                for message in &sent {
                    self.links
                        .snapshot_failed(message.to, message.get_msg_type());
                }
                return Err(err);
            }
            for message in &sent {
                self.links.snapshot_sent(message.to, message.get_msg_type());
            }
        }
    }

    /// Handles what the peer wrote back: a `Refusal` for this member is reported (Ok: this
    /// sender is done); anything else ends the connection.
    fn refused(&self, reply: Option<std::io::Result<bytes::BytesMut>>) -> std::io::Result<()> {
        let frame = reply.unwrap_or_else(|| {
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "the peer closed the connection",
            ))
        })?;
        let refusal = Refusal::decode(frame)?;
        if refusal.removed != self.hello.from {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the peer refused member {}", refusal.removed),
            ));
        }
        let _ = self.links.reports.send(PeerReport::Removed(self.hello.to));
        Ok(())
    }
}

/// Writes a batch of messages and flushes once.
async fn write_batch(
    frames: &mut SplitSink<Frames, Bytes>,
    batch: &[Message],
) -> std::io::Result<()> {
    for message in batch {
        frames.feed(Bytes::from(message.encode_to_vec())).await?;
    }
    frames.flush().await
}
